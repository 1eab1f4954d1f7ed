"""ROI statistics against numpy, empty masks, non-finite values, histograms, speed."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.stats import STAT_KEYS, histogram, roi_statistics


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_statistics_match_numpy(dtype):
    rng = np.random.default_rng(5)
    image = (rng.normal(50, 20, (20, 24, 16))).astype(dtype)
    mask = rng.random((20, 24, 16)) < 0.2
    mask[:3] = False
    s = roi_statistics(image, mask, (0.5, 0.8, 2.5))
    v = image[mask].astype(float)
    assert s["count"] == mask.sum()
    assert s["volume_ml"] == pytest.approx(mask.sum() * 0.5 * 0.8 * 2.5 / 1000)
    assert s["mean"] == pytest.approx(v.mean())
    assert s["sd"] == pytest.approx(v.std())
    assert (s["min"], s["max"]) == (v.min(), v.max())
    assert s["median"] == pytest.approx(np.median(v))
    for p in (5, 25, 75, 95):
        assert s[f"p{p}"] == pytest.approx(np.percentile(v, p))
    idx = np.argwhere(mask)
    assert s["bbox"] == tuple((int(a), int(b)) for a, b in zip(idx.min(0), idx.max(0)))
    assert set(s) == set(STAT_KEYS)


def test_non_finite_values_are_ignored():
    image = np.array([[[1.0, np.nan, 3.0, np.inf, -np.inf]]])
    s = roi_statistics(image, np.ones(image.shape, bool), (1, 1, 1))
    assert s["count"] == 5 and s["mean"] == 2.0 and (s["min"], s["max"]) == (1.0, 3.0)
    s = roi_statistics(image, image != 1, (1, 1, 1))  # only non-finite left besides 3
    assert s["count"] == 4 and s["mean"] == 3.0
    s = roi_statistics(np.full((2, 2, 2), np.nan), np.ones((2, 2, 2), bool), (1, 1, 1))
    assert s["count"] == 8 and s["mean"] is None and s["bbox"] == ((0, 1), (0, 1), (0, 1))


def test_empty_mask():
    s = roi_statistics(np.zeros((3, 4, 5)), np.zeros((3, 4, 5), bool), (1, 1, 1))
    assert s["count"] == 0
    assert all(s[k] is None for k in STAT_KEYS if k != "count")
    with pytest.raises(ValueError):
        roi_statistics(np.zeros((3, 4, 5)), np.zeros((3, 4, 4), bool), (1, 1, 1))


def test_histogram():
    rng = np.random.default_rng(6)
    v = rng.normal(size=1000)
    v[:10] = np.nan
    h = histogram(v, bins=32)
    assert len(h["edges"]) == 33 and len(h["counts"]) == 32
    assert sum(h["counts"]) == 990
    assert h["edges"][0] == np.nanmin(v) and h["edges"][-1] == np.nanmax(v)
    assert histogram([np.nan]) == {"edges": [], "counts": []}
    assert sum(histogram(np.full(7, 3, np.int16), bins=4)["counts"]) == 7


def test_statistics_of_a_large_roi():
    rng = np.random.default_rng(7)
    image = np.zeros((512, 512, 300), np.int16)
    mask = np.zeros(image.shape, bool)
    mask[150:250, 200:300, 100:200] = True  # 10^6 voxels
    image[150:250, 200:300, 100:200] = rng.integers(-1000, 1000, (100, 100, 100))
    s = roi_statistics(image, mask, (1, 1, 1))
    values = image[150:250, 200:300, 100:200]
    assert s["count"] == 10**6 and s["volume_ml"] == 1000.0
    assert s["mean"] == values.mean() and s["max"] == values.max()
