"""Draft merge: exact voxels per mode, locks, one ROI per voxel, one delta, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.draft_merge import locked_targets, merge_draft
from ril_dash.core.paint import Rules
from ril_dash.core.planes import display_shape, display_to_canonical

SHAPE = (6, 7, 8)
PLANE = "coronal"                 # slices along y; display (rows, cols) = (z, x) = (8, 6)
SLOTS = {1: 0, 2: 1, 4: 2}        # ROI value → bit: A = 1, B = 2, locked C = 4
A, B, C = 1, 2, 4
ONE = Rules("one_roi_per_voxel", locked_bits=1 << SLOTS[C])
MULTI = Rules("multi_label", locked_bits=1 << SLOTS[C])


def _voxels(index, pixels):
    rows, cols = np.array(pixels).T
    x, y, z = display_to_canonical(SHAPE, PLANE, index, rows, cols)
    return list(zip(x.tolist(), y.tolist(), z.tolist()))


def _draft(indices, pixels_per_slice):
    masks = np.zeros((len(indices), *display_shape(SHAPE, PLANE)), bool)
    for row, pixels in enumerate(pixels_per_slice):
        for p in pixels:
            masks[row][p] = True
    return masks


def _start():
    """ROI A on slice 2 at (0,0),(0,1); ROI B on slice 3 at (1,1); locked C on slice 3 at (2,2)."""
    bits = np.zeros(SHAPE, np.uint8)
    for v in _voxels(2, [(0, 0), (0, 1)]):
        bits[v] = 1 << SLOTS[A]
    bits[_voxels(3, [(1, 1)])[0]] = 1 << SLOTS[B]
    bits[_voxels(3, [(2, 2)])[0]] = 1 << SLOTS[C]
    return bits


def _merged(bits, *args):
    out = bits.copy()
    delta = merge_draft(bits, SLOTS, PLANE, *args)
    if delta is not None:
        delta.apply(out)
    return out, delta


def _expect(bits, changes):
    out = bits.copy()
    for index, pixel, value in changes:
        out[_voxels(index, [pixel])[0]] = value
    return out


def test_union_adds_and_takes_unlocked_voxels_under_one_roi_per_voxel():
    bits = _start()
    draft = _draft([2, 3], [[(0, 1), (5, 5)], [(1, 1), (2, 2), (3, 3)]])
    out, delta = _merged(bits, [2, 3], {A: draft}, "union", ONE)
    want = _expect(bits, [(2, (5, 5), 1), (3, (1, 1), 1), (3, (3, 3), 1)])  # (2, 2) is C: locked
    np.testing.assert_array_equal(out, want)
    assert delta.box[1] == (2, 4)                       # only the covered slices
    out_multi, _ = _merged(bits, [2, 3], {A: draft}, "union", MULTI)
    want_multi = _expect(bits, [(2, (5, 5), 1), (3, (1, 1), 0b011), (3, (2, 2), 0b101),
                                (3, (3, 3), 1)])
    np.testing.assert_array_equal(out_multi, want_multi)


def test_replace_makes_the_roi_exactly_the_draft_on_covered_slices_only():
    bits = _start()
    for v in _voxels(5, [(4, 4)]):                      # A on slice 5, not covered
        bits[v] = 1 << SLOTS[A]
    draft = _draft([2, 3], [[(6, 0)], []])
    out, _ = _merged(bits, [2, 3], {A: draft, B: _draft([2, 3], [[], []])}, "replace", ONE)
    want = _expect(bits, [(2, (0, 0), 0), (2, (0, 1), 0), (2, (6, 0), 1), (3, (1, 1), 0)])
    np.testing.assert_array_equal(out, want)            # slice 5 keeps its A voxel


def test_empty_slices_only_fills_slices_where_that_roi_is_empty():
    bits = _start()
    draft = _draft([1, 2, 3], [[(3, 3)], [(4, 4)], [(5, 5)]])
    out, _ = _merged(bits, [1, 2, 3], {A: draft, B: draft}, "empty_slices", MULTI)
    # A was present on slice 2 only; B on slice 3 only
    want = _expect(bits, [(1, (3, 3), 0b11), (3, (5, 5), 0b01), (2, (4, 4), 0b10)])
    np.testing.assert_array_equal(out, want)


def test_a_locked_target_roi_is_skipped_and_reported():
    bits = _start()
    draft = _draft([3], [[(0, 0), (2, 2)]])
    assert merge_draft(bits, SLOTS, PLANE, [3], {C: draft}, "replace", ONE) is None
    assert locked_targets(SLOTS, [A, C], ONE) == [C]
    out, _ = _merged(bits, [3], {C: draft, B: _draft([3], [[(0, 0)]])}, "union", ONE)
    np.testing.assert_array_equal(out, _expect(bits, [(3, (0, 0), 0b10)]))


def test_later_roi_wins_an_overlap_under_one_roi_per_voxel_and_one_delta_covers_all():
    bits = np.zeros(SHAPE, np.uint8)
    a = _draft([0, 6], [[(0, 0), (1, 1)], [(7, 5)]])
    b = _draft([0, 6], [[(1, 1)], []])
    out, delta = _merged(bits, [0, 6], {A: a, B: b}, "union", ONE)
    want = _expect(bits, [(0, (0, 0), 0b01), (0, (1, 1), 0b10), (6, (7, 5), 0b01)])
    np.testing.assert_array_equal(out, want)
    assert delta.changed_voxels == 3 and delta.box[1] == (0, 7)
    np.testing.assert_array_equal(delta.inverse().apply(out.copy()), bits)
    assert merge_draft(out, SLOTS, PLANE, [0, 6], {A: a, B: b}, "union", ONE) is None


def test_the_intensity_window_of_the_rules_does_not_apply_to_drafts():
    bits = np.zeros(SHAPE, np.uint8)
    rules = Rules("one_roi_per_voxel", threshold=(1000.0, 2000.0))
    out, _ = _merged(bits, [4], {A: _draft([4], [[(2, 3)]])}, "union", rules)
    assert out[_voxels(4, [(2, 3)])[0]] == 1


def test_bad_calls_are_refused():
    bits = _start()
    draft = _draft([2], [[(0, 0)]])
    with pytest.raises(ValueError, match="empty_slices, replace, union"):
        merge_draft(bits, SLOTS, PLANE, [2], {A: draft}, "overwrite", ONE)
    with pytest.raises(ValueError, match="ROI value 8 has no slot"):
        merge_draft(bits, SLOTS, PLANE, [2], {8: draft}, "union", ONE)
    with pytest.raises(ValueError, match=r"expected \(2, 8, 6\)"):
        merge_draft(bits, SLOTS, PLANE, [2, 3], {A: draft}, "union", ONE)
    with pytest.raises(ValueError, match="0..6 of the coronal plane"):
        merge_draft(bits, SLOTS, PLANE, [7], {A: draft}, "union", ONE)
    with pytest.raises(ValueError, match="must not repeat"):
        merge_draft(bits, SLOTS, PLANE, [2, 2], {A: np.repeat(draft, 2, 0)}, "union", ONE)
