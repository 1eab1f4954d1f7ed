"""A model's result written into one series, like any user's edit: rights, lease, one version.

:func:`write_segmentation` merges a model's masks into the series' annotations
(:func:`~ril_dash.core.draft_merge.merge_draft`: fill only empty slices, replace the ROI on the
covered slices, or union) under the project's rules (locked ROIs untouched, one ROI per voxel),
as **one** new version whose provenance is ``{"kind": "model", "model": "id@version"}`` and whose
``model_run`` records the model file's sha256 and the job. :func:`write_classification` saves
the class as the mapped text field's value, with the probability kept in the version. Both check
the annotate right and the series lease through :func:`~ril_dash.application.leases.edit_guard`
(a lease the run takes is released afterwards), and record an audit line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ril_dash.application.leases import edit_guard, release_lease
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.core.draft_merge import merge_draft
from ril_dash.core.mask_slots import widen_bits, with_slots
from ril_dash.core.planes import plane_axes
from ril_dash.errors import VersionConflict
from ril_dash.models.manifest import Manifest
from ril_dash.models.pipeline import SeriesPrediction
from ril_dash.project.editing import rules_for
from ril_dash.project.text_values import set_text_values

__all__ = ["MERGE_MODES", "DraftOutcome", "write_classification", "write_segmentation"]

#: how a segmentation draft meets what the series holds (see module docstring)
MERGE_MODES = ("empty_slices", "replace", "union")
#: a concurrent save between reading and writing is retried this many times
RETRIES = 3


@dataclass(frozen=True)
class DraftOutcome:
    """What a run wrote into one series: the version (None: nothing changed) and notes
    (e.g. ROIs left alone because they are locked)."""

    version: int | None
    notes: tuple[str, ...] = ()
    value: str | None = None
    probability: float | None = None


def _with_lease(services: Services, actor: Actor, series: str, write):
    """Run ``write(guard)`` with the series' lease held; release it if this run took it."""
    held_before = services.locks.holder(series)
    mine_before = held_before is not None and held_before.user == actor.user
    guard = edit_guard(services, actor, series)
    try:
        return write(guard)
    finally:
        if not mine_before:
            release_lease(services, actor, series)


def _run_meta(actor: Actor, manifest: Manifest, job_id: str | None, **extra) -> dict:
    return {"user": actor.user, "tool": "model",
            "provenance": {"kind": "model", "model": manifest.ref},
            "model_run": {"model": manifest.ref, "sha256": manifest.sha256, "job": job_id,
                          **extra}}


def _roi_masks(services: Services, manifest: Manifest, prediction: SeriesPrediction
               ) -> tuple[dict[int, np.ndarray], list[str]]:
    """Output channel masks → ``{ROI mask value: mask}``; locked ROIs are left out (noted)."""
    rois = {roi.name: roi for roi in services.project.config.rois}
    masks, notes = {}, []
    for mapping in manifest.output.channels:
        roi = rois.get(mapping.roi)
        if roi is None:
            notes.append(f"{mapping.roi} is not an ROI of this project: channel "
                         f"{mapping.channel} was not written")
        elif roi.locked:
            notes.append(f"{roi.name} is locked: left as it was")
        elif mapping.channel in prediction.masks:
            masks[roi.value] = prediction.masks[mapping.channel]
    return masks, notes


def _touched_slices(delta, plane: str, slots: dict[int, int]) -> list[dict]:
    """One provenance entry per display slice the draft changed (its first changed ROI)."""
    axis = plane_axes(plane)[0]
    changed = np.asarray(delta.before) ^ np.asarray(delta.after)
    start = delta.box[axis][0]
    other = tuple(a for a in range(3) if a != axis)
    entries = []
    per_slice = np.bitwise_or.reduce(changed, axis=other) if changed.size else changed
    for offset, word in enumerate(np.atleast_1d(per_slice)):
        if not word:
            continue
        roi = next((v for v, bit in sorted(slots.items()) if int(word) >> bit & 1), None)
        entries.append({"plane": plane, "index": start + offset, "roi": roi})
    return entries


def write_segmentation(services: Services, actor: Actor, series: str, manifest: Manifest,
                       prediction: SeriesPrediction, mode: str, job_id: str | None = None
                       ) -> DraftOutcome:
    """Merge ``prediction``'s masks into ``series`` as one version (see module docstring)."""
    if mode not in MERGE_MODES:
        raise ValueError(f"unknown merge mode {mode!r}; use one of {', '.join(MERGE_MODES)}")
    masks, notes = _roi_masks(services, manifest, prediction)
    if not masks:
        return DraftOutcome(None, tuple(notes))
    annotations = services.annotations(series)
    config = services.project.config

    def write(guard):
        for attempt in range(RETRIES):
            state = annotations.refresh()
            slots = with_slots(state.slots, list(masks))
            bits = widen_bits(state.bits, slots)
            delta = merge_draft(bits, slots, prediction.plane, prediction.indices, masks, mode,
                                rules_for(config, slots))
            if delta is None:
                return None
            meta = {**_run_meta(actor, manifest, job_id, mode=mode), "op": "model",
                    "roi": next(iter(masks)),
                    "slices": _touched_slices(delta, prediction.plane, slots)}
            try:
                return annotations.commit(state.version, delta, meta,
                                          slots=slots if slots != state.slots else None,
                                          guard=guard)
            except VersionConflict:
                if attempt == RETRIES - 1:
                    raise
        return None

    version = _with_lease(services, actor, series, write)
    if version is not None:
        services.audit.record(actor.user, "model_draft", series,
                              {"version": version, "model": manifest.ref, "mode": mode,
                               "job": job_id})
    return DraftOutcome(version, tuple(notes))


def write_classification(services: Services, actor: Actor, series: str, manifest: Manifest,
                         prediction: SeriesPrediction, job_id: str | None = None
                         ) -> DraftOutcome:
    """Save the predicted class as the mapped text field's value (one version)."""
    result = prediction.classification
    field = manifest.output.text_field
    annotations = services.annotations(series)
    extra = {"field": field, "value": result.value,
             "probability": round(float(result.probability), 4),
             "probabilities": {k: round(float(p), 4) for k, p in result.probabilities.items()}}
    meta = _run_meta(actor, manifest, job_id, **extra)

    def write(guard):
        return set_text_values(services.project.config, annotations, None,
                               {field: result.value}, actor.user, guard=guard, meta=meta)

    version = _with_lease(services, actor, series, write)
    if version is not None:
        services.audit.record(actor.user, "model_classify", series,
                              {"version": version, "model": manifest.ref, "job": job_id,
                               "value": result.value})
    return DraftOutcome(version, (), result.value, float(result.probability))
