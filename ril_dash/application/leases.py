"""Series leases: one user at a time edits a series, the others see it read-only.

A lease (user, host, expiry) lives in the annotation store (:mod:`ril_dash.project.series_locks`)
so every server process on the project sees it. Opening a series to edit takes it; the open
viewer renews it; leaving gives it up; an admin may break it. Every action here is recorded in
the audit log (``lock``, ``unlock``, ``break_lock``).

:func:`edit_guard` is what every change of a series calls first: it checks the annotate right,
takes or renews the lease, and returns the guard that the annotation store runs under its own
lock at the moment of saving, so a series assigned away in the meantime is never written by its
previous holder.
"""

from __future__ import annotations

from ril_dash.application import policy, rights
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import LockHeld
from ril_dash.project.annotation_store import Guard
from ril_dash.project.series_locks import Lease
from ril_dash.project.workflow_state import annotate_guard

#: a lease is renewed by an edit only when less than this share of it is left
RENEW_WHEN_LEFT = 0.5


def _mine(lease: Lease | None, actor: Actor) -> bool:
    return lease is not None and lease.user == actor.user and lease.host == actor.host


def take_lease(services: Services, actor: Actor, series: str) -> Lease:
    """Take or renew ``actor``'s lease on ``series`` (LockHeld if someone else holds it)."""
    current = services.locks.holder(series)
    lease = services.locks.acquire(series, actor.user, actor.host, 0)
    if not _mine(current, actor):
        services.audit.record(actor.user, "lock", series, {"host": lease.host})
    return lease


def edit_guard(services: Services, actor: Actor, series: str) -> Guard | None:
    """Check that ``actor`` may edit ``series`` now, taking or renewing its lease.

    Returns the guard to pass to the store's commit (None when no workflow is in force).

    Raises
    ------
    PermissionDenied
        The workflow does not let this user annotate the series.
    LockHeld
        Someone else is editing it ("being edited by X since T").
    DamagedAnnotations
        A version file of the series cannot be read: read-only until an admin repairs it.
    """
    rights.require(services, actor, series, "annotate")
    damage = services.annotations(series).damage
    if damage is not None:  # refused before a lease is taken (the store refuses it anyway)
        raise damage.error()
    lease = services.locks.holder(series)
    left = None if lease is None else lease.expires_at - services.locks.clock()
    if not _mine(lease, actor) or left < services.locks.lease_seconds * RENEW_WHEN_LEFT:
        take_lease(services, actor, series)
    return annotate_guard(policy.rules_for(services.workflow, actor), actor.user)


def _holder_info(lease: Lease) -> dict:
    return {"user": lease.user, "since": lease.acquired_at, "host": lease.host}


def editing_status(services: Services, actor: Actor, series: str, *, take: bool) -> dict:
    """Whether ``actor`` can edit ``series`` now, for the viewer.

    With ``take`` the lease is taken or renewed when allowed. Returns ``{"editable": bool,
    "reason": str | None, "holder": {"user", "since", "host"} | None, "can_break": bool,
    "damaged": {"file", "version", "readable_version", "message", ...} | None, "can_repair":
    bool}``; a series with a damaged version file is read-only for everyone (admins may
    repair it, see :mod:`ril_dash.application.repairs`).
    """
    holder = services.locks.holder(series)
    info = {"editable": False, "reason": None, "holder": None, "can_break": False,
            "damaged": None, "can_repair": False}
    damage = services.annotations(series).damage
    if damage is not None:  # read-only for everyone until an admin repairs it
        info.update(reason=f"Read only: {damage.message()}", damaged=damage.as_json(),
                    can_repair=rights.is_admin(services, actor))
        return info
    if not rights.may(services, actor, series, "annotate"):
        state = rights.series_state(services, series)
        reason = policy.refusal_reason(services.workflow, state, actor, "annotate")
        if holder is not None and not _mine(holder, actor):  # and who is editing it now
            reason += f"; {services.locks.held_message(holder)}"
            info["holder"] = _holder_info(holder)
        info["reason"] = f"Read only: {reason}."
        return info
    try:
        if take:
            take_lease(services, actor, series)
        elif holder is not None and not _mine(holder, actor):
            raise LockHeld(services.locks.held_message(holder))
    except LockHeld as exc:
        holder = services.locks.holder(series)
        info["reason"] = f"Read only: {exc}."
        info["holder"] = None if holder is None else _holder_info(holder)
        info["can_break"] = rights.is_admin(services, actor)
        return info
    info["editable"] = True
    return info


def release_lease(services: Services, actor: Actor, series: str) -> bool:
    """Give up ``actor``'s lease on ``series`` from this host; True if one was held."""
    lease = services.locks.holder(series)
    if not _mine(lease, actor):
        return False
    services.locks.release(lease)
    services.audit.record(actor.user, "unlock", series, None)
    return True


def break_lease(services: Services, actor: Actor, series: str) -> Lease | None:
    """An admin breaks whoever's lease on ``series``; returns the broken lease."""
    rights.require_admin(services, actor, "break another user's lock")
    broken = services.locks.break_lock(series, actor.user)
    services.audit.record(actor.user, "break_lock", series,
                          None if broken is None else {"holder": broken.user,
                                                       "host": broken.host})
    return broken


def end_lease_unless(services: Services, actor: Actor, series: str, owner: str | None) -> None:
    """After a workflow move: end the lease of anyone but the new ``owner`` (whose page turns
    read-only at its next renewal), so the new holder can edit at once."""
    lease = services.locks.holder(series)
    if lease is not None and lease.user != owner:
        services.locks.break_lock(series, actor.user)
        services.audit.record(actor.user, "unlock", series,
                              {"holder": lease.user, "reason": "workflow transition"})


def release_leases_of(services: Services, user: str) -> int:
    """Give up every lease ``user`` holds, from any host (at logout); returns how many."""
    released = 0
    for lease in services.locks.all():
        if lease.user == user:
            services.locks.release(lease)
            services.audit.record(user, "unlock", lease.series_id, {"reason": "logout"})
            released += 1
    return released
