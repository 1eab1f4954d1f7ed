"""Dice and Jaccard (ril_dash.core.metrics) against an independent computation: sets of voxel
index tuples, and scipy's dissimilarity (``scipy.spatial.distance.dice`` is 1 - Dice)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import distance

from ril_dash.core.metrics import dice_jaccard, overlap_scores, select_slices


def voxel_set(mask: np.ndarray, axis: int, index: int | None = None) -> set[tuple]:
    """The voxels of ``mask`` as index tuples (of one slice along ``axis`` when given)."""
    return {tuple(v) for v in np.argwhere(mask) if index is None or v[axis] == index}


def set_scores(sa: set, sb: set) -> tuple[float, float]:
    if not sa and not sb:
        return 1.0, 1.0
    shared = len(sa & sb)
    return 2 * shared / (len(sa) + len(sb)), shared / len(sa | sb)


@pytest.fixture
def masks():
    rng = np.random.default_rng(7)
    a = np.zeros((9, 7, 6), bool)
    b = np.zeros((9, 7, 6), bool)
    a[2:7, 1:5, 1:4] = True
    b[3:8, 2:6, 2:5] = True
    a &= rng.random(a.shape) > 0.2  # ragged shapes, so no slice is trivially equal
    b &= rng.random(b.shape) > 0.2
    return a, b


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_per_slice_and_volume_scores_match_set_arithmetic(masks, axis):
    a, b = masks
    scores = overlap_scores(a, b, axis)
    expected_slices = sorted({v[axis] for v in voxel_set(a, axis) | voxel_set(b, axis)})
    assert scores.slices.tolist() == expected_slices
    for row in scores.rows():
        sa, sb = voxel_set(a, axis, row["index"]), voxel_set(b, axis, row["index"])
        dice, jaccard = set_scores(sa, sb)
        assert (row["size_a"], row["size_b"], row["intersection"]) == (len(sa), len(sb),
                                                                        len(sa & sb))
        assert row["dice"] == pytest.approx(dice, abs=1e-12)
        assert row["jaccard"] == pytest.approx(jaccard, abs=1e-12)
        assert row["both_empty"] is False
    dice, jaccard = set_scores(voxel_set(a, axis), voxel_set(b, axis))
    assert scores.volume_dice == pytest.approx(dice, abs=1e-12)
    assert scores.volume_jaccard == pytest.approx(jaccard, abs=1e-12)
    assert 0.2 < scores.volume_dice < 0.9  # the fixture overlaps partly


def test_volume_dice_matches_scipy_on_flattened_masks(masks):
    a, b = masks
    scores = overlap_scores(a, b, 2)
    assert scores.volume_dice == pytest.approx(1 - distance.dice(a.ravel(), b.ravel()))
    for i, d in zip(scores.slices, scores.dice):
        assert d == pytest.approx(1 - distance.dice(a[..., i].ravel(), b[..., i].ravel()))


def test_a_selection_scores_only_its_slices(masks):
    a, b = masks
    scores = overlap_scores(a, b, 2, range(2, 4))
    assert scores.slices.tolist() == [2, 3]
    sa = {v for v in voxel_set(a, 2) if v[2] in (2, 3)}
    sb = {v for v in voxel_set(b, 2) if v[2] in (2, 3)}
    assert scores.volume_dice == pytest.approx(set_scores(sa, sb)[0])
    assert scores.volume_jaccard == pytest.approx(set_scores(sa, sb)[1])
    assert overlap_scores(a, b, 2, [3, 2, 3]).slices.tolist() == [2, 3]


def test_both_empty_slices_score_one_flagged_and_are_not_selected_by_default():
    a = np.zeros((3, 3, 4), bool)
    b = np.zeros((3, 3, 4), bool)
    a[0, 0, 1] = b[0, 0, 1] = True
    a[1, 1, 2] = True
    default = overlap_scores(a, b, 2)
    assert default.slices.tolist() == [1, 2]
    assert default.dice.tolist() == [1.0, 0.0] and default.jaccard.tolist() == [1.0, 0.0]
    assert not default.both_empty.any()
    everything = overlap_scores(a, b, 2, "all")
    assert everything.slices.tolist() == [0, 1, 2, 3]
    assert everything.both_empty.tolist() == [True, False, False, True]
    assert everything.dice.tolist() == [1.0, 1.0, 0.0, 1.0]
    # empty slices add nothing to the volume scores
    assert everything.volume_dice == default.volume_dice == pytest.approx(2 / 3)
    assert everything.volume_jaccard == default.volume_jaccard == pytest.approx(1 / 2)
    assert not everything.volume_both_empty


def test_both_empty_volume_scores_one_and_is_flagged():
    empty = np.zeros((2, 2, 3), bool)
    scores = overlap_scores(empty, empty, 2)
    assert scores.slices.tolist() == [] and scores.rows() == []
    assert (scores.volume_dice, scores.volume_jaccard, scores.volume_both_empty) == (1.0, 1.0, True)
    only_a = empty.copy()
    only_a[0, 0, 0] = True
    one_sided = overlap_scores(only_a, empty, 2)
    assert (one_sided.volume_dice, one_sided.volume_jaccard) == (0.0, 0.0)
    assert not one_sided.volume_both_empty


def test_dice_jaccard_from_counts():
    dice, jaccard = dice_jaccard(10, 10, 10)
    assert (float(dice), float(jaccard)) == (1.0, 1.0)
    dice, jaccard = dice_jaccard([3], [5], [2])
    assert dice.tolist() == [0.5] and jaccard.tolist() == [pytest.approx(1 / 3)]


def test_bad_input_is_refused_with_a_clear_message():
    a = np.zeros((2, 2, 3), bool)
    with pytest.raises(ValueError, match="differ in shape"):
        overlap_scores(a, np.zeros((2, 2, 4), bool), 2)
    with pytest.raises(ValueError, match=r"slice indices \[3, 7\] are outside 0..2"):
        select_slices(a, a, 2, [0, 3, 7])
    with pytest.raises(ValueError, match="unknown slice selection 'some'"):
        select_slices(a, a, 2, "some")
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        overlap_scores(a, a, 3)
    with pytest.raises(ValueError, match="whole numbers"):
        select_slices(a, a, 2, ["x"])
