"""Semi-automatic contouring of one series: snap, auto-contouring, batch snap, fill between slices.

:func:`parse_contour_request` validates what the browser (or a job) asks for;
:class:`Contourer` runs the :mod:`ril_dash.core` algorithm on the series' image and the ROI's
current slices, writes the result with :func:`~ril_dash.core.paint.set_slices` (so the
intensity window, locked ROIs and the overlap mode apply exactly as for the brush) and commits
it as **one** version whose provenance is ``{"kind": "semi-auto", "tool": <tool>}`` on every
slice the tool changed: the overlay draws those slices lighter until a person edits them.
Bad input is refused before anything is written (:class:`~ril_dash.errors.EditRefused`).

Tools (:data:`CONTOUR_TOOLS`):

- ``snap``: the ROI on the current slice snaps to the edges;
- ``auto``: from the ROI on the current slice, contour the neighbouring slices one by one
  (:func:`~ril_dash.core.contour_propagate.propagate`), at most ``limit`` slices each way;
- ``batch``: snap every annotated slice of the ROI from ``first`` to ``last`` (slices that
  cannot be snapped are left alone and listed with the reason);
- ``interpolate``: fill the empty slices between annotated ones (all gaps, the gap slices
  from ``first`` to ``last``, or the slices ``targets``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ril_dash.core.contour_params import SnapParams, snap_params
from ril_dash.core.contour_propagate import MAX_LIMIT, StopRules, propagate
from ril_dash.core.contour_snap import snap_mask
from ril_dash.core.paint import roi_mask, set_slices
from ril_dash.core.planes import PLANES, display_view, plane_axes
from ril_dash.core.slice_interpolation import gaps, interpolate_slices
from ril_dash.errors import EditRefused
from ril_dash.project.editing import SeriesEditor, SliceRequest, number_field, \
    parse_threshold

__all__ = ["CONTOUR_TOOLS", "ContourOutcome", "ContourRequest", "Contourer",
           "parse_contour_request"]

CONTOUR_TOOLS = ("snap", "auto", "batch", "interpolate")
DIRECTIONS = {"both": (-1, 1), "down": (-1,), "up": (1,)}
MAX_TARGETS = 2000


@dataclass(frozen=True)
class ContourRequest(SliceRequest):
    """One semi-automatic contouring action (display slices of ``plane``)."""

    threshold: tuple[float, float] | None = None
    preset: str = "ct"
    params: SnapParams = field(default_factory=SnapParams)
    limit: int = 40
    direction: str = "both"
    first: int | None = None
    last: int | None = None
    targets: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ContourOutcome:
    """What an action did: the new version (None: nothing changed), the slices it changed
    (their provenance is now ``semi-auto``), and a sentence for the user (where
    auto-contouring stopped, slices batch left alone)."""

    version: int | None
    slices: tuple[int, ...]
    message: str
    skipped: tuple[tuple[int, str], ...] = ()


def parse_contour_request(payload: dict) -> ContourRequest:
    """Validate a JSON contouring request (every field, with messages a user can act on).

    Examples
    --------
    >>> parse_contour_request({"tool": "snap", "roi": 1, "plane": "axial", "index": 3,
    ...                        "parent": 0, "params": {"band": 4}}).params.band
    4
    >>> parse_contour_request({"tool": "auto", "roi": 1, "plane": "axial", "index": 3,
    ...                        "parent": 0, "limit": 0})
    Traceback (most recent call last):
    ...
    ril_dash.errors.EditRefused: 'limit' must be between 1 and 500, not 0
    """
    if not isinstance(payload, dict):
        raise EditRefused("A contouring request must be a JSON object.")
    tool = payload.get("tool")
    if tool not in CONTOUR_TOOLS:
        raise EditRefused(f"Unknown contouring tool {str(tool)[:40]!r}; use one of "
                          f"{', '.join(CONTOUR_TOOLS)}.")
    plane = payload.get("plane")
    if plane not in PLANES:
        raise EditRefused(f"Unknown plane {str(plane)[:40]!r}; use one of {', '.join(PLANES)}")
    preset = payload.get("preset") or "ct"
    params = snap_params(preset, payload.get("params"))
    direction = payload.get("direction", "both")
    if direction not in DIRECTIONS:
        raise EditRefused(f"'direction' must be one of {', '.join(DIRECTIONS)}.")
    targets = payload.get("targets")
    if targets is not None:
        if not isinstance(targets, (list, tuple)) or len(targets) > MAX_TARGETS:
            raise EditRefused(f"'targets' must be a list of at most {MAX_TARGETS} slice numbers.")
        targets = tuple(number_field({"targets": t}, "targets", int, lo=0) for t in targets)
    f = number_field
    request = ContourRequest(
        tool=tool, plane=plane, preset=preset, params=params, direction=direction,
        threshold=parse_threshold(payload), targets=targets,
        roi=f(payload, "roi", int), index=f(payload, "index", int, lo=0),
        parent=f(payload, "parent", int, lo=0), frame=f(payload, "frame", int, 0, 0),
        limit=f(payload, "limit", int, 40, 1, MAX_LIMIT),
        first=f(payload, "first", int, lo=0), last=f(payload, "last", int, lo=0))
    if request.roi is None or request.index is None or request.parent is None:
        raise EditRefused("A contouring request needs 'roi', 'index' and 'parent' (the version "
                          "you see).")
    if tool == "batch" and (request.first is None or request.last is None
                            or request.first > request.last):
        raise EditRefused("Batch contouring needs a slice range 'first' ≤ 'last'.")
    return request


class Contourer:
    """Runs :class:`ContourRequest` objects on one series through a :class:`SeriesEditor`
    (its ROI checks, rules and saving)."""

    def __init__(self, editor: SeriesEditor) -> None:
        self.editor = editor

    def apply(self, req: ContourRequest,
              progress: Callable[[int, int], None] | None = None) -> ContourOutcome:
        """Carry out ``req`` (``progress(done, total)`` is called per slice by batch)."""
        editor = self.editor
        roi, state = editor.check_target(req)
        slots, bits, rules = editor.area_bits(roi, state, req.threshold)
        bit = slots[roi.value]
        image = editor.volume.data[..., req.frame]
        n = editor.volume.n_slices(req.plane)
        masks, message, skipped = self._run(req, bits, bit, image, n, progress)
        delta = set_slices(bits, req.plane, masks, bit, rules,
                           image if rules.threshold is not None else None)
        if delta is None:
            return ContourOutcome(None, (), f"{message} Nothing changed: the result equals the "
                                  "ROI, or the intensity range or locked ROIs kept every voxel.",
                                  skipped)
        produced = tuple(delta.changed_slices(plane_axes(req.plane)[0]))
        meta = {"op": "contour", "tool": req.tool, "roi": roi.value,
                "provenance": {"kind": "semi-auto", "model": None, "tool": req.tool},
                "params": {"preset": req.preset, **req.params.to_dict()},
                "slices": [{"plane": req.plane, "index": i, "roi": roi.value} for i in produced]}
        if req.tool == "auto":
            meta["params"]["limit"] = req.limit
        version = editor.save(req.parent, state, slots, delta, meta)
        return ContourOutcome(version, produced, message, skipped)

    # ------------------------------------------------------------------------ internals
    def _run(self, req, bits, bit, image, n, progress):
        def roi_on(i: int) -> np.ndarray:
            return roi_mask(display_view(bits, req.plane, i), bit)

        def image_of(i: int) -> np.ndarray:
            return display_view(image, req.plane, i)

        if req.tool == "snap":
            snapped = snap_mask(image_of(req.index), roi_on(req.index), req.params)
            return {req.index: snapped}, f"Snapped slice {req.index}.", ()
        if req.tool == "auto":
            run = propagate(image_of, n, req.index, roi_on(req.index), req.params,
                            StopRules(limit=req.limit), DIRECTIONS[req.direction])
            if not run.masks:
                raise EditRefused(f"Auto-contouring found no neighbouring slice to contour: "
                                  f"{run.describe()}.")
            return run.masks, f"Contoured {len(run.masks)} slices; {run.describe()}.", ()
        if req.tool == "batch":
            return self._batch(req, roi_on, image_of, n, progress)
        spacing = self.editor.volume.pixel_spacing(req.plane)
        present = self._annotated(bits, bit, req.plane)
        targets = req.targets
        if targets is None and req.first is not None and req.last is not None:
            targets = [i for a, b in gaps(present) for i in range(a + 1, b)
                       if req.first <= i <= req.last]
            if not targets:
                raise EditRefused(f"No empty slice between annotated slices lies in "
                                  f"{req.first}..{req.last}; choose another range.")
        masks = interpolate_slices({i: roi_on(i) for i in present}, targets, spacing)
        return masks, f"Filled {len(masks)} slices between annotated slices.", ()

    @staticmethod
    def _annotated(bits, bit, plane) -> list[int]:
        axis = plane_axes(plane)[0]
        others = tuple(a for a in range(3) if a != axis)
        one = bits.dtype.type(1 << bit)
        return [int(i) for i in np.flatnonzero(
            (np.bitwise_or.reduce(bits, axis=others) & one) != 0)]

    def _batch(self, req, roi_on, image_of, n, progress):
        if req.last >= n:
            raise EditRefused(f"Slice {req.last} is outside 0..{n - 1} of the {req.plane} plane.")
        todo = [i for i in range(req.first, req.last + 1) if roi_on(i).any()]
        if not todo:
            raise EditRefused(f"The ROI has no annotated slice from {req.first} to {req.last}; "
                              "outline it roughly on some slices first.")
        masks, skipped = {}, []
        for done, i in enumerate(todo):
            try:
                masks[i] = snap_mask(image_of(i), roi_on(i), req.params)
            except EditRefused as exc:
                skipped.append((i, str(exc)))
            if progress is not None:
                progress(done + 1, len(todo))
        message = f"Snapped {len(masks)} of {len(todo)} annotated slices."
        if skipped:
            message += " Left alone: " + "; ".join(f"slice {i}: {why}" for i, why in skipped[:5])
        return masks, message, tuple(skipped)

