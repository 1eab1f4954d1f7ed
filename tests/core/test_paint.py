"""Paint ops: exact canonical voxels in every plane, overlap rules, locks, thresholds, undo."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.paint import (
    Delta,
    Rules,
    erase_all,
    fill_at,
    fill_holes,
    make_delta,
    morph,
    paint_region,
    replace_roi,
    roi_mask,
)
from ril_dash.core.planes import (
    PLANE_AXIS,
    PLANES,
    display_shape,
    display_to_canonical,
    display_view,
)
from ril_dash.errors import EditRefused

SHAPE = (6, 7, 8)
ONE = Rules("one_roi_per_voxel")
MULTI = Rules("multi_label")


def _bits():
    return np.zeros(SHAPE, np.uint8)


def _voxels(plane, index, pixels):
    """Canonical (x, y, z) set of display pixels [(row, col), ...] on slice ``index``."""
    rows, cols = np.array(pixels).T
    x, y, z = display_to_canonical(SHAPE, plane, index, rows, cols)
    return set(zip(x.tolist(), y.tolist(), z.tolist()))


def _set(mask):
    return set(map(tuple, np.argwhere(mask).tolist()))


def _region(plane, pixels):
    r = np.zeros(display_shape(SHAPE, plane), bool)
    for p in pixels:
        r[p] = True
    return r


def _apply(bits, delta):
    out = bits.copy()
    if delta is not None:
        delta.apply(out)
    return out


PIXELS = [(0, 0), (1, 2), (2, 2), (3, 1)]


@pytest.mark.parametrize("plane", PLANES)
def test_paint_region_exact_voxels(plane):
    bits = _bits()
    d = paint_region(bits, plane, 2, _region(plane, PIXELS), 1, ONE)
    assert not bits.any()  # ops never mutate
    out = _apply(bits, d)
    assert _set(out == 2) == _voxels(plane, 2, PIXELS)
    assert _set(out != 0) == _set(out == 2)
    assert d.changed_voxels == len(PIXELS)
    np.testing.assert_array_equal(display_view(out, plane, 2) == 2, _region(plane, PIXELS))


@pytest.mark.parametrize("plane", PLANES)
def test_cross_slice_depth_clipped(plane):
    bits = _bits()
    n = SHAPE[PLANE_AXIS[plane]]
    out = _apply(bits, paint_region(bits, plane, 1, _region(plane, PIXELS), 0, MULTI, depth=2))
    want = set().union(*(_voxels(plane, i, PIXELS) for i in range(4)))
    assert _set(out == 1) == want
    out = _apply(bits, paint_region(bits, plane, n - 1, _region(plane, PIXELS), 0, MULTI,
                                    depth=1))
    assert _set(out == 1) == _voxels(plane, n - 2, PIXELS) | _voxels(plane, n - 1, PIXELS)


def test_overlap_modes_and_erase():
    bits = _bits()
    bits[...] = 0b01  # everything is ROI 0
    region = _region("axial", PIXELS)
    one = _apply(bits, paint_region(bits, "axial", 3, region, 1, ONE))
    assert _set(one == 0b10) == _voxels("axial", 3, PIXELS)
    assert (one[one != 0b10] == 0b01).all()
    multi = _apply(bits, paint_region(bits, "axial", 3, region, 1, MULTI))
    assert _set(multi == 0b11) == _voxels("axial", 3, PIXELS)
    erased = _apply(multi, paint_region(multi, "axial", 3, region, 1, MULTI, erase=True))
    np.testing.assert_array_equal(erased, bits)  # erase removes only that bit
    erased0 = _apply(multi, paint_region(multi, "axial", 3, region, 0, ONE, erase=True))
    assert _set(erased0 == 0b10) == _voxels("axial", 3, PIXELS)


def test_locks():
    bits = _bits()
    bits[:, :, 3] = 0b100  # locked ROI 2 on slice 3
    rules = Rules("one_roi_per_voxel", locked_bits=0b100)
    region = np.ones(display_shape(SHAPE, "coronal"), bool)
    out = _apply(bits, paint_region(bits, "coronal", 2, region, 0, rules))
    assert (out[:, 2, 3] == 0b100).all()  # locked voxels untouched
    assert (out[:, 2, :3] == 1).all() and (out[:, 2, 4:] == 1).all()
    for call in (lambda: paint_region(bits, "coronal", 2, region, 2, rules),
                 lambda: paint_region(bits, "coronal", 2, region, 2, rules, erase=True),
                 lambda: morph(bits, 2, "dilate", rules),
                 lambda: erase_all(bits, 2, rules),
                 lambda: fill_holes(bits, "axial", 3, 2, rules),
                 lambda: fill_at(bits, "axial", 3, 0, 0, 2, rules)):
        with pytest.raises(EditRefused, match="locked"):
            call()
    multi = Rules("multi_label", locked_bits=0b100)
    out = _apply(bits, paint_region(bits, "coronal", 2, region, 0, multi))
    assert (out[:, 2, 3] == 0b101).all()


def test_threshold_limits_and_nan():
    bits = _bits()
    image = np.arange(np.prod(SHAPE), dtype=float).reshape(SHAPE)
    image[0, 0, 0] = np.nan
    lo, hi = image[2, 3, 4], image[4, 3, 4]
    rules = Rules("multi_label", threshold=(lo, hi))
    region = np.ones(display_shape(SHAPE, "axial"), bool)
    out = _apply(bits, paint_region(bits, "axial", 4, region, 0, rules, image=image, depth=10))
    want = (image >= lo) & (image <= hi)
    np.testing.assert_array_equal(out == 1, want)
    assert out[2, 3, 4] == 1 and out[4, 3, 4] == 1  # limits inclusive
    rules = Rules("multi_label", threshold=(-1e9, 1e9))
    out = _apply(bits, paint_region(bits, "axial", 0, region, 0, rules, image=image))
    assert out[0, 0, 0] == 0 and out[1, 0, 0] == 1  # NaN never painted
    with pytest.raises(EditRefused):
        Rules("multi_label", threshold=(5, 1))


@pytest.mark.parametrize("plane", PLANES)
def test_fill_enclosed_and_not(plane):
    bits = _bits()
    ring = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2), (3, 3)]
    bits = _apply(bits, paint_region(bits, plane, 2, _region(plane, ring), 0, ONE))
    d = fill_at(bits, plane, 2, 2, 2, 0, ONE)
    assert _set(_apply(bits, d) == 1) == _voxels(plane, 2, ring + [(2, 2)])
    assert d.changed_voxels == 1
    assert fill_at(bits, plane, 2, 1, 1, 0, ONE) is None  # clicked inside the ROI
    with pytest.raises(EditRefused, match="not enclosed"):
        fill_at(bits, plane, 2, 0, 0, 0, ONE)
    with pytest.raises(EditRefused, match="outside"):
        fill_at(bits, plane, 2, 99, 0, 0, ONE)
    # fill only on that slice; other ROI inside the ring is overwritten in one-ROI mode
    bits2 = bits.copy()
    (x,), (y,), (z,) = display_to_canonical(SHAPE, plane, 2, [2], [2])
    bits2[x, y, z] = 0b10
    out = _apply(bits2, fill_at(bits2, plane, 2, 2, 2, 0, ONE))
    assert out[x, y, z] == 1  # a non-ROI-0 voxel is filled; one ROI per voxel clears ROI 1
    out = _apply(bits2, fill_at(bits2, plane, 2, 2, 2, 0, MULTI))
    assert out[x, y, z] == 0b11


@pytest.mark.parametrize("plane", PLANES)
def test_fill_holes(plane):
    bits = _bits()
    ring = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2), (3, 3)]
    bits = _apply(bits, paint_region(bits, plane, 1, _region(plane, ring), 3, ONE))
    bits = _apply(bits, paint_region(bits, plane, 2, _region(plane, ring[:5]), 3, ONE))
    d = fill_holes(bits, plane, 1, 3, ONE)
    assert _set(_apply(bits, d) == 8) == (_voxels(plane, 1, ring + [(2, 2)])
                                          | _voxels(plane, 2, ring[:5]))
    assert fill_holes(bits, plane, 2, 3, ONE) is None  # open outline: no hole


@pytest.mark.parametrize("plane", PLANES)
def test_dilate_erode_2d(plane):
    bits = _bits()
    bits = _apply(bits, paint_region(bits, plane, 2, _region(plane, [(2, 2)]), 0, ONE, depth=1))
    out = _apply(bits, morph(bits, 0, "dilate", ONE, plane=plane, index=2))
    cross = [(2, 2), (1, 2), (3, 2), (2, 1), (2, 3)]
    assert _set(out == 1) == (_voxels(plane, 2, cross) | _voxels(plane, 1, [(2, 2)])
                              | _voxels(plane, 3, [(2, 2)]))
    out2 = _apply(bits, morph(bits, 0, "dilate", ONE, plane=plane, index=2, radius=2))
    assert (display_view(out2, plane, 2) == 1).sum() == 13
    back = _apply(out, morph(out, 0, "erode", ONE, plane=plane, index=2))
    np.testing.assert_array_equal(back, bits)


def test_dilate_erode_3d():
    bits = _bits()
    bits[2, 3, 4] = 1
    out = _apply(bits, morph(bits, 0, "dilate", MULTI))
    assert _set(out == 1) == {(2, 3, 4), (1, 3, 4), (3, 3, 4), (2, 2, 4), (2, 4, 4), (2, 3, 3),
                              (2, 3, 5)}
    np.testing.assert_array_equal(_apply(out, morph(out, 0, "erode", MULTI)), bits)
    block = _bits()
    block[1:5, 1:6, 1:7] = 1
    eroded = _apply(block, morph(block, 0, "erode", MULTI))
    assert _set(eroded == 1) == _set(np.pad(np.ones((2, 3, 4), bool), 2)[:6, :7, :8])
    corner = _bits()
    corner[0, 0, 0] = 1  # at the array edge: dilation is clipped
    assert morph(corner, 0, "dilate", MULTI).changed_voxels == 3
    assert morph(_bits(), 0, "dilate", MULTI) is None
    with pytest.raises(EditRefused):
        morph(bits, 0, "dilate", MULTI, radius=0)
    with pytest.raises(ValueError):
        morph(bits, 0, "open", MULTI)


def test_dilate_respects_locks_and_overlap():
    bits = _bits()
    bits[2, 3, 4] = 0b01
    bits[1, 3, 4] = 0b10  # locked neighbour
    bits[3, 3, 4] = 0b100  # unlocked neighbour
    rules = Rules("one_roi_per_voxel", locked_bits=0b10)
    out = _apply(bits, morph(bits, 0, "dilate", rules))
    assert out[1, 3, 4] == 0b10 and out[3, 3, 4] == 0b01


def test_erase_all():
    bits = _bits()
    bits[1, 1, 1], bits[4, 5, 6], bits[2, 2, 2] = 0b11, 0b01, 0b10
    out = _apply(bits, erase_all(bits, 0, ONE))
    assert out[1, 1, 1] == 0b10 and out[4, 5, 6] == 0 and out[2, 2, 2] == 0b10
    assert erase_all(out, 0, ONE) is None


def test_delta_round_trip_and_serialisation():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 4, SHAPE).astype(np.uint8)
    new = bits.copy()
    new[1:3, 2, 5] = 9
    d = make_delta(bits, ((0, 6), (0, 7), (0, 8)), new)
    assert d.box == ((1, 3), (2, 3), (5, 6)) and d.changed_voxels == 2
    after = d.apply(bits.copy())
    np.testing.assert_array_equal(after, new)
    np.testing.assert_array_equal(d.inverse().apply(after), bits)
    d2 = Delta.from_dict(d.to_dict())
    assert d2.box == d.box
    np.testing.assert_array_equal(d2.after, d.after)
    assert make_delta(bits, ((0, 6), (0, 7), (0, 8)), bits.copy()) is None


def test_roi_mask_and_bit_range():
    b = np.array([0, 1 << 63, 3], np.uint64)
    assert roi_mask(b, 63).tolist() == [False, True, False]
    with pytest.raises(ValueError):
        paint_region(np.zeros(SHAPE, np.uint8), "axial", 0,
                     np.ones(display_shape(SHAPE, "axial"), bool), 8, ONE)


# ---- replace_roi (whole-volume masks, as an import writes them) ----------------------------
def _bits_with_rois():
    bits = np.zeros(SHAPE, np.uint8)
    bits[0:2] = 1          # ROI bit 0
    bits[2:4] = 2          # ROI bit 1
    bits[4:6] = 4          # ROI bit 2
    bits[5, :, :4] |= 1    # bit 0 also overlaps bit 2 here (as after a multi-label edit)
    return bits


def test_replace_roi_one_roi_per_voxel_replaces_others_and_skips_locked():
    bits = _bits_with_rois()
    mask = np.zeros(SHAPE, bool)
    mask[1:5, 0] = True    # over bits 0, 1 and the locked bit 2
    new, written = replace_roi(bits, 0, mask, Rules("one_roi_per_voxel", locked_bits=0b100))
    assert written.tolist() == (mask & ((bits & 4) == 0)).tolist()
    expected = bits & ~np.uint8(1)              # bit 0 cleared everywhere ...
    expected[written] = 1                       # ... then alone on the written voxels
    np.testing.assert_array_equal(new, expected)
    assert np.all(new[4:6] & 4 == 4)            # the locked ROI is untouched
    assert bits[0, 0, 0] == 1 and new[0, 0, 0] == 0  # the input is not changed


def test_replace_roi_multi_label_ors_the_bits():
    bits = _bits_with_rois()
    mask = np.zeros(SHAPE, bool)
    mask[3:5] = True
    new, written = replace_roi(bits, 0, mask, Rules("multi_label", locked_bits=0b100))
    np.testing.assert_array_equal(written, mask)
    np.testing.assert_array_equal(new, np.where(mask, (bits & ~np.uint8(1)) | 1,
                                                bits & ~np.uint8(1)))


def test_replace_roi_refuses_a_locked_target_and_a_wrong_shape():
    bits = _bits_with_rois()
    with pytest.raises(EditRefused, match="locked"):
        replace_roi(bits, 2, np.ones(SHAPE, bool), Rules("multi_label", locked_bits=0b100))
    with pytest.raises(ValueError, match="mask shape"):
        replace_roi(bits, 0, np.ones((2, 2, 2), bool), ONE)
