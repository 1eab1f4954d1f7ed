"""Normalisation methods against independent numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.planes import display_stack
from ril_dash.core.volume import Volume
from ril_dash.models.normalize import fill_nonfinite, normalize, volume_stats
from ril_dash.models.preprocess import prepare_slices
from tests.models.helpers import input_spec, manifest, norm_spec

RNG = np.random.default_rng(7)
STACK = (RNG.normal(40, 90, size=(3, 9, 11)) * np.array([1, 2, 0.5])[:, None, None]).astype(
    np.float32)


def _scale(x, lo, hi, r0, r1):
    return (np.clip(x, lo, hi) - lo) / (hi - lo) * (r1 - r0) + r0


def test_window_clips_then_scales_to_the_range():
    norm = norm_spec(method="window", window=[-160, 240], range=[-1.0, 2.0])
    np.testing.assert_allclose(normalize(STACK, norm), _scale(STACK, -160, 240, -1, 2),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scope", ["slice", "volume"])
def test_zscore(scope):
    norm = norm_spec(method="zscore", scope=scope)
    if scope == "slice":
        want = np.stack([(s - s.mean()) / s.std() for s in STACK.astype(np.float64)])
    else:
        want = (STACK - STACK.astype(np.float64).mean()) / STACK.astype(np.float64).std()
    np.testing.assert_allclose(normalize(STACK, norm), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scope", ["slice", "volume"])
def test_percentile_min_max(scope):
    norm = norm_spec(method="percentile", percentiles=[5, 95], scope=scope, range=[0.0, 10.0])
    if scope == "slice":
        want = np.stack([_scale(s, *np.percentile(s, [5, 95]), 0, 10) for s in STACK])
    else:
        want = _scale(STACK, *np.percentile(STACK, [5, 95]), 0, 10)
    np.testing.assert_allclose(normalize(STACK, norm), want, rtol=1e-4, atol=1e-4)


def test_volume_stats_are_those_of_the_whole_volume():
    vol = RNG.normal(size=(4, 5, 6))
    vol[0, 0, 0] = np.nan
    finite = vol[np.isfinite(vol)]
    mean, std = volume_stats(vol, norm_spec(method="zscore", scope="volume"))
    assert mean == pytest.approx(finite.mean()) and std == pytest.approx(finite.std())
    lo, hi = volume_stats(vol, norm_spec(method="percentile", scope="volume"))
    assert (lo, hi) == pytest.approx(tuple(np.percentile(finite, [1, 99])))
    assert volume_stats(vol, norm_spec(method="zscore", scope="slice")) is None


def test_scale_offset_then_final_clip():
    norm = norm_spec(method="scale", scale=0.01, offset=-0.5, clip=[-0.2, 0.3])
    np.testing.assert_allclose(normalize(STACK, norm), np.clip(STACK * 0.01 - 0.5, -0.2, 0.3),
                               rtol=1e-5, atol=1e-6)


def test_constant_images_do_not_divide_by_zero():
    flat = np.full((2, 4, 4), 7.0)
    assert (normalize(flat, norm_spec(method="zscore")) == 0).all()
    assert (normalize(flat, norm_spec(method="percentile", range=[0.5, 1.0])) == 0.5).all()


def test_non_finite_values_take_the_image_minimum():
    img = np.array([[[np.nan, 2.0], [np.inf, -3.0]], [[np.nan, np.nan], [np.nan, np.nan]]])
    assert fill_nonfinite(img).tolist() == [[[-3.0, 2.0], [-3.0, -3.0]], [[0.0, 0.0], [0.0, 0.0]]]


def test_unknown_method_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="window, zscore, percentile, scale, none"):
        normalize(STACK, norm_spec(method="minmax"))


def test_prepare_slices_normalises_each_channel_image_on_its_own():
    data = RNG.normal(100, 30, size=(8, 9, 5)).astype(np.float32)
    m = manifest(inp=input_spec(size=[9, 8], slices=3),
                 norm=norm_spec(method="percentile", percentiles=[2, 98]))
    batch, _ = prepare_slices(Volume(data), m, [2])
    disp = display_stack(data, "axial")
    for ch, index in enumerate([1, 2, 3]):
        want = _scale(disp[index], *np.percentile(disp[index], [2, 98]), 0, 1)
        np.testing.assert_allclose(batch[0, ..., ch], want, atol=1e-5)
