"""Outputs → masks (softmax, sigmoid, one ROI per voxel), clean-up, classification, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.errors import ModelRunError, PluginError
from ril_dash.models.postprocess import (
    check_model_shapes,
    check_outputs,
    classify,
    clean_masks,
    clean_up,
    output_shape_problem,
    segmentation_masks,
)
from tests.models.helpers import REF, class_output, input_spec, manifest, seg_output


def _probs():
    """(1, 1, 4, 3): four voxels, channels background / right / left."""
    return np.array([[[[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]]]])


def test_softmax_argmax_with_background_channel_zero():
    masks = segmentation_masks(_probs(), seg_output("softmax"), one_roi_per_voxel=True)
    assert masks[1].ravel().tolist() == [False, True, False, False]   # tie 0/1 → background
    assert masks[2].ravel().tolist() == [False, False, True, False]
    assert set(masks) == {1, 2}


def test_sigmoid_threshold_is_strict_and_overlap_follows_the_project():
    probs = np.array([[[[0.0, 0.9, 0.8], [0.0, 0.6, 0.95], [0.0, 0.5, 0.2], [0.0, 0.7, 0.7]]]])
    out = seg_output("sigmoid", threshold=0.5)
    one = segmentation_masks(probs, out, one_roi_per_voxel=True)
    assert one[1].ravel().tolist() == [True, False, False, True]     # tie → first listed
    assert one[2].ravel().tolist() == [False, True, False, False]
    multi = segmentation_masks(probs, out, one_roi_per_voxel=False)
    assert multi[1].ravel().tolist() == [True, True, False, True]
    assert multi[2].ravel().tolist() == [True, True, False, True]


def test_sigmoid_channel_zero_can_be_an_roi():
    probs = np.array([[[[0.9], [0.1]]]])
    masks = segmentation_masks(probs, seg_output("sigmoid", channels=[(0, "Liver")]), True)
    assert masks[0].ravel().tolist() == [True, False]


def test_clean_up_face_connectivity_min_size_and_largest():
    m = np.zeros((4, 5, 5), bool)
    m[0, 0, 0:3] = True            # 3 voxels
    m[2, 2, 2] = m[3, 3, 3] = True  # diagonal neighbours: two components of 1
    m[1:3, 4, 3:5] = True          # 4 voxels, across slices
    labels = {tuple(v) for v in np.argwhere(clean_up(m, False, 2))}
    assert labels == {(0, 0, 0), (0, 0, 1), (0, 0, 2), (1, 4, 3), (1, 4, 4), (2, 4, 3), (2, 4, 4)}
    largest = clean_up(m, True, 0)
    assert {tuple(v) for v in np.argwhere(largest)} == {(1, 4, 3), (1, 4, 4), (2, 4, 3),
                                                        (2, 4, 4)}
    assert not clean_up(m, True, 5).any()
    np.testing.assert_array_equal(clean_up(m, False, 0), m)


def test_clean_masks_uses_the_connectivity_of_the_whole_series():
    # slices 2 and 4 are not adjacent: their voxels are two components of 1, not one of 2
    mask = np.zeros((2, 3, 3), bool)
    mask[:, 1, 1] = True
    out = clean_masks({1: mask}, [2, 4], 6, seg_output(min_size=2))
    assert not out[1].any()
    out = clean_masks({1: mask}, [2, 3], 6, seg_output(min_size=2))
    np.testing.assert_array_equal(out[1], mask)


def test_classify_mean_and_max_and_middle_third():
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.5, 0.3, 0.1],
                      [0.1, 0.1, 0.2, 0.6], [0.8, 0.0, 0.1, 0.1], [0.2, 0.2, 0.5, 0.1]])
    mean = classify(probs, class_output())
    assert mean.value == "non-contrast" and mean.probability == pytest.approx(2.0 / 6)
    assert mean.probabilities == pytest.approx(dict(zip(class_output().classes,
                                                        probs.mean(axis=0))))
    peak = classify(probs, class_output(aggregate="max"))
    assert peak.value == "non-contrast" and peak.probability == pytest.approx(0.8)
    assert peak.probabilities["delayed"] == pytest.approx(0.6)
    middle = classify(probs, class_output(slices="middle"))           # rows 2..3 of 6
    assert middle.probabilities == pytest.approx(dict(zip(class_output().classes,
                                                          probs[2:4].mean(axis=0))))
    # rows are slices 10..15 of a 30-slice series: its middle third is 10..19, all of them
    series = classify(probs, class_output(slices="middle"), indices=range(10, 16), n_slices=30)
    assert series.probabilities == pytest.approx(mean.probabilities)
    with pytest.raises(ModelRunError, match=REF + r" reads the middle third .*slices 10..19"):
        classify(probs, class_output(slices="middle"), indices=range(6), n_slices=30,
                 label=REF)


def test_classify_refuses_probabilities_that_do_not_fit_the_classes():
    with pytest.raises(ModelRunError, match=REF + r".*\(2, 3\).*4 classes"):
        classify(np.ones((2, 3)) / 3, class_output(), label=REF)


def test_output_shape_problems_name_the_bundle_and_what_is_expected():
    seg = manifest(inp=input_spec(size=[16, 12]))
    assert output_shape_problem((None, 16, 12, 3), seg) is None
    assert output_shape_problem((None, 16, 12, 4), seg) is None        # extra classes are fine
    assert output_shape_problem((None, 16, 12, 2), seg) == (
        f"{REF} returns 2 output channel(s), but its manifest maps channel 2 (Left kidney) "
        "with softmax, so the model must return at least 3")
    assert output_shape_problem((None, 12, 16, 3), seg) == (
        f"{REF} returns outputs of shape (None, 12, 16, 3), but its manifest expects "
        "(batch, 16, 12, channels)")
    three_d = manifest(dimension=3, inp=input_spec(patch=[8, 16, 16]))
    assert output_shape_problem((None, 8, 16, 16, 3), three_d) is None
    assert "(batch, 8, 16, 16, channels)" in output_shape_problem((None, 16, 16, 3), three_d)
    sig = manifest(output=seg_output("sigmoid", channels=[(0, "Liver")]))
    assert output_shape_problem((None, 8, 8, 1), sig) is None
    cls = manifest(task="classification")
    assert output_shape_problem((None, 4), cls) is None
    assert "but a classifier must return (batch, 4)" in output_shape_problem((None, 8, 8, 4), cls)


def test_check_outputs_refuses_wrong_batch_shape_and_nan():
    seg = manifest()
    good = np.zeros((3, 8, 8, 3), np.float32)
    assert check_outputs(good, seg, 3) is not None
    with pytest.raises(ModelRunError, match=REF + " returned 3 results for a batch of 2.*Nothing"):
        check_outputs(good, seg, 2)
    with pytest.raises(ModelRunError, match=REF + " returns 1 output channel"):
        check_outputs(good[..., :1], seg, 3)
    bad = good.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ModelRunError, match=REF + " returned NaN"):
        check_outputs(bad, seg, 3)


def test_check_model_shapes_compares_the_loaded_model_with_the_manifest():
    seg = manifest(inp=input_spec(size=[16, 12], slices=3, frames=[0, 1]))
    check_model_shapes({"inputs": [[None, 16, 12, 6]], "outputs": [[None, 16, 12, 3]]}, seg)
    with pytest.raises(PluginError, match=REF + r" takes inputs of shape \(None, 16, 12, 3\), "
                       r"but its manifest gives it \(batch, 16, 12, 6\)"):
        check_model_shapes({"inputs": [[None, 16, 12, 3]], "outputs": [[None, 16, 12, 3]]}, seg)
    with pytest.raises(PluginError, match="maps channel 2 .* at least 3; fix its plugin.yaml"):
        check_model_shapes({"inputs": [[None, 16, 12, 6]], "outputs": [[None, 16, 12, 2]]}, seg)
    with pytest.raises(PluginError, match="2 input\\(s\\) and 1 output"):
        check_model_shapes({"inputs": [[None, 16, 12, 6]] * 2, "outputs": [[None, 2]]}, seg)
    vol = manifest(dimension=3, inp=input_spec(patch=[8, 32, 32]))
    check_model_shapes({"inputs": [[None, 8, 32, 32, 1]], "outputs": [[None, 8, 32, 32, 3]]}, vol)
    with pytest.raises(PluginError, match=r"\(batch, 8, 32, 32, 1\) \(input.patch"):
        check_model_shapes({"inputs": [[None, 32, 32, 1]], "outputs": [[None, 32, 32, 3]]}, vol)
