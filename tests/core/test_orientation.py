"""Radiological display of every plane, whatever the file's array order or affine."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from ril_dash.core.volume import PLANES, Volume, load_volume

RAS_VALUE, LPI_VALUE = 1000, 500  # as conftest: right-anterior-superior / left-post.-inferior


def _screen_positions(vol: Volume, plane: str, value: int) -> np.ndarray:
    """(slice, row, col) of every pixel showing ``value``, via get_slice (screen order)."""
    stack = np.stack([vol.get_slice(plane, i) for i in range(vol.n_slices(plane))])
    return np.argwhere(stack == value)


def _centre(vol, plane, value):
    return _screen_positions(vol, plane, value).mean(axis=0)


def test_ras_plus_means_x_right_y_anterior_z_superior():
    # nibabel: RAS+ = first axis increases toward patient Right, then Anterior, then Superior
    assert nib.aff2axcodes(np.eye(4)) == ("R", "A", "S")
    assert nib.aff2axcodes(np.diag([-1, -1, 1, 1])) == ("L", "P", "S")


def test_expected_screen_mapping_for_ras_file(marker_files, nx):
    vol = load_volume(marker_files["RAS"])
    a = nx.marker_array()
    x, y, z = nx.SHAPE
    for k in (0, 5, 12):
        np.testing.assert_array_equal(vol.get_slice("axial", k), a[::-1, ::-1, k].T)
    np.testing.assert_array_equal(vol.get_slice("coronal", 20), a[::-1, 20, ::-1].T)
    np.testing.assert_array_equal(vol.get_slice("sagittal", 16), a[16, ::-1, ::-1].T)
    assert vol.slice_shape("axial") == (y, x)
    assert vol.slice_shape("coronal") == (z, x)
    assert vol.slice_shape("sagittal") == (z, y)
    assert [vol.n_slices(p) for p in PLANES] == [z, y, x]


@pytest.mark.parametrize("plane", PLANES)
def test_marker_at_same_screen_position_in_every_file(marker_files, plane, nx):
    ref = load_volume(marker_files["RAS"])
    for name, path in marker_files.items():
        vol = load_volume(path)
        assert vol.data.shape == (*nx.SHAPE, 1), name
        assert vol.slice_shape(plane) == ref.slice_shape(plane), name
        for value in (RAS_VALUE, LPI_VALUE):
            got = _screen_positions(vol, plane, value)
            want = _screen_positions(ref, plane, value)
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {plane} {value}")


@pytest.mark.parametrize("name", ["RAS", "LAS", "LPS", "PIR", "oblique", "oblique_LPS"])
def test_radiological_convention(marker_files, name):
    vol = load_volume(marker_files[name])
    right, left = RAS_VALUE, LPI_VALUE  # right-anterior-superior vs left-posterior-inferior
    # axial: patient right on screen LEFT, anterior at the TOP
    r, l = _centre(vol, "axial", right), _centre(vol, "axial", left)
    assert r[2] < l[2] and r[1] < l[1]
    # coronal: patient right on screen LEFT, superior at the TOP
    r, l = _centre(vol, "coronal", right), _centre(vol, "coronal", left)
    assert r[2] < l[2] and r[1] < l[1]
    # sagittal: anterior on screen LEFT, superior at the TOP
    r, l = _centre(vol, "sagittal", right), _centre(vol, "sagittal", left)
    assert r[2] < l[2] and r[1] < l[1]
    # slice indices run inferior → superior, posterior → anterior, left → right
    for plane in PLANES:
        assert _centre(vol, plane, right)[0] > _centre(vol, plane, left)[0]


def test_screen_labels():
    vol = Volume(np.zeros((3, 4, 5)), np.diag([-1.0, -1, 1, 1]))
    assert vol.screen_labels("axial") == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert vol.screen_labels("coronal") == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert vol.screen_labels("sagittal") == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    with pytest.raises(ValueError, match="unknown plane"):
        vol.screen_labels("oblique")


def test_orig_axcodes_and_views(marker_files):
    assert load_volume(marker_files["LAS"]).orig_axcodes == ("L", "A", "S")
    assert load_volume(marker_files["PIR"]).orig_axcodes == ("P", "I", "R")
    assert load_volume(marker_files["oblique"]).orig_axcodes == ("R", "A", "S")
    raw = np.zeros((6, 7, 8), np.int16)
    pir = np.array([[0, 0, 1.0, 0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])
    vol = Volume(raw, pir)
    assert vol.orig_axcodes == ("P", "I", "R") and vol.data.shape == (8, 6, 7, 1)
    assert np.shares_memory(vol.data, raw)
    assert np.shares_memory(vol.get_slice("sagittal", 2), raw)
    assert not vol.data.flags.writeable


def test_oblique_gives_warning(marker_files):
    assert any("oblique" in w for w in load_volume(marker_files["oblique"]).warnings)
    assert not load_volume(marker_files["LPS"]).warnings


def test_canonical_affine_matches_nibabel(marker_files):
    for path in marker_files.values():
        vol = load_volume(path)
        canon = nib.as_closest_canonical(nib.load(path))
        np.testing.assert_allclose(vol.canonical_affine, canon.affine, atol=1e-5)
        np.testing.assert_array_equal(vol.data[..., 0], np.asanyarray(canon.dataobj))


@pytest.mark.parametrize("name", ["LPS", "PIR", "oblique_LPS"])
def test_voxel_index_world_round_trip(marker_files, name):
    img = nib.load(marker_files[name])
    raw = np.asanyarray(img.dataobj)
    vol = load_volume(marker_files[name])
    rng = np.random.default_rng(0)
    for plane in PLANES:
        rows, cols = vol.slice_shape(plane)
        for _ in range(10):
            idx = int(rng.integers(vol.n_slices(plane)))
            row, col = int(rng.integers(rows)), int(rng.integers(cols))
            ijk = vol.voxel_index(plane, idx, row, col)
            assert all(isinstance(v, int) for v in ijk)
            assert vol.value_at(plane, idx, row, col) == raw[ijk]
            assert vol.get_slice(plane, idx)[row, col] == raw[ijk]
            world = vol.world_mm(plane, idx, row, col)
            np.testing.assert_allclose(world, (img.affine @ [*ijk, 1])[:3], atol=1e-4)
            # the canonical affine maps the canonical voxel to the same place
            s, r, c = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}[plane]
            canon = [0, 0, 0]
            canon[s] = idx
            canon[r] = vol.data.shape[r] - 1 - row
            canon[c] = vol.data.shape[c] - 1 - col
            np.testing.assert_allclose(world, (vol.canonical_affine @ [*canon, 1])[:3], atol=1e-4)


def test_world_of_markers_is_anatomically_right(marker_files):
    vol = load_volume(marker_files["LPS"])
    pos = _screen_positions(vol, "axial", RAS_VALUE)[0]
    x, y, z = vol.world_mm("axial", *map(int, pos))
    pos = _screen_positions(vol, "axial", LPI_VALUE)[0]
    x2, y2, z2 = vol.world_mm("axial", *map(int, pos))
    assert x > x2 and y > y2 and z > z2  # RAS+ world: right, anterior, superior are larger


def test_out_of_range_indices():
    vol = Volume(np.zeros((3, 4, 5)), np.eye(4))
    with pytest.raises(IndexError):
        vol.get_slice("axial", 5)
    with pytest.raises(IndexError):
        vol.get_slice("axial", 0, frame=1)
    with pytest.raises(IndexError):
        vol.voxel_index("coronal", 0, 5, 0)
    with pytest.raises(IndexError):
        vol.value_at("sagittal", -1, 0, 0)


def test_nifti2_reoriented(tmp_path, nx):
    path = tmp_path / "n2.nii"
    nib.save(nx.reoriented("LPS", klass=nib.Nifti2Image), path)
    vol = load_volume(path)
    ref = Volume(nx.marker_array(), nx.ras_affine())
    assert type(nib.load(path)) is nib.Nifti2Image
    assert vol.orig_axcodes == ("L", "P", "S")
    for plane in PLANES:
        np.testing.assert_array_equal(vol.get_slice(plane, 3), ref.get_slice(plane, 3))


@pytest.mark.parametrize("affine", [np.full((4, 4), np.nan), np.diag([1.0, 0, 1, 1]), np.eye(3)])
def test_volume_rejects_unusable_affine(affine):
    with pytest.raises(ValueError, match="affine"):
        Volume(np.zeros((2, 2, 2)), affine)
