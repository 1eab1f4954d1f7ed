"""The workflow state machine: who may do what with a series, and where it goes then.

Pure functions of a :class:`~ril_dash.workflow.schema.Workflow`, a :class:`SeriesState` and a
user name; nothing is stored here (the caller persists the new state, and records
:func:`transition_label` as the automatic annotation version).

Rules (``pool`` is the series' current pool, ``owner`` who holds it):

``acquire``
    a member of ``pool`` takes an unowned series (owner = that user). Admins may acquire any
    series, also one somebody else holds (this breaks the lock).
``release``
    the owner returns the series to its pool, unowned. Admins may release any held series.
``assign``
    the owner (a member of ``pool``) moves the series to a pool listed in ``pool.assign_to``,
    unowned, or to one user of that pool (then owner = that user). Admins may assign any series
    to any pool (or user of it), e.g. to move one out of a pool that has no ``assign_to``.
``approve``
    the owner, a member of ``pool`` which has the ``review`` right, moves the series to
    ``pool.approve_to``, unowned. Admins may approve any series whose pool has ``approve_to``.
``send_back``
    likewise, to ``pool.send_back_to``, unowned.

:func:`can` answers the per-series rights: ``annotate`` / ``review`` need the owner to be a
member of a pool with that right; ``read`` any member of a pool with ``read``, ``annotate`` or
``review``; ``export`` any member of a pool with ``export``. Admins may do everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ril_dash.errors import TransitionNotAllowed
from ril_dash.workflow.schema import RIGHTS, PoolDef, Workflow


class Action(str, Enum):
    """A workflow action on one series."""

    ACQUIRE = "acquire"
    RELEASE = "release"
    ASSIGN = "assign"
    APPROVE = "approve"
    SEND_BACK = "send_back"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SeriesState:
    """Where a series is: its pool, and the user holding it (None: unowned, anyone may take it)."""

    pool: str
    owner: str | None = None


@dataclass(frozen=True)
class Target:
    """Where ``assign`` sends a series: a pool, optionally one user of it (who then holds it)."""

    pool: str
    user: str | None = None

    def __str__(self) -> str:
        return self.pool if self.user is None else f"{self.pool} ({self.user})"


def initial_state(workflow: Workflow) -> SeriesState:
    """The state of a series new to the workflow: in the start pool, unowned."""
    return SeriesState(workflow.start_pool, None)


def _member(pool: PoolDef | None, user: str) -> bool:
    return pool is not None and user in pool.users


def _holds(workflow: Workflow, state: SeriesState, user: str) -> PoolDef | None:
    """The current pool if ``user`` owns the series and is a member of its pool, else None."""
    pool = workflow.pool(state.pool)
    return pool if state.owner == user and _member(pool, user) else None


def can(workflow: Workflow, state: SeriesState, user: str, right: str) -> bool:
    """Whether ``user`` may exercise ``right`` (annotate, review, read, export) on the series now.

    Examples
    --------
    >>> from ril_dash.workflow.schema import parse_workflow_yaml
    >>> wf = parse_workflow_yaml("workflow:\\n  start_pool: a\\n  pools:\\n"
    ...                          "    a: {users: [ana], rights: [annotate]}\\n")
    >>> can(wf, SeriesState("a", "ana"), "ana", "annotate"), can(wf, SeriesState("a"), "ana",
    ...                                                          "annotate")
    (True, False)
    """
    if right not in RIGHTS:
        raise ValueError(f"unknown right {right!r}; use one of {', '.join(RIGHTS)}")
    if workflow.is_admin(user):
        return True
    pool = workflow.pool(state.pool)
    if not _member(pool, user):
        return False
    assert pool is not None
    if right in ("annotate", "review"):
        return state.owner == user and pool.has(right)
    if right == "read":
        return any(pool.has(r) for r in ("read", "annotate", "review"))
    return pool.has(right)


def assign_targets(workflow: Workflow, state: SeriesState, user: str) -> list[Target]:
    """Every target ``user`` may assign the series to now: each pool, then each of its users."""
    admin = workflow.is_admin(user)
    if admin:
        names = list(workflow.pools)
    else:
        pool = _holds(workflow, state, user)
        if pool is None:
            return []
        names = [n for n in pool.assign_to if n in workflow.pools]
    out: list[Target] = []
    for name in names:
        out.append(Target(name))
        out.extend(Target(name, u) for u in workflow.pools[name].users)
    return out


def _refusal(workflow: Workflow, state: SeriesState, user: str, action: Action,
             target: Target | None) -> str | None:
    """Why ``user`` may not take ``action`` now (None: allowed)."""
    admin = workflow.is_admin(user)
    pool = workflow.pool(state.pool)
    if pool is None and not admin:
        return (f"its pool {state.pool!r} is not part of the workflow any more; an admin "
                f"({', '.join(sorted(workflow.admins)) or 'none defined'}) must assign it")
    held_by = f"it is held by {state.owner}" if state.owner is not None else "nobody holds it"
    if action is Action.ACQUIRE:
        if target is not None:
            return "acquire takes no target"
        if state.owner == user:
            return "you already hold it"
        if admin:
            return None
        if not _member(pool, user):
            return f"you are not a member of the pool {state.pool!r}"
        if state.owner is not None:
            return f"{held_by}; wait until it is released, or ask an admin"
        return None
    if action is Action.RELEASE:
        if target is not None:
            return "release takes no target"
        if state.owner is None:
            return "nobody holds it"
        if state.owner != user and not admin:
            return f"{held_by}; only its holder or an admin can release it"
        return None
    if state.owner != user and not admin:
        return f"{held_by}; acquire it first" if state.owner is None else (
            f"{held_by}; only its holder or an admin can {action.value.replace('_', ' ')} it")
    if not admin and _holds(workflow, state, user) is None:
        return f"you are not a member of the pool {state.pool!r}"
    assert pool is not None or admin
    if action is Action.ASSIGN:
        if target is None:
            return "assign needs a target pool (or a user of it)"
        if target.pool not in workflow.pools:
            return f"there is no pool named {target.pool!r}"
        if not admin and target.pool not in pool.assign_to:  # type: ignore[union-attr]
            allowed = ", ".join(pool.assign_to) or "none"  # type: ignore[union-attr]
            return (f"the pool {state.pool!r} may only assign to: {allowed}")
        if target.user is not None and target.user not in workflow.pools[target.pool].users:
            return f"{target.user} is not a member of the pool {target.pool!r}"
        return None
    # approve / send back
    if target is not None:
        return f"{action.value.replace('_', ' ')} takes no target"
    if pool is None:
        return f"its pool {state.pool!r} is not part of the workflow any more; assign it"
    if not admin and not pool.has("review"):
        return f"the pool {state.pool!r} has no review right"
    destination = pool.approve_to if action is Action.APPROVE else pool.send_back_to
    if destination is None:
        key = "approve_to" if action is Action.APPROVE else "send_back_to"
        return f"the pool {state.pool!r} has no {key}"
    return None


def allowed_actions(workflow: Workflow, state: SeriesState, user: str) -> list[Action]:
    """The actions ``user`` may take on the series now, in a fixed order.

    ``assign`` is listed when at least one target is allowed (see :func:`assign_targets`).
    """
    out: list[Action] = []
    for action in Action:
        if action is Action.ASSIGN:
            if assign_targets(workflow, state, user):
                out.append(action)
        elif _refusal(workflow, state, user, action, None) is None:
            out.append(action)
    return out


def _coerce(action: Action | str, target: Target | str | None) -> tuple[Action, Target | None]:
    if not isinstance(action, Action):
        try:
            action = Action(action)
        except ValueError:
            raise TransitionNotAllowed(
                f"unknown action {action!r}; the actions are "
                f"{', '.join(a.value for a in Action)}") from None
    if isinstance(target, str):
        target = Target(target)
    return action, target


def _instead(workflow: Workflow, state: SeriesState, user: str) -> str:
    actions = allowed_actions(workflow, state, user)
    if not actions:
        return "You can do nothing with this series now."
    parts = []
    for action in actions:
        if action is Action.ASSIGN:
            pools = dict.fromkeys(t.pool for t in assign_targets(workflow, state, user))
            parts.append(f"assign (to {', '.join(pools)})")
        else:
            parts.append(action.value)
    return f"You may: {', '.join(parts)}."


def apply(workflow: Workflow, state: SeriesState, user: str, action: Action | str,
          target: Target | str | None = None) -> SeriesState:
    """Return the state after ``user`` takes ``action`` (``target``: for assign only).

    ``target`` is a :class:`Target` or a pool name.

    Raises
    ------
    TransitionNotAllowed
        Saying why, and what ``user`` may do instead.

    Examples
    --------
    >>> from ril_dash.workflow.schema import parse_workflow_yaml
    >>> wf = parse_workflow_yaml("workflow:\\n  start_pool: a\\n  pools:\\n"
    ...                          "    a: {users: [ana], rights: [annotate]}\\n")
    >>> apply(wf, SeriesState("a"), "ana", "acquire")
    SeriesState(pool='a', owner='ana')
    >>> apply(wf, SeriesState("a"), "bob", "acquire")
    Traceback (most recent call last):
    ...
    ril_dash.errors.TransitionNotAllowed: bob cannot acquire this series (in a): you are not ...
    """
    action, target = _coerce(action, target)
    reason = _refusal(workflow, state, user, action, target)
    if reason is not None:
        raise TransitionNotAllowed(
            f"{user} cannot {action.value.replace('_', ' ')} this series (in {state.pool}): "
            f"{reason}. {_instead(workflow, state, user)}")
    if action is Action.ACQUIRE:
        return SeriesState(state.pool, user)
    if action is Action.RELEASE:
        return SeriesState(state.pool, None)
    if action is Action.ASSIGN:
        assert target is not None
        return SeriesState(target.pool, target.user)
    pool = workflow.pools[state.pool]
    destination = pool.approve_to if action is Action.APPROVE else pool.send_back_to
    assert destination is not None
    return SeriesState(destination, None)


def transition_label(before: SeriesState, after: SeriesState, user: str,
                     action: Action | str) -> str:
    """A one-line description for the automatic annotation version of a transition.

    Examples
    --------
    >>> transition_label(SeriesState("analysts", "ana"), SeriesState("reviewers"), "ana",
    ...                  Action.ASSIGN)
    'assign analysts → reviewers by ana'
    >>> transition_label(SeriesState("analysts", "bob"), SeriesState("analysts"), "root",
    ...                  "release")
    'release analysts (held by bob) by root'
    """
    action = Action(action)
    text = f"{action.value} {before.pool}"
    if after.pool != before.pool or action in (Action.ASSIGN, Action.APPROVE,
                                               Action.SEND_BACK):
        text += f" → {after.pool}"
        if after.owner is not None:
            text += f" ({after.owner})"
    elif before.owner is not None and before.owner != user:
        text += f" (held by {before.owner})"
    return f"{text} by {user}"
