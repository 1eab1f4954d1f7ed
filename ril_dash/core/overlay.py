"""Coloured ROI overlays for the slice viewer, and which slices hold which ROIs.

An overlay is an RGBA image of one display slice of the annotation *bits* array: each visible
ROI in its colour, filled at a chosen opacity with a solid outline, or outlined only. Slices
whose annotation was drafted by a model or a semi-automatic tool can be drawn in a lighter
shade. :func:`slice_ranges` summarises, for a plane, the runs of slices that hold each ROI (the
slice indicator beside the slider and the through-plane extent view).
"""

from __future__ import annotations

import functools

import numpy as np

from ril_dash.core.planes import display_stack, plane_axes
from ril_dash.core.slice_unions import SliceUnions, per_slice_union

STYLES = ("fill", "outline")


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#a0522d"`` → ``(160, 82, 45)``.

    Examples
    --------
    >>> hex_to_rgb("#a0522d")
    (160, 82, 45)
    """
    color = color.lstrip("#")
    return tuple(int(color[i:i + 2], 16) for i in (0, 2, 4))


def present_bits(bits: np.ndarray) -> list[int]:
    """The bit numbers set anywhere in ``bits``.

    Examples
    --------
    >>> present_bits(np.array([[0, 1], [4, 5]], np.uint8))
    [0, 2]
    """
    union = int(np.bitwise_or.reduce(bits, axis=None)) if bits.size else 0
    return [b for b in range(union.bit_length()) if union >> b & 1]


@functools.lru_cache(maxsize=64)
def _rank_table(itemsize: int, order: tuple[int, ...]) -> np.ndarray:
    """For every value of a ``itemsize``-byte bits array, 1 + the rank in ``order`` of its
    highest bit listed there (0: none)."""
    values = np.arange(1 << (8 * itemsize), dtype=np.uint32)
    table = np.zeros(values.size, np.uint8)
    for rank, bit in enumerate(order, 1):
        table[(values >> bit & 1).astype(bool)] = rank
    return table


def _top_labels(bits: np.ndarray, colors: dict[int, tuple[int, int, int]]):
    """Per pixel, 1 + the rank of its highest coloured bit (0: none), and the palette."""
    order = tuple(b for b in present_bits(bits) if b in colors)
    if bits.dtype.itemsize <= 2:  # one table lookup instead of a pass per ROI
        top = _rank_table(bits.dtype.itemsize, order)[bits]
    else:
        top = np.zeros(bits.shape, np.uint8)
        for rank, bit in enumerate(order, 1):
            np.putmask(top, (bits >> bit & 1).astype(bool), rank)
    palette = np.zeros((len(order) + 1, 3), np.float32)
    for rank, bit in enumerate(order, 1):
        palette[rank] = colors[bit]
    return top, palette


def _edges(top: np.ndarray) -> np.ndarray:
    """Labelled pixels with a 4-neighbour of another label, or on the image border (2D or a
    stack of 2D slices along the first axis)."""
    edge = np.zeros(top.shape, bool)
    for axis in (-2, -1):
        a = np.swapaxes(top, axis, -1)
        e = np.swapaxes(edge, axis, -1)
        differ = a[..., 1:] != a[..., :-1]
        e[..., 1:] |= differ
        e[..., :-1] |= differ
        e[..., 0] = True
        e[..., -1] = True
    return edge & (top > 0)


def overlay_indices(bits2d: np.ndarray, colors: dict[int, tuple[int, int, int]], *,
                    style: str = "fill", opacity: float = 0.4, light: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The overlay of :func:`render_overlay` as palette indices (uint8, same shape as
    ``bits2d``) and its RGBA palette (uint8, ``(2k + 2, 4)`` for k ROIs present): a quarter of
    the bytes to encode as a PNG. Entry 0 is transparent, 1 … k are the ROIs' fill, k + 2 …
    2k + 1 their outline.

    Examples
    --------
    >>> bits = np.zeros((4, 4), np.uint8); bits[1:3, 1:3] = 1; bits[0, 0] = 3
    >>> indices, palette = overlay_indices(bits, {0: (255, 0, 0), 1: (0, 0, 255)})
    >>> indices.tolist()[:2], palette[:, 3].tolist()
    ([[5, 0, 0, 0], [0, 4, 4, 0]], [0, 102, 102, 0, 255, 255])
    """
    if style not in STYLES:
        raise ValueError(f"overlay style must be one of {STYLES}, not {style!r}")
    opacity = float(np.clip(opacity, 0.0, 1.0))
    top, colours = _top_labels(bits2d, colors)
    if light:
        colours = colours + (255 - colours) * 0.5
    n = len(colours)
    palette = np.zeros((2 * n, 4), np.uint8)
    palette[:n, :3] = palette[n:, :3] = colours.astype(np.uint8)
    palette[1:n, 3] = round(opacity * 255) if style == "fill" else 0
    palette[n + 1:, 3] = 255
    if n == 1:
        return top, palette
    indices = top + np.uint8(n) * _edges(top).view(np.uint8)
    return indices, palette


