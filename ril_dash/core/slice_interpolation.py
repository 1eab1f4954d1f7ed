"""Fill between slices: shape-based interpolation of an ROI between annotated slices.

Each slice between two annotated slices ``a < i < b`` gets the region where the blend
``(1 - t) * d_a + t * d_b`` (``t = (i - a) / (b - a)``) of the two slices' signed distance maps
is negative (inside), so a shape morphs smoothly into the next one, unlike a plain copy. The
distances are in millimetres when the pixel spacing is given, so anisotropic pixels do not
distort the shape.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ril_dash.errors import EditRefused

__all__ = ["gaps", "interpolate_slices", "signed_distance"]


def signed_distance(mask: np.ndarray, spacing=(1.0, 1.0)) -> np.ndarray:
    """Distance to the region's boundary: negative inside, positive outside (2D ``mask``).

    Examples
    --------
    >>> m = np.zeros((1, 7), bool); m[0, 2:5] = True
    >>> signed_distance(m).tolist()[0]
    [1.5, 0.5, -0.5, -1.5, -0.5, 0.5, 1.5]
    """
    mask = np.asarray(mask, dtype=bool)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    return np.where(mask, 0.5 - inside, outside - 0.5)


def gaps(annotated) -> list[tuple[int, int]]:
    """Pairs of consecutive annotated slice indices with empty slices between them.

    Examples
    --------
    >>> gaps([2, 3, 7, 9, 10])
    [(3, 7), (7, 9)]
    """
    ordered = sorted(int(i) for i in annotated)
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b - a > 1]


def interpolate_slices(masks: dict[int, np.ndarray], targets=None, spacing=(1.0, 1.0)
                       ) -> dict[int, np.ndarray]:
    """Interpolated masks for the empty slices between the annotated slices of ``masks``.

    Parameters
    ----------
    masks : dict
        Slice index → 2D bool mask of every annotated slice (empty masks are ignored).
    targets : iterable of int, optional
        Only these slices (each must lie between two annotated slices); all gaps by default.
    spacing : (float, float)
        Pixel size (rows, columns), for distances in millimetres.

    Examples
    --------
    >>> a = np.zeros((9, 9), bool); a[3:6, 3:6] = True
    >>> b = np.zeros((9, 9), bool); b[1:8, 1:8] = True
    >>> out = interpolate_slices({0: a, 4: b})
    >>> sorted(out), [int(out[i].sum()) for i in sorted(out)]
    ([1, 2, 3], [9, 25, 25])
    """
    annotated = {int(i): np.asarray(m, bool) for i, m in masks.items() if np.any(m)}
    if len(annotated) < 2:
        raise EditRefused("Fill between slices needs the ROI on at least two slices of this "
                          "plane; outline it on the first and last slice first.")
    pairs = gaps(annotated)
    if targets is None:
        wanted = {i for a, b in pairs for i in range(a + 1, b)}
        if not wanted:
            raise EditRefused("The ROI has no empty slices between its annotated slices; there "
                              "is nothing to fill.")
    else:
        wanted = {int(i) for i in targets}
        outside = sorted(i for i in wanted if not any(a < i < b for a, b in pairs))
        if outside:
            raise EditRefused(f"Slice {outside[0]} is not an empty slice between two annotated "
                              "slices of the ROI; choose slices inside a gap.")
    distances: dict[int, np.ndarray] = {}
    out = {}
    for a, b in pairs:
        todo = [i for i in range(a + 1, b) if i in wanted]
        if not todo:
            continue
        for k in (a, b):
            if k not in distances:
                distances[k] = signed_distance(annotated[k], spacing)
        for i in todo:
            t = (i - a) / (b - a)
            out[i] = (1.0 - t) * distances[a] + t * distances[b] < 0
    return out
