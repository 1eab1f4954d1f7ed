"""Changes of one series' annotations: paint and point edits, text values, undo, redo, rollback.

Each command checks the annotate right and the series lease (:func:`~ril_dash.application.
leases.edit_guard`), makes the change as one new version of the series' history (the guard is
checked again under the store's lock at the moment of saving), records the audit line and
returns a :class:`SeriesChange` holding the state after the change, so a caller answers from
it without loading the series again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ril_dash.application.leases import edit_guard
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.project.annotation_store import AnnotationState, SeriesAnnotations
from ril_dash.project.editing import EditRequest, rules_for
from ril_dash.project.frames import copy_roi_to_frames
from ril_dash.project.text_values import set_text_values

HISTORY_ACTIONS = ("undo", "redo", "rollback")


class UnknownVersion(ValueError):
    """A rollback to a version that does not exist (a malformed request)."""


@dataclass(frozen=True)
class SeriesChange:
    """The outcome of a change: the new version (None: nothing changed) and the state after."""

    version: int | None
    state: AnnotationState
    can_undo: bool
    can_redo: bool

    @property
    def changed(self) -> bool:
        return self.version is not None


def outcome(annotations: SeriesAnnotations, version: int | None) -> SeriesChange:
    """The :class:`SeriesChange` of ``version`` (the state after it, undo/redo flags)."""
    return SeriesChange(version, annotations.load(), annotations.can_undo, annotations.can_redo)


def edit_series(services: Services, actor: Actor, series: str,
                request: EditRequest) -> SeriesChange:
    """Apply a paint or point edit (see :func:`ril_dash.project.editing.parse_edit_request`)."""
    guard = edit_guard(services, actor, series)
    version = services.editor(series, actor.user, guard, request.frame).apply(request)
    if version is not None:
        services.audit.record(actor.user, "save", series,
                              {"version": version, "tool": request.tool})
    return outcome(services.annotations(series, request.frame), version)


def set_texts(services: Services, actor: Actor, series: str, parent: int | None,
              values: dict) -> SeriesChange:
    """Save text values ``{field name: value}`` as one version on top of ``parent``."""
    guard = edit_guard(services, actor, series)
    annotations = services.annotations(series)
    version = set_text_values(services.project.config, annotations, parent, values, actor.user,
                              guard=guard)
    if version is not None:
        services.audit.record(actor.user, "text_change", series, {"version": version})
    return outcome(annotations, version)


def change_history(services: Services, actor: Actor, series: str, action: str, *,
                   parent: int | None = None, version: int | None = None,
                   frame: int = 0) -> SeriesChange:
    """``undo`` or ``redo`` the latest change, or ``rollback`` to ``version`` (a new version
    equal to it: nothing is ever deleted); the state returned is that of ``frame``."""
    if action not in HISTORY_ACTIONS:
        raise ValueError(f"unknown history action {action!r}")
    guard = edit_guard(services, actor, series)
    annotations = services.annotations(series, frame)
    annotations.refresh()  # another process may have saved versions since
    if action == "rollback":
        if version is None or not 0 <= version <= annotations.version:
            raise UnknownVersion("'version' must be an existing version number")
        new = annotations.rollback(version, actor.user, parent=parent, guard=guard)
    else:
        new = getattr(annotations, action)(actor.user, parent=parent, guard=guard)
    if new is not None:
        services.audit.record(actor.user, action, series, {"version": new})
    return outcome(annotations, new)


def copy_to_frames(services: Services, actor: Actor, series: str, value: int, frame: int,
                   targets: list[int], parent: int | None) -> SeriesChange:
    """Copy ROI ``value`` of ``frame`` to the frames ``targets`` as one version (see
    :func:`ril_dash.project.frames.copy_roi_to_frames`)."""
    guard = edit_guard(services, actor, series)
    whole = services.whole_annotations(series)
    rules = rules_for(services.project.config, whole.refresh().slots)
    version = copy_roi_to_frames(whole, services.shape_of(series), services.frames_of(series),
                                 value, frame, targets, rules, actor.user, parent=parent,
                                 guard=guard)
    if version is not None:
        services.audit.record(actor.user, "save", series,
                              {"version": version, "tool": "copy_frames"})
    return outcome(services.annotations(series, frame), version)
