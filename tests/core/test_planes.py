"""Shared plane geometry: display views, round trips, slabs, display → canonical indices."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.planes import (
    PLANE_AXIS,
    PLANES,
    display_shape,
    display_stack,
    display_to_canonical,
    display_view,
    from_display,
    plane_axes,
    slab_bounds,
    to_display,
)
from ril_dash.core.volume import Volume

SHAPE = (4, 5, 6)


@pytest.fixture
def arr():
    return np.arange(np.prod(SHAPE)).reshape(SHAPE)


@pytest.mark.parametrize("plane", PLANES)
def test_display_view_matches_volume_and_definition(arr, plane):
    vol = Volume(arr)
    axis = PLANE_AXIS[plane]
    for i in range(SHAPE[axis]):
        view = display_view(arr, plane, i)
        np.testing.assert_array_equal(view, vol.get_slice(plane, i))
        np.testing.assert_array_equal(view, np.take(arr, i, axis=axis)[::-1, ::-1].T)
        np.testing.assert_array_equal(view, display_stack(arr, plane)[i])
        assert view.shape == display_shape(SHAPE, plane)


@pytest.mark.parametrize("plane", PLANES)
def test_display_view_writes_through(arr, plane):
    view = display_view(arr, plane, 1)
    assert np.shares_memory(view, arr)
    view[0, 0] = -7
    x, y, z = display_to_canonical(SHAPE, plane, 1, 0, 0)
    assert arr[int(x), int(y), int(z)] == -7


@pytest.mark.parametrize("plane", PLANES)
def test_display_to_canonical_every_pixel(arr, plane):
    axis = PLANE_AXIS[plane]
    index = SHAPE[axis] - 1
    view = display_view(arr, plane, index)
    rows, cols = np.indices(view.shape)
    x, y, z = display_to_canonical(SHAPE, plane, index, rows, cols)
    np.testing.assert_array_equal(arr[x, y, z], view)
    assert (np.stack([x, y, z])[axis] == index).all()


def test_to_from_display_round_trip():
    c = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(to_display(c), c[::-1, ::-1].T)
    np.testing.assert_array_equal(from_display(to_display(c)), c)
    np.testing.assert_array_equal(to_display(from_display(c)), c)


def test_slab_bounds_clipped():
    assert slab_bounds(SHAPE, "axial", 0, 2) == (0, 3)
    assert slab_bounds(SHAPE, "axial", 5, 2) == (3, 6)
    assert slab_bounds(SHAPE, "sagittal", 2, 0) == (2, 3)
    assert slab_bounds(SHAPE, "coronal", 2, 100) == (0, 5)
    with pytest.raises(ValueError):
        slab_bounds(SHAPE, "axial", 1, -1)
    with pytest.raises(IndexError):
        slab_bounds(SHAPE, "axial", 6, 0)


def test_bad_plane_and_index(arr):
    with pytest.raises(ValueError, match="unknown plane"):
        plane_axes("oblique")
    with pytest.raises(IndexError):
        display_view(arr, "sagittal", 4)
    with pytest.raises(IndexError):
        display_view(arr, "sagittal", -1)
