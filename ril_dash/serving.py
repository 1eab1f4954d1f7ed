"""Run the app under waitress: one process, or several sharing one listening socket.

``ril-dash serve --workers N`` binds the address once, then forks N worker processes that each
build their own app (caches, background threads) and accept connections from the shared socket,
so a lab server uses every core despite Python's global interpreter lock. The processes share
state only through the project's files and locks (sessions, leases, annotations, audit log),
exactly as several servers on one share do. The parent only supervises: it replaces a worker
that dies and stops them all on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from ril_dash.ui.request_limits import UPLOAD_BODY_BYTES

#: a worker that exits (not killed) sooner than this after starting failed at start: stop
MIN_WORKER_LIFE = 5.0
#: waitress refuses (413) a body beyond the largest legitimate one (a model upload) before
#: reading it; smaller bounds per route are the app's (ril_dash.ui.request_limits)
WAITRESS_OPTIONS = {"channel_timeout": 120, "max_request_body_size": UPLOAD_BODY_BYTES}


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve_forever(build_app: Callable[[], object], host: str, port: int, *, threads: int,
                  workers: int = 1) -> None:
    """Serve the WSGI app made by ``build_app()`` on ``host:port`` until interrupted.

    With ``workers`` > 1 (Linux and macOS), ``build_app`` runs in each worker process.
    """
    import waitress

    if workers <= 1 or not hasattr(os, "fork"):
        server = waitress.create_server(build_app(), host=host, port=port, threads=threads,
                                        **WAITRESS_OPTIONS)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        return
    sock = _listen(host, port)
    children: dict[int, float] = {}
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                server = waitress.create_server(build_app(), sockets=[sock], threads=threads,
                                                **WAITRESS_OPTIONS)
                server.run()
            except BaseException as exc:  # noqa: BLE001 - report, then leave the process
                print(f"ril_dash worker {os.getpid()} stopped: {exc!r}", file=sys.stderr,
                      flush=True)
                code = 1
            finally:
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(workers):
            spawn()
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            started = children.pop(pid, None)
            if stopping or started is None:
                continue
            failed_at_start = (not os.WIFSIGNALED(status)
                               and time.monotonic() - started < MIN_WORKER_LIFE)
            if failed_at_start:  # e.g. build_app() raised: restarting would loop
                print(f"ril_dash: a worker failed at start (status {status}); stopping",
                      file=sys.stderr, flush=True)
                stop(None, None)
                continue
            print(f"ril_dash: worker {pid} died (status {status}); starting another",
                  file=sys.stderr, flush=True)
            spawn()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
