"""Read-only views of a series' annotations for the viewer: overlays, slice summaries, statistics.

Everything here works on an :class:`~ril_dash.project.annotation_store.AnnotationState` (the
current one or an old version) and the project's ROI definitions, and returns plain data or PNG
bytes. ROIs are named by their mask value outside the store; bits stay internal.
"""

from __future__ import annotations

import numpy as np

from ril_dash.core.overlay import (
    hex_to_rgb,
    overlay_indices,
    overlay_thumbnails,
    slice_ranges,
)
from ril_dash.core.paint import roi_box, roi_mask
from ril_dash.core.planes import canonical_to_display, display_view, plane_axes
from ril_dash.core.png import encode_palette_png, encode_png
from ril_dash.core.stats import histogram, roi_statistics
from ril_dash.core.volume import Volume
from ril_dash.errors import EditRefused
from ril_dash.project.annotation_store import AnnotationState
from ril_dash.project.schema import ProjectConfig

LIGHT_KINDS = ("model", "semi-auto")


def roi_colors(config: ProjectConfig, state: AnnotationState,
               hidden: frozenset[int] = frozenset()) -> dict[int, tuple[int, int, int]]:
    """bit → RGB of the visible area ROIs that have a slot in ``state``."""
    return {state.slots[roi.value]: hex_to_rgb(roi.color) for roi in config.rois
            if roi.value in state.slots and roi.value not in hidden}


def overlay_png(config: ProjectConfig, state: AnnotationState, plane: str, index: int, *,
                style: str = "fill", opacity: float = 0.4,
                hidden: frozenset[int] = frozenset()) -> bytes | None:
    """PNG (palette with transparency) of the ROIs on one display slice, or ``None`` when the
    slice has none."""
    # one gather of the (strided) slice; every pass below then reads contiguous memory
    bits2d = np.ascontiguousarray(display_view(state.bits, plane, index))
    if not bits2d.any():
        return None
    prov = state.provenance.get((plane, index)) or {}
    indices, palette = overlay_indices(bits2d, roi_colors(config, state, hidden), style=style,
                                       opacity=opacity, light=prov.get("kind") in LIGHT_KINDS)
    if not palette[indices, 3].any():  # every ROI on the slice hidden or transparent
        return None
    return encode_palette_png(indices, palette[:, :3], palette[:, 3].tobytes())


def overlay_thumbnail_pngs(config: ProjectConfig, state: AnnotationState, plane: str,
                           factor: int, **style) -> dict[int, bytes]:
    """Low-resolution overlay PNGs of every annotated slice of ``plane``."""
    colors = roi_colors(config, state, style.pop("hidden", frozenset()))
    return {i: encode_png(rgba) for i, rgba in
            overlay_thumbnails(state.bits, plane, factor, colors, **style).items()
            if rgba[..., 3].any()}


def plane_summary(config: ProjectConfig, state: AnnotationState, plane: str) -> dict:
    """Which slices of ``plane`` hold which ROI, the points with their display positions, and
    the provenance of drafted slices.

    Returns ``{"ranges": {value: [[start, stop], ...]}, "points": [{roi, xyz, index, row, col}],
    "drafted": [index, ...]}``.
    """
    by_bit = {bit: value for value, bit in state.slots.items()}
    runs_of_bits = slice_ranges(state.bits, plane, state.unions)
    ranges = {by_bit[bit]: runs for bit, runs in runs_of_bits.items() if bit in by_bit}
    points = []
    for value, xyzs in state.points.items():
        for xyz in xyzs:
            index, row, col = canonical_to_display(state.bits.shape, plane, xyz)
            points.append({"roi": int(value), "xyz": [int(v) for v in xyz], "index": index,
                           "row": row, "col": col})
    for value, xyzs in state.points.items():
        if xyzs:
            axis_index = sorted({p["index"] for p in points if p["roi"] == value})
            ranges.setdefault(int(value), [[i, i + 1] for i in axis_index])
    drafted = sorted(i for (p, i), rec in state.provenance.items()
                     if p == plane and rec and rec.get("kind") in LIGHT_KINDS)
    return {"ranges": {int(k): v for k, v in ranges.items()}, "points": points,
            "drafted": drafted}


def roi_stats(config: ProjectConfig, state: AnnotationState, volume: Volume, value: int, *,
              frame: int = 0, plane: str | None = None, index: int | None = None,
              bins: int = 64) -> dict:
    """Statistics and histogram of the image values inside ROI ``value``.

    Over the whole volume, or over one display slice when ``plane`` and ``index`` are given.
    """
    names = {roi.value: roi.name for roi in config.rois}
    if value not in names:
        raise EditRefused(f"No ROI has mask value {value}.")
    image = volume.data[..., frame]
    bits = state.bits
    if plane is not None:  # one display slice: a 3D box one voxel thick along the plane axis
        axis = plane_axes(plane)[0]
        box = [(0, n) for n in bits.shape]
        box[axis] = (index, index + 1)
    else:
        box = roi_box(bits, state.slots[value]) if value in state.slots else None
    if value not in state.slots or box is None:
        box = [(0, 0)] * 3
    crop = tuple(slice(a, b) for a, b in box)
    image, bits = image[crop], bits[crop]
    mask = roi_mask(bits, state.slots[value]) if value in state.slots else \
        np.zeros(bits.shape, bool)
    stats = roi_statistics(image, mask, volume.spacing)
    if stats["bbox"]:
        stats["bbox"] = [[lo + a, hi + a] for (lo, hi), (a, _) in zip(stats["bbox"], box)]
    values = image[mask] if stats["count"] else np.zeros(0, image.dtype)
    return {"roi": value, "name": names[value], "scope": "slice" if plane else "volume",
            "stats": stats, "histogram": histogram(values, bins=bins)}
