"""Several server processes on one port, each with a listening socket of its own.

``medtwin serve --workers N`` runs N uvicorn servers. Had they one listening socket
between them, the worker that happens to be awake takes every connection waiting
(its accept loop drains the queue), and since clients keep their connections alive,
one process may carry all the traffic while the others idle. Here each worker
listens on its own socket with ``SO_REUSEPORT``, and the kernel spreads new
connections over the sockets by a hash of their addresses, so the load spreads
with the connections. Where the platform has no such spreading (anything but
Linux), the workers share one socket.

The parent binds every socket before any worker starts (a port in use stops the
command with a clear message), keeps them open, restarts a worker that dies (the
connections waiting on its socket wait for the replacement), and on SIGINT or
SIGTERM stops the workers and waits for them to finish what they hold.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any

from medtwin_ml.errors import ConfigError

__all__ = ["listening_sockets", "run_workers"]

logger = logging.getLogger(__name__)

# A worker that dies this soon after starting is not restarted: it would only die
# again (a broken install, say), and the parent stops instead.
_MIN_LIFETIME_S = 10.0


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple]:
    # IPv6 only for an IPv6 address, as uvicorn binds with one worker: a name such
    # as "localhost" means IPv4 either way.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        info = socket.getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError("serve", [("host", host, f"an address ({exc})")]) from None
    family, _, _, _, address = info[0]
    return family, address


def _bind(family: socket.AddressFamily, address: tuple, reuse_port: bool):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def listening_sockets(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` listening sockets on ``host:port`` spread by the kernel (Linux), or one
    shared socket elsewhere.

    Raises:
        ConfigError: the address cannot be bound (in use, say).
    """
    family, address = _address(host, port)
    spread = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    try:
        # A plain bind first: SO_REUSEPORT alone would let this server share a port
        # that another server of the same user already listens on.
        probe = _bind(family, address, reuse_port=False)
        if not spread:
            probe.listen(2048)
            return [probe]
        address = probe.getsockname()  # port 0 becomes the port the kernel chose
        probe.close()
        socks = [_bind(family, address, reuse_port=True) for _ in range(n)]
    except OSError as exc:
        raise ConfigError(
            "serve", [("port", port, f"a free port on {host} ({exc.strerror})")]
        ) from None
    for s in socks:
        s.listen(2048)
    return socks


def _worker(sock: socket.socket, options: dict[str, Any]) -> None:
    """One worker: the app from the settings in the environment, on ``sock``."""
    import uvicorn

    from serving.app import create_app_from_env

    config = uvicorn.Config(create_app_from_env(), **options)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(socks: list[socket.socket], n: int, options: dict[str, Any]) -> int:
    """Run ``n`` workers over ``socks`` (worker ``i`` on ``socks[i % len]``) until a
    signal; returns the exit status. The settings must already be in
    ``$MEDTWIN_SERVE_SETTINGS`` (see :meth:`serving.app.ServingSettings.to_env`)."""
    ctx = multiprocessing.get_context("spawn")
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }

    def start(i: int) -> tuple[Any, float]:
        proc = ctx.Process(
            target=_worker,
            args=(socks[i % len(socks)], options),
            name=f"medtwin-worker-{i}",
        )
        proc.start()
        return proc, time.monotonic()

    status = 0
    procs = [start(i) for i in range(n)]
    logger.info("started %d workers: %s", n, [p.pid for p, _ in procs])
    try:
        while not stop:
            time.sleep(0.2)
            for i, (proc, started) in enumerate(procs):
                if proc.is_alive() or stop:
                    continue
                if time.monotonic() - started < _MIN_LIFETIME_S:
                    logger.error(
                        "worker %d exited with %s within %.0f s of starting; stopping",
                        proc.pid,
                        proc.exitcode,
                        _MIN_LIFETIME_S,
                    )
                    stop, status = True, 1
                    break
                logger.warning(
                    "worker %d exited with %s; starting another",
                    proc.pid,
                    proc.exitcode,
                )
                procs[i] = start(i)
    finally:
        for proc, _ in procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc, _ in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for s in socks:
            s.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
