"""How routes and callbacks reach their app's :class:`~ril_dash.application.services.Services`.

One :class:`Services` per app, attached to the Flask server (``extensions``), reached through
Flask's ``current_app`` — never a module global, so several apps can live in one process (tests).
A Dash background callback runs in a process forked from the request's thread, which keeps
Flask's app context, so :func:`get_services` works there too (``dash.get_app()`` would not: it
answers the last Dash app built in the process). :func:`services_of_app` serves code that holds
the Flask server itself (the logout hook).
"""

from __future__ import annotations

from flask import current_app

from ril_dash.application.services import Services

__all__ = ["EXTENSION_KEY", "Services", "get_job_tier", "get_services", "services_of_app"]

EXTENSION_KEY = "ril_dash"
TIER_KEY = "ril_dash.job_tier"


def get_services() -> Services:
    """The :class:`Services` of the app serving the current request."""
    return current_app.extensions[EXTENSION_KEY]


def services_of_app(server) -> Services:
    """The :class:`Services` attached to a Flask ``server`` (outside a request)."""
    return server.extensions[EXTENSION_KEY]


def get_job_tier():
    """Where the jobs of the current request's app run
    (:mod:`ril_dash.application.job_tier`: here by default, or on the broker's workers)."""
    from ril_dash.application.job_tier import EMBEDDED

    return current_app.extensions.get(TIER_KEY, EMBEDDED)
