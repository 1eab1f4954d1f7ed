"""Model input geometry for slice-wise (2D) bundles, and its exact inverse.

:func:`prepare_slices` turns display slices of a series into the batch a bundle's model takes,
``(n, H, W, C)`` float32 channels-last; :func:`restore_slices` puts the model's outputs
``(n, H, W, K)`` back onto the display grid ``(n, rows, cols, K)``. The steps, per slice:

1. **channels**: for every frame of ``input.frames`` (``null`` = frame 0), the ``input.slices``
   display slices centred on the slice (2.5D; at the ends of the series the edge slice repeats),
   frame-major: channel ``f * slices + j`` is frame ``frames[f]``, slice ``index - slices//2 + j``.
   Slices are those of ``display_stack(volume.data[..., frame], input.plane)``;
2. **normalisation** of every channel image (:mod:`ril_dash.models.normalize`);
3. **orientation**: ``transpose`` (rows ↔ cols) first, then ``flip`` (``rows``: upside down,
   ``cols``: left ↔ right) of the transposed image. Orientation comes before resampling so that
   ``size`` and ``spacing`` are the model's own rows and columns;
4. **resample**: ``size`` zooms straight to ``size`` (aspect not kept); ``spacing`` zooms to
   ``spacing`` mm per pixel (rows, cols of the oriented image); ``none`` keeps the pixels. Zooms use
   ``scipy.ndimage.zoom(order=1, mode="nearest", grid_mode=True)``;
5. **centre crop/pad** to ``size``; a padded pixel takes the normalised value of its channel
   image's minimum (the value the model sees for "nothing there").

The inverse undoes 5 → 3 with the same zoom call and the inverse factors: pixels the crop cut
away get ``fill`` (default 0: no ROI), and the result has exactly the display shape.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ril_dash.core.planes import display_stack
from ril_dash.errors import ModelRunError
from ril_dash.models.normalize import fill_nonfinite, normalize, volume_stats

__all__ = ["SliceGeometry", "check_batch", "check_frames", "expected_input_shape", "fit_offsets",
           "frame_stats", "input_channels", "normalize", "orient", "prepare_slices",
           "restore_slices", "unorient", "zoom_to"]


@dataclass(frozen=True)
class SliceGeometry:
    """Everything :func:`restore_slices` needs to undo :func:`prepare_slices`.

    ``offsets`` holds, per axis (rows, cols), ``(src_start, dst_start, length)``: the block
    ``resampled[src:src+length]`` became ``model_input[dst:dst+length]``.
    """

    label: str
    plane: str
    indices: tuple[int, ...]
    display_shape: tuple[int, int]
    transpose: bool
    flip: tuple[str, ...]
    oriented_shape: tuple[int, int]
    resampled_shape: tuple[int, int]
    size: tuple[int, int]
    offsets: tuple[tuple[int, int, int], tuple[int, int, int]]


def input_channels(inp) -> list[tuple[int, int]]:
    """``(frame, slice offset)`` of every input channel, frame-major.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> input_channels(NS(frames=[0, 2], slices=3))
    [(0, -1), (0, 0), (0, 1), (2, -1), (2, 0), (2, 1)]
    """
    half = int(inp.slices) // 2
    frames = list(inp.frames) if inp.frames else [0]
    return [(int(f), j) for f in frames for j in range(-half, half + 1)]


def expected_input_shape(manifest) -> tuple[int, ...]:
    """The model input shape without the batch axis: ``(H, W, C)``, or ``(D, H, W, C)`` for
    ``dimension: 3`` (whose channels are the frames only)."""
    inp = manifest.input
    if int(manifest.dimension) == 3:
        frames = list(inp.frames) if inp.frames else [0]
        return (*(int(v) for v in inp.patch), len(frames))
    return (int(inp.size[0]), int(inp.size[1]), len(input_channels(inp)))


def orient(arr: np.ndarray, transpose: bool, flip) -> np.ndarray:
    """Transpose (rows ↔ cols, axes 1 and 2), then flip ``rows`` (axis 1) / ``cols`` (axis 2)."""
    if transpose:
        arr = np.swapaxes(arr, 1, 2)
    for name in flip:
        arr = np.flip(arr, 1 if name == "rows" else 2)
    return arr


def unorient(arr: np.ndarray, transpose: bool, flip) -> np.ndarray:
    """Undo :func:`orient`."""
    for name in flip:
        arr = np.flip(arr, 1 if name == "rows" else 2)
    return np.swapaxes(arr, 1, 2) if transpose else arr


def fit_offsets(n_in: int, n_out: int) -> tuple[int, int, int]:
    """``(src_start, dst_start, length)`` of a centre crop (``n_in > n_out``) or pad.

    Examples
    --------
    >>> fit_offsets(7, 4), fit_offsets(4, 7), fit_offsets(5, 5)
    ((1, 0, 4), (0, 1, 4), (0, 0, 5))
    """
    if n_in >= n_out:
        return (n_in - n_out) // 2, 0, n_out
    return 0, (n_out - n_in) // 2, n_in


def _place(arr, src_offsets, dst_offsets, out_shape, fill):
    """Copy the block of ``arr`` (n, r, c, ...) at ``src_offsets`` into a ``fill`` array."""
    out = np.empty((arr.shape[0], *out_shape, *arr.shape[3:]), np.float32)
    out[...] = fill
    (rs, rl), (cs, cl) = src_offsets
    (rd, _), (cd, _) = dst_offsets
    out[:, rd:rd + rl, cd:cd + cl] = arr[:, rs:rs + rl, cs:cs + cl]
    return out


@functools.lru_cache(maxsize=64)
def linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1D linear interpolation from ``n_in`` to ``n_out`` samples as ``(low, high, frac)``:
    output ``o`` is ``x[low] + (x[high] - x[low]) * frac``, at the coordinates of
    ``scipy.ndimage.zoom(order=1, mode="nearest", grid_mode=True)`` (input position
    ``(o + 0.5) * n_in / n_out - 0.5``, clamped to the edges, which repeat).

    Examples
    --------
    >>> low, high, frac = linear_taps(2, 4)
    >>> low.tolist(), high.tolist(), frac.tolist()
    ([0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.0])
    """
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    low = np.floor(pos).astype(np.intp)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (pos - low).astype(np.float32)


