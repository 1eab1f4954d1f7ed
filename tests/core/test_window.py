"""Display windowing and PNG encoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ril_dash.core.png import encode_png, png_data_url
from ril_dash.core.volume import Volume
from ril_dash.core.window import CT_PRESETS, apply_window, auto_window, is_ct_like


def test_ct_presets():
    assert CT_PRESETS == {"soft tissue": (40, 400), "lung": (-600, 1500),
                          "bone": (400, 1800), "brain": (40, 80)}


# -- auto_window ---------------------------------------------------------------------------------
def test_auto_window_percentiles():
    a = np.arange(10_001, dtype=np.float32)
    center, width = auto_window(a, low=1, high=99)
    assert center == pytest.approx(5000, abs=1) and width == pytest.approx(9800, abs=2)
    assert isinstance(center, float) and isinstance(width, float)


def test_auto_window_ignores_outliers_and_nonfinite():
    rng = np.random.default_rng(0)
    a = rng.normal(100, 10, size=(64, 64, 32)).astype(np.float32)
    a[0, 0, :5] = [np.nan, np.inf, -np.inf, 1e9, -1e9]
    center, width = auto_window(a)
    assert 95 < center < 105 and 40 < width < 80


def test_auto_window_on_volume_and_subsample():
    a = np.tile(np.arange(100, dtype=np.int16), (100, 100, 10))  # 10 M values
    c1, w1 = auto_window(a, sample=50_000)
    assert c1 == pytest.approx(49.5, abs=3) and w1 == pytest.approx(99, abs=5)
    c2, w2 = auto_window(Volume(a))
    assert c2 == pytest.approx(49.5, abs=3)


@pytest.mark.parametrize("a", [np.full((5, 5), 7.0), np.zeros((3, 3, 3), np.int16),
                               np.full(10, np.nan), np.array([np.inf, -np.inf]),
                               np.array([], np.float32), np.full(4, -2000.0)])
def test_auto_window_degenerate(a):
    center, width = auto_window(a)
    assert np.isfinite(center) and np.isfinite(width) and width >= 1


def test_auto_window_sparse_mask_uses_full_range():
    a = np.zeros((100, 100), np.uint8)
    a[0, :5] = 1  # 0.05 % ones: both percentiles are 0
    center, width = auto_window(a)
    assert (center, width) == (0.5, 1.0)


# -- is_ct_like --------------------------------------------------------------------------------
def test_is_ct_like():
    ct = np.full((20, 20, 5), -1024, np.int16)
    ct[5:15, 5:15] = 40
    assert is_ct_like(ct)
    assert is_ct_like(Volume(ct))
    assert is_ct_like((ct.astype(np.float32)))  # integral floats after header scaling
    air = np.full((10, 10), -1000, np.int16)
    air[0, 0] = 300
    assert is_ct_like(air)
    mr = np.random.default_rng(0).integers(0, 3000, (20, 20, 5)).astype(np.int16)
    assert not is_ct_like(mr)
    assert not is_ct_like(mr.astype(np.float32) * 0.37 - 1000)  # fractional floats
    assert not is_ct_like(np.full(10, np.nan))
    assert not is_ct_like(np.zeros((4, 4), bool))


# -- apply_window ------------------------------------------------------------------------------
def test_apply_window_mapping():
    out = apply_window(np.array([[-200, -160, 40, 240, 1000]], np.int16), 40, 400)
    assert out.dtype == np.uint8 and out.shape == (1, 5)
    assert out.tolist() == [[0, 0, 128, 255, 255]]


def test_apply_window_monotonic_and_full_range():
    a = np.linspace(-10, 110, 1000, dtype=np.float64).reshape(10, 100)
    out = apply_window(a, 50, 100).ravel()
    assert out.min() == 0 and out.max() == 255 and np.all(np.diff(out.astype(int)) >= 0)


def test_apply_window_nonfinite():
    out = apply_window(np.array([np.nan, np.inf, -np.inf, 0.0], np.float32), 0, 2)
    assert out.tolist() == [0, 255, 0, 128]


@pytest.mark.parametrize("width", [0, -5, np.nan])
def test_apply_window_bad_width(width):
    out = apply_window(np.array([0, 1, 2], np.int16), 1, width)
    assert out.dtype == np.uint8 and out[0] <= out[1] <= out[2]


def test_apply_window_does_not_modify_input_and_handles_views():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    before = a.copy()
    view = a[::-1, ::-1].T
    out = apply_window(view, 12, 24)
    np.testing.assert_array_equal(a, before)
    np.testing.assert_array_equal(out, apply_window(np.ascontiguousarray(view), 12, 24))
    assert out.shape == (6, 4)


# -- png --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,mode",
                         [((30, 40), "L"), ((30, 40, 3), "RGB"), ((30, 40, 4), "RGBA")])
def test_encode_png_round_trip(shape, mode):
    a = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    png = encode_png(a)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(png))
    assert img.mode == mode and img.size == (40, 30)
    np.testing.assert_array_equal(np.asarray(img), a)


def test_encode_png_non_contiguous_and_levels():
    a = np.tile(np.arange(256, dtype=np.uint8), (64, 1))[::-1, ::2]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(a)))), a)
    assert len(encode_png(a, compress_level=9)) <= len(encode_png(a, compress_level=0))


def test_encode_png_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        encode_png(np.zeros((4, 4, 2), np.uint8))


def test_png_data_url():
    url = png_data_url(encode_png(np.zeros((2, 2), np.uint8)))
    assert url.startswith("data:image/png;base64,iVBORw0KGgo")
