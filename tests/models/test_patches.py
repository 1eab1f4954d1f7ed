"""3D patches: tiling covers every voxel, axis order, padding, blending back to canonical."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.planes import PLANES, display_stack
from ril_dash.core.volume import Volume
from ril_dash.errors import ModelRunError, PluginError
from ril_dash.models.patches import blend_patches, patch_starts, patch_weights, prepare_patches
from tests.models.helpers import REF, input_spec, layouts, manifest, norm_spec

SHAPE = (13, 9, 11)


def _spec(**kw):
    base = dict(patch=[6, 5, 4], overlap=0.5)
    base.update(kw)
    return manifest(dimension=3, inp=input_spec(**base))


def _data():
    return np.random.default_rng(3).normal(size=SHAPE).astype(np.float32)


@pytest.mark.parametrize("length,size,overlap", [(10, 4, 0.5), (9, 4, 0.0), (4, 4, 0.9),
                                                 (17, 5, 0.25), (30, 7, 0.75), (5, 1, 0.0)])
def test_starts_cover_every_voxel_and_stay_inside(length, size, overlap):
    starts = patch_starts(length, size, overlap)
    covered = np.zeros(length, int)
    for s in starts:
        covered[s:s + size] += 1
    assert covered.min() >= 1 and starts[0] == 0 and starts[-1] == length - size
    assert starts == sorted(set(starts))


@pytest.mark.parametrize("blend", ["gaussian", "mean"])
@pytest.mark.parametrize("plane", PLANES)
def test_identity_outputs_blend_back_to_the_canonical_volume(plane, blend):
    data = _data()
    for layout, volume in layouts(data).items():
        for transpose, flip in [(False, []), (True, ["rows"]), (True, ["rows", "cols"])]:
            m = _spec(plane=plane, transpose=transpose, flip=flip, blend=blend)
            patches, plan = prepare_patches(volume, m)
            out = blend_patches(patches, plan)
            assert out.shape == (*SHAPE, 1), layout
            np.testing.assert_allclose(out[..., 0], data, atol=1e-5)


def test_patch_axes_are_depth_rows_cols_of_the_display_stack():
    data = _data()
    patches, plan = prepare_patches(Volume(data), _spec(plane="coronal", patch=[4, 5, 6]))
    disp = display_stack(data, "coronal")                          # (9, 11, 13)
    for patch, (d, r, c) in zip(patches, plan.starts):
        np.testing.assert_array_equal(patch[..., 0], disp[d:d + 4, r:r + 5, c:c + 6])
    assert patches.shape[1:] == (4, 5, 6, 1)


def test_blending_a_constant_gives_the_constant_and_every_voxel_is_covered():
    for blend in ("gaussian", "mean"):
        patches, plan = prepare_patches(Volume(_data()), _spec(blend=blend, overlap=0.3))
        outputs = np.full((*patches.shape[:4], 2), [0.25, 0.75], np.float32)
        out = blend_patches(outputs, plan)
        np.testing.assert_allclose(out[..., 0], 0.25, rtol=1e-6)
        np.testing.assert_allclose(out[..., 1], 0.75, rtol=1e-6)
    counts = np.zeros(plan.padded_shape, int)
    for d, r, c in plan.starts:
        counts[d:d + 6, r:r + 5, c:c + 4] += 1
    assert counts.min() >= 1


def test_a_volume_smaller_than_the_patch_is_padded_with_its_normalised_minimum():
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 10
    m = manifest(dimension=3, inp=input_spec(patch=[6, 5, 4]),
                 norm=norm_spec(method="scale", scale=2.0, offset=1.0))
    patches, plan = prepare_patches(Volume(data), m)
    assert patches.shape == (1, 6, 5, 4, 1) and plan.oriented_shape == (4, 3, 2)
    disp = display_stack(data, "axial") * 2 + 1                  # (4, 3, 2)
    want = np.full((6, 5, 4), 10 * 2 + 1, np.float32)            # normalised minimum
    want[1:5, 1:4, 1:3] = disp
    np.testing.assert_array_equal(patches[0, ..., 0], want)
    np.testing.assert_allclose(blend_patches(patches, plan)[..., 0], data * 2 + 1)


def test_gaussian_weights_peak_in_the_centre_and_stay_positive():
    w = patch_weights([5, 6, 7], "gaussian")
    assert w.shape == (5, 6, 7) and w.min() >= 1e-3 and w[2, 2:4, 3].min() == w.max()
    np.testing.assert_allclose(w, w[::-1, ::-1, ::-1])
    assert (patch_weights([2, 2, 2], "mean") == 1).all()


def test_frames_are_the_channels():
    frames = np.stack([_data(), _data() * 3], axis=-1)
    patches, plan = prepare_patches(Volume(frames), _spec(frames=[1, 0]))
    np.testing.assert_allclose(blend_patches(patches, plan), frames[..., ::-1], atol=1e-5)


def test_bad_specs_and_wrong_output_shapes_are_refused():
    with pytest.raises(PluginError, match=f"{REF} is a dimension 3 bundle.*resample must be none"):
        prepare_patches(Volume(_data()), _spec(resample="size"))
    with pytest.raises(PluginError, match="input.patch must be"):
        prepare_patches(Volume(_data()), _spec(patch=None))
    patches, plan = prepare_patches(Volume(_data()), _spec())
    with pytest.raises(ModelRunError,
                       match=REF + r".*batch of \d+ patches needs \(\d+, 6, 5, 4, channels\)"):
        blend_patches(patches[:, :, :4], plan)
    with pytest.raises(ModelRunError, match=REF):
        blend_patches(patches[1:], plan)
