"""The request's side of rights: who is acting, and the application layer's checks for them.

Every route and callback that reads or changes a series asks here (or calls an application
command with :func:`actor`); hiding a button in the page is never the check. The rules
themselves are written once, as pure functions, in :mod:`ril_dash.application.policy`; this
module only finds the acting user of the request (:func:`actor`: the session's user, the users
file's admin flag and the client address that a series lease belongs to) and the app's
:class:`~ril_dash.application.services.Services`.
"""

from __future__ import annotations

from flask import has_request_context, request

from ril_dash.application import leases, policy, repairs, rights
from ril_dash.application.policy import Actor
from ril_dash.project.series_locks import Lease
from ril_dash.errors import NotLoggedIn
from ril_dash.ui.auth import current_user, user_of_cookies, users_admin
from ril_dash.ui.services import get_services
from ril_dash.workflow.machine import SeriesState
from ril_dash.workflow.schema import Workflow

__all__ = ["actor", "actor_of_cookies", "break_lease", "client_host", "current_user",
           "editing_status", "is_admin", "may", "may_export_any", "release_lease", "repair_series",
           "require", "require_admin", "series_state", "workflow_for"]


def client_host() -> str:
    """Where the user edits from (the lease's host): the client address of this request."""
    return (request.remote_addr or "unknown") if has_request_context() else "server"


def actor(user: str | None = None) -> Actor:
    """The acting user of this request (or ``user``), as the application layer takes it."""
    user = current_user() if user is None else user
    return Actor(user, users_admin(user), client_host())


def actor_of_cookies(cookies, host: str | None = None) -> Actor:
    """The acting user named by a request's cookies, for code that runs outside the request (a
    Dash background callback: pass ``dash.callback_context.cookies``, and its ``remote`` as
    ``host`` when the work edits series, so that it writes under the lease the user's browser
    holds); NotLoggedIn without a live session."""
    user = user_of_cookies(cookies)
    if user is None:
        raise NotLoggedIn("Log in first.")
    return Actor(user, users_admin(user), host or "background")


def is_admin(user: str | None = None) -> bool:
    """Whether ``user`` (default: the logged-in user) is an admin."""
    return rights.is_admin(get_services(), actor(user))


def workflow_for(user: str | None = None) -> Workflow | None:
    """The workflow in force as its rules must see ``user`` (default: the logged-in user)."""
    return policy.rules_for(get_services().workflow, actor(user))


def series_state(series: str) -> SeriesState | None:
    """The workflow state of ``series`` (None when no workflow is in force)."""
    return rights.series_state(get_services(), series)


def may(series: str, right: str, user: str | None = None) -> bool:
    """Whether ``user`` (default: the logged-in user) may exercise ``right`` on ``series``."""
    return rights.may(get_services(), actor(user), series, right)


def require(series: str, right: str) -> str:
    """Return the logged-in user if they may exercise ``right`` on ``series``, else raise
    :class:`PermissionDenied` saying why (:class:`SeriesNotFound` for an id that is not a
    series of the project, before anything else is looked at)."""
    who = actor()
    rights.require(get_services(), who, series, right)
    return who.user


def require_admin(what: str) -> str:
    """Return the logged-in user if they are an admin, else raise PermissionDenied."""
    who = actor()
    rights.require_admin(get_services(), who, what)
    return who.user


def may_export_any(user: str | None = None) -> bool:
    """Whether ``user`` may export at all (admin, no workflow, or a pool with ``export``)."""
    return rights.may_export_any(get_services(), actor(user))


def editing_status(series: str, *, take: bool) -> dict:
    """:func:`ril_dash.application.leases.editing_status` for the logged-in user."""
    return leases.editing_status(get_services(), actor(), series, take=take)


def release_lease(series: str) -> bool:
    """Give up the logged-in user's lease on ``series`` from this client."""
    return leases.release_lease(get_services(), actor(), series)


def repair_series(series: str) -> repairs.Repair:
    """An admin rolls ``series`` forward past its damaged annotation files."""
    return repairs.repair_series(get_services(), actor(), series)


def break_lease(series: str) -> Lease | None:
    """An admin breaks whoever's lease on ``series``."""
    return leases.break_lease(get_services(), actor(), series)
