"""Heat maps for the screen: scaling, the automatic threshold, the rainbow palette, a colour bar.

An activation or saliency map is shown scaled to its slice's maximum (``scaled``: 0 … 1, negative
values as 0), through a rainbow palette (violet for low, red for high; :data:`RAINBOW`), with every
pixel below a threshold transparent. The automatic threshold (:func:`otsu_threshold`) is Otsu's
between-class-variance split of the scaled values above zero: it hides the low background
activation and keeps the part of the map that stands out.
"""

from __future__ import annotations

import numpy as np

from ril_dash.core.png import encode_palette_png, encode_png

__all__ = ["RAINBOW", "colour_bar", "composite", "heat_indices", "heat_png", "heat_rgba",
           "otsu_threshold", "scaled"]


def _rainbow(n: int = 256) -> np.ndarray:
    """``n`` RGB colours from violet (hue 270°) through blue, green, yellow to red (hue 0°)."""
    hue = (1.0 - np.linspace(0.0, 1.0, n)) * 270.0 / 60.0  # sector 0..4.5
    x = 1.0 - np.abs(hue % 2.0 - 1.0)
    sector = np.floor(hue).astype(int)
    rgb = np.zeros((n, 3))
    table = {0: (1, x, 0), 1: (x, 1, 0), 2: (0, 1, x), 3: (0, x, 1), 4: (x, 0, 1)}
    for k, (r, g, b) in table.items():
        where = sector == k
        for channel, value in enumerate((r, g, b)):
            rgb[where, channel] = value if np.isscalar(value) else value[where]
    return np.round(rgb * 255).astype(np.uint8)


#: 256 RGB colours, index 0 (low) violet … index 255 (high) red
RAINBOW = _rainbow()


def scaled(map2d: np.ndarray) -> np.ndarray:
    """The map divided by its maximum, negatives as 0 (all zeros when nothing is positive).

    >>> scaled(np.array([[-1.0, 0.0], [1.0, 4.0]])).tolist()
    [[0.0, 0.0], [0.25, 1.0]]
    """
    values = np.asarray(map2d, np.float32)
    if not np.isfinite(values).all():  # rare: the copy costs more than the whole check
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    if top <= 0:
        return np.zeros_like(values)
    return np.clip(values / top, 0.0, 1.0)


def otsu_threshold(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of the scaled values above 0 (0.0 when there are none or one level).

    >>> v = np.r_[np.full(90, 0.1), np.full(10, 0.9)]
    >>> 0.1 < otsu_threshold(v) <= 0.9
    True
    """
    v = np.asarray(values)
    v = v.astype(np.float64) if v.dtype.kind != "f" else v  # v × bins is exact in any float
    v = v[v > 0]
    if v.size < 2 or v.min() == v.max():
        return 0.0
    # np.histogram's bins over [0, 1] (1.0 in the last one), counted by bincount on small
    # integers: 20 × faster than np.histogram
    small = np.uint8 if bins <= 256 else np.intp
    counts = np.bincount(np.minimum(v * bins, bins - 1).astype(small), minlength=bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * centres)
    total, grand = weight[-1], mean[-1]
    w1 = total - weight
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (grand * weight - mean * total) ** 2 / (weight * w1)
    between[~np.isfinite(between)] = -1
    return float(edges[int(np.argmax(between)) + 1])


def heat_indices(map2d: np.ndarray, threshold: float | None = None
                 ) -> tuple[np.ndarray, float, int]:
    """Palette indices (uint8, 0 … 255) of the scaled map, the threshold used (``None``:
    :func:`otsu_threshold`) and the first index shown: a pixel is drawn when its index reaches
    ``ceil(threshold × 255)`` (and is above 0); the threshold is compared at the palette's
    resolution, 1/255.

    >>> indices, used, first = heat_indices(np.array([[0.0, 1.0, 2.0, 4.0]]), 0.5)
    >>> indices.tolist(), used, first
    ([[0, 64, 128, 255]], 0.5, 128)
    """
    values = scaled(map2d)
    used = otsu_threshold(values) if threshold is None else float(threshold)
    indices = (values * 255 + 0.5).astype(np.uint8)
    return indices, used, max(1, int(np.ceil(used * 255 - 1e-6)))


def _alpha(first: int) -> np.ndarray:
    alpha = np.zeros(256, np.uint8)
    alpha[min(first, 256):] = 255
    return alpha


def heat_rgba(map2d: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, float]:
    """RGBA uint8 of the map (see :func:`heat_indices`) and the threshold used."""
    indices, used, first = heat_indices(map2d, threshold)
    lut = np.concatenate([RAINBOW, _alpha(first)[:, None]], axis=1)
    return lut[indices], used


def heat_png(map2d: np.ndarray, threshold: float | None = None) -> tuple[bytes, float]:
    """The map as a palette PNG (the picture of :func:`heat_rgba`), and the threshold used."""
    indices, used, first = heat_indices(map2d, threshold)
    return encode_palette_png(indices, RAINBOW, _alpha(first).tobytes()), used


def colour_bar(height: int, width: int = 16) -> np.ndarray:
    """RGB uint8 ``(height, width, 3)``: the palette, red (high) at the top."""
    index = np.round(np.linspace(255, 0, max(int(height), 2))).astype(np.intp)
    return np.repeat(RAINBOW[index][:, None, :], int(width), axis=1)


def composite(grey: np.ndarray, map2d: np.ndarray, threshold: float | None, opacity: float,
              bar_width: int = 16, gap: int = 4) -> bytes:
    """PNG of a windowed slice ``grey`` (uint8) with the heat map blended in at ``opacity``
    (where it is shown) and the colour bar to its right."""
    rgba, _ = heat_rgba(map2d, threshold)
    base = np.repeat(np.asarray(grey, np.float32)[..., None], 3, axis=2)
    alpha = (rgba[..., 3:4] / 255.0) * float(np.clip(opacity, 0.0, 1.0))
    view = np.round(base * (1 - alpha) + rgba[..., :3] * alpha).astype(np.uint8)
    rows = view.shape[0]
    canvas = np.zeros((rows, view.shape[1] + gap + bar_width, 3), np.uint8)
    canvas[:, :view.shape[1]] = view
    canvas[:, view.shape[1] + gap:] = colour_bar(rows, bar_width)
    return encode_png(canvas)
