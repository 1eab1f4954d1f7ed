"""Run the app: waitress in one process, gunicorn for several (``--workers N``).

One process (the default, and always on Windows, where gunicorn does not run) is served by
waitress with :data:`WAITRESS_OPTIONS`. With ``workers`` > 1 on Linux and macOS, gunicorn's
pre-fork arbiter runs N worker processes on the one port (:mod:`ril_dash.gunicorn_app`): each
builds its own app, a worker that dies is replaced, ``SIGHUP`` reloads gracefully, and the same
body and time limits hold.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from ril_dash.errors import RilDashError
from ril_dash.ui.request_limits import UPLOAD_BODY_BYTES

#: waitress refuses (413) a body beyond the largest legitimate one (a model upload) before
#: reading it; smaller bounds per route are the app's (ril_dash.ui.request_limits). The
#: gunicorn tier keeps the same bounds (ril_dash.gunicorn_app.limit_body).
WAITRESS_OPTIONS = {"channel_timeout": 120, "max_request_body_size": UPLOAD_BODY_BYTES}


class AppWarmUpFailed(RilDashError):
    """The app built for a server process failed its first request."""


def warm_up(server):
    """Pass one request (``GET /login``) through the freshly built Flask ``server``; return it.

    Dash does its once-per-process set-up (the page router's callback, the script lists, the
    callback map) in the first request, and that set-up is not safe against concurrent first
    requests: in a fresh process receiving a burst of them, some got 500. Done here, in the
    process and before it serves, it runs alone. ``/login`` passes every check on the way
    (host, login guard, body size) without changing anything.
    """
    reply = server.test_client().get("/login", headers={"Host": "localhost"})
    if reply.status_code >= 500:
        raise AppWarmUpFailed(f"the app answered its first request (GET /login) with "
                              f"{reply.status_code}; the server log says why")
    return server


def uses_gunicorn(workers: int, platform: str = sys.platform) -> bool:
    """Whether ``workers`` processes are served by gunicorn here (else by one waitress).

    >>> uses_gunicorn(1), uses_gunicorn(4, "linux"), uses_gunicorn(4, "darwin")
    (False, True, True)
    >>> uses_gunicorn(4, "win32")
    False
    """
    return workers > 1 and platform != "win32"


def serve_forever(build_app: Callable[[], object], host: str, port: int, *, threads: int,
                  workers: int = 1, access_log: str | None = None,
                  reopen: Callable[[], Callable[[], object]] | None = None) -> None:
    """Serve the WSGI app made by ``build_app()`` on ``host:port`` until stopped.

    The app is warmed up (:func:`warm_up`) before it serves. With gunicorn
    (:func:`uses_gunicorn`), ``build_app`` runs in each worker process,
    ``access_log`` (a file, or ``-``) logs each request and ``reopen()`` gives the
    ``build_app`` of the workers started by a reload (SIGHUP).
    """
    if uses_gunicorn(workers):
        from ril_dash.gunicorn_app import serve_with_gunicorn

        serve_with_gunicorn(build_app, host, port, threads=threads, workers=workers,
                            access_log=access_log, reopen=reopen)
        return
    import waitress

    server = waitress.create_server(warm_up(build_app()), host=host, port=port, threads=threads,
                                    **WAITRESS_OPTIONS)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
