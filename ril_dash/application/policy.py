"""Who may do what: the rights rules as pure functions, written once.

Inputs are plain values — the acting :class:`Actor` (user name, whether the users file makes
them an admin, where they act from), the :class:`~ril_dash.workflow.schema.Workflow` in force
(None: no workflow) and a series' :class:`~ril_dash.workflow.machine.SeriesState` — and the
answer is a :class:`Decision`: allowed, or refused with a reason meant for the user. Nothing is
read or written here; :mod:`ril_dash.application.rights` looks the series' state up.

The rules:

- **Admins** are the users file's admins (the single local user when logins are off) plus the
  workflow's ``admins:``. They may do everything.
- **No workflow**: every logged-in user may read, annotate and export every series; changing
  ROIs and text fields, importing masks, breaking locks and reading the audit log are for
  admins.
- **With a workflow**: the pool rules of :func:`ril_dash.workflow.machine.can` (annotating needs
  the user to hold the series in a pool with the ``annotate`` right, and so on).
- **Model bundles** (enable, disable, activate a version, import): admins, and with a workflow
  the members of a pool with the ``models`` right (:func:`models_decision`). Trusting a model
  file (its custom code may then run) is for admins only.
- **Training a development model** (:func:`train_decision`): admins, and with a workflow the
  members of a pool with the ``train`` right; the trainer also needs to read each training
  series (the others are left out, with the reason).

Examples
--------
>>> from ril_dash.workflow.schema import parse_workflow_yaml
>>> wf = parse_workflow_yaml("workflow:\\n  start_pool: a\\n  pools:\\n"
...                          "    a: {users: [ana, bob], rights: [annotate]}\\n")
>>> ana = Actor("ana")
>>> series_decision(wf, SeriesState("a", "ana"), ana, "annotate", "P1/ct.nii.gz").allowed
True
>>> print(series_decision(wf, SeriesState("a", "ana"), Actor("bob"), "annotate", "P1/ct").reason)
bob may not annotate P1/ct: it is in the pool 'a' and is held by ana.
>>> print(admin_decision(wf, ana, "import masks").reason)
Only an administrator may import masks; ana is not one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ril_dash.errors import PermissionDenied
from ril_dash.workflow import machine
from ril_dash.workflow.machine import SeriesState
from ril_dash.workflow.schema import Workflow

__all__ = ["ALLOWED", "Actor", "Decision", "SeriesState", "VERBS", "admin_decision", "export_any",
           "is_admin", "job_decision", "may", "models_decision", "rules_for", "series_decision",
           "train_decision"]

#: how a refusal names each right ("ana may not open P1/ct: …")
VERBS = {"read": "open", "annotate": "annotate", "review": "review", "export": "export"}


@dataclass(frozen=True)
class Actor:
    """Who acts: a user name, whether the users file makes them an admin, and where from.

    ``host`` is the client address of a browser (a series lease belongs to a user *and* a
    host), ``"cli"`` for the command line, ``"server"`` for work without a client."""

    user: str
    admin: bool = False
    host: str = "server"


@dataclass(frozen=True)
class Decision:
    """The answer of a rights rule: allowed, or refused with the reason shown to the user."""

    allowed: bool
    reason: str | None = None

    def check(self) -> None:
        """Raise :class:`PermissionDenied` with the reason when refused."""
        if not self.allowed:
            raise PermissionDenied(self.reason)


ALLOWED = Decision(True)


def is_admin(workflow: Workflow | None, actor: Actor) -> bool:
    """Whether ``actor`` is an admin: of the users file, or of the workflow."""
    return actor.admin or (workflow is not None and workflow.is_admin(actor.user))


def rules_for(workflow: Workflow | None, actor: Actor) -> Workflow | None:
    """The workflow as its rules must see ``actor``: an admin of the users file is one of its
    admins too (None when no workflow is in force)."""
    if workflow is None or workflow.is_admin(actor.user) or not actor.admin:
        return workflow
    return dataclasses.replace(workflow, admins=workflow.admins | {actor.user})


def may(workflow: Workflow | None, state: SeriesState | None, actor: Actor, right: str) -> bool:
    """Whether ``actor`` may exercise ``right`` (read, annotate, review, export) on a series in
    ``state`` (None when no workflow is in force)."""
    if workflow is None or is_admin(workflow, actor):
        return True
    return machine.can(workflow, state, actor.user, right)


def _why_not(workflow: Workflow, state: SeriesState, user: str, right: str) -> str:
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


def refusal_reason(workflow: Workflow, state: SeriesState, actor: Actor, right: str) -> str:
    """Why ``actor`` may not exercise ``right`` on a series in ``state`` (without the series
    name: the viewer's read-only banner uses it as it is)."""
    return _why_not(workflow, state, actor.user, right)


def series_decision(workflow: Workflow | None, state: SeriesState | None, actor: Actor,
                    right: str, series: str) -> Decision:
    """May ``actor`` exercise ``right`` on ``series`` (whose workflow state is ``state``)?"""
    if may(workflow, state, actor, right):
        return ALLOWED
    return Decision(False, f"{actor.user} may not {VERBS[right]} {series}: "
                           f"{_why_not(workflow, state, actor.user, right)}.")


def admin_decision(workflow: Workflow | None, actor: Actor, what: str) -> Decision:
    """May ``actor`` do ``what``, a task for admins only (e.g. "import masks")?"""
    if is_admin(workflow, actor):
        return ALLOWED
    return Decision(False, f"Only an administrator may {what}; {actor.user} is not one.")


def export_any(workflow: Workflow | None, actor: Actor) -> bool:
    """Whether ``actor`` may export at all (admin, no workflow, or a pool with ``export``)."""
    if workflow is None or is_admin(workflow, actor):
        return True
    return any(workflow.pools[p].has("export") for p in workflow.pools_of(actor.user))


def job_decision(workflow: Workflow | None, actor: Actor, owner: str, what: str) -> Decision:
    """May ``actor`` do ``what`` (e.g. "cancel") to a job started by ``owner``? Its owner and
    admins may."""
    if actor.user == owner or is_admin(workflow, actor):
        return ALLOWED
    return Decision(False, f"{actor.user} may not {what} a job of {owner or 'another user'}: "
                           f"only its owner or an administrator may.")


def _pool_right_decision(workflow: Workflow | None, actor: Actor, right: str,
                         what: str) -> Decision:
    if is_admin(workflow, actor):
        return ALLOWED
    if workflow is not None and any(workflow.pools[p].has(right)
                                    for p in workflow.pools_of(actor.user)):
        return ALLOWED
    pools = ("" if workflow is None else
             f" or a member of a workflow pool with the '{right}' right")
    return Decision(False, f"Only an administrator{pools} may {what}; {actor.user} is not "
                           f"one.")


def models_decision(workflow: Workflow | None, actor: Actor,
                    what: str = "manage model bundles") -> Decision:
    """May ``actor`` manage the project's model bundles (``what`` names the task)? Admins may,
    and with a workflow so may the members of a pool with the ``models`` right."""
    return _pool_right_decision(workflow, actor, "models", what)


def train_decision(workflow: Workflow | None, actor: Actor,
                   what: str = "train a development model") -> Decision:
    """May ``actor`` train a development model? Admins may, and with a workflow so may the
    members of a pool with the ``train`` right.

    >>> from ril_dash.workflow.schema import parse_workflow_yaml
    >>> wf = parse_workflow_yaml("workflow:\\n  start_pool: a\\n  pools:\\n"
    ...                          "    a: {users: [ana], rights: [annotate, train]}\\n"
    ...                          "    b: {users: [bob], rights: [annotate]}\\n")
    >>> train_decision(wf, Actor("ana")).allowed
    True
    >>> print(train_decision(wf, Actor("bob")).reason)
    Only an administrator or a member of a workflow pool with the 'train' right may train a development model; bob is not one.
    """
    return _pool_right_decision(workflow, actor, "train", what)