def render_overlay(bits2d: np.ndarray, colors: dict[int, tuple[int, int, int]], *,
                   style: str = "fill", opacity: float = 0.4, light: bool = False) -> np.ndarray:
    """RGBA (…, rows, cols, 4) uint8 overlay of the ROIs in ``colors`` (bit → RGB).

    Where ROIs overlap, the one with the higher bit is shown; ``style="fill"`` fills at
    ``opacity`` and outlines solidly, ``"outline"`` outlines only. ``light`` blends the colours
    halfway to white (model or semi-automatic drafts). Works on one slice or a stack of slices.

    Examples
    --------
    >>> bits = np.zeros((5, 5), np.uint8); bits[1:4, 1:4] = 1
    >>> rgba = render_overlay(bits, {0: (255, 0, 0)}, style="outline")
    >>> int(rgba[2, 2, 3]), int(rgba[1, 1, 3]), rgba[1, 1, :3].tolist()
    (0, 255, [255, 0, 0])
    """
    indices, palette = overlay_indices(bits2d, colors, style=style, opacity=opacity,
                                       light=light)
    return palette[indices]


def slice_ranges(bits: np.ndarray, plane: str, unions: SliceUnions | None = None
                 ) -> dict[int, list[list[int]]]:
    """For each bit present, the half-open runs ``[start, stop)`` of ``plane`` slices holding it
    (``unions``: the per-slice ORs kept for ``bits``, which spare a pass over the array).

    Examples
    --------
    >>> bits = np.zeros((2, 2, 6), np.uint8); bits[0, 0, 1:3] = 1; bits[1, 1, 4] = 3
    >>> slice_ranges(bits, "axial")
    {0: [[1, 3], [4, 5]], 1: [[4, 5]]}
    """
    axis = plane_axes(plane)[0]
    per_slice = (unions.of(bits, axis) if unions is not None
                 else per_slice_union(bits, axis))
    ranges: dict[int, list[list[int]]] = {}
    for bit in present_bits(per_slice):
        on = (per_slice >> bit & 1).astype(np.int8)
        edges = np.diff(np.concatenate([[0], on, [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        ranges[bit] = [[int(a), int(b)] for a, b in zip(starts, stops)]
    return ranges


def annotated_slices(bits: np.ndarray, plane: str) -> np.ndarray:
    """Indices of the ``plane`` slices that hold any annotation."""
    return np.flatnonzero(per_slice_union(bits, plane_axes(plane)[0]))


def overlay_thumbnails(bits: np.ndarray, plane: str, factor: int,
                       colors: dict[int, tuple[int, int, int]], **style) -> dict[int, np.ndarray]:
    """Down-sampled overlays (every ``factor``-th pixel) of the annotated ``plane`` slices."""
    index = annotated_slices(bits, plane)
    if not index.size:
        return {}
    stack = display_stack(bits, plane)[:, ::factor, ::factor][index]
    rgba = render_overlay(stack, colors, **style)
    return {int(i): rgba[k] for k, i in enumerate(index)}
