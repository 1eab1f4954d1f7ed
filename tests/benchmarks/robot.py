"""The robot annotator: plays the analyst against a ground truth, stroke by stroke.

It corrects one area ROI of one series on the axial plane with **brush and eraser strokes**
sent through the same edit path as the viewer (:func:`ril_dash.project.editing.parse_edit_request`
→ :func:`ril_dash.application.series_edits.edit_series`: rights, lease, locked ROIs, overlap
rules, one annotation version per stroke with manual provenance), until the slice Dice with the
truth is at least ``target_dice`` on every slice where the truth or the annotation has voxels,
or its stroke budget runs out.

How it picks and draws a stroke
-------------------------------
* Among the slices still under the target, the **largest error component** (4-connected,
  missing voxels and extra voxels taken apart): missing → brush, extra → eraser.
* The brush diameter is what fits the component: twice its largest inner distance (its
  thickness), between :attr:`Settings.min_brush` and :attr:`Settings.max_brush` pixels.
* The path scans the places where the brush centre fits inside the component, lane by lane
  along its long axis (a zigzag 0.8 brush apart), points half a brush apart; where the path
  would leave the component (a concave part) the hand is lifted: the stroke ends there and the
  rest is a later stroke.
* **Positional noise** (seeded): the whole stroke is shifted by a normal offset of
  ``sigma = noise × brush + 0.25`` pixels, each point jittered by half that.
* **A bad slice is cleared first**: when the slice's Dice is under :attr:`Settings.redraw_below`
  and the annotation has voxels there (a drafted slice that is mostly wrong, or a slice without
  the organ that has some), the robot does what an analyst does: one ``lasso_erase`` stroke
  around everything the ROI has on that slice (a loop :attr:`Settings.lasso_margin` pixels
  outside its bounding box, corners jittered like a stroke), which clears the slice, then it
  draws the slice from empty as it would from scratch. The loop counts as one stroke (an
  eraser stroke). The same rule serves a from-scratch annotation (one of its own slices can be
  that bad) and the correction of a model's draft.

A stroke that changes nothing (noise moved it off) still counts: the analyst made it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ril_dash.application.series_edits import edit_series
from ril_dash.core.metrics import overlap_scores
from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import display_stack
from ril_dash.project.editing import parse_edit_request

PLANE = "axial"


@dataclass(frozen=True)
class Settings:
    target_dice: float = 0.95
    budget: int = 400           # strokes per series
    min_brush: float = 2.0      # pixels
    max_brush: float = 16.0     # pixels (22 mm at the phantom's 1.4 mm)
    noise: float = 0.05         # sigma = noise * brush + 0.25 px
    seed: int = 0
    redraw_below: float = 0.5   # a slice under this Dice with voxels is cleared, then redrawn
    lasso_margin: float = 3.0   # pixels between the clearing loop and the slice's voxels


@dataclass
class Result:
    """What one correction cost and reached (Dice per slice of the organ: min over slices)."""

    series: str
    strokes: int = 0
    brush: int = 0
    eraser: int = 0             # eraser strokes, clearing loops included
    cleared: int = 0            # slices cleared with one lasso eraser loop
    start_dice: float = 0.0     # volume Dice before the first stroke
    end_dice: float = 0.0
    start_min_slice: float = 0.0
    end_min_slice: float = 0.0
    done: bool = False          # every slice reached the target
    seconds: float = 0.0


def current_mask(state, roi: int) -> np.ndarray:
    """The ROI's voxels of an annotation state, as axial display slices (n, rows, cols)."""
    bits = state.bits
    mask = roi_mask(bits, state.slots[roi]) if roi in state.slots else np.zeros(bits.shape, bool)
    return np.ascontiguousarray(display_stack(mask, PLANE))


def _slice_scores(mask: np.ndarray, truth: np.ndarray):
    return overlap_scores(mask, truth, 0)  # slices where either has voxels


def _largest_error(mask: np.ndarray, truth: np.ndarray, index: int):
    """(size, component, erase) of the largest error component of slice ``index``."""
    best = (0, None, False)
    for erase, error in ((False, truth[index] & ~mask[index]), (True, mask[index] & ~truth[index])):
        labels, n = ndimage.label(error)
        if n:
            sizes = np.bincount(labels.ravel())[1:]
            k = int(sizes.argmax())
            if sizes[k] > best[0]:
                best = (int(sizes[k]), labels == k + 1, erase)
    return best


