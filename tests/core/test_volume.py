"""Loading NIfTI files into :class:`Volume`: dimensions, dtypes, spacing, bad input, speed."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from ril_dash.core.volume import PLANES, Volume, canonical_shape, load_volume
from ril_dash.errors import InvalidImage, RilDashError


# -- dimensions and dtypes ------------------------------------------------------------------
def test_3d_keeps_int16_and_spacing(save):
    a = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    vol = load_volume(save(a, "a.nii.gz", np.diag([0.5, 0.6, 2.0, 1])))
    assert vol.dtype == np.int16 and vol.data.shape == (4, 5, 6, 1) and vol.n_frames == 1
    np.testing.assert_allclose(vol.spacing, (0.5, 0.6, 2.0), rtol=1e-6)
    assert vol.nbytes == a.nbytes and vol.path.endswith("a.nii.gz") and vol.warnings == []
    np.testing.assert_array_equal(vol.data[..., 0], a)


def test_uncompressed_is_memory_mapped_and_keeps_dtype(save):
    a = np.arange(60, dtype=np.uint16).reshape(3, 4, 5)
    vol = load_volume(save(a, "u.nii"))
    assert vol.dtype == np.uint16
    np.testing.assert_array_equal(vol.data[..., 0], a)


def test_scaled_data_becomes_float32(save, tmp_path):
    img = nib.Nifti1Image(np.array([[[0, 1], [2, 3]]], np.int16), np.eye(4))
    img.header.set_slope_inter(2.0, -1024.0)
    nib.save(img, tmp_path / "s.nii.gz")
    vol = load_volume(tmp_path / "s.nii.gz")
    assert vol.dtype == np.float32
    np.testing.assert_array_equal(vol.data[0, :, :, 0], [[-1024, -1022], [-1020, -1018]])


def test_2d_is_one_axial_slice(save):
    a = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    vol = load_volume(save(a, "two.nii.gz"))
    assert vol.data.shape == (20, 30, 1, 1)
    assert vol.n_slices("axial") == 1 and vol.slice_shape("axial") == (30, 20)
    assert vol.default_plane() == "axial"
    assert vol.voxel_index("axial", 0, 0, 0) == (19, 29, 0)


def test_4d_frames(save):
    a = np.zeros((6, 7, 8, 3), np.int16)
    for t in range(3):
        a[..., t] = t * 10
    vol = load_volume(save(a, "four.nii.gz"))
    assert vol.n_frames == 3 and vol.data.shape == (6, 7, 8, 3)
    for plane in PLANES:
        assert np.all(vol.get_slice(plane, 1, frame=2) == 20)
        assert vol.value_at(plane, 0, 0, 0, frame=1) == 10


@pytest.mark.parametrize("shape,expected", [((5, 6, 7, 1), (5, 6, 7, 1)),
                                            ((5, 6, 7, 1, 1), (5, 6, 7, 1)),
                                            ((5, 6, 7, 1, 3), (5, 6, 7, 3))])
def test_singleton_dims_beyond_third_are_dropped(save, shape, expected):
    vol = load_volume(save(np.ones(shape, np.uint8), "sq.nii.gz"))
    assert vol.data.shape == expected


def test_nifti2(save):
    a = np.random.default_rng(1).normal(size=(5, 6, 7)).astype(np.float32)
    path = save(a, "n2.nii.gz", np.diag([-1.0, 1, 1, 1]), klass=nib.Nifti2Image)
    assert isinstance(nib.load(path), nib.Nifti2Image)
    vol = load_volume(path)
    assert vol.orig_axcodes == ("L", "A", "S") and vol.dtype == np.float32
    np.testing.assert_array_equal(vol.data[..., 0], a[::-1])


# -- spacing ------------------------------------------------------------------------------------
def test_anisotropic_pixel_spacing_and_default_plane(marker_files, nx):
    for path in marker_files.values():
        vol = load_volume(path)
        np.testing.assert_allclose(vol.spacing, nx.SPACING, rtol=1e-5)
        np.testing.assert_allclose(vol.pixel_spacing("axial"), (0.9, 0.8), rtol=1e-5)
        np.testing.assert_allclose(vol.pixel_spacing("coronal"), (3.0, 0.8), rtol=1e-5)
        np.testing.assert_allclose(vol.pixel_spacing("sagittal"), (3.0, 0.9), rtol=1e-5)
        assert vol.default_plane() == "axial"


@pytest.mark.parametrize("spacing,plane", [((3, 0.5, 0.5), "sagittal"), ((0.5, 3, 0.5), "coronal"),
                                           ((0.5, 0.5, 3), "axial"), ((1, 1, 1), "axial"),
                                           ((2, 1, 2), "axial")])
def test_default_plane(spacing, plane):
    assert Volume(np.zeros((4, 4, 4)), np.diag([*spacing, 1])).default_plane() == plane


def test_default_plane_of_permuted_file():
    # stored as PIR: file axis 2 is x (left-right) with fine 0.5 mm; y and z are 3 mm
    affine = np.array([[0, 0, 0.5, 0], [-3.0, 0, 0, 0], [0, -3.0, 0, 0], [0, 0, 0, 1]])
    vol = Volume(np.zeros((4, 5, 6)), affine)
    assert vol.orig_axcodes == ("P", "I", "R")
    assert vol.spacing == (0.5, 3.0, 3.0)
    assert vol.default_plane() in ("axial", "coronal")  # both contain x: 0.5 x 3


@pytest.mark.parametrize("pixdim", [(0.0, 1.0, 1.0), (np.nan, 1.0, 1.0), (1.0, np.inf, 2.0)])
def test_bad_spacing_gives_warning_not_error(save, nx, pixdim):
    path = save(np.ones((4, 5, 6), np.int16), "sp.nii", None)
    img = nib.load(path)
    img.header.set_sform(None, code=0)  # qform only, so the affine comes from pixdim
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6), np.int16), None, img.header), path)
    nx.patch_pixdim(path, pixdim)
    vol = load_volume(path)
    assert any("voxel spacing" in w for w in vol.warnings), vol.warnings
    assert all(np.isfinite(vol.spacing)) and min(vol.spacing) > 0
    assert all(np.isfinite(vol.canonical_affine).ravel())
    assert vol.get_slice("axial", 0).shape == (5, 4)


def test_bad_pixdim_with_good_sform_uses_sform_spacing(save, nx):
    path = save(np.ones((4, 5, 6), np.int16), "sf.nii", np.diag([2.0, 3.0, 4.0, 1]))
    nx.patch_pixdim(path, (np.nan, 3.0, 4.0))
    vol = load_volume(path)
    assert vol.spacing == (2.0, 3.0, 4.0)
    assert any("voxel spacing" in w and "sform" in w for w in vol.warnings), vol.warnings


def test_all_nan_volume_loads_with_warning(save):
    vol = load_volume(save(np.full((4, 5, 6), np.nan, np.float32), "nan.nii.gz"))
    assert any("contains no finite values" in w for w in vol.warnings)
    assert np.isnan(vol.get_slice("axial", 0)).all()


def test_partly_nan_volume_has_no_warning(save):
    a = np.full((4, 5, 6), np.nan, np.float32)
    a[3, 4, 5] = 1.0
    assert load_volume(save(a, "n.nii.gz")).warnings == []


# -- bad input -------------------------------------------------------------------------------
def _assert_invalid(path, *words, **kw):
    with pytest.raises(InvalidImage) as info:
        load_volume(path, **kw)
    msg = str(info.value)
    assert path.name in msg, msg
    for word in words:
        assert word.lower() in msg.lower(), msg
    assert isinstance(info.value, RilDashError)
    return msg


def test_missing_file(tmp_path):
    _assert_invalid(tmp_path / "nope.nii.gz", "does not exist", "check the path")


def test_text_file_named_nii(tmp_path):
    path = tmp_path / "x.nii"
    path.write_text("this is not an image\n" * 20)
    _assert_invalid(path, "not a readable NIfTI")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    _assert_invalid(path, "NIfTI")


def test_truncated_gzip(save, tmp_path):
    rng = np.random.default_rng(0)
    good = save(rng.integers(-1000, 1000, (32, 32, 32)).astype(np.int16), "good.nii.gz")
    raw = good.read_bytes()
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    _assert_invalid(bad, "truncated or corrupt", "again")


def test_gzip_with_garbage(tmp_path):
    bad = tmp_path / "garbage.nii.gz"
    bad.write_bytes(gzip.compress(b"\0" * 100)[:10] + b"garbage" * 50)
    _assert_invalid(bad, "NIfTI")


def test_truncated_uncompressed(save, tmp_path):
    raw = save(np.ones((16, 16, 16), np.float32), "whole.nii").read_bytes()
    bad = tmp_path / "cut.nii"
    bad.write_bytes(raw[: len(raw) - 1000])
    _assert_invalid(bad, "truncated", "bytes")


def test_5d_image(save):
    path = save(np.zeros((4, 4, 4, 2, 2), np.uint8), "five.nii.gz")
    _assert_invalid(path, "has 5 dimensions", "ril_dash shows 2D, 3D and 4D images")


def test_absurd_header_nifti2(tmp_path, nx):
    path = nx.hand_header(tmp_path / "huge.nii", (10**9, 10**9, 10**9))
    _assert_invalid(path, "voxels", "corrupt")


def test_absurd_header_gz_is_refused_before_reading(tmp_path, nx):
    raw = nx.hand_header(tmp_path / "h.nii", (30000, 30000, 30), nifti2=False).read_bytes()
    path = tmp_path / "h.nii.gz"
    path.write_bytes(gzip.compress(raw))
    _assert_invalid(path, "corrupt")  # 27e9 voxels > limit
    _assert_invalid(path, "compressed file has only", max_voxels=10**11)


def test_header_larger_than_uncompressed_file(tmp_path, nx):
    path = nx.hand_header(tmp_path / "big1.nii", (3000, 3000, 30), nifti2=False)
    _assert_invalid(path, "truncated", "needs")


def test_zero_size_dimension(tmp_path, nx):
    path = nx.hand_header(tmp_path / "zero.nii", (0, 5, 5), nifti2=False)
    _assert_invalid(path, "empty")


def test_max_voxels_limit(save):
    path = save(np.zeros((10, 10, 10), np.uint8), "small.nii.gz")
    assert load_volume(path, max_voxels=1000).data.shape == (10, 10, 10, 1)
    _assert_invalid(path, "limit", max_voxels=999)


def test_rgb_is_refused(tmp_path):
    rgb = np.zeros((4, 4, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    path = tmp_path / "rgb.nii.gz"
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), path)
    _assert_invalid(path, "greyscale")


def test_directory(tmp_path):
    folder = tmp_path / "dir.nii"
    folder.mkdir()
    _assert_invalid(folder, "not a file")


# -- thumbnails and speed --------------------------------------------------------------------
@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("max_size", [4, 7, 16, 128])
def test_thumbnails_match_strided_slices(marker_files, plane, max_size):
    vol = load_volume(marker_files["PIR"])
    factor, thumbs = vol.thumbnails(plane, max_size=max_size)
    rows, cols = vol.slice_shape(plane)
    assert factor >= 1 and max(thumbs.shape[1:]) <= max_size or factor == 1
    assert factor == 1 or max(-(-rows // factor), -(-cols // factor)) <= max_size
    assert thumbs.shape[0] == vol.n_slices(plane) and thumbs.flags.c_contiguous
    for i in range(vol.n_slices(plane)):
        np.testing.assert_array_equal(thumbs[i], vol.get_slice(plane, i)[::factor, ::factor])


def test_thumbnail_factor_one_when_small():
    factor, thumbs = Volume(np.zeros((10, 12, 3))).thumbnails("axial")
    assert factor == 1 and thumbs.shape == (3, 12, 10)


# -- canonical shape from the header alone ---------------------------------------------------
PIR = np.array([[0, 0, 0.5, 0], [-3.0, 0, 0, 0], [0, -2.0, 0, 0], [0, 0, 0, 1]])


def _same_shape_as_load(path):
    shape = canonical_shape(path)
    assert shape == load_volume(path).data.shape[:3], path.name
    assert all(type(n) is int for n in shape)
    return shape


def test_canonical_shape_of_reoriented_files(marker_files, nx):
    for path in marker_files.values():  # RAS, LAS, LPS, PIR, oblique RAS / LPS
        assert _same_shape_as_load(path) == nx.SHAPE


@pytest.mark.parametrize("shape,affine,expected", [
    ((20, 30), None, (20, 30, 1)),                                   # 2D
    ((20, 30), np.diag([-1.0, 1, 1, 1]), (20, 30, 1)),               # 2D, LAS
    ((9,), None, (9, 1, 1)),                                         # 1D
    ((6, 7, 8, 3), PIR, (8, 6, 7)),                                  # 4D, permuted
    ((5, 6, 7, 1, 3), np.diag([1.0, -1, -1, 1]), (5, 6, 7)),         # 5D with a singleton
    ((4, 5, 6), np.diag([-1.0, -1, 1, 1]), (4, 5, 6)),               # LPS
])
def test_canonical_shape_matches_load_volume(save, shape, affine, expected):
    path = save(np.zeros(shape, np.int16), "img.nii.gz", affine)
    assert _same_shape_as_load(path) == expected


def test_canonical_shape_when_load_volume_repairs_the_affine(save, nx, tmp_path):
    # qform only (PIR) with an unusable pixdim: load_volume rebuilds the affine from the qform
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((4, 5, 6))
    hdr.set_data_dtype(np.int16)
    hdr.set_qform(PIR, code=1)
    hdr.set_sform(None, code=0)
    path = tmp_path / "q.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), None, hdr), path)
    nx.patch_pixdim(path, (0.0, 3.0, 2.0))
    assert any("voxel spacing" in w for w in load_volume(path).warnings)
    assert _same_shape_as_load(path) == (6, 4, 5)
    # no usable affine at all: shown as RAS
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((4, 5, 6))
    hdr.set_data_dtype(np.int16)
    hdr.set_qform(None, code=0)
    hdr.set_sform(np.array([[0, 0, 1.0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]), code=2)
    path = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), None, hdr), path)
    assert any("no usable orientation" in w for w in load_volume(path).warnings)
    assert _same_shape_as_load(path) == (4, 5, 6)


def test_canonical_shape_reads_no_voxels(save, tmp_path):
    good = save(np.random.default_rng(0).integers(0, 9, (32, 32, 32)).astype(np.int16),
                "g.nii.gz", PIR)
    raw = good.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])  # the header survives, the voxels do not
    assert canonical_shape(cut) == (32, 32, 32)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        load_volume(cut)
    with pytest.raises(InvalidImage, match="does not exist"):
        canonical_shape(tmp_path / "nope.nii.gz")
    with pytest.raises(InvalidImage, match="limit"):
        canonical_shape(good, max_voxels=100)
