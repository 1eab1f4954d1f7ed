"""Several server processes under gunicorn: ``ril-dash serve --workers N`` on Linux and macOS.

gunicorn's arbiter binds the address once, then forks N worker processes that each build their
own app (caches, background threads: the app is never built in the arbiter) and accept
connections from the shared socket, so a lab server uses every core despite Python's global
interpreter lock. The processes share state only through the project's files and locks
(sessions, leases, annotations, audit log), exactly as several servers on one share do. What
the arbiter gives:

- a worker that dies is replaced; one that stops answering for :data:`WORKER_TIMEOUT` seconds
  is killed and replaced;
- ``SIGTERM`` stops every process gracefully (requests in progress get
  :data:`GRACEFUL_TIMEOUT` seconds to finish), ``SIGINT`` (Ctrl+C) at once;
- ``SIGHUP`` reloads gracefully: the project, its workflow and users file are opened and
  checked again, new workers start from them and the old ones finish their requests and leave;
  when those checks fail, the reason goes to the log and the new workers are built from what
  the old ones served;
- ``--access-log FILE`` (``-``: standard output): one line per request.

A worker that fails while it starts (the app cannot be built) stops the whole server with the
reason instead of being restarted forever: :class:`WorkerStartFailed`.

The server's own limits match those of the single-process waitress server
(:data:`ril_dash.serving.WAITRESS_OPTIONS`): a body announced larger than the largest legitimate
upload gets 413 before it is read (gunicorn then closes the connection rather than read the
rest), and a client that stops sending its body for :data:`BODY_READ_TIMEOUT` seconds is
dropped. The app adds its per-route bounds (:mod:`ril_dash.ui.request_limits`).
``X-Forwarded-*`` headers are trusted by no one at this level: the app's ``--trusted-proxies``
alone decides.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer

from ril_dash.errors import RilDashError
from ril_dash.serving import warm_up
from ril_dash.ui.request_limits import UPLOAD_BODY_BYTES

#: seconds a worker may go without a heartbeat (its event loop, not one request) before the
#: arbiter kills and replaces it
WORKER_TIMEOUT = 120
#: seconds requests in progress get to finish on SIGTERM or SIGHUP
GRACEFUL_TIMEOUT = 30
#: seconds an idle kept-alive connection stays open
KEEPALIVE = 5
#: gunicorn's access log line, with the request's duration and the worker process that answered
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms pid%(p)s "%(a)s"'
#: seconds without a byte of a request body before the client is dropped (waitress'
#: ``channel_timeout``)
BODY_READ_TIMEOUT = 120

log = logging.getLogger("gunicorn.error")


class WorkerStartFailed(RilDashError):
    """A server process could not build the app: the server stopped instead of retrying."""


def bind_address(host: str, port: int) -> str:
    """gunicorn's ``bind`` for ``host:port`` (IPv6 literals in brackets).

    >>> bind_address("127.0.0.1", 8050), bind_address("::1", 8050)
    ('127.0.0.1:8050', '[::1]:8050')
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_options(host: str, port: int, *, threads: int, workers: int,
                     access_log: str | None = None) -> dict:
    """The gunicorn settings of ``ril-dash serve --workers N``."""
    return {
        "bind": [bind_address(host, port)],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": WORKER_TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": KEEPALIVE,
        "limit_request_line": 8190,  # gunicorn's largest; waitress bounds whole headers only
        "forwarded_allow_ips": "",  # the app's --trusted-proxies decides (ProxyFix)
        "control_socket_disable": True,  # signals are the interface; no socket in $HOME
        "accesslog": access_log,
        "access_log_format": ACCESS_LOG_FORMAT,
        "proc_name": "ril-dash",
    }


def limit_body(app, limit: int = UPLOAD_BODY_BYTES):
    """WSGI middleware: the server-level body bound of waitress' ``max_request_body_size``.

    A body announced larger than ``limit`` gets 413 (nothing of it is read); reading a body
    waits at most :data:`BODY_READ_TIMEOUT` seconds for each chunk.
    """
    def limited(environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            body = (f"Refused: the request body ({length / 2**20:.1f} MB) is larger than this "
                    f"server accepts ({limit / 2**20:.0f} MB).\n").encode()
            start_response("413 Request Entity Too Large", [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body)))])
            return [body]
        sock = environ.get("gunicorn.socket")
        if sock is not None and length:
            sock.settimeout(BODY_READ_TIMEOUT)  # gunicorn makes it blocking again afterwards
        return app(environ, start_response)

    return limited


class RilDashGunicorn(BaseApplication):
    """gunicorn driven from Python: ``build_app()`` runs in each worker process.

    ``reopen()``, if given, runs in the arbiter on SIGHUP and returns the ``build_app`` of the
    new workers (it opens and checks the project again); a :class:`RilDashError` from it keeps
    the previous one.
    """

    def __init__(self, build_app: Callable[[], object], options: dict,
                 reopen: Callable[[], Callable[[], object]] | None = None) -> None:
        self.build_app, self.options, self.reopen = build_app, options, reopen
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # e.g. control_socket_disable: recent gunicorn only
                self.cfg.set(key, value)

    def load(self):
        try:
            return limit_body(warm_up(self.build_app()))
        except Exception as exc:
            raise WorkerStartFailed(f"server process {os.getpid()} could not build the app: "
                                    f"{exc}") from exc

    def reload(self) -> None:
        if self.reopen is not None:
            try:
                self.build_app = self.reopen()
                log.info("Reload: the project, workflow and users were read again")
            except RilDashError as exc:
                log.error("Reload refused, the new workers serve the previous configuration: "
                          "%s", exc)
        super().reload()


def serve_with_gunicorn(build_app: Callable[[], object], host: str, port: int, *, threads: int,
                        workers: int, access_log: str | None = None,
                        reopen: Callable[[], Callable[[], object]] | None = None) -> None:
    """Serve until SIGTERM or Ctrl+C; raise :class:`WorkerStartFailed` if a worker cannot start.

    An access log file is created private (0600): its lines hold URLs, which name series.
    """
    if access_log and access_log != "-":
        try:
            os.close(os.open(access_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        except OSError as exc:
            raise RilDashError(f"cannot write the access log {access_log} ({exc.strerror}): "
                               f"give a file in a folder that exists and that this user may "
                               f"write, or - for the standard output") from None
    options = gunicorn_options(host, port, threads=threads, workers=workers,
                               access_log=access_log)
    arbiter_pid = os.getpid()
    arbiter = Arbiter(RilDashGunicorn(build_app, options, reopen))
    try:
        arbiter.run()
        code = 0
    except HaltServer as exc:  # a second failed start, reaped while the first one stops all
        if os.getpid() != arbiter_pid:
            raise
        for pid in list(arbiter.WORKERS):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        code = exc.exit_status
    except SystemExit as exc:
        if os.getpid() != arbiter_pid:  # a worker leaving: its status is for the arbiter
            raise
        code = exc.code
    if code not in (None, 0):
        if code in (Arbiter.WORKER_BOOT_ERROR, Arbiter.APP_LOAD_ERROR):
            raise WorkerStartFailed(
                "a server process failed while starting (the lines above say why), so the "
                "server stopped instead of restarting it over and over. Fix the cause and "
                "start it again.")
        raise SystemExit(code)