def plan_stroke(component: np.ndarray, settings: Settings, rng: np.random.Generator
                ) -> tuple[np.ndarray, float]:
    """The ``(x, y)`` points of one stroke over ``component`` (bool rows × cols) and its brush
    diameter in pixels (see the module docstring)."""
    inner = ndimage.distance_transform_edt(np.pad(component, 1))[1:-1, 1:-1]
    thickness = float(inner.max())
    diameter = float(np.clip(round(2 * thickness), settings.min_brush, settings.max_brush))
    fits = component & (inner >= min(diameter / 2, thickness) - 0.5)
    rows, cols = np.nonzero(fits)
    points = np.column_stack([cols, rows]).astype(float)
    if len(points) > 1:
        centred = points - points.mean(axis=0)
        axes = np.linalg.svd(centred, full_matrices=False)[2]
        along, across = centred @ axes[0], centred @ axes[1]
    else:
        along = across = np.zeros(len(points))
    lanes = np.floor((across - across.min()) / (0.8 * diameter)).astype(int)
    path = []
    for number, lane in enumerate(np.unique(lanes)):
        chosen = np.nonzero(lanes == lane)[0]
        chosen = chosen[np.argsort(along[chosen], kind="stable")]
        if number % 2:
            chosen = chosen[::-1]
        last = None
        for i in chosen:
            if last is None or abs(along[i] - last) >= diameter / 2:
                path.append(points[i])
                last = along[i]
        path.append(points[chosen[-1]])
    path = _until_it_leaves(np.array(path), component)
    sigma = settings.noise * diameter + 0.25
    path = path + rng.normal(0, sigma, 2) + rng.normal(0, sigma / 2, path.shape)
    return path, diameter


def _until_it_leaves(path: np.ndarray, component: np.ndarray) -> np.ndarray:
    """The path up to the first segment that crosses outside ``component``."""
    for i in range(1, len(path)):
        for t in (0.25, 0.5, 0.75):
            x, y = np.rint(path[i - 1] + t * (path[i] - path[i - 1])).astype(int)
            if not component[y, x]:
                return path[:i]
    return path


def plan_clear(mask_slice: np.ndarray, settings: Settings, rng: np.random.Generator
               ) -> np.ndarray:
    """The ``(x, y)`` corners of a loop around every voxel of ``mask_slice`` (its bounding box
    pushed out by ``lasso_margin`` pixels, each corner jittered by ``noise × 2 × margin +
    0.25`` pixels): one lasso-eraser stroke clears the slice."""
    rows, cols = np.nonzero(mask_slice)
    m = settings.lasso_margin
    top, bottom, left, right = rows.min() - m, rows.max() + m, cols.min() - m, cols.max() + m
    corners = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], float)
    return corners + rng.normal(0, settings.noise * 2 * m + 0.25, corners.shape)


def svg_path(points: np.ndarray) -> str:
    """A plotly-style path of the points (what the viewer sends for a stroke).

    >>> svg_path(np.array([[1.0, 2.0], [3.5, 4.25]]))
    'M1.00,2.00L3.50,4.25'
    """
    return "M" + "L".join(f"{x:.2f},{y:.2f}" for x, y in points)


def correct(services, actor, series: str, roi: int, truth: np.ndarray,
            settings: Settings = Settings()) -> Result:
    """Correct ROI ``roi`` of ``series`` towards ``truth`` (bool axial display slices) stroke by
    stroke through the viewer's edit path; returns the strokes and the Dice reached."""
    rng = np.random.default_rng([settings.seed, sum(map(ord, series))])
    started = time.perf_counter()
    mask = current_mask(services.state(series), roi)
    scores = _slice_scores(mask, truth)
    result = Result(series, start_dice=scores.volume_dice,
                    start_min_slice=float(scores.dice.min(initial=1.0)))
    worst: dict[int, tuple] = {}
    slice_dice = dict(zip(scores.slices.tolist(), scores.dice.tolist()))
    while result.strokes < settings.budget:
        failing = [int(i) for i, d in zip(scores.slices, scores.dice) if d < settings.target_dice]
        if not failing:
            result.done = True
            break
        for index in failing:
            if index not in worst:
                worst[index] = _largest_error(mask, truth, index)
        bad = [i for i in failing if mask[i].any() and slice_dice[i] < settings.redraw_below]
        if bad:
            index = max(bad, key=lambda i: int(mask[i].sum()))
            worst.pop(index, None)
            tool, points, diameter = "lasso_erase", plan_clear(mask[index], settings, rng), 1.0
            result.cleared += 1
        else:
            index = max(failing, key=lambda i: worst[i][0])
            _, component, erase = worst.pop(index)
            points, diameter = plan_stroke(component, settings, rng)
            tool = "eraser" if erase else "brush"
        change = edit_series(services, actor, series, parse_edit_request({
            "tool": tool, "roi": roi, "plane": PLANE, "index": index,
            "parent": services.state(series).version, "path": svg_path(points),
            "brush": diameter, "brush_unit": "vox"}))
        result.strokes += 1
        result.eraser += tool != "brush"
        result.brush += tool == "brush"
        if change.changed:
            mask[index] = current_mask(change.state, roi)[index]
        scores = _slice_scores(mask, truth)
        slice_dice = dict(zip(scores.slices.tolist(), scores.dice.tolist()))
    result.end_dice = scores.volume_dice
    result.end_min_slice = float(scores.dice.min(initial=1.0))
    result.seconds = time.perf_counter() - started
    return result