def _zoom_axis(arr: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    low, high, frac = linear_taps(arr.shape[axis], n_out)
    shape = [1] * arr.ndim
    shape[axis] = n_out
    out = np.take(arr, low, axis=axis)
    out += (np.take(arr, high, axis=axis) - out) * frac.reshape(shape)
    return out


def zoom_to(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zoom axes 1, 2 of ``arr`` (n, r, c[, C]) to exactly ``shape``: linear interpolation with
    edges repeating, the values of ``scipy.ndimage.zoom(order=1, mode="nearest",
    grid_mode=True)`` to float32 rounding. Done as two gathers and blends, one per axis: many
    times faster than ``zoom`` on the stacks of slices a model run restores, and without the
    BLAS threads a matrix product would start beside the model worker's."""
    arr = np.asarray(arr, np.float32)
    if arr.shape[1:3] == tuple(shape):
        return arr
    return _zoom_axis(_zoom_axis(arr, int(shape[0]), 1), int(shape[1]), 2)


def frame_stats(volume, manifest) -> dict[int, tuple[float, float] | None]:
    """Whole-volume normalisation statistics per input frame (``scope: volume``), computed once
    per series and passed to :func:`prepare_slices` for every chunk of a run."""
    frames = list(manifest.input.frames) if manifest.input.frames else [0]
    return {int(f): volume_stats(volume.data[..., int(f)], manifest.normalization)
            for f in frames}


def check_batch(outputs, label: str, n: int, spatial, items: str, key: str) -> np.ndarray:
    """``outputs`` as an array when it is ``(n, *spatial, K)``; else :class:`ModelRunError`
    naming the bundle ``label``, the batch of ``n`` ``items`` and the manifest ``key`` to check.
    """
    outputs = np.asarray(outputs)
    spatial = tuple(int(v) for v in spatial)
    if (outputs.ndim != len(spatial) + 2 or outputs.shape[0] != n
            or tuple(outputs.shape[1:-1]) != spatial):
        raise ModelRunError(f"{label} returned outputs of shape {tuple(outputs.shape)}, but a "
                            f"batch of {n} {items} needs ({n}, {', '.join(map(str, spatial))}, "
                            f"channels); check {key} in its plugin.yaml against the model.")
    return outputs


def check_frames(volume, manifest) -> None:
    """:class:`ModelRunError` when the series lacks a frame that the bundle reads."""
    frames = list(manifest.input.frames) if manifest.input.frames else [0]
    bad = [f for f in frames if not 0 <= int(f) < volume.n_frames]
    if bad:
        raise ModelRunError(f"{manifest.ref} reads frames {frames} as its channels, but this "
                            f"series has {volume.n_frames} frame(s); run it on a series with "
                            "those frames, or fix input.frames in its plugin.yaml.")


def _resampled_shape(volume, manifest, oriented: tuple[int, int]) -> tuple[int, int]:
    inp = manifest.input
    if inp.resample == "size":
        return int(inp.size[0]), int(inp.size[1])
    if inp.resample == "spacing":
        row_mm, col_mm = volume.pixel_spacing(inp.plane)
        if inp.transpose:
            row_mm, col_mm = col_mm, row_mm
        t_row, t_col = (float(v) for v in inp.spacing)
        return (max(1, int(round(oriented[0] * row_mm / t_row))),
                max(1, int(round(oriented[1] * col_mm / t_col))))
    if inp.resample == "none":
        return oriented
    raise ValueError(f"input.resample must be size, spacing or none, got {inp.resample!r}")


def _channel_images(volume, manifest, indices, stats):
    """Normalised channel images (n, rows, cols, C) and each image's pad value (n, 1, 1, C)."""
    inp = manifest.input
    n_slices = volume.n_slices(inp.plane)
    images, pads = [], []
    for frame, offset in input_channels(inp):
        stack = display_stack(volume.data[..., frame], inp.plane)
        raw = fill_nonfinite(stack[np.clip(indices + offset, 0, n_slices - 1)])
        normed = normalize(raw, manifest.normalization, stats.get(frame))
        flat_raw = raw.reshape(len(indices), -1)
        lowest = flat_raw.argmin(axis=1)
        pads.append(normed.reshape(len(indices), -1)[np.arange(len(indices)), lowest])
        images.append(normed)
    return np.stack(images, axis=-1), np.stack(pads, axis=-1)[:, None, None, :]


def prepare_slices(volume, manifest, indices, stats=None):
    """The model batch of display slices ``indices`` of ``manifest.input.plane``.

    Parameters
    ----------
    volume : ril_dash.core.volume.Volume
    manifest : Manifest
        Uses ``input``, ``normalization`` and ``ref`` (for messages).
    indices : sequence of int
        Display slice indices (along the plane's canonical axis), at least one.
    stats : dict, optional
        :func:`frame_stats` of the series (computed here when omitted).

    Returns
    -------
    batch : ndarray float32 (n, H, W, C)
    geometry : SliceGeometry

    Raises
    ------
    ModelRunError
        The series lacks a frame the bundle reads.
    """
    inp = manifest.input
    indices = np.asarray(list(indices), dtype=np.intp).reshape(-1)
    n_slices = volume.n_slices(inp.plane)
    if indices.size == 0 or indices.min() < 0 or indices.max() >= n_slices:
        raise ValueError(f"slice indices must be 0..{n_slices - 1} of the {inp.plane} plane, "
                         f"got {indices.tolist()}")
    check_frames(volume, manifest)
    stats = frame_stats(volume, manifest) if stats is None else stats
    images, pads = _channel_images(volume, manifest, indices, stats)
    display = images.shape[1:3]
    images = orient(images, bool(inp.transpose), tuple(inp.flip))
    oriented = images.shape[1:3]
    resampled = _resampled_shape(volume, manifest, oriented)
    images = zoom_to(images, resampled)
    size = (int(inp.size[0]), int(inp.size[1]))
    offsets = tuple(fit_offsets(a, b) for a, b in zip(resampled, size))
    batch = _place(images, [(s, n) for s, _, n in offsets], [(d, n) for _, d, n in offsets],
                   size, pads)
    geometry = SliceGeometry(manifest.ref, inp.plane, tuple(int(i) for i in indices),
                             tuple(display), bool(inp.transpose), tuple(inp.flip),
                             tuple(oriented), tuple(resampled), size, offsets)
    return batch, geometry


def restore_slices(outputs, geometry: SliceGeometry, fill=0.0) -> np.ndarray:
    """Model outputs ``(n, H, W, K)`` back onto the display grid: float32 ``(n, rows, cols, K)``.

    ``fill`` (a scalar or one value per channel) goes where the centre crop cut the image away.

    Raises
    ------
    ModelRunError
        ``outputs`` is not ``(n, H, W, K)`` for this batch.
    """
    outputs = check_batch(outputs, geometry.label, len(geometry.indices), geometry.size,
                          "slices", "input.size")
    offsets = geometry.offsets
    back = _place(outputs, [(d, k) for _, d, k in offsets], [(s, k) for s, _, k in offsets],
                  geometry.resampled_shape, fill)
    back = zoom_to(back, geometry.oriented_shape)
    back = unorient(back, geometry.transpose, geometry.flip)
    return np.ascontiguousarray(back, dtype=np.float32)
