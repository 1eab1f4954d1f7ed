"""Statistics of the image values inside an ROI mask, and histograms.

Only finite values enter the intensity statistics (NaN / inf voxels still count toward the ROI's
size). The mask is cropped to its bounding box before any boolean indexing, so a small ROI in a
large volume costs little more than one pass over the mask.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["STAT_KEYS", "histogram", "roi_statistics"]

STAT_KEYS = ("count", "volume_ml", "mean", "sd", "min", "max", "median", "p5", "p25", "p75",
             "p95", "bbox")


def mask_box(mask: np.ndarray):
    """Half-open bounding box ``[(lo, hi), ...]`` of a boolean mask (two cheap passes), or
    None when empty.

    Examples
    --------
    >>> m = np.zeros((4, 5), bool); m[1:3, 2] = True
    >>> mask_box(m)
    [(1, 3), (2, 3)]
    """
    if mask.ndim == 0:
        return None if not mask else []
    lead = mask.any(axis=-1) if mask.ndim > 1 else mask
    box = []
    for axis in range(lead.ndim):
        other = tuple(a for a in range(lead.ndim) if a != axis)
        idx = np.flatnonzero(lead.any(axis=other) if other else lead)
        if idx.size == 0:
            return None
        box.append((int(idx[0]), int(idx[-1]) + 1))
    if mask.ndim > 1:
        crop = mask[tuple(slice(a, b) for a, b in box)]
        idx = np.flatnonzero(crop.any(axis=tuple(range(mask.ndim - 1))))
        box.append((int(idx[0]), int(idx[-1]) + 1))
    return box


def roi_statistics(image, mask, spacing) -> dict:
    """Size, intensity summary and bounding box of the voxels of ``image`` under ``mask``.

    Parameters
    ----------
    image : ndarray (X, Y, Z)
        Intensities (any real dtype).
    mask : ndarray of bool, same shape
    spacing : sequence of float
        Voxel size in mm along each axis.

    Returns
    -------
    dict
        ``count`` (mask voxels), ``volume_ml``, ``mean``, ``sd`` (population, ddof=0), ``min``,
        ``max``, ``median``, ``p5``, ``p25``, ``p75``, ``p95`` (linear interpolation, finite
        values only; None when there are none), ``bbox`` (inclusive canonical voxel
        ``(min, max)`` per axis). An empty mask gives ``count`` 0 and None everywhere else.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(8.0).reshape(2, 2, 2); m = img >= 6
    >>> s = roi_statistics(img, m, (1.0, 2.0, 5.0))
    >>> s["count"], s["volume_ml"], s["mean"], s["bbox"]
    (2, 0.02, 6.5, ((1, 1), (1, 1), (0, 1)))
    """
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.shape != mask.shape:
        raise ValueError(f"image shape {image.shape} differs from mask shape {mask.shape}")
    out = dict.fromkeys(STAT_KEYS)
    out["count"] = 0
    box = mask_box(mask)
    if box is None:
        return out
    key = tuple(slice(a, b) for a, b in box)
    sub = mask[key]
    values = image[key][sub]
    out["count"] = int(values.size)
    voxel_ml = math.prod(float(s) for s in spacing) / 1000.0
    out["volume_ml"] = float(values.size * voxel_ml)
    out["bbox"] = tuple((a, b - 1) for a, b in box)
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    elif values.dtype.kind == "b":
        values = values.astype(np.uint8)
    if values.size == 0:
        return out
    v64 = values.astype(np.float64, copy=False)
    mean = float(v64.mean())
    out["mean"] = mean
    out["sd"] = float(np.sqrt(np.mean((v64 - mean) ** 2)))
    p5, p25, p50, p75, p95 = np.percentile(v64, [5, 25, 50, 75, 95])
    out.update(min=float(v64.min()), max=float(v64.max()), median=float(p50), p5=float(p5),
               p25=float(p25), p75=float(p75), p95=float(p95))
    return out


def histogram(values, bins: int = 64) -> dict:
    """Histogram of the finite ``values``: ``{'edges': [bins + 1 floats], 'counts': [ints]}``.

    No finite value gives empty lists.

    Examples
    --------
    >>> h = histogram([0, 1, 1, 2, float("nan")], bins=2)
    >>> h["edges"], h["counts"]
    ([0.0, 1.0, 2.0], [1, 3])
    """
    v = np.asarray(values).ravel()
    if v.dtype.kind == "f":
        v = v[np.isfinite(v)]
    if v.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(v.astype(np.float64, copy=False), bins=int(bins))
    return {"edges": edges.tolist(), "counts": counts.tolist()}
