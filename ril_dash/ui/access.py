"""Server-side rights: who may see, annotate, review or export a series, and who is an admin.

Every route and callback that reads or changes a series asks here; hiding a button in the page
is never the check. The rules:

- **No workflow** (no ``workflow:`` in project.yaml and no ``--workflow``): every logged-in user
  may read, annotate and export every series; changing the project's ROIs and text fields,
  importing masks, breaking locks and reading the audit log are for admins. With logins off
  the single local user is an admin.
- **With a workflow**: the pool rules of :func:`ril_dash.workflow.machine.can` (annotating needs
  the user to hold the series in a pool with the ``annotate`` right, and so on). Admins are
  the users file's admins plus the workflow's ``admins:``; they may do everything.
- **Editing** also needs the series' lease (:mod:`ril_dash.project.series_locks`): one user at a
  time edits a series, the others see it read-only. :func:`edit_guard` takes or renews it and
  returns the check that the annotation store runs under its own lock at the moment of saving,
  so a series assigned away in the meantime is never written by its previous holder.
"""

from __future__ import annotations

import dataclasses

from flask import has_request_context, request

from ril_dash.errors import LockHeld, PermissionDenied
from ril_dash.project.series_locks import Lease
from ril_dash.project.workflow_state import annotate_guard, current_state
from ril_dash.ui.auth import current_user, users_admin
from ril_dash.ui.services import get_services
from ril_dash.workflow import machine
from ril_dash.workflow.machine import SeriesState
from ril_dash.workflow.schema import Workflow

VERBS = {"read": "open", "annotate": "annotate", "review": "review", "export": "export"}
#: a lease is renewed by an edit only when less than this share of it is left
RENEW_WHEN_LEFT = 0.5


def is_admin(user: str | None = None) -> bool:
    """Whether ``user`` (default: the logged-in user) is an admin."""
    user = current_user() if user is None else user
    workflow = get_services().workflow
    return users_admin(user) or (workflow is not None and workflow.is_admin(user))


def workflow_for(user: str | None = None) -> Workflow | None:
    """The workflow in force as its rules must see ``user`` (default: the logged-in user): an
    admin of the users file is one of its admins too (None when no workflow is in force)."""
    workflow = get_services().workflow
    user = current_user() if user is None else user
    if workflow is None or workflow.is_admin(user) or not users_admin(user):
        return workflow
    return dataclasses.replace(workflow, admins=workflow.admins | {user})


def series_state(series: str) -> SeriesState | None:
    """The workflow state of ``series`` (None when no workflow is in force)."""
    services = get_services()
    if services.workflow is None:
        return None
    return current_state(services.annotations(series), services.workflow)


def _reason(state: SeriesState, user: str, right: str) -> str:
    workflow = get_services().workflow
    pool = workflow.pool(state.pool)
    where = f"it is in the pool {state.pool!r}"
    if pool is None or user not in pool.users:
        mine = ", ".join(workflow.pools_of(user)) or "none"
        return f"{where}, and you are not a member of it (your pools: {mine})"
    if right in ("annotate", "review"):
        if not pool.has(right):
            return f"{where}, whose members may not {right}"
        if state.owner is None:
            return f"{where} and nobody holds it; acquire it on the Workflow page first"
        return f"{where} and is held by {state.owner}"
    return f"{where}, whose members have no {right} right"


def may(series: str, right: str, user: str | None = None) -> bool:
    """Whether ``user`` (default: the logged-in user) may exercise ``right`` on ``series``."""
    user = current_user() if user is None else user
    workflow = get_services().workflow
    if workflow is None or is_admin(user):
        return True
    return machine.can(workflow, series_state(series), user, right)


def require(series: str, right: str) -> str:
    """Return the logged-in user if they may exercise ``right`` on ``series``, else raise
    :class:`PermissionDenied` saying why (:class:`SeriesNotFound` for an id that is not a
    series of the project, before anything else is looked at or written)."""
    get_services().project.get_series(series)
    user = current_user()
    if not may(series, right, user):
        state = series_state(series)
        raise PermissionDenied(f"{user} may not {VERBS[right]} {series}: "
                               f"{_reason(state, user, right)}.")
    return user


def require_admin(what: str) -> str:
    """Return the logged-in user if they are an admin, else raise PermissionDenied."""
    user = current_user()
    if not is_admin(user):
        raise PermissionDenied(f"Only an administrator may {what}; {user} is not one.")
    return user


