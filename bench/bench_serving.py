"""Latency and throughput of the what-if API over real HTTP, next to the full solver.

Usage::

    python bench/bench_serving.py --bundle DIR [--rate 500] [--seconds 5]

Starts ``medtwin serve`` (uvicorn, ``--workers`` processes, 2 by default, each with
one onnxruntime thread, and ``--bulk-threads`` sharing a cohort's chunks, 2 by
default) on a loopback port with the bundle at ``DIR`` and drives it with a minimal
HTTP/1.1 keep-alive client (asyncio streams, so the client costs little of the
shared CPUs), then measures, in one run:

1. a single diabetes what-if (one korean_adult patient, one day, three meals with
   boluses; 64 different patients in turn): p50/p99 latency of requests sent one
   after another;
2. the same request open-loop at ``--rate`` requests per second for ``--seconds``
   over several connections: p50/p99 latency counted from each request's scheduled
   send time (so queueing shows), achieved throughput, errors and the CPU each
   server process spent; then the same at each of ``--higher-rates``, to show where
   the server saturates;
3. a 1,000-patient korean_adult cohort query (one day, design varied between
   queries so no answer repeats): latency of each query;
4. the full solver (``simulate_batch``: RK4, two steps a minute, NumPy vectorised
   over cases) on the same 1,000 cases, in this process, and the reference path
   (adaptive DOP853, one case at a time) on ``--reference`` of them; with fewer
   than the cohort, its cohort time is extrapolated (per-case time times the
   cohort size) and the summary says so.

The bundle is never trained or exported here: without one the script stops and says
how to make one. Prints a JSON summary and Markdown lines for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

KEY = "bench-key-0123456789abcdef"


def _run(coro):
    """Run the client on uvloop where it is installed (it comes with the serve
    extra): the load generator shares the CPUs with the server, so it should be
    cheap."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _host_speed_s() -> float:
    """Seconds for a fixed pure-Python loop, timed before the run: on a shared or
    virtual machine the same code runs at different speeds from hour to hour, and
    this says how fast the host was."""
    t0 = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    return time.perf_counter() - t0


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds of one process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _workers_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each child of ``pid`` (the uvicorn workers) and of ``pid``
    itself; empty where ``/proc`` is not there."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {p: _cpu_s(p) for p in [pid, *map(int, children)]}
    except OSError:
        return {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, path: str, body: dict | None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    method = "POST" if body is not None else "GET"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length)
    return status, body


class _Connection:
    def __init__(self, port: int):
        self.port = port

    async def open(self) -> _Connection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        await self.writer.drain()
        return await _read_response(self.reader)

    def close(self) -> None:
        self.writer.close()


async def _sequential(
    port: int, raw: bytes | list[bytes], n: int
) -> tuple[list[float], int]:
    pool = raw if isinstance(raw, list) else [raw]
    conn = await _Connection(port).open()
    latencies, errors = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        status, _ = await conn.send(pool[len(latencies) % len(pool)])
        latencies.append(time.perf_counter() - t0)
        errors += status != 200
    conn.close()
    return latencies, errors


async def _open_loop(
    port: int, raw: bytes | list[bytes], rate: float, seconds: float, n_conn: int
) -> dict:
    pool = raw if isinstance(raw, list) else [raw]
    conns = [await _Connection(port).open() for _ in range(n_conn)]
    n = int(rate * seconds)
    queue: asyncio.Queue[float] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05
    for k in range(n):
        queue.put_nowait((start + k / rate, pool[k % len(pool)]))

    async def worker(conn: _Connection) -> None:
        nonlocal errors
        while True:
            try:
                due, body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status, _ = await conn.send(body)
            latencies.append(time.perf_counter() - due)
            errors += status != 200

    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    lat = np.array(latencies)
    return {
        "target_rps": rate,
        "requests": n,
        "achieved_rps": n / elapsed,
        "p50_ms": 1e3 * float(np.percentile(lat, 50)),
        "p99_ms": 1e3 * float(np.percentile(lat, 99)),
        "errors": errors,
        "connections": n_conn,
    }


