"""Auto-contouring: carry a good contour from one slice to its neighbours, one slice at a time.

:func:`propagate` starts from the ROI on a seed slice and walks away from it in one or both
directions; on each next slice the previous slice's result, snapped to that slice's edges
(:func:`~ril_dash.core.contour_snap.snap_mask`), becomes the new contour. Before it is kept,
the snapped region is trimmed (3×3 median-filtered values): pixels outside the intensity range
learnt from the seed slice go, and so do patches (thicker than a partial-volume rim) whose
values the seed slice shows far more often just outside the seed than inside it
(:class:`SeedModel`, when ``seed_model`` is on): a neighbour of similar attenuation that the
region would otherwise creep into once the structure tapers off, such as a muscle next to the
lower pole of a kidney. Only the pieces that overlap the previous slice's region are kept.
A direction stops, with the reason recorded (:data:`STOP_REASONS`), when the region

- ``vanished``: fewer than ``min_area`` pixels are left after snapping and trimming (e.g. all
  that was left looked like the seed's surroundings), or snapping found nothing;
- ``jumped``: its centroid moved more than ``max_shift`` times its equivalent radius, or its
  area grew more than ``max_growth`` times (a leak into a neighbour);
- ``intensity``: fewer than ``min_in_range`` of its pixels lie in the intensity range learnt
  from the seed slice (its 2nd..98th percentiles, widened by ``range_margin`` of their span);
- ``refused``: snapping refused the slice (it reaches the image border or floods the slice);
- ``limit``: ``limit`` slices were done in that direction (the user's limit);
- ``end``: the first or last slice of the volume was reached.

The slice that fails a rule is not kept. Everything works on display-oriented 2D arrays, so
any plane can be used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ril_dash.core.contour_params import SnapParams
from ril_dash.core.contour_snap import SnapVanished, check_region, snap_mask
from ril_dash.core.stats import mask_box
from ril_dash.errors import EditRefused

__all__ = ["MAX_LIMIT", "STOP_REASONS", "Propagation", "SeedModel", "StopRules", "intensity_range",
           "propagate"]

STOP_REASONS = {
    "vanished": "the region vanished",
    "jumped": "the region jumped (moved or grew too much from one slice to the next)",
    "intensity": "the region left the intensity range of the seed slice",
    "refused": "snapping refused the slice",
    "limit": "the slice limit was reached",
    "end": "the end of the volume was reached",
}
MAX_LIMIT = 500


@dataclass(frozen=True)
class StopRules:
    """When a propagation stops (see the module docstring)."""

    limit: int = 40
    min_area: int = 8
    max_shift: float = 0.6
    max_growth: float = 1.8
    min_in_range: float = 0.7
    range_margin: float = 0.1
    seed_model: bool = True

    def __post_init__(self):
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or \
                not 1 <= self.limit <= MAX_LIMIT:
            raise EditRefused(f"The slice limit must be a whole number from 1 to {MAX_LIMIT}, "
                              f"not {str(self.limit)[:20]}.")


@dataclass
class Propagation:
    """What :func:`propagate` produced: the new masks by slice index, and per direction
    (``-1``, ``+1``) the slice where it stopped and why (a key of :data:`STOP_REASONS`)."""

    masks: dict[int, np.ndarray] = field(default_factory=dict)
    stops: dict[int, tuple[int, str]] = field(default_factory=dict)

    def describe(self) -> str:
        """One sentence per direction, e.g. ``"down: stopped at slice 3 (the region vanished)"``."""
        words = {-1: "down", 1: "up"}
        return "; ".join(f"{words[d]}: stopped at slice {i} ({STOP_REASONS[r]})"
                         for d, (i, r) in sorted(self.stops.items()))


def intensity_range(image: np.ndarray, mask: np.ndarray, margin: float = 0.1
                    ) -> tuple[float, float]:
    """The 2nd..98th percentile of ``image`` inside ``mask``, widened by ``margin`` of its span
    (a span of at least 5 % of the whole slice's 1st..99th percentile span: a uniform region
    still gets a usable range).

    Examples
    --------
    >>> img = np.arange(100.0).reshape(10, 10)
    >>> intensity_range(img, img >= 50, margin=0.0)
    (50.98, 98.02)
    """
    values = np.asarray(image, dtype=np.float64)[mask]
    values = values[np.isfinite(values)]
    if not values.size:
        raise EditRefused("The seed region has no finite image values; choose another slice.")
    lo, hi = np.percentile(values, [2, 98])
    whole = np.asarray(image, dtype=np.float64)
    p1, p99 = np.percentile(whole[np.isfinite(whole)], [1, 99])
    span = max(hi - lo, 0.05 * (p99 - p1), 1e-6)
    return float(lo - margin * span), float(hi + margin * span)


@dataclass(frozen=True)
class SeedModel:
    """Which intensities look like the structure rather than its surroundings, learnt from the
    seed slice (3×3 median-filtered, as the trimming sees it): the histogram (:data:`MODEL_BINS`
    bins over the intensity range, smoothed by one bin) of the pixels inside the seed and of
    those within ``ring`` pixels outside it. A value is ``looks_inside`` unless it is
    :data:`OUTSIDE_ODDS` times more frequent, relative to each histogram's total, outside than
    inside (strong evidence, so the structure's own partial-volume values are kept)."""

    edges: np.ndarray
    inside: np.ndarray
    outside: np.ndarray

    @classmethod
    def learn(cls, image: np.ndarray, seed: np.ndarray, window: tuple[float, float],
              ring: int) -> SeedModel:
        smooth = _median(image)
        near = ndimage.binary_dilation(seed, iterations=max(int(ring), 1)) & ~seed
        edges = np.linspace(window[0], window[1], MODEL_BINS + 1)

        def density(values):
            counts = np.histogram(values, bins=edges)[0].astype(np.float64)
            counts = ndimage.gaussian_filter1d(counts, 1.0, mode="constant")
            return counts / max(counts.sum(), 1.0)
        return cls(edges, density(smooth[seed]), density(smooth[near]))

    def looks_inside(self, values: np.ndarray) -> np.ndarray:
        bins = np.clip(np.searchsorted(self.edges, values, side="right") - 1, 0,
                       MODEL_BINS - 1)
        return OUTSIDE_ODDS * self.inside[bins] >= self.outside[bins]


#: histogram bins of :class:`SeedModel` over the seed's intensity range
MODEL_BINS = 32
#: how many times more frequent outside than inside a value must be to count as outside
OUTSIDE_ODDS = 10.0
#: outside-looking patches thinner than about twice this many pixels (partial-volume rims)
#: are left in the region
RIM = 2


def _median(image: np.ndarray) -> np.ndarray:
    return ndimage.median_filter(np.nan_to_num(np.asarray(image, dtype=np.float32)), size=3)


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


def _keep_in_range(new: np.ndarray, image: np.ndarray, window: tuple[float, float],
                   prev: np.ndarray, model: SeedModel | None = None) -> np.ndarray:
    """``new`` less its pixels outside the seed's intensity range (after a 3×3 median, so noise
    does not punch holes and edges stay put) and, with a ``model``, less the patches that look
    like the seed's surroundings (thicker than a rim of :data:`RIM` pixels), smoothed, keeping
    the pieces that overlap ``prev``."""
    kept = np.zeros(new.shape, bool)
    if not new.any():
        return kept
    (r0, r1), (c0, c1) = mask_box(new)
    crop = (slice(max(r0 - 2, 0), r1 + 2), slice(max(c0 - 2, 0), c1 + 2))  # only near the region
    smooth = _median(image[crop])
    kept[crop] = new[crop] & (smooth >= window[0]) & (smooth <= window[1])
    if model is not None:
        unlike = ndimage.binary_opening(kept[crop] & ~model.looks_inside(smooth),
                                        iterations=RIM)
        kept[crop] &= ~unlike
    kept = ndimage.binary_fill_holes(ndimage.binary_opening(kept, iterations=1))
    labels, n = ndimage.label(kept)
    if n > 1:
        touching = np.unique(labels[kept & prev])
        kept = np.isin(labels, touching[touching > 0])
    return kept


def _in_range(new: np.ndarray, image: np.ndarray, window: tuple[float, float],
              rules: StopRules) -> bool:
    values = image[new]
    inside = np.count_nonzero((values >= window[0]) & (values <= window[1]))
    return inside >= rules.min_in_range * values.size


def _check_step(prev: np.ndarray, snapped: np.ndarray, kept: np.ndarray, image: np.ndarray,
                window: tuple[float, float], rules: StopRules) -> str | None:
    """The stop reason of a slice (``snapped``, trimmed to ``kept``) after ``prev``, or None."""
    area, prev_area = int(kept.sum()), int(prev.sum())
    if area < rules.min_area:
        return "vanished"
    if not _in_range(snapped, image, window, rules):
        return "intensity"
    radius = np.sqrt(prev_area / np.pi)
    shift = float(np.linalg.norm(_centroid(kept) - _centroid(prev)))
    if shift > rules.max_shift * max(radius, 1.0) or area > rules.max_growth * prev_area:
        return "jumped"
    return None


def propagate(slice_image: Callable[[int], np.ndarray], n_slices: int, start: int,
              seed: np.ndarray, params: SnapParams, rules: StopRules = StopRules(),
              directions: tuple[int, ...] = (-1, 1)) -> Propagation:
    """Contour slices on each side of ``start`` from the ``seed`` mask (see module docstring).

    Parameters
    ----------
    slice_image : callable
        ``slice_image(i)`` → the 2D display image of slice ``i``.
    n_slices : int
        Number of slices of the plane.
    start : int
        The seed slice (it is not changed).
    seed : ndarray of bool
        The ROI on the seed slice.
    params, rules : SnapParams, StopRules
    directions : tuple of int
        ``-1`` (lower indices), ``+1`` (higher) or both.

    Examples
    --------
    >>> yy, xx = np.mgrid[:48, :48]
    >>> vol = [np.where((yy - 24) ** 2 + (xx - 24) ** 2 <= r * r, 100.0, 0.0)
    ...        for r in (0, 6, 8, 9, 8, 6, 0)]
    >>> out = propagate(lambda i: vol[i], 7, 3, vol[3] > 50, SnapParams())
    >>> sorted(out.masks), out.stops
    ([1, 2, 4, 5], {-1: (0, 'vanished'), 1: (6, 'vanished')})
    """
    seed = np.asarray(seed, dtype=bool)
    check_region(seed, "The seed ROI")
    seed_image = np.asarray(slice_image(start))
    window = intensity_range(seed_image, seed, rules.range_margin)
    model = SeedModel.learn(seed_image, seed, window, params.band) if rules.seed_model else None
    result = Propagation()
    for step in directions:
        if step not in (-1, 1):
            raise ValueError(f"directions are -1 and +1, not {step}")
        prev, index, done = seed, start + step, 0
        while True:
            if not 0 <= index < n_slices:
                result.stops[step] = (index - step, "end")
                break
            if done >= rules.limit:
                result.stops[step] = (index, "limit")
                break
            image = np.asarray(slice_image(index))
            try:
                new = snap_mask(image, prev, params)
            except SnapVanished:
                result.stops[step] = (index, "vanished")
                break
            except EditRefused:
                result.stops[step] = (index, "refused")
                break
            kept = _keep_in_range(new, image, window, prev, model)
            reason = _check_step(prev, new, kept, image, window, rules)
            if reason is not None:
                result.stops[step] = (index, reason)
                break
            result.masks[index] = kept
            prev, index, done = kept, index + step, done + 1
    return result
