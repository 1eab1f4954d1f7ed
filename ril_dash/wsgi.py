"""WSGI entry point for production servers: ``ril_dash.wsgi:application``.

::

    RIL_DASH_PROJECT=/data/liver-study gunicorn -w 4 --threads 8 -b 0.0.0.0:8050 \\
        ril_dash.wsgi:application
    RIL_DASH_PROJECT=/data/liver-study waitress-serve --listen=0.0.0.0:8050 \\
        ril_dash.wsgi:application

Configured by environment variables:

- ``RIL_DASH_PROJECT`` (required): the project folder.
- ``RIL_DASH_WORKFLOW``: a workflow file (else the ``workflow:`` of project.yaml, if any).
- ``RIL_DASH_SECURE_COOKIES``: ``1``/``true``/``yes`` marks the login cookie Secure (behind an
  HTTPS proxy).
- ``RIL_DASH_ALLOWED_HOSTS``: the host names (comma-separated) the app answers to besides IP
  addresses, ``localhost`` and this computer's name, e.g. the public name of the proxy.
- ``RIL_DASH_BROKER``: a Redis URL (``redis://HOST:6379/0``): jobs run on ``ril-dash worker``
  processes through this job broker (as ``ril-dash serve --broker``); unset: in the server.
- ``RIL_DASH_TRUSTED_PROXIES``: the number of reverse proxies in front of the app whose
  ``X-Forwarded-For`` header gives the client address (default 0: the header is ignored; see
  :mod:`ril_dash.ui.proxies`).

``ril-dash serve --workers N`` runs the same app under gunicorn itself
(:mod:`ril_dash.gunicorn_app`, with its limits and a graceful reload that checks the project
again); this entry point is for a gunicorn (or other WSGI server) command line of your own, where
the server's options are yours. The gunicorn line above is tested with two worker processes
(``tests/test_serving.py``).

Logins are always required here. The app is built when ``application`` is first looked up
(``from ril_dash.wsgi import application``, which is what gunicorn and waitress-serve do at
start), after the same checks as ``ril-dash serve --login``; a failed check raises
:class:`~ril_dash.errors.RilDashError` with the message that says what to fix. Several
processes (gunicorn workers, several hosts) share state only through the project's files:
sessions, series leases, annotations and the audit log, all under file locks.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ril_dash.errors import RilDashError
from ril_dash.settings import Settings, check_trusted_proxies

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_lock = threading.Lock()
_application = None


class WsgiConfigError(RilDashError):
    """The environment variables that configure the WSGI app are missing or malformed."""


def settings_from_env(environ: os._Environ | dict | None = None) -> Settings:
    """The :class:`Settings` described by the ``RIL_DASH_*`` environment variables."""
    env = os.environ if environ is None else environ
    project = env.get("RIL_DASH_PROJECT", "").strip()
    if not project:
        raise WsgiConfigError("set RIL_DASH_PROJECT to the project folder (the one holding "
                              "project.yaml) before starting ril_dash.wsgi:application")
    workflow = env.get("RIL_DASH_WORKFLOW", "").strip()
    secure = env.get("RIL_DASH_SECURE_COOKIES", "").strip().lower()
    if secure not in _TRUE + _FALSE:
        raise WsgiConfigError(f"RIL_DASH_SECURE_COOKIES must be 1/true/yes or 0/false/no, "
                              f"not {secure!r}")
    allowed = tuple(name.strip() for name in env.get("RIL_DASH_ALLOWED_HOSTS", "").split(",")
                    if name.strip())
    proxies = env.get("RIL_DASH_TRUSTED_PROXIES", "").strip() or "0"
    try:
        trusted = check_trusted_proxies(int(proxies), "RIL_DASH_TRUSTED_PROXIES")
    except ValueError as exc:
        message = str(exc) if "RIL_DASH" in str(exc) else (
            f"RIL_DASH_TRUSTED_PROXIES must be a whole number (the reverse proxies in front "
            f"of the app), not {proxies!r}")
        raise WsgiConfigError(message) from None
    from ril_dash.worker_cli import broker_of

    return Settings(project_dir=Path(project).expanduser(), host="0.0.0.0",
                    login_required=True, workflow_file=Path(workflow) if workflow else None,
                    secure_cookies=secure in _TRUE, allowed_hosts=allowed,
                    trusted_proxies=trusted, broker=broker_of(None, env))


def create_wsgi_app(environ: os._Environ | dict | None = None):
    """Check the project and return the Flask (WSGI) app of a fresh Dash app for it."""
    from ril_dash.cli import startup_checks
    from ril_dash.project.project import Project
    from ril_dash.serving import warm_up
    from ril_dash.ui.app import create_app

    settings = settings_from_env(environ)
    project = Project.open(settings.project_dir)
    startup_checks(project, settings)
    return warm_up(create_app(project, settings).server)


def __getattr__(name: str):
    """``application`` is built on first access (thread-safe), not at import."""
    global _application
    if name != "application":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if _application is None:
            _application = create_wsgi_app()
    return _application
