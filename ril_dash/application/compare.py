"""How far was the model from the humans: Dice and Jaccard between two annotation sources.

A *source* of a series is one ROI at one version (:class:`Source`; version None = the current,
latest version). Typical pairs: the latest model draft vs the current version of the same ROI
(how much the humans changed the draft), two model versions, or two ROIs of one version. The
scores come from :func:`ril_dash.core.metrics.overlap_scores` (its docstring defines the slice
selection and the both-empty case).

A *model draft* is a version whose provenance kind is ``"model"``; its ``provenance.model``
names the model as ``"id@version"`` (the *model ref*). :func:`project_scores` scores, for every
series the actor may read, the latest draft of each model ref against the current version,
per ROI the draft wrote (the ROIs whose voxels that version changed); :func:`model_means`
averages them per model ref and ROI. :func:`comparison_tables` and :func:`summary_tables` give
the tables for CSV and Excel (:mod:`ril_dash.project.export_tables`).

Reading needs the ``read`` right on the series; nothing here writes or audits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ril_dash.application import rights
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.core.metrics import OverlapScores, overlap_scores
from ril_dash.core.overlay import present_bits
from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import PLANE_AXIS, PLANES
from ril_dash.errors import RilDashError
from ril_dash.project.annotation_store import AnnotationState, VersionInfo
from ril_dash.project.export_tables import Table
from ril_dash.project.history_scan import annotated_series

__all__ = ["CompareRefused", "Comparison", "ModelScore", "SLICE_COLUMNS", "Source",
           "comparison_tables", "compare_series", "default_sources", "model_drafts",
           "model_means", "parse_slices", "project_scores", "summary_tables",
           "version_choices"]

SLICE_COLUMNS = ("series", "plane", "slice", "source_a", "source_b", "voxels_a", "voxels_b",
                 "shared", "dice", "jaccard", "both_empty")
VOLUME_COLUMNS = ("series", "plane", "slices", "source_a", "source_b", "voxels_a", "voxels_b",
                  "shared", "dice", "jaccard", "both_empty")
SCORE_COLUMNS = ("series", "model", "draft_version", "current_version", "roi", "voxels_draft",
                 "voxels_current", "dice", "jaccard", "both_empty")
#: no series has more slices than this along any axis (a guard against typed ranges like 1-1e9)
MAX_SLICE = 65536
MEAN_COLUMNS = ("model", "roi", "series", "mean_dice", "mean_jaccard", "min_dice", "max_dice")


class CompareRefused(RilDashError):
    """Two sources that cannot be compared: an unknown version or ROI, a point ROI."""


@dataclass(frozen=True)
class Source:
    """One ROI (by mask value) of one version of a series; ``version`` None = the current."""

    version: int | None
    roi: int


@dataclass(frozen=True)
class Comparison:
    """The scores of source ``a`` against source ``b`` on ``plane`` of ``series``;
    ``versions`` are the versions actually read (the current one resolved to its number)."""

    series: str
    plane: str
    a: Source
    b: Source
    versions: tuple[int, int]
    labels: tuple[str, str]
    scores: OverlapScores


@dataclass(frozen=True)
class ModelScore:
    """The volume scores of the latest draft of ``model`` on one ROI of one series."""

    series: str
    model: str
    draft_version: int
    current_version: int
    roi: int
    roi_name: str
    voxels_draft: int
    voxels_current: int
    dice: float
    jaccard: float
    both_empty: bool


# ---- versions ------------------------------------------------------------------------------
def model_drafts(services: Services, actor: Actor, series: str) -> list[VersionInfo]:
    """The model-made versions of ``series`` (provenance kind ``"model"``), newest first."""
    rights.require(services, actor, series, "read")
    return _drafts(services, series)


def _is_draft(version: VersionInfo) -> bool:
    return version.kind == "model" and bool(version.model)


def _drafts(services: Services, series: str) -> list[VersionInfo]:
    annotations = services.annotations(series)
    annotations.refresh()
    return [v for v in annotations.versions() if _is_draft(v)]


def version_choices(services: Services, actor: Actor, series: str, limit: int = 200
                    ) -> list[dict]:
    """The versions to compare, for a chooser: the current one, the model drafts, then the
    other versions (newest first, at most ``limit``): ``{"value", "label", "model"}`` each
    (``value`` None = the current version)."""
    rights.require(services, actor, series, "read")
    annotations = services.annotations(series)
    current = annotations.refresh().version
    versions = annotations.versions(limit)
    out = [{"value": None, "label": f"current (v{current})", "model": None}]
    out += [{"value": v.id, "label": f"v{v.id} · model {v.model} · {v.time[:16]}",
             "model": v.model} for v in versions if _is_draft(v)]
    out += [{"value": v.id, "label": f"v{v.id} · {v.op} by {v.user or '?'} · {v.time[:16]}",
             "model": None} for v in versions
            if not _is_draft(v) and v.op not in ("transition", "damaged")]
    return out


# ---- one comparison ------------------------------------------------------------------------
def parse_slices(text: str | None) -> str | list[int] | None:
    """A slice selection typed by a user, with slices numbered from 1 as the viewer shows
    them: empty → None (where either source has voxels), ``"all"``, or ranges and numbers
    (``"3-5, 9"``) → 0-based indices.

    Examples
    --------
    >>> parse_slices(""), parse_slices(" All "), parse_slices("3-5, 9")
    (None, 'all', [2, 3, 4, 8])
    """
    text = (text or "").strip().lower()
    if not text or text == "either":
        return None
    if text == "all":
        return "all"
    out: list[int] = []
    for part in text.replace(";", ",").split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise CompareRefused(f"{part.strip()!r} is not a slice number or range; type "
                                 "slices like '3-5, 9', or 'all', or leave it empty.") from None
        if first < 1 or last < first:
            raise CompareRefused(f"{part.strip()!r}: slices are numbered from 1, and a range "
                                 "goes from low to high (like '3-5').")
        if last > MAX_SLICE:
            raise CompareRefused(f"{part.strip()!r}: no series has {last} slices; type slices "
                                 "that exist, or 'all'.")
        out += range(first - 1, last)
    return out


def _area_roi(services: Services, value: int):
    roi = next((r for r in services.project.config.rois if r.value == int(value)), None)
    if roi is None:
        names = ", ".join(f"{r.name} ({r.value})" for r in services.project.config.rois)
        raise CompareRefused(f"No ROI has mask value {value}; choose one of: {names}.")
    if roi.type != "area":
        raise CompareRefused(f"{roi.name} is a point ROI; Dice and Jaccard compare area ROIs.")
    return roi


def _state(services: Services, series: str, version: int | None) -> AnnotationState:
    if version is None:
        return services.state(series)
    latest = services.state(series).version
    if not 0 <= int(version) <= latest:
        raise CompareRefused(f"{series} has no version {version} (its versions are 0 to "
                             f"{latest}); choose one from the list.")
    return services.state(series, int(version))


def _mask(state: AnnotationState, value: int) -> np.ndarray:
    if value not in state.slots:
        return np.zeros(state.bits.shape, bool)
    return roi_mask(state.bits, state.slots[value])


def _label(name: str, version: int, source: Source, model: str | None) -> str:
    which = "current" if source.version is None else f"v{version}"
    return f"{name} @ {which}" + (f" ({model})" if model else "")


def default_sources(services: Services, actor: Actor, series: str, roi: int | None = None
                    ) -> tuple[Source | None, Source | None]:
    """The latest model draft vs the current version, on ``roi`` (default: the first ROI the
    draft wrote, else the first area ROI); ``(None, current)`` when no model drafted the
    series, ``(None, None)`` when the project has no area ROI."""
    drafts = model_drafts(services, actor, series)
    areas = [r.value for r in services.project.config.rois if r.type == "area"]
    if roi is None:
        written = _written_rois(services, series, drafts[0].id) if drafts else []
        roi = next((v for v in written if v in areas), areas[0] if areas else None)
    if roi is None:
        return None, None
    return (Source(drafts[0].id, roi) if drafts else None), Source(None, roi)


def compare_series(services: Services, actor: Actor, series: str, a: Source, b: Source, *,
                   plane: str = "axial", slices=None) -> Comparison:
    """Dice and Jaccard of source ``a`` vs source ``b`` of ``series``, per slice of ``plane``
    and over the selected ``slices`` (see :func:`ril_dash.core.metrics.select_slices`)."""
    rights.require(services, actor, series, "read")
    if plane not in PLANES:
        raise CompareRefused(f"Unknown plane {plane!r}; use one of {', '.join(PLANES)}.")
    rois = [_area_roi(services, s.roi) for s in (a, b)]
    states = [_state(services, series, s.version) for s in (a, b)]
    models = {v.id: v.model for v in _drafts(services, series)}
    try:
        scores = overlap_scores(_mask(states[0], a.roi), _mask(states[1], b.roi),
                                PLANE_AXIS[plane], slices)
    except ValueError as exc:
        raise CompareRefused(str(exc)) from exc
    labels = tuple(_label(r.name, st.version, s, models.get(s.version))
                   for r, st, s in zip(rois, states, (a, b)))
    return Comparison(series, plane, a, b, (states[0].version, states[1].version), labels,
                      scores)


def comparison_tables(comparison: Comparison) -> list[Table]:
    """The volume scores and the per-slice scores, as two tables (``slice`` is 1-based, as the
    viewer shows it)."""
    c, s = comparison, comparison.scores
    head = [c.series, c.plane]
    volume = Table("volume", VOLUME_COLUMNS, [[
        *head, len(s.slices), *c.labels, int(s.size_a.sum()), int(s.size_b.sum()),
        int(s.intersection.sum()), s.volume_dice, s.volume_jaccard, s.volume_both_empty]])
    per_slice = Table("slices", SLICE_COLUMNS, [
        [*head, r["index"] + 1, *c.labels, r["size_a"], r["size_b"], r["intersection"],
         r["dice"], r["jaccard"], r["both_empty"]] for r in s.rows()])
    return [volume, per_slice]


# ---- the project summary -------------------------------------------------------------------
def _written_rois(services: Services, series: str, version: int) -> list[int]:
    """The mask values whose voxels ``version`` changed (the ROIs a draft wrote)."""
    before, after = services.state(series, version - 1), services.state(series, version)
    changed = set(present_bits(before.bits.astype(np.uint64) ^ after.bits.astype(np.uint64)))
    return sorted(v for v, bit in after.slots.items() if bit in changed)


def _series_scores(services: Services, series: str) -> list[ModelScore]:
    drafts = _drafts(services, series)
    if not drafts:
        return []
    current = services.state(series)
    names = {r.value: r.name for r in services.project.config.rois if r.type == "area"}
    latest: dict[str, VersionInfo] = {}
    for v in drafts:  # newest first: the first one seen of each model ref is its latest
        latest.setdefault(v.model, v)
    out = []
    for model, draft in sorted(latest.items()):
        state = services.state(series, draft.id)
        for value in _written_rois(services, series, draft.id):
            if value not in names:
                continue
            s = overlap_scores(_mask(state, value), _mask(current, value), 2)
            out.append(ModelScore(series, model, draft.id, current.version, value, names[value],
                                  int(s.size_a.sum()), int(s.size_b.sum()), s.volume_dice,
                                  s.volume_jaccard, s.volume_both_empty))
    return out


def project_scores(services: Services, actor: Actor) -> list[ModelScore]:
    """Per series the actor may read, per model ref and per ROI its latest draft wrote: the
    volume Dice and Jaccard of that draft vs the current version (series without a model
    draft, or that the actor may not read, are left out)."""
    annotated = annotated_series(services.project.config.annotations)
    out = []
    for record in services.project.series:
        if record.id in annotated and rights.may(services, actor, record.id, "read"):
            out += _series_scores(services, record.id)
    return out


def model_means(scores: list[ModelScore]) -> list[dict]:
    """Per model ref and ROI: the number of series, mean Dice and Jaccard, min and max Dice."""
    groups: dict[tuple[str, str], list[ModelScore]] = defaultdict(list)
    for s in scores:
        groups[(s.model, s.roi_name)].append(s)
    return [{"model": model, "roi": roi, "series": len(group),
             "mean_dice": float(np.mean([s.dice for s in group])),
             "mean_jaccard": float(np.mean([s.jaccard for s in group])),
             "min_dice": min(s.dice for s in group), "max_dice": max(s.dice for s in group)}
            for (model, roi), group in sorted(groups.items())]


def summary_tables(scores: list[ModelScore]) -> list[Table]:
    """The per-model means and the per-series scores, as two tables."""
    means = Table("model means", MEAN_COLUMNS,
                  [[m[c] for c in MEAN_COLUMNS] for m in model_means(scores)])
    rows = Table("series scores", SCORE_COLUMNS, [
        [s.series, s.model, s.draft_version, s.current_version, s.roi_name, s.voxels_draft,
         s.voxels_current, s.dice, s.jaccard, s.both_empty] for s in scores])
    return [means, rows]
