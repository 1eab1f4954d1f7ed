"""Intensity normalisation of model inputs, as a bundle's ``normalization:`` section fixes it.

Methods (``norm.method``):

- ``window``: clip to ``window`` = [lower, upper] (e.g. HU), then scale linearly to ``range``;
- ``zscore``: ``(x - mean) / std`` (a zero std divides by 1);
- ``percentile``: clip to the ``percentiles`` [p_lo, p_hi] of the statistics, then scale to
  ``range`` (equal percentiles map everything to ``range[0]``);
- ``scale``: ``x * scale + offset``;
- ``none``: the values as float32.

``zscore`` and ``percentile`` take their statistics per 2D image (``scope: slice``: over the last
two axes of the array given, so a stack of slices is normalised slice by slice) or from the whole
volume (``scope: volume``: :func:`volume_stats` of the frame, computed once per series so that a
run in chunks gives the same numbers as a run in one go). A final ``clip`` [lo, hi] applies last.

Non-finite input values (NaN, inf) are replaced by the smallest finite value of their image
(:func:`fill_nonfinite`) before anything else, so a model never sees NaN. numpy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METHODS", "fill_nonfinite", "normalize", "volume_stats"]

METHODS = ("window", "zscore", "percentile", "scale", "none")
_STAT_METHODS = ("zscore", "percentile")


def fill_nonfinite(array) -> np.ndarray:
    """float32 copy of ``array`` whose NaN/inf are replaced, per 2D image (last two axes), by the
    smallest finite value of that image (0 when it has none).

    Examples
    --------
    >>> fill_nonfinite(np.array([[1.0, np.nan], [np.inf, 3.0]])).tolist()
    [[1.0, 1.0], [1.0, 3.0]]
    """
    x = np.array(array, dtype=np.float32)
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    lows = np.where(bad, np.inf, x).min(axis=(-2, -1), keepdims=True)
    lows = np.where(np.isfinite(lows), lows, 0.0).astype(np.float32)
    return np.where(bad, lows, x)


def _stats(x: np.ndarray, norm, axis) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) for zscore, (p_lo, p_hi) for percentile, over ``axis`` (keepdims)."""
    if norm.method == "zscore":
        mean = x.mean(axis=axis, dtype=np.float64, keepdims=True)
        std = x.std(axis=axis, dtype=np.float64, keepdims=True)
        return mean, std
    lo, hi = np.percentile(x.astype(np.float64), list(norm.percentiles), axis=axis,
                           keepdims=True)
    return lo, hi


def volume_stats(volume3d, norm) -> tuple[float, float] | None:
    """Whole-volume statistics for ``scope: volume`` (finite voxels only), else ``None``.

    ``(mean, std)`` (population std) for zscore, ``(p_lo, p_hi)`` (``np.percentile``, linear)
    for percentile.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> volume_stats(np.array([[[1.0, 3.0]]]), NS(method="zscore", scope="volume"))
    (2.0, 1.0)
    >>> volume_stats(np.zeros((2, 2, 2)), NS(method="window", scope="volume")) is None
    True
    """
    if norm.method not in _STAT_METHODS or norm.scope != "volume":
        return None
    x = np.asarray(volume3d)
    if x.dtype.kind == "f":
        x = x[np.isfinite(x)]
    if x.size == 0:
        return (0.0, 1.0) if norm.method == "zscore" else (0.0, 0.0)
    a, b = _stats(x.ravel(), norm, axis=None)
    return float(a.item()), float(b.item())


def _to_range(x, lo, hi, out_range):
    """Clip ``x`` to [lo, hi] and map it linearly onto ``out_range`` (lo == hi → range[0])."""
    r0, r1 = (float(v) for v in out_range)
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    width = hi - lo
    safe = np.where(width > 0, width, 1.0)
    scaled = (np.clip(x, lo, hi) - lo) / safe * (r1 - r0) + r0
    return np.where(width > 0, scaled, r0)


def normalize(array, norm, volume_stats=None) -> np.ndarray:
    """Normalised float32 copy of ``array`` (``(..., rows, cols)``) under ``norm`` (a NormSpec).

    Parameters
    ----------
    array : array_like
        One image or a stack of images; ``scope: slice`` statistics are per image.
    norm : NormSpec
        ``method``, ``window``, ``range``, ``percentiles``, ``scope``, ``scale``, ``offset``,
        ``clip``.
    volume_stats : tuple, optional
        :func:`volume_stats` of the whole volume for ``scope: volume``; when omitted the
        statistics of ``array`` as a whole are used.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> w = NS(method="window", window=[0, 100], range=[0.0, 1.0], clip=None)
    >>> normalize(np.array([[-50.0, 25.0, 200.0]]), w).tolist()
    [[0.0, 0.25, 1.0]]
    """
    x = fill_nonfinite(array)
    method = norm.method
    if method == "none":
        out = x
    elif method == "scale":
        out = x.astype(np.float64) * float(norm.scale) + float(norm.offset)
    elif method == "window":
        out = _to_range(x.astype(np.float64), norm.window[0], norm.window[1], norm.range)
    elif method in _STAT_METHODS:
        if norm.scope == "volume":
            a, b = volume_stats if volume_stats is not None else _stats(x, norm, axis=None)
        elif norm.scope == "slice":
            a, b = _stats(x, norm, axis=(-2, -1))
        else:
            raise ValueError(f"normalization scope must be 'slice' or 'volume', got "
                             f"{norm.scope!r}")
        if method == "zscore":
            std = np.asarray(b, dtype=np.float64)
            out = (x - np.asarray(a, dtype=np.float64)) / np.where(std > 0, std, 1.0)
        else:
            out = _to_range(x.astype(np.float64), a, b, norm.range)
    else:
        raise ValueError(f"normalization method must be one of {', '.join(METHODS)}, got "
                         f"{method!r}")
    if norm.clip is not None:
        out = np.clip(out, float(norm.clip[0]), float(norm.clip[1]))
    return np.asarray(out, dtype=np.float32)
