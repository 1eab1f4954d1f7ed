"""Merge a model's draft masks into a series' annotation bits as one undoable delta.

A draft is ``{roi mask value: bool (n, rows, cols)}`` on display slices ``indices`` of a plane
(the slices the model covered). :func:`merge_draft` writes it under one of three modes:

- ``empty_slices``: on each covered slice where that ROI holds no voxel (before the merge), the
  ROI becomes the draft; slices where it already has voxels are left alone;
- ``replace``: on each covered slice the ROI becomes exactly the draft (its other voxels there
  are cleared, even when the draft is empty);
- ``union``: the draft is added to the ROI on the covered slices.

Every write goes through :func:`ril_dash.core.paint.paint_region`, slice by slice, as a brush
stroke of that region would: locked ROIs never change (a locked target ROI is skipped, see
:func:`locked_targets`; painting another ROI in one-ROI-per-voxel mode skips voxels of locked
ROIs), and under one ROI per voxel a painted voxel loses its other ROIs. ROIs are written in
the order of ``masks``, so where two drafted ROIs overlap under one ROI per voxel the later one
wins. The intensity window of ``rules`` is a brush setting and does not apply to drafts (no
image is given). Nothing outside the covered slices changes; slices not covered are untouched.
The result is a single :class:`~ril_dash.core.paint.Delta` over all ROIs and slices, so the
draft becomes one annotation version.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ril_dash.core.paint import Delta, Rules, make_delta, paint_region, roi_mask
from ril_dash.core.planes import display_shape, display_view, plane_axes

__all__ = ["MERGE_MODES", "locked_targets", "merge_draft"]

MERGE_MODES = ("empty_slices", "replace", "union")


def locked_targets(slots: Mapping[int, int], values, rules: Rules) -> list[int]:
    """The mask values among ``values`` whose ROI ``rules`` lock (a draft skips them).

    Examples
    --------
    >>> locked_targets({1: 0, 2: 1}, [1, 2], Rules("multi_label", locked_bits=0b10))
    [2]
    """
    return [int(v) for v in values if (int(rules.locked_bits) >> int(slots[int(v)])) & 1]


def _check(bits, slots, plane, indices, masks, mode) -> np.ndarray:
    if mode not in MERGE_MODES:
        raise ValueError(f"merge mode must be one of {', '.join(MERGE_MODES)}, got {mode!r}")
    indices = np.asarray(list(indices), dtype=np.intp).reshape(-1)
    n = int(bits.shape[plane_axes(plane)[0]])
    if indices.size == 0 or indices.min() < 0 or indices.max() >= n:
        raise ValueError(f"draft slices must be 0..{n - 1} of the {plane} plane, got "
                         f"{indices.tolist()}")
    if len(set(indices.tolist())) != indices.size:
        raise ValueError(f"draft slices must not repeat, got {indices.tolist()}")
    want = (indices.size, *display_shape(bits.shape, plane))
    for value, mask in masks.items():
        if int(value) not in slots:
            raise ValueError(f"ROI value {value} has no slot; extend the slots with "
                             "mask_slots.with_slots and widen the bits first")
        if np.shape(mask) != want:
            raise ValueError(f"draft mask of ROI value {value} has shape {np.shape(mask)}, "
                             f"expected {want} (slices, rows, cols)")
    return indices


def merge_draft(bits: np.ndarray, slots: Mapping[int, int], plane: str, indices,
                masks: Mapping[int, np.ndarray], mode: str, rules: Rules) -> Delta | None:
    """One delta writing the draft ``masks`` on slices ``indices`` under ``mode`` and ``rules``.

    Parameters
    ----------
    bits : ndarray (X, Y, Z) of unsigned int
        The current annotation bits (not changed), wide enough for ``slots``.
    slots : mapping mask value → bit
        Must hold every value of ``masks``.
    plane : str
    indices : sequence of int
        The covered display slices, one per mask row, no repeats.
    masks : mapping mask value → bool (n, rows, cols) in display orientation
    mode : {'empty_slices', 'replace', 'union'}
    rules : Rules

    Returns
    -------
    Delta or None
        ``None`` when nothing would change.

    Examples
    --------
    >>> bits = np.zeros((2, 2, 3), np.uint8); bits[:, :, 0] = 0b10   # ROI 2 on slice 0
    >>> draft = {1: np.ones((2, 2, 2), bool)}                       # ROI 1 on slices 0, 1
    >>> d = merge_draft(bits, {1: 0, 2: 1}, "axial", [0, 1], draft, "union",
    ...                 Rules("one_roi_per_voxel", locked_bits=0b10))
    >>> d.apply(bits)[0, 0].tolist()                                # ROI 2 is locked
    [2, 1, 0]
    """
    indices = _check(bits, slots, plane, indices, masks, mode)
    axis = plane_axes(plane)[0]
    lo, hi = int(indices.min()), int(indices.max()) + 1
    key = [slice(None)] * 3
    key[axis] = slice(lo, hi)
    work = bits[tuple(key)].copy()
    skipped = set(locked_targets(slots, masks, rules))
    for value, mask in masks.items():
        if int(value) in skipped:
            continue
        bit = int(slots[int(value)])
        mask = np.asarray(mask, dtype=bool)
        for row, index in enumerate(indices.tolist()):
            if mode == "empty_slices" and roi_mask(display_view(bits, plane, index), bit).any():
                continue
            local = index - lo
            if mode == "replace":
                _paint(work, plane, local, ~mask[row], bit, rules, erase=True)
            _paint(work, plane, local, mask[row], bit, rules, erase=False)
    box = [(0, int(n)) for n in bits.shape]
    box[axis] = (lo, hi)
    return make_delta(bits, tuple(box), work)


def _paint(work, plane, index, region, bit, rules, erase):
    delta = paint_region(work, plane, index, region, bit, rules, erase=erase)
    if delta is not None:
        delta.apply(work)
