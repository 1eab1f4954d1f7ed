"""Progress of the loop: the human correction effort spent on a model's draft, from the history.

For a series a model drafted, :func:`correction_effort` reads the versions after the latest
draft of that model (:mod:`ril_dash.project.annotation_store`):

* **voxels changed**: the net change — voxels whose membership of an area ROI differs between
  the draft and the current version, summed over the ROIs (painting a voxel and erasing it
  again counts nothing);
* **strokes**: the edit versions after the draft (each brush, eraser, lasso, fill, morphology,
  clear, point or contour edit is one version; undo, redo, rollback, text values and workflow
  moves are not strokes);
* **minutes of editing**: from the first to the last of those edits, each pause between two
  edits counted at most :data:`IDLE_CAP_SECONDS` (the analyst went away).

:func:`effort_by_model` gives one row per model version (a round of the loop) over the series
the actor may read: how many series it drafted and the total and median effort. Reading needs
the ``read`` right; nothing here writes.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np

from ril_dash.application import compare, rights
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.core.paint import roi_mask
from ril_dash.project.editing import TOOLS
from ril_dash.project.history_scan import annotated_series

__all__ = ["EFFORT_COLUMNS", "Effort", "IDLE_CAP_SECONDS", "STROKE_OPS", "correction_effort",
           "effort_by_model", "editing_seconds"]

#: a pause between two edits counts at most this long
IDLE_CAP_SECONDS = 300.0
#: the history ops that are strokes of an analyst
STROKE_OPS = frozenset({op for op, _, _ in TOOLS.values()} | {"contour"})
EFFORT_COLUMNS = ("model", "series", "voxels_changed", "median_voxels", "strokes",
                  "median_strokes", "minutes", "median_minutes")


@dataclass(frozen=True)
class Effort:
    """The correction of one series' draft (``draft``: its version, ``model``: ``id@version``)."""

    series: str
    model: str
    draft: int
    current: int
    voxels_changed: int
    strokes: int
    minutes: float

    def as_dict(self) -> dict:
        return asdict(self)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def editing_seconds(times: list[str], cap: float = IDLE_CAP_SECONDS) -> float:
    """Seconds from the first to the last time, each gap counted at most ``cap``.

    >>> editing_seconds(["2026-01-01T10:00:00+00:00", "2026-01-01T10:02:00+00:00",
    ...                  "2026-01-01T11:00:00+00:00"])
    420.0
    """
    moments = sorted(_time(t) for t in times)
    return float(sum(min((b - a).total_seconds(), cap) for a, b in zip(moments, moments[1:])))


def _area_masks(state, values) -> dict[int, np.ndarray]:
    return {v: roi_mask(state.bits, state.slots[v]) for v in values if v in state.slots}


def correction_effort(services: Services, actor: Actor, series: str,
                      model: str | None = None) -> Effort | None:
    """The effort spent on the latest draft of ``model`` (default: the latest draft of any
    model) of ``series``; None when no such draft exists. PermissionDenied without read."""
    drafts = compare.model_drafts(services, actor, series)
    draft = next((v for v in drafts if model is None or v.model == model), None)
    if draft is None:
        return None
    later = [v for v in services.annotations(series).versions() if v.id > draft.id]
    strokes = [v for v in later if v.op in STROKE_OPS]
    areas = [r.value for r in services.project.config.rois if r.type == "area"]
    before, after = services.state(series, draft.id), services.state(series)
    old, new = _area_masks(before, areas), _area_masks(after, areas)
    empty = np.zeros(after.bits.shape, bool)
    changed = sum(int(np.count_nonzero(old.get(v, empty) ^ new.get(v, empty)))
                  for v in set(old) | set(new))
    minutes = editing_seconds([v.time for v in strokes]) / 60
    return Effort(series, draft.model, draft.id, after.version, changed, len(strokes),
                  round(minutes, 2))


def effort_by_model(services: Services, actor: Actor) -> list[dict]:
    """One row per model version (``EFFORT_COLUMNS``), over the series the actor may read that
    it drafted: totals and medians of the effort spent on its latest draft of each."""
    annotated = annotated_series(services.project.config.annotations)
    groups: dict[str, list[Effort]] = {}
    for record in services.project.series:
        if record.id not in annotated or not rights.may(services, actor, record.id, "read"):
            continue
        refs = {v.model for v in compare.model_drafts(services, actor, record.id)}
        for ref in refs:
            groups.setdefault(ref, []).append(correction_effort(services, actor, record.id, ref))
    rows = []
    for ref, efforts in sorted(groups.items()):
        voxels = [e.voxels_changed for e in efforts]
        strokes = [e.strokes for e in efforts]
        minutes = [e.minutes for e in efforts]
        rows.append({"model": ref, "series": len(efforts), "voxels_changed": sum(voxels),
                     "median_voxels": statistics.median(voxels), "strokes": sum(strokes),
                     "median_strokes": statistics.median(strokes),
                     "minutes": round(sum(minutes), 2),
                     "median_minutes": statistics.median(minutes)})
    return rows
