"""Patch-wise (``dimension: 3``) model inputs and the blending of their outputs.

Axis order: a patch is ``(depth, rows, cols, channels)`` in the display orientation of
``input.plane`` (depth = the plane's slice index, i.e. ``display_stack`` order), with the
manifest's ``transpose`` then ``flip`` applied to rows and cols as for 2D bundles
(:func:`ril_dash.models.preprocess.orient`); ``input.patch`` is ``[depth, rows, cols]`` in that
order. Channels are the frames of ``input.frames`` (``input.slices`` must be 1) and the volume
keeps its own voxel grid (``input.resample`` must be ``none``).

Tiling: along each axis, patches start every ``max(1, floor(size * (1 - overlap)))`` voxels;
the last patch is shifted inward so that it ends at the edge (every voxel is covered, no patch
reads outside). A volume smaller than the patch is centre-padded with the normalised value of
its minimum, and the padding is dropped again by :func:`blend_patches`.

Blending: each output voxel is the weighted mean of the patches covering it, with weight 1
(``mean``) or a Gaussian centred on the patch (``gaussian``, sigma = size / 8 per axis, floored
at 1e-3 of its peak so that corners still count).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ril_dash.core.planes import display_stack, plane_axes
from ril_dash.errors import PluginError
from ril_dash.models.normalize import fill_nonfinite, normalize
from ril_dash.models.preprocess import (
    check_batch,
    check_frames,
    fit_offsets,
    frame_stats,
    orient,
    unorient,
)

__all__ = ["PatchPlan", "blend_patches", "patch_starts", "patch_weights", "prepare_patches"]


@dataclass(frozen=True)
class PatchPlan:
    """Where each patch came from and how to put the outputs back (see the module docstring).

    ``oriented_shape`` is the (depth, rows, cols) volume after orientation; ``padded_shape`` the
    tiled one; ``offsets`` per axis ``(src_start, dst_start, length)`` of that padding.
    """

    label: str
    plane: str
    canonical_shape: tuple[int, int, int]
    transpose: bool
    flip: tuple[str, ...]
    oriented_shape: tuple[int, int, int]
    padded_shape: tuple[int, int, int]
    offsets: tuple[tuple[int, int, int], ...]
    patch: tuple[int, int, int]
    starts: tuple[tuple[int, int, int], ...]
    blend: str


def patch_starts(length: int, size: int, overlap: float) -> list[int]:
    """Start offsets of patches of ``size`` tiling ``length`` (>= size) voxels.

    Examples
    --------
    >>> patch_starts(10, 4, 0.5), patch_starts(4, 4, 0.5), patch_starts(9, 4, 0.0)
    ([0, 2, 4, 6], [0], [0, 4, 5])
    """
    step = max(1, int(np.floor(size * (1.0 - float(overlap)))))
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def patch_weights(patch, blend: str) -> np.ndarray:
    """float32 weights of one patch: ones (``mean``) or a separable Gaussian (``gaussian``)."""
    if blend == "mean":
        return np.ones(tuple(patch), np.float32)
    if blend != "gaussian":
        raise ValueError(f"input.blend must be gaussian or mean, got {blend!r}")
    weights = np.ones((), np.float64)
    for n in patch:
        x = np.arange(n) - (n - 1) / 2.0
        g = np.exp(-0.5 * (x / (n / 8.0)) ** 2)
        weights = np.multiply.outer(weights, g)
    weights /= weights.max()
    return np.maximum(weights, 1e-3).astype(np.float32)


def _check_spec(manifest) -> None:
    inp = manifest.input
    problems = []
    if not inp.patch or len(inp.patch) != 3:
        problems.append("input.patch must be [depth, rows, cols]")
    if inp.resample != "none":
        problems.append("input.resample must be none (3D bundles read the volume's own grid)")
    if int(inp.slices) != 1:
        problems.append("input.slices must be 1 (3D patches already hold the adjacent slices)")
    if not 0 <= float(inp.overlap) < 1:
        problems.append("input.overlap must be at least 0 and below 1")
    if problems:
        raise PluginError(f"{manifest.ref} is a dimension 3 bundle, but " + "; ".join(problems)
                          + ". Fix its plugin.yaml.")


def prepare_patches(volume, manifest, stats=None):
    """All patches of a series: float32 ``(n, D, H, W, C)`` and the :class:`PatchPlan`.

    Raises
    ------
    PluginError
        The manifest's input section does not describe patches.
    ModelRunError
        The series lacks a frame the bundle reads.
    """
    _check_spec(manifest)
    inp = manifest.input
    check_frames(volume, manifest)
    frames = list(inp.frames) if inp.frames else [0]
    stats = frame_stats(volume, manifest) if stats is None else stats
    channels, pads = [], []
    for f in frames:
        raw = fill_nonfinite(display_stack(volume.data[..., int(f)], inp.plane))
        normed = normalize(raw, manifest.normalization, stats.get(int(f)))
        pads.append(normed.flat[int(raw.argmin())])
        channels.append(normed)
    arr = orient(np.stack(channels, axis=-1), bool(inp.transpose), tuple(inp.flip))
    patch = tuple(int(p) for p in inp.patch)
    padded = tuple(max(n, p) for n, p in zip(arr.shape[:3], patch))
    offsets = tuple(fit_offsets(n, m) for n, m in zip(arr.shape[:3], padded))
    grid = np.empty((*padded, len(frames)), np.float32)
    grid[...] = np.asarray(pads, np.float32)
    grid[tuple(slice(d, d + n) for _, d, n in offsets)] = arr
    starts = tuple(itertools.product(*(patch_starts(n, p, inp.overlap)
                                       for n, p in zip(padded, patch))))
    out = np.empty((len(starts), *patch, len(frames)), np.float32)
    for i, (d, r, c) in enumerate(starts):
        out[i] = grid[d:d + patch[0], r:r + patch[1], c:c + patch[2]]
    plan = PatchPlan(manifest.ref, inp.plane, tuple(int(n) for n in volume.data.shape[:3]),
                     bool(inp.transpose), tuple(inp.flip), tuple(arr.shape[:3]), padded,
                     offsets, patch, starts, inp.blend)
    return out, plan


def _to_canonical(stack: np.ndarray, plane: str) -> np.ndarray:
    """Undo ``display_stack`` on a ``(slice, row, col, K)`` array → canonical ``(X, Y, Z, K)``."""
    s, r, c = plane_axes(plane)
    arr = np.transpose(stack, [*np.argsort((s, r, c)), 3])
    return np.flip(arr, (r, c))


def blend_patches(outputs, plan: PatchPlan) -> np.ndarray:
    """Blend patch outputs ``(n, D, H, W, K)`` into a canonical float32 ``(X, Y, Z, K)`` volume.

    Raises
    ------
    ModelRunError
        ``outputs`` does not have one ``patch``-sized block per planned patch.
    """
    outputs = check_batch(outputs, plan.label, len(plan.starts), plan.patch, "patches",
                          "input.patch")
    k = outputs.shape[-1]
    weights = patch_weights(plan.patch, plan.blend)
    total = np.zeros((*plan.padded_shape, k), np.float32)
    wsum = np.zeros(plan.padded_shape, np.float32)
    d0, r0, c0 = plan.patch
    for out, (d, r, c) in zip(outputs, plan.starts):
        total[d:d + d0, r:r + r0, c:c + c0] += out * weights[..., None]
        wsum[d:d + d0, r:r + r0, c:c + c0] += weights
    blended = total / wsum[..., None]
    blended = blended[tuple(slice(d, d + m) for _, d, m in plan.offsets)]
    display = unorient(blended, plan.transpose, plan.flip)
    return np.ascontiguousarray(_to_canonical(display, plan.plane), dtype=np.float32)
