"""Paint operations on an annotation "bits" array, returned as undoable deltas.

Annotations are one unsigned-integer array in canonical order ``(X, Y, Z)``: bit ``b`` set means
the voxel belongs to the ROI with bit ``b``. No operation here mutates that array: each returns a
:class:`Delta` (the tight box of changed voxels with their values before and after) or ``None``
when nothing would change; the caller applies it (``delta.apply(bits)``) and keeps it for undo.

:class:`Rules` carry the project's overlap setting (``one_roi_per_voxel``: painting ROI A clears
the other bits of the voxels it paints; ``multi_label``: bits OR together), the locked ROIs (their
bits never change: a tool that targets one is refused, painting another ROI in one-ROI mode skips
their voxels) and an optional intensity window (only voxels of ``image`` with
``lo <= value <= hi`` change; NaN never does). Regions are given in display orientation
(see :mod:`ril_dash.core.planes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ril_dash.core.planes import (
    display_shape,
    display_to_canonical,
    from_display,
    plane_axes,
    slab_bounds,
)
from ril_dash.core.stats import mask_box
from ril_dash.errors import EditRefused

__all__ = ["OVERLAP_MODES", "Delta", "Rules", "erase_all", "fill_at", "fill_holes", "make_delta",
           "morph", "paint_region", "replace_roi", "roi_box", "roi_mask", "set_slices"]

OVERLAP_MODES = ("one_roi_per_voxel", "multi_label")
Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def _slices(box) -> tuple[slice, slice, slice]:
    return tuple(slice(int(a), int(b)) for a, b in box)


@dataclass(frozen=True)
class Delta:
    """Values of a canonical box of the bits array before and after an edit.

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.zeros((3, 3, 3), np.uint8)
    >>> d = Delta(((1, 2), (0, 2), (2, 3)), np.zeros((1, 2, 1), np.uint8),
    ...           np.ones((1, 2, 1), np.uint8))
    >>> int(d.apply(bits).sum()), d.changed_voxels, int(d.inverse().apply(bits).sum())
    (2, 2, 0)
    """

    box: Box
    before: np.ndarray
    after: np.ndarray

    def apply(self, bits: np.ndarray) -> np.ndarray:
        """Write :attr:`after` into the box of ``bits`` (in place); returns ``bits``."""
        bits[_slices(self.box)] = self.after
        return bits

    def inverse(self) -> Delta:
        """The delta that undoes this one."""
        return Delta(self.box, self.after, self.before)

    @property
    def changed_voxels(self) -> int:
        """Number of voxels whose value differs between before and after."""
        return int(np.count_nonzero(self.before != self.after))

    def changed_slices(self, axis: int) -> list[int]:
        """Indices along canonical ``axis`` of the slices holding a changed voxel.

        Examples
        --------
        >>> import numpy as np
        >>> after = np.zeros((1, 1, 3), np.uint8); after[0, 0, 2] = 1
        >>> Delta(((0, 1), (0, 1), (4, 7)), np.zeros((1, 1, 3), np.uint8), after
        ...       ).changed_slices(2)
        [6]
        """
        others = tuple(a for a in range(3) if a != axis)
        changed = np.any(np.asarray(self.before) != np.asarray(self.after), axis=others)
        return [int(self.box[axis][0] + i) for i in np.flatnonzero(changed)]

    def to_dict(self) -> dict:
        """Plain arrays (for ``np.savez``): ``box`` (3, 2) int64, ``before``, ``after``."""
        return {"box": np.asarray(self.box, dtype=np.int64), "before": self.before,
                "after": self.after}

    @classmethod
    def from_dict(cls, d) -> Delta:
        """Inverse of :meth:`to_dict` (accepts an ``np.load`` result)."""
        box = tuple((int(a), int(b)) for a, b in np.asarray(d["box"]).reshape(3, 2))
        return cls(box, np.asarray(d["before"]), np.asarray(d["after"]))


@dataclass(frozen=True)
class Rules:
    """How edits behave: overlap mode, locked ROI bits (a bit mask), intensity window.

    Examples
    --------
    >>> Rules("multi_label", locked_bits=0b100).locked_bits
    4
    """

    overlap: str
    locked_bits: int = 0
    threshold: tuple[float, float] | None = None

    def __post_init__(self):
        if self.overlap not in OVERLAP_MODES:
            raise ValueError(f"overlap must be one of {OVERLAP_MODES}, got {self.overlap!r}")
        if self.threshold is not None:
            lo, hi = self.threshold
            if not (lo <= hi):
                raise EditRefused(f"The intensity window {lo}..{hi} is empty or not a number; "
                                  "set a lower limit that is not above the upper one.")


def roi_mask(bits: np.ndarray, bit: int) -> np.ndarray:
    """Boolean mask of the voxels that hold ROI ``bit``.

    Examples
    --------
    >>> import numpy as np
    >>> roi_mask(np.array([0, 1, 2, 3], np.uint8), 1).tolist()
    [False, False, True, True]
    """
    return (bits & bits.dtype.type(1 << int(bit))) != 0


def roi_box(bits: np.ndarray, bit: int):
    """Half-open box of ROI ``bit`` in a 3D array without a full-size temporary, or None."""
    one = bits.dtype.type(1 << bit)
    xy = (np.bitwise_or.reduce(bits, axis=2) & one) != 0
    inplane = mask_box(xy)
    if inplane is None:
        return None
    crop = bits[_slices(inplane)[0], _slices(inplane)[1]]
    z = mask_box((np.bitwise_or.reduce(crop, axis=(0, 1)) & one) != 0)
    return [*inplane, *z]


def make_delta(bits: np.ndarray, box, new_values: np.ndarray) -> Delta | None:
    """Delta that writes ``new_values`` into ``box``, trimmed to the voxels that change.

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.zeros((4, 4, 4), np.uint8)
    >>> new = np.zeros((4, 4, 4), np.uint8); new[1, 2, 3] = 5
    >>> make_delta(bits, ((0, 4), (0, 4), (0, 4)), new).box
    ((1, 2), (2, 3), (3, 4))
    >>> make_delta(bits, ((0, 4), (0, 4), (0, 4)), bits) is None
    True
    """
    old = bits[_slices(box)]
    tight = mask_box(old != new_values)
    if tight is None:
        return None
    local = _slices(tight)
    abs_box = tuple((int(b[0]) + a, int(b[0]) + e) for b, (a, e) in zip(box, tight))
    return Delta(abs_box, old[local].copy(), np.ascontiguousarray(new_values[local]))


def _check_bit(bits: np.ndarray, bit: int, rules: Rules, image=None) -> int:
    if image is not None and np.shape(image) != bits.shape:
        raise ValueError(f"image shape {np.shape(image)} differs from annotation shape "
                         f"{bits.shape}")
    bit = int(bit)
    if not 0 <= bit < bits.dtype.itemsize * 8:
        raise ValueError(f"ROI bit {bit} does not fit in a {bits.dtype} annotation array")
    if (int(rules.locked_bits) >> bit) & 1:
        raise EditRefused("This ROI is locked, so it cannot be edited. Unlock it in the ROI "
                          "list (or ask whoever locked it) first.")
    return bit


def _apply(old: np.ndarray, region: np.ndarray, bit: int, rules: Rules, img, erase: bool):
    """New values of a block: ``region`` (broadcastable) painted / erased under the rules."""
    one = old.dtype.type(1 << bit)
    allowed = np.broadcast_to(region, old.shape)
    if rules.threshold is not None and img is not None:
        lo, hi = rules.threshold
        allowed = allowed & (img >= lo) & (img <= hi)
    if erase:
        return np.where(allowed, old & ~one, old)
    if rules.overlap == "multi_label":
        return np.where(allowed, old | one, old)
    full = (1 << old.dtype.itemsize * 8) - 1
    locked_others = old.dtype.type(int(rules.locked_bits) & ~(1 << bit) & full)
    allowed = allowed & ((old & locked_others) == 0)
    return np.where(allowed, one, old)


def _paint_canonical(bits, axis, slab, c2d, bit, rules, image, erase):
    """Paint the in-plane canonical mask ``c2d`` on slices ``slab`` along ``axis``."""
    inplane = mask_box(c2d)
    if inplane is None:
        return None
    others = [a for a in range(3) if a != axis]
    box = [None, None, None]
    box[axis] = slab
    box[others[0]], box[others[1]] = inplane
    key = _slices(box)
    region = np.expand_dims(c2d[_slices(inplane)[0], _slices(inplane)[1]], axis)
    img = None if image is None else np.asarray(image[key])
    new = _apply(bits[key], region, bit, rules, img, erase)
    return make_delta(bits, box, new)


def paint_region(bits, plane, index, region2d, bit, rules, image=None, depth=0, erase=False):
    """Paint (or erase) a display-oriented 2D region on slices ``index ± depth`` of ``plane``.

    Parameters
    ----------
    bits : ndarray (X, Y, Z) of unsigned int
    plane : str
    index : int
    region2d : ndarray of bool, shape ``display_shape(bits.shape, plane)``
    bit : int
        Target ROI bit.
    rules : Rules
    image : ndarray (X, Y, Z), optional
        Intensities for ``rules.threshold``.
    depth : int
        Cross-slice painting: also the ``depth`` slices on each side (clipped at the ends).
    erase : bool
        Clear ``bit`` instead of setting it (other bits are left alone).

    Returns
    -------
    Delta or None

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.zeros((3, 4, 5), np.uint8)
    >>> region = np.zeros((4, 3), bool); region[0, 0] = True
    >>> d = paint_region(bits, "axial", 2, region, 1, Rules("multi_label"), depth=1)
    >>> d.box, d.after.ravel().tolist()
    (((2, 3), (3, 4), (1, 4)), [2, 2, 2])
    """
    bit = _check_bit(bits, bit, rules, image)
    region2d = np.asarray(region2d, dtype=bool)
    if region2d.shape != display_shape(bits.shape, plane):
        raise ValueError(f"region shape {region2d.shape} differs from the {plane} slice shape "
                         f"{display_shape(bits.shape, plane)}")
    slab = slab_bounds(bits.shape, plane, index, depth)
    return _paint_canonical(bits, plane_axes(plane)[0], slab, from_display(region2d), bit,
                            rules, image, erase)


def _canonical_slice(bits, plane, index):
    axis = plane_axes(plane)[0]
    start, _ = slab_bounds(bits.shape, plane, index, 0)
    key = [slice(None)] * 3
    key[axis] = start
    return axis, (start, start + 1), bits[tuple(key)]


def fill_at(bits, plane, index, row, col, bit, rules, image=None):
    """Flood-fill the enclosed non-ROI region 4-connected to display pixel ``(row, col)``.

    Raises
    ------
    EditRefused
        The region reaches the slice border (the outline is not closed), the click is outside
        the slice, or the ROI is locked.

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.zeros((5, 5, 1), np.uint8)
    >>> bits[1:4, 1:4, 0] = 1; bits[2, 2, 0] = 0  # a ring of ROI bit 0
    >>> fill_at(bits, "axial", 0, 2, 2, 0, Rules("multi_label")).box
    ((2, 3), (2, 3), (0, 1))
    """
    bit = _check_bit(bits, bit, rules, image)
    rows, cols = display_shape(bits.shape, plane)
    if not (0 <= int(row) < rows and 0 <= int(col) < cols):
        raise EditRefused(f"The click ({row}, {col}) is outside the {rows} x {cols} slice; "
                          "click inside the image.")
    axis, slab, c2d = _canonical_slice(bits, plane, index)
    roi = roi_mask(c2d, bit)
    xyz = display_to_canonical(bits.shape, plane, slab[0], row, col)
    seed = tuple(int(xyz[a]) for a in range(3) if a != axis)  # in-plane canonical index
    if roi[seed]:
        return None
    labels, _ = ndimage.label(~roi)
    region = labels == labels[seed]
    if region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any():
        raise EditRefused("The clicked area is not enclosed by the ROI: it reaches the edge of "
                          "the slice. Close the outline first, then fill.")
    return _paint_canonical(bits, axis, slab, region, bit, rules, image, False)


def fill_holes(bits, plane, index, bit, rules, image=None):
    """Fill every hole of ROI ``bit`` on one slice (``scipy.ndimage.binary_fill_holes``).

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.zeros((5, 5, 1), np.uint8)
    >>> bits[1:4, 1:4, 0] = 1; bits[2, 2, 0] = 0
    >>> fill_holes(bits, "axial", 0, 0, Rules("one_roi_per_voxel")).changed_voxels
    1
    """
    bit = _check_bit(bits, bit, rules, image)
    axis, slab, c2d = _canonical_slice(bits, plane, index)
    roi = roi_mask(c2d, bit)
    holes = ndimage.binary_fill_holes(roi) & ~roi
    return _paint_canonical(bits, axis, slab, holes, bit, rules, image, False)


def morph(bits, bit, op, rules, image=None, radius=1, plane=None, index=None):
    """Dilate or erode ROI ``bit`` by ``radius`` steps of a cross (on a slice, or in 3D).

    With ``plane`` and ``index`` only that slice changes (2D cross); otherwise the whole volume
    (3D cross, 6-connected). Voxel spacing is ignored. Outside the array counts as background.

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.zeros((5, 5, 5), np.uint8); bits[2, 2, 2] = 1
    >>> morph(bits, 0, "dilate", Rules("multi_label")).changed_voxels
    6
    >>> morph(bits, 0, "dilate", Rules("multi_label"), plane="axial", index=2).changed_voxels
    4
    """
    bit = _check_bit(bits, bit, rules, image)
    if op not in ("dilate", "erode"):
        raise ValueError(f"morph op must be 'dilate' or 'erode', got {op!r}")
    radius = int(radius)
    if radius < 1:
        raise EditRefused(f"The dilate/erode radius must be at least 1 voxel, got {radius}.")
    if (plane is None) != (index is None):
        raise ValueError("give both plane and index for a 2D dilate/erode, or neither")
    if plane is not None:
        axis, slab, c2d = _canonical_slice(bits, plane, index)
        view = np.expand_dims(c2d, axis)
        origin = [0, 0, 0]
        origin[axis] = slab[0]
        struct = np.expand_dims(ndimage.generate_binary_structure(2, 1), axis)
    else:
        view, origin = bits, [0, 0, 0]
        struct = ndimage.generate_binary_structure(3, 1)
    box = roi_box(view, bit)
    if box is None:
        return None
    # crop to the ROI's box grown by the radius (in-plane only for 2D)
    grow = [0 if plane is not None and a == plane_axes(plane)[0] else radius for a in range(3)]
    box = [(max(0, a - g), min(n, b + g)) for (a, b), g, n in zip(box, grow, view.shape)]
    local = roi_mask(view[_slices(box)], bit)
    if op == "dilate":
        changed = ndimage.binary_dilation(local, struct, iterations=radius) & ~local
    else:
        changed = local & ~ndimage.binary_erosion(local, struct, iterations=radius)
    abs_box = [(a + o, b + o) for (a, b), o in zip(box, origin)]
    key = _slices(abs_box)
    img = None if image is None else np.asarray(image[key])
    new = _apply(bits[key], changed, bit, rules, img, op == "erode")
    return make_delta(bits, abs_box, new)


def erase_all(bits, bit, rules):
    """Clear ROI ``bit`` everywhere (other bits are kept).

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.array([[[1, 3, 2]]], np.uint8)
    >>> erase_all(bits, 0, Rules("multi_label")).after.ravel().tolist()
    [0, 2]
    """
    bit = _check_bit(bits, bit, rules)
    box = roi_box(bits, bit)
    if box is None:
        return None
    key = _slices(box)
    return make_delta(bits, box, bits[key] & ~bits.dtype.type(1 << bit))


def replace_roi(bits, bit, mask, rules):
    """``bits`` with ROI ``bit`` set on ``mask`` and nowhere else, as far as the rules allow.

    The whole-volume counterpart of :func:`paint_region` for masks made elsewhere (an import):
    the ROI's old voxels are cleared, then ``mask`` is painted under the overlap rule. With one
    ROI per voxel the ROI replaces the other ROIs on its voxels but skips those of locked ROIs;
    with multi-label the bits OR together. The intensity window is not applied.

    Parameters
    ----------
    bits : ndarray (X, Y, Z) of unsigned int
    bit : int
        Target ROI bit; refused (:class:`EditRefused`) if ``rules`` lock it.
    mask : ndarray of bool, shape of ``bits``
    rules : Rules

    Returns
    -------
    new_bits : ndarray
        A new array (``bits`` is not changed).
    written : ndarray of bool
        The voxels that now hold the ROI (``mask`` less the voxels of locked ROIs).

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.array([[[1, 2, 4, 1]]], np.uint8)          # ROI bits 0, 1, 2, 0
    >>> mask = np.array([[[False, True, True, True]]])
    >>> new, written = replace_roi(bits, 0, mask, Rules("one_roi_per_voxel", locked_bits=0b100))
    >>> new.ravel().tolist(), written.ravel().tolist()       # bit 2 is locked: skipped
    ([0, 1, 4, 1], [False, True, False, True])
    >>> replace_roi(bits, 0, mask, Rules("multi_label"))[0].ravel().tolist()
    [0, 3, 5, 1]
    """
    bit = _check_bit(bits, bit, rules)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != bits.shape:
        raise ValueError(f"mask shape {mask.shape} differs from annotation shape {bits.shape}")
    one = bits.dtype.type(1 << bit)
    new = _apply(bits & ~one, mask, bit, rules, None, False)
    return new, (new & one) != 0


def set_slices(bits, plane, masks, bit, rules, image=None):
    """Make ROI ``bit`` equal a display-oriented mask on each of several slices of ``plane``.

    ``masks`` maps slice index → 2D bool mask; on those slices the ROI is erased outside its
    mask and painted inside it under the rules (intensity window, locks, overlap), in one
    delta; other slices are left as they are (the semi-automatic contouring tools).

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.zeros((3, 3, 4), np.uint8); bits[0, 0, 1] = 1
    >>> new = np.zeros((3, 3), bool); new[1, 1] = True
    >>> d = set_slices(bits, "axial", {1: new, 3: new}, 0, Rules("one_roi_per_voxel"))
    >>> d.box, d.changed_voxels
    (((0, 2), (0, 2), (1, 4)), 3)
    """
    bit = _check_bit(bits, bit, rules, image)
    if not masks:
        return None
    axis = plane_axes(plane)[0]
    indices = sorted(int(i) for i in masks)
    lo = slab_bounds(bits.shape, plane, indices[0], 0)[0]
    hi = slab_bounds(bits.shape, plane, indices[-1], 0)[0] + 1
    box = [(0, n) for n in bits.shape]
    box[axis] = (lo, hi)
    key = _slices(box)
    new = bits[key].copy()
    for index in indices:
        mask = np.asarray(masks[index], dtype=bool)
        if mask.shape != display_shape(bits.shape, plane):
            raise ValueError(f"mask shape {mask.shape} differs from the {plane} slice shape "
                             f"{display_shape(bits.shape, plane)}")
        at = [slice(None)] * 3
        at[axis] = slice(index - lo, index - lo + 1)
        region = np.expand_dims(from_display(mask), axis)
        img = None
        if image is not None:
            img_key = list(key)
            img_key[axis] = slice(index, index + 1)
            img = np.asarray(image[tuple(img_key)])
        block = _apply(new[tuple(at)], ~region, bit, rules, img, True)
        new[tuple(at)] = _apply(block, region, bit, rules, img, False)
    return make_delta(bits, box, new)
