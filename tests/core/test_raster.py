"""Exact rasterisation of plotly paths: polygons as skimage.draw.polygon, brushes as discs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from skimage.draw import ellipse, polygon

from ril_dash.core.raster import (
    MAX_POINTS,
    parse_svg_path,
    rasterize_brush,
    rasterize_polygon,
)
from ril_dash.errors import EditRefused


# -- parse_svg_path -------------------------------------------------------------------------
def test_parse_plotly_path():
    (p,) = parse_svg_path("M12.3,4L5,6L7,8Z")
    np.testing.assert_array_equal(p, [[12.3, 4], [5, 6], [7, 8]])
    (p,) = parse_svg_path("M1,2L3,4")
    np.testing.assert_array_equal(p, [[1, 2], [3, 4]])
    (p,) = parse_svg_path("M-1.5e1,+.5 L 2 3")
    np.testing.assert_array_equal(p, [[-15, 0.5], [2, 3]])


def test_parse_relative_h_v_and_subpaths():
    (p,) = parse_svg_path("m1,1 l2,0 v3 h-2 z")
    np.testing.assert_array_equal(p, [[1, 1], [3, 1], [3, 4], [1, 4]])
    (p,) = parse_svg_path("M1,1 H5 V2")
    np.testing.assert_array_equal(p, [[1, 1], [5, 1], [5, 2]])
    _, b = parse_svg_path("M0,0L1,0L1,1ZM5,5L6,6")
    np.testing.assert_array_equal(b, [[5, 5], [6, 6]])
    (p,) = parse_svg_path("M0,0 1,0 1,1")  # implicit line-tos
    assert p.shape == (3, 2)
    _, b = parse_svg_path("M2,2L3,3ZL4,4")  # drawing on after Z starts at the sub-path start
    np.testing.assert_array_equal(b, [[2, 2], [4, 4]])
    (p,) = parse_svg_path("M7,8")
    np.testing.assert_array_equal(p, [[7, 8]])


@pytest.mark.parametrize("bad", ["", "   ", "hello", "M1,2L", "M1,2LNaN,3", "M1,nan",
                                  "L1,2", "M1,2C1,2,3,4,5,6", "M1e999,2", "12,3", "M1,2;L3,4",
                                  None, 42])
def test_parse_refuses_garbage(bad):
    with pytest.raises(EditRefused):
        parse_svg_path(bad)


def test_parse_refuses_too_many_points():
    path = "M0,0" + "L1,1" * MAX_POINTS
    with pytest.raises(EditRefused, match="points"):
        parse_svg_path(path)


# -- rasterize_polygon ----------------------------------------------------------------------
def _sk_polygon(v, shape):
    v = np.asarray(v, float)
    m = np.zeros(shape, bool)
    rr, cc = polygon(v[:, 1], v[:, 0], shape)
    m[rr, cc] = True
    return m


def test_polygon_hand_mask():
    got = rasterize_polygon([(1, 1), (3, 1), (3, 2), (1, 2)], (4, 5))
    want = np.zeros((4, 5), bool)
    want[1:3, 1:4] = True  # pixel centres on the outline are included (as skimage)
    np.testing.assert_array_equal(got, want)
    got = rasterize_polygon([(0.5, 0.5), (3.5, 0.5), (3.5, 2.5), (0.5, 2.5)], (4, 5))
    want = np.zeros((4, 5), bool)
    want[1:3, 1:4] = True
    np.testing.assert_array_equal(got, want)


def test_polygon_matches_skimage_random():
    rng = np.random.default_rng(1)
    for it in range(600):
        n = int(rng.integers(1, 10))
        shape = tuple(int(s) for s in rng.integers(1, 25, 2))
        v = rng.uniform(-6, 30, (n, 2))
        if it % 3 == 0:
            v = np.round(v)
        elif it % 3 == 1:
            v = np.round(v * 2) / 2
        np.testing.assert_array_equal(rasterize_polygon(v, shape), _sk_polygon(v, shape),
                                      err_msg=str(v.tolist()))


def test_polygon_outside_and_degenerate():
    shape = (10, 12)
    assert not rasterize_polygon([(20, 20), (30, 20), (30, 30)], shape).any()
    assert not rasterize_polygon([(-9, -9), (-2, -9), (-2, -2)], shape).any()
    big = rasterize_polygon([(-5, -5), (50, -5), (50, 50), (-5, 50)], shape)
    assert big.all()
    part = rasterize_polygon([(-5, -5), (4, -5), (4, 3), (-5, 3)], shape)
    want = np.zeros(shape, bool)
    want[:4, :5] = True
    np.testing.assert_array_equal(part, want)
    for v in ([(2, 3)], [(2, 3), (6, 3)], [(1, 1), (3, 3), (5, 5)], [(1.5, 1.5)] * 4):
        np.testing.assert_array_equal(rasterize_polygon(v, shape), _sk_polygon(v, shape))
    assert not rasterize_polygon(np.zeros((0, 2)), shape).any()
    with pytest.raises(EditRefused):
        rasterize_polygon([(1, np.nan), (2, 2), (3, 1)], shape)


def test_polygon_from_parsed_path():
    (v,) = parse_svg_path("M1,1L6,1L6,4L1,4Z")
    np.testing.assert_array_equal(rasterize_polygon(v, (8, 8)), _sk_polygon(v, (8, 8)))


# -- rasterize_brush ------------------------------------------------------------------------
def _sk_ellipse(x, y, d_r, d_c, shape):
    m = np.zeros(shape, bool)
    rr, cc = ellipse(y, x, d_r / 2, d_c / 2)
    keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
    m[rr[keep], cc[keep]] = True
    return m


def _brute_brush(points, d_r, d_c, shape):
    """Reference: pixel centre strictly within the brush of some segment (float, per pixel)."""
    rows, cols = np.indices(shape, dtype=float)
    pts = np.asarray(points, float)
    segs = [(pts[0], pts[0])] if len(pts) == 1 else list(itertools.pairwise(pts))
    out = np.zeros(shape, bool)
    for a, b in segs:
        u, v = (cols - a[0]) / (d_c / 2), (rows - a[1]) / (d_r / 2)
        dx, dy = (b[0] - a[0]) / (d_c / 2), (b[1] - a[1]) / (d_r / 2)
        dd = dx * dx + dy * dy
        t = np.clip((u * dx + v * dy) / dd, 0, 1) if dd > 0 else 0.0
        out |= (u - t * dx) ** 2 + (v - t * dy) ** 2 < 1
    return out


def test_one_pixel_brush():
    m = rasterize_brush([(3, 5)], 1, 1, (8, 8))
    assert np.argwhere(m).tolist() == [[5, 3]]


def test_brush_hand_mask():
    got = rasterize_brush([(2, 5), (8, 5)], 3, 3, (10, 12))
    want = np.zeros((10, 12), bool)
    want[4:7, 1:10] = True
    np.testing.assert_array_equal(got, want)


def test_brush_single_point_matches_skimage():
    rng = np.random.default_rng(2)
    for it in range(400):
        shape = tuple(int(s) for s in rng.integers(1, 25, 2))
        x, y = rng.uniform(-5, 30, 2)
        d_r, d_c = rng.uniform(0.5, 14, 2)
        if it % 2:
            x, y = np.round([x, y])
            d_r = d_c = float(np.round(d_r))
        np.testing.assert_array_equal(rasterize_brush([(x, y)], d_r, d_c, shape),
                                      _sk_ellipse(x, y, d_r, d_c, shape))


def test_brush_strokes_match_reference():
    rng = np.random.default_rng(3)
    for _ in range(60):
        shape = tuple(int(s) for s in rng.integers(5, 40, 2))
        pts = rng.uniform(-5, 45, (int(rng.integers(1, 8)), 2))
        d_r, d_c = rng.uniform(0.5, 9, 2)
        np.testing.assert_array_equal(rasterize_brush(pts, d_r, d_c, shape),
                                      _brute_brush(pts, d_r, d_c, shape))


def test_brush_outside_clipped_and_huge():
    shape = (10, 10)
    assert not rasterize_brush([(30, 30), (40, 40)], 3, 3, shape).any()
    part = rasterize_brush([(-1, 5)], 3, 3, shape)
    assert np.argwhere(part).tolist() == [[4, 0], [5, 0], [6, 0]]  # sqrt(2) < 1.5
    assert rasterize_brush([(5, 5)], 1e12, np.inf, shape).all()
    assert rasterize_brush([(2, 2), (2, 2), (2, 2)], 1, 1, shape).sum() == 1


@pytest.mark.parametrize("d", [0, -1, np.nan, "x", None])
def test_brush_bad_diameter(d):
    with pytest.raises(EditRefused):
        rasterize_brush([(1, 1)], d, 1, (5, 5))
    with pytest.raises(EditRefused):
        rasterize_brush([(1, 1)], 1, d, (5, 5))


def test_brush_bad_points():
    with pytest.raises(EditRefused):
        rasterize_brush([(1, np.inf)], 1, 1, (5, 5))
    with pytest.raises(EditRefused):
        rasterize_brush([1, 2, 3], 1, 1, (5, 5))
