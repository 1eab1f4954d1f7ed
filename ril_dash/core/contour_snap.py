"""Snap contour: move a rough 2D region onto the edges of the structure it outlines.

:func:`snap_mask` works on one slice (any orientation: an image and a boolean mask of the same
2D shape) on a crop around the region. Two well-kept scikit-image methods do the work
(:data:`~ril_dash.core.contour_params.METHODS`):

- ``watershed``: markers are the rough region shrunk by ``band`` pixels (object) and everything
  farther than ``band`` pixels outside it (background); :func:`skimage.segmentation.watershed`
  of the smoothed gradient magnitude decides the band in between, so the boundary settles on
  the strongest edge near the outline whether the outline was too big or too small.
- ``geodesic``: :func:`skimage.segmentation.morphological_geodesic_active_contour` on the
  inverse Gaussian gradient, started from the rough region.

The crop's intensities are scaled to 0..1 by its 1st and 99th percentiles, so the parameters
mean the same on CT, MR or any other image. Bad input is refused with :class:`EditRefused`
(nothing is computed): an empty region, a region or result that touches the image border, a
result that floods most of the slice or vanishes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import gaussian, sobel
from skimage.segmentation import (
    inverse_gaussian_gradient,
    morphological_geodesic_active_contour,
    watershed,
)

from ril_dash.core.contour_params import SnapParams
from ril_dash.core.stats import mask_box
from ril_dash.errors import EditRefused

__all__ = ["FLOOD_FRACTION", "check_region", "normalise", "snap_mask", "touches_border"]

#: a result covering more than this fraction of the slice "floods" it and is refused
FLOOD_FRACTION = 0.5


class SnapVanished(EditRefused):
    """Snapping left nothing of the region (no edge around it)."""


def touches_border(mask: np.ndarray) -> bool:
    """Whether any pixel of a 2D ``mask`` lies on the image border."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def check_region(mask: np.ndarray, what: str = "The ROI") -> None:
    """Refuse a region that snapping cannot work on: empty, or touching the image border."""
    if not mask.any():
        raise EditRefused(f"{what} has no voxels on this slice; outline the structure roughly "
                          "first, then snap.")
    if touches_border(mask):
        raise EditRefused(f"{what} touches the edge of the image on this slice, so its outline "
                          "cannot be followed there; erase it away from the edge first.")


def normalise(image: np.ndarray) -> np.ndarray:
    """``image`` as float scaled to 0..1 by its 1st and 99th percentiles (NaN → 0).

    Examples
    --------
    >>> normalise(np.array([[0.0, 50.0], [100.0, np.nan]])).round(2).tolist()
    [[0.0, 0.5], [1.0, 0.0]]
    """
    img = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(img)
    if not finite.any():
        return np.zeros(img.shape, np.float32)
    lo, hi = np.percentile(img[finite], [1, 99])
    if hi <= lo:
        lo, hi = float(img[finite].min()), float(img[finite].max())
    out = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    out[~finite] = 0.0
    return out


def _crop(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    (r0, r1), (c0, c1) = mask_box(mask)
    rows, cols = mask.shape
    return (slice(max(0, r0 - margin), min(rows, r1 + margin)),
            slice(max(0, c0 - margin), min(cols, c1 + margin)))


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r + r


def _watershed(img: np.ndarray, rough: np.ndarray, p: SnapParams) -> np.ndarray:
    inner = ndimage.binary_erosion(rough, _disk(p.band))
    if not inner.any():  # a thin region: keep its most interior pixels as the marker
        dist = ndimage.distance_transform_edt(rough)
        inner = dist >= dist.max()
    outer = ~ndimage.binary_dilation(rough, _disk(p.band))
    markers = np.zeros(img.shape, np.int32)
    markers[outer] = 1
    markers[inner] = 2
    edges = sobel(gaussian(img, sigma=p.edge_sigma, preserve_range=True))
    result = watershed(edges, markers) == 2
    if p.smoothing:
        result = ndimage.binary_opening(result, _disk(p.smoothing))
        result = ndimage.binary_closing(result, _disk(p.smoothing), border_value=0)
        result = ndimage.binary_fill_holes(result)
    return result


def _geodesic(img: np.ndarray, rough: np.ndarray, p: SnapParams) -> np.ndarray:
    gimage = inverse_gaussian_gradient(img, alpha=p.edge_alpha, sigma=p.edge_sigma)
    level = morphological_geodesic_active_contour(
        gimage, p.iterations, init_level_set=rough.astype(np.int8), smoothing=p.smoothing,
        threshold="auto", balloon=p.balloon)
    return level.astype(bool)


def snap_mask(image: np.ndarray, rough: np.ndarray, params: SnapParams) -> np.ndarray:
    """The region ``rough`` snapped to the edges of ``image`` (2D arrays of the same shape).

    Examples
    --------
    >>> yy, xx = np.mgrid[:64, :64]
    >>> disc = (yy - 32) ** 2 + (xx - 32) ** 2 <= 12 ** 2
    >>> image = np.where(disc, 200.0, 20.0)
    >>> rough = (yy - 30) ** 2 + (xx - 33) ** 2 <= 15 ** 2        # too big, off centre
    >>> snapped = snap_mask(image, rough, SnapParams())
    >>> int((snapped ^ disc).sum()) <= 8
    True
    """
    image = np.asarray(image)
    rough = np.asarray(rough, dtype=bool)
    if image.shape != rough.shape or image.ndim != 2:
        raise ValueError(f"image {image.shape} and region {rough.shape} must be the same 2D "
                         "shape")
    check_region(rough)
    margin = params.band + int(np.ceil(3 * params.edge_sigma)) + 2
    crop = _crop(rough, margin)
    img = normalise(image[crop])
    local = rough[crop]
    if params.method == "watershed":
        snapped = _watershed(img, local, params)
    else:
        snapped = _geodesic(img, local, params)
    result = np.zeros(rough.shape, bool)
    result[crop] = snapped
    if not result.any():
        raise SnapVanished("Snapping left nothing of the region: no edge was found around it. "
                          "Outline the structure more closely, or lower the edge sensitivity.")
    if touches_border(result):
        raise EditRefused("The snapped region reaches the edge of the image: the structure's "
                          "outline is too weak here. Outline it more closely or use the other "
                          "method.")
    if result.sum() > FLOOD_FRACTION * result.size:
        raise EditRefused("The snapped region floods most of the slice: the structure's edge "
                          "is too weak. Outline it more closely or narrow the band.")
    return result
