"""What the annotation store hands out: a series' state at a version, a line of its history,
and the shapes of what a write takes (a change, a guard).

:class:`AnnotationState` and :class:`VersionInfo` are built by
:class:`~ril_dash.project.series_annotations.SeriesAnnotations`; :func:`state_of` makes the
state of a replayed :class:`~ril_dash.project.history.History`, as a read-only view of its
array or as the history's own (private) copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ril_dash.core.slice_unions import SliceUnions
from ril_dash.project.history import History, Points, SlotTable, Texts, copy_texts

__all__ = ["PROVENANCE_KINDS", "AnnotationState", "DeltaLike", "Guard", "VersionInfo",
           "copy_workflow", "state_of"]

PROVENANCE_KINDS = ("manual", "semi-auto", "model", "import")
#: called under the series lock with the current workflow state (``{"pool", "owner"}`` or None);
#: raising refuses the write (nothing is written, the exception propagates)
Guard = Callable[[dict | None], None]


class DeltaLike(Protocol):
    """What :meth:`SeriesAnnotations.commit` needs of a change (``ril_dash.core.paint.Delta``)."""

    box: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    before: np.ndarray
    after: np.ndarray


@dataclass(frozen=True)
class AnnotationState:
    """A series' annotations at ``version``.

    ``bits`` from :meth:`SeriesAnnotations.load` is a read-only view of the cached array, which
    later commits through the same object update in place: copy it to keep a snapshot.
    ``provenance`` maps ``(plane, index)`` to ``{"kind", "model", "version", "roi"}``;
    ``texts`` maps text field names to their values (see :mod:`ril_dash.project.text_values`);
    ``workflow`` is the workflow state ``{"pool", "owner"}`` (None: never transitioned).
    ``unions`` (states of :meth:`SeriesAnnotations.load`) knows which ROI bits each slice of
    the cached array holds (:mod:`ril_dash.core.slice_unions`).
    """

    bits: np.ndarray
    slots: SlotTable
    points: Points
    version: int
    provenance: dict[tuple[str, int], dict]
    texts: Texts = field(default_factory=dict)
    workflow: dict | None = None
    unions: SliceUnions | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class VersionInfo:
    """One line of the history (:meth:`SeriesAnnotations.versions`); ``label`` describes a
    transition (e.g. ``"assign analysts → reviewers by ana"``), None for other ops; ``frame``
    is the frame an edit of a 4D series with masks per frame was made on (None: other)."""

    id: int
    parent: int
    user: str
    time: str
    op: str
    tool: str | None
    roi: int | None
    target: int | None
    kind: str | None
    model: str | None
    label: str | None = None
    frame: int | None = None


def copy_workflow(workflow: dict | None) -> dict | None:
    """A copy of a workflow state (None stays None)."""
    return None if workflow is None else dict(workflow)


def state_of(hist: History, *, view: bool) -> AnnotationState:
    """The state of ``hist``: a read-only view of its array, the rest copied (``view``), or
    ``hist``'s own objects (``hist`` is a private copy)."""
    if not view:  # ``hist`` is already a private copy
        return AnnotationState(hist.bits, hist.slots, hist.points, hist.version, hist.provenance,
                               hist.texts, hist.workflow)
    bits = hist.bits.view()
    bits.flags.writeable = False
    return AnnotationState(bits, dict(hist.slots),
                           {k: [list(p) for p in v] for k, v in hist.points.items()},
                           hist.version, {k: dict(v) for k, v in hist.provenance.items()},
                           copy_texts(hist.texts), copy_workflow(hist.workflow), hist.unions)
