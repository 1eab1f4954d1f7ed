"""Turn volume slices into display images: windowed 8-bit PNGs and the viewer's geometry.

This is the server half of the slice viewer. :func:`viewer_geometry` describes a volume once
(planes, slice counts, pixel aspect, orientation letters, default window); the browser then asks
for single full-resolution slices (:func:`render_slice_png`) and for a stack of low-resolution
thumbnails per plane (:func:`render_thumbnails`) that it keeps for instant scrolling.
"""

from __future__ import annotations

import math

import numpy as np

from ril_dash.core.planes import plane_mapping
from ril_dash.core.png import encode_png
from ril_dash.core.volume import PLANES, Volume
from ril_dash.core.window import CT_PRESETS, apply_window, auto_window, is_ct_like


def check_slice_request(volume: Volume, plane: str, index: int, frame: int) -> None:
    """Raise ``ValueError`` with a readable message if the request is out of range."""
    if plane not in PLANES:
        raise ValueError(f"unknown plane {plane!r}; use one of {', '.join(PLANES)}")
    n = volume.n_slices(plane)
    if not 0 <= index < n:
        raise ValueError(f"slice {index} is outside 0..{n - 1} of the {plane} plane")
    if not 0 <= frame < volume.n_frames:
        raise ValueError(f"frame {frame} is outside 0..{volume.n_frames - 1}")


def render_slice_png(volume: Volume, plane: str, index: int, frame: int,
                     center: float, width: float) -> bytes:
    """Return the PNG of one slice, windowed to 8 bits, in display orientation.

    Examples
    --------
    >>> import numpy as np, nibabel as nib, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "v.nii")
    >>> nib.save(nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4)), path)
    >>> from ril_dash.core.volume import load_volume
    >>> render_slice_png(load_volume(path), "axial", 0, 0, 10, 20)[:4]
    b'\\x89PNG'
    """
    check_slice_request(volume, plane, index, frame)
    return encode_png(apply_window(volume.get_slice(plane, index, frame), center, width))


def render_thumbnails(volume: Volume, plane: str, frame: int, center: float, width: float,
                      max_size: int = 128) -> tuple[int, list[bytes]]:
    """Return ``(factor, pngs)``: every slice of ``plane`` down-sampled by ``factor``."""
    check_slice_request(volume, plane, 0, frame)
    factor, stack = volume.thumbnails(plane, frame, max_size=max_size)
    windowed = apply_window(stack, center, width)
    return factor, [encode_png(windowed[i]) for i in range(windowed.shape[0])]


def _finite(value: float, default: float) -> float:
    return float(value) if math.isfinite(value) else default


def viewer_geometry(volume: Volume, modality: str | None = None) -> dict:
    """Describe ``volume`` for the browser: planes, sizes, aspect, labels, default window.

    ``modality`` is the declared modality (DICOM's code: ``CT``, ``MR``, ``PT``...; any case):
    ``CT`` opens with the CT soft-tissue window, anything else with the automatic window;
    ``None`` or an empty text guesses from the values (:func:`is_ct_like`). The result is plain
    JSON-able data.
    """
    auto = auto_window(volume.data[..., 0])
    auto = [_finite(auto[0], 0.0), max(_finite(auto[1], 1.0), 1e-6)]
    declared = (modality or "").strip().upper()
    ct = declared == "CT" if declared else bool(is_ct_like(volume.data[..., 0]))
    window = list(CT_PRESETS["soft tissue"]) if ct else auto
    planes = {}
    for plane in PLANES:
        rows, cols = volume.slice_shape(plane)
        row_mm, col_mm = volume.pixel_spacing(plane)
        planes[plane] = {
            "n": int(volume.n_slices(plane)),
            "rows": int(rows),
            "cols": int(cols),
            "row_mm": float(row_mm),
            "col_mm": float(col_mm),
            "labels": volume.screen_labels(plane),
        }
    return {
        "planes": planes,
        "default_plane": volume.default_plane(),
        "n_frames": int(volume.n_frames),
        "window": window,
        "auto_window": auto,
        "is_ct": ct,
        "presets": {name: list(cw) for name, cw in CT_PRESETS.items()},
        "dtype": str(volume.dtype),
        "axcodes": "".join(volume.orig_axcodes),
        "shape": [int(s) for s in volume.data.shape[:3]],
        "mapping": plane_mapping(),
        "spacing": [float(s) for s in volume.spacing],
        "warnings": list(volume.warnings),
    }


def probe(volume: Volume, plane: str, index: int, row: int, col: int, frame: int) -> dict:
    """Voxel indices (file order), world position (mm) and value under the cursor."""
    check_slice_request(volume, plane, index, frame)
    rows, cols = volume.slice_shape(plane)
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"({row}, {col}) is outside the {rows}×{cols} slice")
    value = volume.value_at(plane, index, row, col, frame)
    value = float(value) if np.isfinite(value) else str(value)
    return {
        "voxel": [int(v) for v in volume.voxel_index(plane, index, row, col)],
        "world": [round(float(v), 2) for v in volume.world_mm(plane, index, row, col)],
        "value": value,
    }