def _loaded(pid: int, port: int, raw: list[bytes], rate: float, args) -> dict:
    """The open loop at ``rate`` with the CPU seconds each server process spent."""
    cpu0 = _workers_cpu_s(pid)
    result = _run(_open_loop(port, raw, rate, args.seconds, args.connections))
    cpu1 = _workers_cpu_s(pid)
    # How the load fell on the processes: keep-alive connections stay with the
    # worker whose socket the kernel gave them, so one may carry more than half.
    result["process_cpu_s"] = [round(cpu1[p] - cpu0[p], 2) for p in cpu1 if p in cpu0]
    return result


def _single_case_bodies(twin, n: int) -> list[dict]:
    """``n`` different single what-ifs: one korean_adult patient each (seed 0), one
    day at the middle of the design domain, three meals with boluses."""
    row = {v.name: 0.5 * (v.low + v.high) for v in twin.input_domain.variables}
    patients = twin.sample_cohort("korean_adult", n, 0)
    cases = twin.cases_from_design(
        pd.DataFrame([row] * n), patients, {"duration_min": 1440}
    )
    return [
        {
            "cases": [
                {
                    "parameters": case.params.model_dump(
                        mode="json", exclude_none=True
                    ),
                    "device": {},
                    "scenario": case.scenario.model_dump(
                        mode="json", exclude_none=True
                    ),
                }
            ]
        }
        for case in cases
    ]


def _cohort_body(basal_scale: float, n: int) -> dict:
    return {
        "cohort": {"name": "korean_adult", "n": n, "seed": 1},
        "design": {"basal_scale": basal_scale},
        "options": {"duration_min": 1440},
    }


