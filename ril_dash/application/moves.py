"""Workflow moves of a series: acquire, return, assign, approve, send back.

A move is one transition version of the series' history, decided by the pure state machine
(:mod:`ril_dash.workflow.machine`) under the series' store lock, so it never interleaves with a
save; it is recorded in the audit log, and a move away from the current editor ends that
editor's lease.
"""

from __future__ import annotations

from ril_dash.application import policy
from ril_dash.application.leases import end_lease_unless
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import RilDashError
from ril_dash.project.workflow_state import TransitionResult, transition
from ril_dash.workflow.machine import Target


def move_series(services: Services, actor: Actor, series: str, action: str,
                target: Target | None = None) -> TransitionResult:
    """Take workflow ``action`` on ``series`` for ``actor`` (the machine checks it under the
    series' lock and raises TransitionNotAllowed with what the user may do instead)."""
    if services.workflow is None:
        raise RilDashError("This project has no workflow.")
    services.project.get_series(series)
    result = transition(services.annotations(series),
                        policy.rules_for(services.workflow, actor), actor.user, action, target)
    services.audit.record(actor.user, "transition", series, {"label": result.label,
                                                             "version": result.version})
    end_lease_unless(services, actor, series, result.after.owner)
    return result
