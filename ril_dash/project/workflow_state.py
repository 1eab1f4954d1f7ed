"""Where each series is in the workflow, kept in its annotation history.

:mod:`ril_dash.workflow.machine` decides who may do what; this module persists the outcome. Every
change of pool or owner is one *transition* version of the series' annotation history
(:meth:`~ril_dash.project.series_annotations.SeriesAnnotations.commit_transition`), written under
the series lock on top of the latest version, so the history shows who handed the series to whom,
and a transition can never interleave with a save. :func:`annotate_guard` makes a save check,
under that same lock, that its user still may annotate; :func:`board_states` lists every series'
pool and owner from the ``summary.json`` files (one read per annotated series)::

    transition(annotations, wf, "ana", "acquire")       # → version n: "acquire analysts by ana"
    SeriesEditor(config, volume, annotations, "ana", guard=annotate_guard(wf, "ana")).apply(req)

Examples
--------
>>> import tempfile
>>> from ril_dash.project.annotation_store import AnnotationStore
>>> from ril_dash.workflow.schema import parse_workflow_yaml
>>> wf = parse_workflow_yaml("workflow:\\n  start_pool: a\\n  pools:\\n"
...                          "    a: {users: [ana, bob], rights: [annotate]}\\n")
>>> s = AnnotationStore(tempfile.mkdtemp()).series("P1/ct.nii.gz", (4, 4, 2))
>>> current_state(s, wf)
SeriesState(pool='a', owner=None)
>>> transition(s, wf, "ana", "acquire").label
'acquire a by ana'
>>> annotate_guard(wf, "bob")(s.load().workflow)
Traceback (most recent call last):
...
ril_dash.errors.PermissionDenied: bob cannot annotate this series: it is held by ana in a; ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ril_dash.errors import PermissionDenied
from ril_dash.project.annotation_store import Guard, SeriesAnnotations
from ril_dash.project.history import SUFFIX, latest_workflow
from ril_dash.project.history_scan import annotated_series, read_summaries
from ril_dash.workflow.machine import (
    Action,
    SeriesState,
    Target,
    apply,
    can,
    initial_state,
    transition_label,
)
from ril_dash.workflow.schema import Workflow

__all__ = ["TransitionResult", "annotate_guard", "board_states", "current_state", "state_of",
           "transition"]


@dataclass(frozen=True)
class TransitionResult:
    """A transition that was recorded: the states before and after, its version and label."""

    before: SeriesState
    after: SeriesState
    version: int
    label: str


def state_of(record: Mapping | None, workflow: Workflow) -> SeriesState:
    """The state a stored workflow record ``{"pool", "owner"}`` stands for (None: the initial
    state of ``workflow``)."""
    if record is None:
        return initial_state(workflow)
    return SeriesState(str(record["pool"]), record.get("owner"))


def _record(state: SeriesState) -> dict:
    return {"pool": state.pool, "owner": state.owner}


def current_state(annotations: SeriesAnnotations, workflow: Workflow) -> SeriesState:
    """The series' workflow state now (picking up other processes' versions)."""
    return state_of(annotations.refresh().workflow, workflow)


def transition(annotations: SeriesAnnotations, workflow: Workflow, user: str,
               action: Action | str, target: Target | str | None = None) -> TransitionResult:
    """Let ``user`` take ``action`` (``target``: for assign) and record it as a new version.

    Under the series lock: read the latest state, apply the rules, write the version (op
    ``"transition"``, with ``label``, ``action``, ``from`` and the new ``workflow`` state) on
    top of the latest version. Creates the annotation folder if needed.

    Raises
    ------
    TransitionNotAllowed
        ``user`` may not take ``action`` now (nothing is written); says what they may do.
    StorageError
        The version could not be written.
    """
    seen: dict = {}

    def decide(record: dict | None) -> dict:
        before = state_of(record, workflow)
        after = apply(workflow, before, user, action, target)
        seen.update(before=before, after=after,
                    label=transition_label(before, after, user, action))
        return {"user": user, "label": seen["label"], "workflow": _record(after),
                "action": Action(action).value, "from": _record(before)}

    version = annotations.commit_transition(decide)
    return TransitionResult(seen["before"], seen["after"], version, seen["label"])


def _why_not_annotate(workflow: Workflow, state: SeriesState, user: str) -> str:
    pool = workflow.pool(state.pool)
    if pool is None:
        return (f"its pool {state.pool!r} is not part of the workflow any more; an admin must "
                "assign it")
    if state.owner is None:
        return f"nobody holds it (it is in {state.pool}); acquire it first"
    if state.owner != user:
        return (f"it is held by {state.owner} in {state.pool}; your change was not saved. Ask "
                f"{state.owner} to release it, or an admin to reassign it")
    if user not in pool.users:
        return f"you are no longer a member of the pool {state.pool!r}"
    return f"the pool {state.pool!r} has no annotate right"


def annotate_guard(workflow: Workflow | None, user: str) -> Guard | None:
    """A store guard refusing saves unless ``user`` may annotate the series at that moment
    (:class:`~ril_dash.errors.PermissionDenied`); None when there is no workflow."""
    if workflow is None:
        return None

    def guard(record: dict | None) -> None:
        state = state_of(record, workflow)
        if not can(workflow, state, user, "annotate"):
            raise PermissionDenied(f"{user} cannot annotate this series: "
                                   f"{_why_not_annotate(workflow, state, user)}.")

    return guard


def board_states(store_root: str | os.PathLike, series_ids: Iterable[str],
                 workflow: Workflow, *, annotated: set[str] | None = None,
                 summaries: Mapping[str, dict] | None = None) -> dict[str, SeriesState]:
    """``{series id: state}`` for ``series_ids``, from the summaries of the annotation store
    under ``store_root``: a series without versions is in the initial state; a missing or stale
    summary falls back to reading version metadata. A caller that already has
    :func:`annotated_series` and :func:`read_summaries` of the store passes them in."""
    root, ids = Path(store_root), list(series_ids)
    if annotated is None:
        annotated = annotated_series(root)
    if summaries is None:
        summaries = read_summaries(root, annotated.intersection(ids))
    out = {}
    for series_id in ids:
        summary = summaries.get(series_id)
        if series_id not in annotated:
            record = None
        elif summary is not None:
            record = summary.get("workflow")
        else:
            record = latest_workflow(root / (series_id + SUFFIX))
        out[series_id] = state_of(record, workflow)
    return out


def exportable_series(store_root: str | os.PathLike, series_ids: Iterable[str],
                      workflow: Workflow | None, user: str) -> list[str] | None:
    """The series ``user`` may export now: None means all of them (no workflow, or an admin);
    otherwise those whose current pool gives ``user`` the ``export`` right."""
    if workflow is None or workflow.is_admin(user):
        return None
    states = board_states(store_root, series_ids, workflow)
    return [s for s, state in states.items() if can(workflow, state, user, "export")]