def _start_server(
    bundle: Path, port: int, threads: int, log: Path, workers: int = 1, bulk: int = 2
):
    folder = Path(tempfile.mkdtemp(prefix="medtwin-bench-"))
    (folder / bundle.name).symlink_to(bundle.resolve(), target_is_directory=True)
    env = {**os.environ, "MEDTWIN_API_KEYS": KEY}
    code = "from medtwin_ml.cli import app; app()"
    args = [sys.executable, "-c", code, "serve", "--bundles", str(folder)]
    args += ["--port", str(port), "--threads", str(threads), "--workers", str(workers)]
    args += ["--bulk-threads", str(bulk)]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w")
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /ready HTTP/1.1\r\nHost: bench\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("server did not start within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--cohort", type=int, default=1000)
    parser.add_argument("--cohort-queries", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bulk-threads", type=int, default=2)
    parser.add_argument("--reference", type=int, default=3)
    parser.add_argument(
        "--higher-rates",
        type=lambda text: [float(r) for r in text.split(",") if r],
        default=[],
        help="comma-separated request rates to run the open loop at after --rate",
    )
    args = parser.parse_args()

    from medtwin_ml.export.bundle import BundleError, load_bundle
    from medtwin_ml.registry import get_twin
    from medtwin_ml.workspace import Workspace

    bundle = args.bundle or Workspace.from_env().bundles / "diabetes-node"
    try:
        card, _ = load_bundle(bundle)
    except BundleError as exc:
        raise SystemExit(
            f"no usable bundle at {bundle} ({exc}). Train and export one first: "
            "medtwin generate configs/datasets/diabetes_korean_2000.yaml; "
            "medtwin train configs/models/diabetes_node.yaml; medtwin export "
            "models:/diabetes-node@candidate --out DIR; then pass --bundle DIR."
        ) from None
    twin = get_twin(card.twin)
    host_speed_s = _host_speed_s()
    port = _free_port()
    log = Path(tempfile.mkdtemp(prefix="medtwin-bench-log-")) / "server.log"
    proc = _start_server(
        bundle, port, args.threads, log, args.workers, args.bulk_threads
    )
    try:
        path = f"/v1/models/{card.name}/predict"
        # Requests differ (patients cycle), so that no layer can answer from memory.
        single = [_request(port, path, b) for b in _single_case_bodies(twin, 64)]
        # Warm-up: first requests pay for lazy imports and onnxruntime's first run,
        # in every worker (connections spread over them).
        _run(_open_loop(port, single, 100, 2, args.connections))
        seq, seq_errors = _run(_sequential(port, single, args.sequential))
        loaded = _loaded(proc.pid, port, single, args.rate, args)
        # Higher rates, to show how far the server goes before it saturates.
        higher = [_loaded(proc.pid, port, single, r, args) for r in args.higher_rates]
        cohort_ms, cohort_errors = [], 0
        for q in range(args.cohort_queries + 1):
            raw = _request(port, path, _cohort_body(0.8 + 0.1 * q, args.cohort))
            lat, err = _run(_sequential(port, raw, 1))
            cohort_ms.append(1e3 * lat[0])
            cohort_errors += err
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # The full solver on the same cohort (design of the first timed query).
    row = {v.name: 0.5 * (v.low + v.high) for v in twin.input_domain.variables}
    row["basal_scale"] = 0.9
    patients = twin.sample_cohort("korean_adult", args.cohort, 1)
    cases = twin.cases_from_design(
        pd.DataFrame([row] * args.cohort), patients, {"duration_min": 1440}
    )
    t0 = time.perf_counter()
    twin.simulate_batch(cases)
    solver_s = time.perf_counter() - t0
    # The reference path (one case at a time, as `medtwin simulate`) on the first
    # --reference of the same cases; on fewer than all, its cohort time is that
    # per-case time times the cohort size.
    n_ref = max(1, min(args.reference, len(cases)))
    t0 = time.perf_counter()
    for k, case in enumerate(cases[:n_ref]):
        twin.simulate(case)
        if n_ref >= 50 and (k + 1) % 50 == 0:
            print(f"reference solver: {k + 1}/{n_ref} cases", file=sys.stderr)
    reference_s = time.perf_counter() - t0
    reference_cohort_s = reference_s * len(cases) / n_ref

    timed = cohort_ms[1:]  # the first query also draws the cohort
    seq_ms = 1e3 * np.array(seq)
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "bundle": f"{card.name} v{card.version}",
        "host_loop_s": host_speed_s,
        "workers": args.workers,
        "single_sequential": {
            "requests": len(seq),
            "p50_ms": float(np.percentile(seq_ms, 50)),
            "p99_ms": float(np.percentile(seq_ms, 99)),
            "errors": seq_errors,
        },
        "single_open_loop": loaded,
        "single_open_loop_higher_rates": higher,
        "cohort": {
            "n": args.cohort,
            "first_query_ms": cohort_ms[0],
            "median_ms": float(np.median(timed)),
            "max_ms": float(np.max(timed)),
            "errors": cohort_errors,
        },
        "full_solver_s": solver_s,
        "speedup": solver_s / (1e-3 * float(np.median(timed))),
        "reference_solver_cases_timed": n_ref,
        "reference_solver_per_case_s": reference_s / n_ref,
        "reference_solver_cohort_s": reference_cohort_s,
        "reference_cohort_time_extrapolated": n_ref < len(cases),
        "reference_speedup": reference_cohort_s / (1e-3 * float(np.median(timed))),
    }
    print(json.dumps(summary, indent=2))
    print(f"host: 5e6-step Python loop in {host_speed_s:.2f} s")
    s, c = summary["single_sequential"], summary["cohort"]
    print(
        f"| single what-if, sequential | p50 {s['p50_ms']:.2f} ms | "
        f"p99 {s['p99_ms']:.2f} ms | errors {s['errors']} |"
    )
    for lo in [loaded, *higher]:
        print(
            f"| single what-if, open loop at {lo['target_rps']:.0f}/s | "
            f"p50 {lo['p50_ms']:.2f} ms | p99 {lo['p99_ms']:.2f} ms | "
            f"achieved {lo['achieved_rps']:.0f}/s | errors {lo['errors']} | "
            f"CPU s per process {lo['process_cpu_s']} |"
        )
    print(
        f"| {c['n']}-patient cohort | median {c['median_ms']:.0f} ms | "
        f"full solver {solver_s:.2f} s | x{summary['speedup']:.0f} |"
    )
    how = (
        f"extrapolated from {n_ref} cases"
        if n_ref < len(cases)
        else f"all {n_ref} cases timed"
    )
    print(
        f"| reference solver, {reference_cohort_s:.0f} s for the cohort ({how}) | "
        f"x{summary['reference_speedup']:.0f} |"
    )


if __name__ == "__main__":
    main()
