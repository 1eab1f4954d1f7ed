"""Slice-wise input geometry: placement, orientation, resampling, 2.5D/4D channels, inverse."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ril_dash.core.planes import PLANES, display_stack
from ril_dash.core.volume import Volume
from ril_dash.errors import ModelRunError
from ril_dash.models.preprocess import expected_input_shape, prepare_slices, restore_slices
from tests.models.helpers import REF, input_spec, layouts, manifest, norm_spec

SHAPE = (10, 12, 7)
ORIENTATIONS = [(t, f) for t in (False, True) for f in ([], ["rows"], ["cols"], ["rows", "cols"])]


def _canonical():
    return np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE) % 97 - 20.0


def _oriented(img2d, transpose, flip):
    """Independent formula: transpose, then flip rows / cols of the transposed image."""
    out = img2d.T if transpose else img2d
    if "rows" in flip:
        out = out[::-1, :]
    if "cols" in flip:
        out = out[:, ::-1]
    return out


@pytest.mark.parametrize("layout", ["RAS", "LAS", "PIR", "oblique"])
@pytest.mark.parametrize("plane", PLANES)
def test_resample_none_is_exact_both_ways_for_every_layout_and_orientation(layout, plane):
    canonical = _canonical()
    volume = layouts(canonical)[layout]
    disp = display_stack(canonical, plane)
    indices = [0, disp.shape[0] // 2, disp.shape[0] - 1]
    for transpose, flip in ORIENTATIONS:
        size = disp.shape[1:][::-1] if transpose else disp.shape[1:]
        m = manifest(inp=input_spec(plane=plane, size=list(size), transpose=transpose,
                                    flip=flip))
        batch, geom = prepare_slices(volume, m, indices)
        assert batch.dtype == np.float32 and batch.shape == (3, *size, 1)
        for row, index in enumerate(indices):
            np.testing.assert_array_equal(batch[row, ..., 0],
                                          _oriented(disp[index], transpose, flip))
        restored = restore_slices(batch, geom)
        np.testing.assert_array_equal(restored[..., 0], disp[indices])


def test_pad_uses_the_normalised_slice_minimum_and_crop_is_centred():
    canonical = _canonical()
    volume = Volume(canonical)
    disp = display_stack(canonical, "axial")              # slices of 12 rows x 10 cols
    m = manifest(inp=input_spec(size=[15, 6]),
                 norm=norm_spec(method="window", window=[0, 50], range=[-1.0, 1.0]))
    batch, geom = prepare_slices(volume, m, [3])
    img = disp[3]
    normed = (np.clip(img, 0, 50) - 0) / 50 * 2 - 1
    lowest = normed.flat[np.argmin(img)]
    # rows: 12 → 15 padded 1 above, 2 below; cols: 10 → 6 cropped 2 on each side
    expected = np.full((15, 6), lowest, np.float32)
    expected[1:13, :] = normed[:, 2:8]
    np.testing.assert_allclose(batch[0, ..., 0], expected, atol=1e-6)
    restored = restore_slices(batch, geom, fill=-7.0)[0, ..., 0]
    np.testing.assert_allclose(restored[:, 2:8], normed[:, 2:8], atol=1e-6)
    assert (restored[:, :2] == -7).all() and (restored[:, 8:] == -7).all()


def test_resample_size_is_scipy_zoom_and_restores_blocks_exactly():
    canonical = np.zeros(SHAPE, np.float32)
    canonical[2:6, 3:9, :] = 1.0
    volume = Volume(canonical)
    disp = display_stack(canonical, "axial")[4]                     # 12 x 10
    for transpose, flip in ORIENTATIONS:
        m = manifest(inp=input_spec(size=[18, 25], resample="size", transpose=transpose,
                                    flip=flip))
        batch, geom = prepare_slices(volume, m, [4])
        src = _oriented(disp, transpose, flip)
        zoomed = ndimage.zoom(src, (18 / src.shape[0], 25 / src.shape[1]), order=1,
                              mode="nearest", grid_mode=True)
        np.testing.assert_allclose(batch[0, ..., 0], zoomed, atol=1e-6)
        restored = restore_slices(batch, geom)[0, ..., 0]
        assert restored.shape == disp.shape
        np.testing.assert_array_equal(restored >= 0.5, disp >= 0.5)


def test_resample_spacing_sizes_from_pixel_spacing_then_crops():
    canonical = np.zeros((10, 12, 7), np.float32)
    canonical[4:8, 2:9, :] = 5.0
    volume = Volume(canonical, np.diag([0.8, 0.9, 3.0, 1.0]))       # axial: row 0.9, col 0.8
    m = manifest(inp=input_spec(size=[30, 16], resample="spacing", spacing=[0.45, 0.4]))
    batch, geom = prepare_slices(volume, m, [2, 3])
    assert geom.resampled_shape == (24, 20) and batch.shape == (2, 30, 16, 1)
    m_t = manifest(inp=input_spec(size=[20, 24], resample="spacing", spacing=[0.4, 0.45],
                                  transpose=True))
    _, geom_t = prepare_slices(volume, m_t, [2])
    assert geom_t.oriented_shape == (10, 12) and geom_t.resampled_shape == (20, 24)
    disp = display_stack(canonical, "axial")[[2, 3]]
    restored = restore_slices(batch, geom)[..., 0]
    # columns 0-1 and 8-9 of the display were cropped away (20 → 16 resampled cols, 2 each side)
    np.testing.assert_array_equal((restored >= 2.5)[:, :, 1:9], (disp >= 2.5)[:, :, 1:9])
    assert (restored[:, :, 0] == 0).all()


def test_two_and_a_half_d_channels_repeat_the_edge_slices():
    canonical = _canonical()
    volume = Volume(canonical)
    disp = display_stack(canonical, "coronal")
    last = disp.shape[0] - 1
    m = manifest(inp=input_spec(plane="coronal", size=list(disp.shape[1:]), slices=5))
    batch, _ = prepare_slices(volume, m, [0, 5, last])
    want = {0: [0, 0, 0, 1, 2], 5: [3, 4, 5, 6, 7], last: [last - 2, last - 1, last, last, last]}
    for row, index in enumerate([0, 5, last]):
        for ch, source in enumerate(want[index]):
            np.testing.assert_array_equal(batch[row, ..., ch], disp[source])
    assert expected_input_shape(m) == (*disp.shape[1:], 5)


def test_frames_become_channels_frame_major():
    frames = np.stack([_canonical() + 1000 * t for t in range(3)], axis=-1)
    volume = Volume(frames)
    m = manifest(inp=input_spec(size=[12, 10], slices=3, frames=[2, 0]))
    batch, _ = prepare_slices(volume, m, [3])
    disp = [display_stack(frames[..., t], "axial") for t in range(3)]
    sources = [(2, 2), (2, 3), (2, 4), (0, 2), (0, 3), (0, 4)]
    for ch, (frame, index) in enumerate(sources):
        np.testing.assert_array_equal(batch[0, ..., ch], disp[frame][index])
    with pytest.raises(ModelRunError, match=f"{REF} reads frames \\[2, 0\\].*1 frame"):
        prepare_slices(Volume(_canonical()), m, [3])


def test_volume_scope_gives_the_same_batch_in_chunks_as_in_one_go():
    volume = Volume(_canonical())
    m = manifest(inp=input_spec(size=[12, 10]), norm=norm_spec(method="zscore", scope="volume"))
    whole, _ = prepare_slices(volume, m, range(7))
    parts = [prepare_slices(volume, m, chunk)[0] for chunk in ([0, 1, 2], [3, 4, 5, 6])]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)
    data = _canonical()
    np.testing.assert_allclose(whole[..., 0], (display_stack(data, "axial") - data.mean())
                               / data.std(), atol=1e-5)


def test_bad_indices_and_wrong_output_shapes_are_refused():
    volume = Volume(_canonical())
    m = manifest(inp=input_spec(size=[12, 10]))
    with pytest.raises(ValueError, match="0..6 of the axial plane"):
        prepare_slices(volume, m, [7])
    batch, geom = prepare_slices(volume, m, [1, 2])
    with pytest.raises(ModelRunError, match=REF + r".*\(1, 12, 10, 3\).*needs \(2, 12, 10, "):
        restore_slices(np.zeros((1, 12, 10, 3)), geom)
    with pytest.raises(ModelRunError, match=r"\(2, 10, 12, 1\)"):
        restore_slices(np.zeros((2, 10, 12, 1)), geom)
    assert restore_slices(np.zeros((2, 12, 10, 3)), geom).shape == (2, 12, 10, 3)


def test_nan_voxels_never_reach_the_model():
    data = _canonical()
    data[1, 1, 2] = np.nan
    m = manifest(inp=input_spec(size=[12, 10]), norm=norm_spec(method="zscore"))
    batch, _ = prepare_slices(Volume(data), m, [2])
    assert np.isfinite(batch).all()


def test_orientation_combinations_are_all_distinct():
    """A guard that the orientation test above exercises eight different layouts."""
    img = np.arange(12.0).reshape(3, 4)
    shapes = {_oriented(img, t, f).tobytes() for t, f in ORIENTATIONS}
    assert len(shapes) == 8