def may_export_any(user: str | None = None) -> bool:
    """Whether ``user`` may export at all (admin, no workflow, or a pool with ``export``)."""
    user = current_user() if user is None else user
    workflow = get_services().workflow
    if workflow is None or is_admin(user):
        return True
    return any(workflow.pools[p].has("export") for p in workflow.pools_of(user))


# -- leases ----------------------------------------------------------------------------------
def client_host() -> str:
    """Where the user edits from (the lease's host): the client address of this request."""
    return (request.remote_addr or "unknown") if has_request_context() else "server"


def _mine(lease: Lease | None, user: str) -> bool:
    return lease is not None and lease.user == user and lease.host == client_host()


def take_lease(series: str, user: str) -> Lease:
    """Take or renew ``user``'s lease on ``series`` (raises LockHeld if someone else holds it)."""
    services = get_services()
    current = services.locks.holder(series)
    lease = services.locks.acquire(series, user, client_host(), 0)
    if not _mine(current, user):
        services.audit.record(user, "lock", series, {"host": lease.host})
    return lease


def edit_guard(series: str):
    """Check that the logged-in user may edit ``series`` now, taking or renewing its lease.

    Returns the guard to pass to the store's commit (None when no workflow is in force).

    Raises
    ------
    PermissionDenied
        The workflow does not let this user annotate the series.
    LockHeld
        Someone else is editing it ("being edited by X since T").
    """
    user = require(series, "annotate")
    services = get_services()
    lease = services.locks.holder(series)
    left = None if lease is None else lease.expires_at - services.locks.clock()
    if not _mine(lease, user) or left < services.locks.lease_seconds * RENEW_WHEN_LEFT:
        take_lease(series, user)
    return annotate_guard(workflow_for(user), user)  # admins of either kind pass


def _holder_info(lease: Lease) -> dict:
    return {"user": lease.user, "since": lease.acquired_at, "host": lease.host}


def editing_status(series: str, *, take: bool) -> dict:
    """Whether the logged-in user can edit ``series`` now, for the viewer.

    With ``take`` the lease is taken or renewed when allowed. Returns ``{"editable": bool,
    "reason": str | None, "holder": {"user", "since", "host"} | None, "can_break": bool}``.
    """
    user = current_user()
    services = get_services()
    holder = services.locks.holder(series)
    info = {"editable": False, "reason": None, "holder": None,
            "can_break": False}
    if not may(series, "annotate", user):
        state = series_state(series)
        reason = _reason(state, user, "annotate")
        if holder is not None and not _mine(holder, user):  # and who is editing it now
            reason += f"; {services.locks.held_message(holder)}"
            info["holder"] = _holder_info(holder)
        info["reason"] = f"Read only: {reason}."
        return info
    try:
        if take:
            take_lease(series, user)
        elif holder is not None and not _mine(holder, user):
            raise LockHeld(services.locks.held_message(holder))
    except LockHeld as exc:
        holder = services.locks.holder(series)
        info["reason"] = f"Read only: {exc}."
        info["holder"] = None if holder is None else _holder_info(holder)
        info["can_break"] = is_admin(user)
        return info
    info["editable"] = True
    return info


def release_lease(series: str) -> bool:
    """Give up the logged-in user's lease on ``series`` from this client; True if one was held."""
    user = current_user()
    services = get_services()
    lease = services.locks.holder(series)
    if not _mine(lease, user):
        return False
    services.locks.release(lease)
    services.audit.record(user, "unlock", series, None)
    return True


def break_lease(series: str) -> Lease | None:
    """An admin breaks whoever's lease on ``series`` (recorded in the audit log)."""
    user = require_admin("break another user's lock")
    services = get_services()
    broken = services.locks.break_lock(series, user)
    services.audit.record(user, "break_lock", series,
                          None if broken is None else {"holder": broken.user,
                                                       "host": broken.host})
    return broken


def end_lease_unless(series: str, owner: str | None) -> None:
    """After a workflow transition: end the lease of anyone but the new ``owner`` (whose page
    turns read-only at its next renewal), so the new holder can edit at once."""
    services = get_services()
    lease = services.locks.holder(series)
    if lease is not None and lease.user != owner:
        services.locks.break_lock(series, current_user())
        services.audit.record(current_user(), "unlock", series,
                              {"holder": lease.user, "reason": "workflow transition"})
