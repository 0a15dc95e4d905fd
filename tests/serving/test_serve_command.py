"""``medtwin serve`` as a device team runs it: real processes on a loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.serving.conftest import KEY, MODEL, patient, scenario


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(port: int, path: str, body: dict | None = None, key: str | None = KEY):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {key}"} if key else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture()
def two_workers(bundle_root, tmp_path):
    """``medtwin serve --workers 2`` with its keys in a file, not the environment."""
    keys = tmp_path / "keys.txt"
    keys.write_text(KEY + "\n")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MEDTWIN_API_KEYS"}
    log = tmp_path / "stderr.log"
    code = "from medtwin_ml.cli import app; app()"
    argv = [sys.executable, "-c", code, "serve", "--bundles", str(bundle_root)]
    argv += ["--port", str(port), "--workers", "2", "--api-keys", str(keys)]
    with log.open("w") as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.time() + 120
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if _call(port, "/ready", key=None)[0] == 200:
                        break
                except OSError:
                    pass
                assert time.time() < deadline, "server did not start"
                time.sleep(0.3)
            yield port, log, started
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def test_workers_serve_with_the_keys_of_the_file_and_audit_every_request(
    two_workers,
):
    port, log, _ = two_workers
    assert _call(port, "/v1/models", key=None)[0] == 401
    assert _call(port, "/v1/models", key="wrong-key-0123456789abcdef")[0] == 401
    status, models = _call(port, "/v1/models")
    assert status == 200 and [m["name"] for m in models["models"]] == [MODEL]
    body = {
        "cases": [
            {"parameters": patient(i), "device": {}, "scenario": scenario(120)}
            for i in range(3)
        ]
    }
    for _ in range(10):
        status, answer = _call(port, f"/v1/models/{MODEL}/predict", body)
        assert status == 200
        assert len(answer["cases"]) == 3
    time.sleep(0.5)
    audit = [
        json.loads(line)
        for line in log.read_text().splitlines()
        if line.startswith("{") and '"route"' in line
    ]
    predicts = [a for a in audit if a["route"] == "/v1/models/{name}/predict"]
    assert len(predicts) == 10
    assert all(a["status"] == 200 and a["cases"] == 3 for a in predicts)
    assert sum(a["status"] == 401 for a in audit) == 2


def test_workers_share_the_connections_and_say_which_answered(two_workers):
    port, log, _ = two_workers
    # Each call is a new connection; each worker listens on its own socket, and the
    # kernel spreads connections over them (all 40 on one: a chance of 2 in 2^40).
    for _ in range(40):
        assert _call(port, "/v1/models")[0] == 200
    time.sleep(0.5)
    pids = {
        json.loads(line)["pid"]
        for line in log.read_text().splitlines()
        if line.startswith("{") and '"route":"/v1/models"' in line
    }
    assert len(pids) == 2


def test_a_port_in_use_is_refused_before_any_worker_starts(bundle_root, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = "from medtwin_ml.cli import app; app()"
        argv = [sys.executable, "-c", code, "serve", "--bundles", str(bundle_root)]
        argv += ["--port", str(port), "--workers", "2"]
        env = {**os.environ, "MEDTWIN_API_KEYS": KEY}
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 2
    assert f"port: got {port}; expected a free port" in done.stderr, done.stderr
    assert "Address already in use" in done.stderr


def _audited_pids(log, route: str) -> set[int]:
    return {
        json.loads(line)["pid"]
        for line in log.read_text().splitlines()
        if line.startswith("{") and f'"route":"{route}"' in line
    }


def test_a_worker_that_dies_is_replaced(two_workers):
    port, log, started = two_workers
    for _ in range(40):
        assert _call(port, "/v1/models")[0] == 200
    time.sleep(0.5)
    before = _audited_pids(log, "/v1/models")
    assert len(before) == 2
    # A worker that dies soon after the start stops the server (it would only die
    # again); past that, it is replaced.
    time.sleep(max(0.0, started + 11 - time.monotonic()))
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.time() + 60
    while True:
        for _ in range(20):
            assert _call(port, "/v1/models")[0] == 200
        time.sleep(0.3)
        after = _audited_pids(log, "/v1/models") - before
        if after:
            break
        assert time.time() < deadline, log.read_text()[-2000:]
    assert "starting another" in log.read_text()
    assert victim not in after
