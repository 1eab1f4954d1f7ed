"""Load NIfTI images and show them in the radiological convention.

:func:`load_volume` reads a ``.nii`` / ``.nii.gz`` file (NIfTI-1 or NIfTI-2, 1D to 4D) and checks
it before allocating anything, so a bad file raises :class:`~ril_dash.errors.InvalidImage` with a
message that names the file and says what to do. :class:`Volume` holds the voxels re-oriented to
the closest canonical RAS+ axes by axis flips and permutations only (views, no resampling), and
cuts 2D slices in screen order for the three planes:

=========  ==========================  ===========================
plane      screen left → right         screen top → bottom
=========  ==========================  ===========================
axial      patient Right → Left        Anterior → Posterior
coronal    patient Right → Left        Superior → Inferior
sagittal   Anterior → Posterior        Superior → Inferior
=========  ==========================  ===========================

In RAS+ the first axis increases toward the patient's Right, the second toward Anterior, the
third toward Superior, so every screen axis runs *against* its canonical axis (row 0 / column 0 is
the last voxel). The slice index runs along its canonical axis (inferior → superior for axial).
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.affines import obliquity
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import aff2axcodes, inv_ornt_aff, io_orientation
from nibabel.spatialimages import HeaderDataError

from ril_dash.core.planes import PLANES, display_stack, display_to_canonical, plane_axes
from ril_dash.core.voxel_reader import read_voxels
from ril_dash.errors import InvalidImage

__all__ = ["PLANES", "Volume", "canonical_shape", "frame_count", "load_volume"]

_POS, _NEG = ("R", "A", "S"), ("L", "P", "I")
_GZIP_MAX_RATIO = 1100  # deflate cannot expand more than ~1032:1
_OBLIQUE_WARN_RAD = math.radians(2.0)
_READ_ERRORS = (EOFError, zlib.error, OSError, ValueError, struct.error, HeaderDataError)


def _canonical_order(ornt: np.ndarray) -> list[int]:
    """The file axes in canonical (X, Y, Z) order, for an orientation from ``io_orientation``."""
    return [int(i) for i in np.argsort(ornt[:, 0])]


class Volume:
    """An image re-oriented to canonical RAS+ axes, cut into display slices.

    Parameters
    ----------
    data : array_like
        Voxels in the file's array order, 1D to 4D (frames along the 4th axis).
    affine : (4, 4) array_like, optional
        Voxel → world (mm, RAS+) transform of ``data``; identity when omitted.
    path : str or Path, optional
        Where the data came from (used in messages).
    warnings : list of str, optional
        Problems found while loading, shown to the user.

    Attributes
    ----------
    data : ndarray
        Canonical voxels, always 4D ``(X, Y, Z, T)``, read-only, a view of the input when possible.
    affine, canonical_affine : ndarray
        The original affine, and the affine of ``data``.
    spacing : tuple of float
        Voxel size in mm along the canonical X, Y, Z axes.
    n_frames, dtype, orig_axcodes, warnings, nbytes, path
        Frames, voxel dtype, the file's axis codes (e.g. ``('L', 'A', 'S')``), load warnings,
        bytes held, source path.

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((4, 5, 6), np.int16), np.diag([-1.0, 1, 1, 1]))
    >>> v.orig_axcodes, v.data.shape, v.n_slices("axial"), v.slice_shape("axial")
    (('L', 'A', 'S'), (4, 5, 6, 1), 6, (5, 4))
    """

    def __init__(self, data, affine=None, *, path=None, warnings=None):
        arr = np.asarray(data)
        if arr.ndim == 0 or arr.ndim > 4:
            raise ValueError(f"Volume data must be 1D to 4D, got shape {arr.shape}")
        arr = arr.reshape(arr.shape + (1,) * (4 - arr.ndim))
        self.path = None if path is None else str(path)
        self.affine = np.eye(4) if affine is None else np.asarray(affine, dtype=float)
        if self.affine.shape != (4, 4) or not _affine_ok(self.affine):
            raise ValueError("Volume affine must be a finite, invertible 4x4 matrix")
        self.warnings = list(warnings or [])
        self._orig_shape = arr.shape[:3]
        self._ornt = io_orientation(self.affine)
        for axis in range(3):
            if self._ornt[axis, 1] < 0:
                arr = np.flip(arr, axis)
        arr = arr.transpose(_canonical_order(self._ornt) + [3])
        if arr.flags.writeable:
            arr = arr.view()
            arr.flags.writeable = False
        self.data = arr
        self.canonical_affine = self.affine @ inv_ornt_aff(self._ornt, self._orig_shape)
        norms = np.sqrt((self.canonical_affine[:3, :3] ** 2).sum(axis=0))
        self.spacing = tuple(float(s) if np.isfinite(s) and s > 0 else 1.0 for s in norms)
        self.orig_axcodes = tuple(aff2axcodes(self.affine))

    # -- canonical <-> file order (annotations are kept canonical; exports use file order) --
    def to_file_order(self, canonical: np.ndarray) -> np.ndarray:
        """A canonical (X, Y, Z) array re-arranged into the file's voxel order (same shape as
        the file's first three dimensions), e.g. to save a mask aligned with the source.

        Examples
        --------
        >>> v = Volume(np.arange(24).reshape(2, 3, 4), np.diag([-1.0, 1, 1, 1]))  # LAS
        >>> np.array_equal(v.to_file_order(v.data[..., 0]), np.arange(24).reshape(2, 3, 4))
        True
        """
        arr = np.transpose(canonical, np.argsort(_canonical_order(self._ornt)))
        for axis in range(3):
            if self._ornt[axis, 1] < 0:
                arr = np.flip(arr, axis)
        return arr

    def to_canonical(self, file_order: np.ndarray) -> np.ndarray:
        """A 3D array in the file's voxel order re-arranged into canonical (X, Y, Z) order.

        Examples
        --------
        >>> v = Volume(np.zeros((2, 3, 4)), np.diag([-1.0, 1, 1, 1]))
        >>> m = np.arange(24).reshape(2, 3, 4)
        >>> np.array_equal(v.to_file_order(v.to_canonical(m)), m)
        True
        """
        arr = file_order
        for axis in range(3):
            if self._ornt[axis, 1] < 0:
                arr = np.flip(arr, axis)
        return arr.transpose(_canonical_order(self._ornt))

    # -- simple properties --------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames (4th axis); 1 for a 3D image."""
        return int(self.data.shape[3])

    @property
    def dtype(self) -> np.dtype:
        """Voxel dtype as stored (float32 when the header scales the values)."""
        return self.data.dtype

    @property
    def nbytes(self) -> int:
        """Bytes of voxel data held (or mapped)."""
        return int(self.data.nbytes)

    def __repr__(self) -> str:
        return (f"Volume({self.path!r}, shape={self.data.shape}, dtype={self.dtype}, "
                f"axcodes={''.join(self.orig_axcodes)})")

    # -- geometry of the planes ---------------------------------------------------------
    @staticmethod
    def _axes(plane: str) -> tuple[int, int, int]:
        return plane_axes(plane)

    def n_slices(self, plane: str) -> int:
        """Number of slices in ``plane``."""
        return int(self.data.shape[self._axes(plane)[0]])

    def slice_shape(self, plane: str) -> tuple[int, int]:
        """``(rows, cols)`` of a slice of ``plane`` as shown on screen."""
        _, r, c = self._axes(plane)
        return int(self.data.shape[r]), int(self.data.shape[c])

    def pixel_spacing(self, plane: str) -> tuple[float, float]:
        """``(row_mm, col_mm)``: the height and width in mm of one screen pixel of ``plane``."""
        _, r, c = self._axes(plane)
        return self.spacing[r], self.spacing[c]

    def screen_labels(self, plane: str) -> dict[str, str]:
        """Patient-direction letters at the screen edges: ``{'left': 'R', 'right': 'L', ...}``."""
        _, r, c = self._axes(plane)
        return {"left": _POS[c], "right": _NEG[c], "top": _POS[r], "bottom": _NEG[r]}

    def default_plane(self) -> str:
        """The plane with the finest in-plane resolution (ties → axial).

        Planes whose slices are a single row or column (e.g. coronal of a 2D image) are only
        chosen when every plane is like that.
        """
        planes = [p for p in PLANES if min(self.slice_shape(p)) > 1] or list(PLANES)
        return min(planes, key=lambda p: (math.prod(self.pixel_spacing(p)), PLANES.index(p)))

    def _plane_view(self, plane: str, frame: int) -> np.ndarray:
        """3D view ``(slice, row, col)`` of one frame in display order."""
        plane_axes(plane)
        if not 0 <= frame < self.n_frames:
            raise IndexError(f"frame {frame} is out of range 0..{self.n_frames - 1}")
        return display_stack(self.data[..., frame], plane)

    def get_slice(self, plane: str, index: int, frame: int = 0) -> np.ndarray:
        """2D slice of ``plane`` in screen order: row 0 at the top, column 0 at the left.

        A read-only view of :attr:`data` (no copy).

        Examples
        --------
        >>> import numpy as np
        >>> v = Volume(np.arange(24).reshape(2, 3, 4))  # identity affine: RAS
        >>> v.get_slice("axial", 0)  # screen top = anterior (y = 2), left = right (x = 1)
        array([[20,  8],
               [16,  4],
               [12,  0]])
        """
        n = self.n_slices(plane)
        if not 0 <= index < n:
            raise IndexError(f"{plane} slice {index} is out of range 0..{n - 1}")
        return self._plane_view(plane, frame)[index]

    def thumbnails(self, plane: str, frame: int = 0, max_size: int = 128):
        """Every slice of ``plane``, down-sampled by striding so both sides are ``<= max_size``.

        Returns
        -------
        factor : int
            The stride; ``thumbs[i]`` equals ``get_slice(plane, i, frame)[::factor, ::factor]``.
        thumbs : ndarray, shape (n_slices, rows, cols)
            A contiguous copy.

        Examples
        --------
        >>> import numpy as np
        >>> f, t = Volume(np.zeros((300, 200, 10), np.int16)).thumbnails("axial", max_size=128)
        >>> f, t.shape
        (3, (10, 67, 100))
        """
        rows, cols = self.slice_shape(plane)
        factor = max(1, -(-rows // max_size), -(-cols // max_size))
        view = self._plane_view(plane, frame)[:, ::factor, ::factor]
        return factor, np.ascontiguousarray(view)

    # -- screen position → voxel / world ------------------------------------------------
    def _canonical_index(self, plane, index, row, col) -> list[int]:
        s, r, c = self._axes(plane)
        shape = self.data.shape
        for name, value, size in (("slice", index, shape[s]), ("row", row, shape[r]),
                                  ("column", col, shape[c])):
            if not 0 <= int(value) < size:
                raise IndexError(f"{plane} {name} {value} is out of range 0..{size - 1}")
        return [int(v) for v in display_to_canonical(shape[:3], plane, index, row, col)]

    def voxel_index(self, plane: str, index: int, row: int, col: int) -> tuple[int, int, int]:
        """Voxel indices in the original file's array order of a screen pixel.

        Examples
        --------
        >>> import numpy as np
        >>> v = Volume(np.zeros((4, 5, 6)), np.diag([-1.0, 1, 1, 1]))  # LAS
        >>> v.voxel_index("axial", 2, 0, 0)  # top left: most anterior, patient right
        (0, 4, 2)
        """
        canon = self._canonical_index(plane, index, row, col)
        out = []
        for axis in range(3):
            target, flip = int(self._ornt[axis, 0]), self._ornt[axis, 1]
            value = canon[target]
            out.append(value if flip > 0 else self._orig_shape[axis] - 1 - value)
        return tuple(out)

    def world_mm(self, plane: str, index: int, row: int, col: int) -> tuple[float, float, float]:
        """World (scanner RAS+, mm) coordinates of a screen pixel's voxel centre."""
        ijk = self.voxel_index(plane, index, row, col)
        xyz = self.affine @ np.array([*ijk, 1.0])
        return tuple(float(v) for v in xyz[:3])

    def value_at(self, plane: str, index: int, row: int, col: int, frame: int = 0):
        """Voxel value (a Python number) under a screen pixel."""
        if not 0 <= frame < self.n_frames:
            raise IndexError(f"frame {frame} is out of range 0..{self.n_frames - 1}")
        i, j, k = self._canonical_index(plane, index, row, col)
        return self.data[i, j, k, frame].item()


# ---------------------------------------------------------------------------------------
def _cause(exc: BaseException, path: Path) -> str:
    """The text of a library error, its mention of ``path`` reduced to the file name (the
    caller's label says which image; users are not shown absolute paths)."""
    return str(exc).replace(str(path), path.name)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _raw_zooms(img, path: Path) -> np.ndarray:
    """pixdim[1:4] exactly as stored (nibabel silently turns 0 into 1 on load)."""
    try:
        with nib.openers.ImageOpener(str(path)) as fh:
            hdr = type(img.header).from_fileobj(fh, check=False)
        return np.asarray(hdr["pixdim"][1:4], dtype=float)
    except Exception:  # pragma: no cover - header was readable a moment ago
        return np.asarray(img.header.get_zooms()[:3] + (1.0,) * 3, dtype=float)[:3]


def _affine_ok(affine) -> bool:
    if affine is None or not np.all(np.isfinite(affine)):
        return False
    norms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return bool(np.all(norms > 0) and abs(np.linalg.det(affine[:3, :3])) > 1e-12 * norms.prod())


def _all_nonfinite(data: np.ndarray) -> bool:
    """True when no voxel is finite; scans slab by slab and stops at the first finite one."""
    for t in range(data.shape[3]):
        for k in range(data.shape[2]):
            if np.isfinite(data[:, :, k, t]).any():
                return False
    return True


def load_volume(path, *, max_voxels: int = 2_000_000_000 // 2,
                label: str | None = None) -> Volume:
    """Load a NIfTI-1/-2 image (``.nii`` or ``.nii.gz``, 1D to 4D) as a :class:`Volume`.

    The header is checked before any voxel is read: the voxel count against ``max_voxels`` and,
    for uncompressed files, the promised data size against the file size. Unscaled data keeps its
    stored dtype (uncompressed files are memory-mapped); scaled data becomes float32. Singleton
    dimensions beyond the third are dropped, so ``(x, y, z, 1)`` is 3D.

    Parameters
    ----------
    path : str or Path
        The image file.
    max_voxels : int
        Refuse images whose header promises more voxels than this.
    label : str, optional
        How messages name the image (e.g. a series id, so that users are not shown absolute
        paths); default: the file name and its path.

    Returns
    -------
    Volume

    Raises
    ------
    InvalidImage
        Missing, not NIfTI, truncated or corrupt, 5D or more, empty, or absurdly large; the
        message names the file and says what to do. Unusable voxel spacing or orientation is
        not an error: 1 mm / RAS is assumed and a note is added to ``Volume.warnings``.

    Examples
    --------
    >>> import tempfile, os, nibabel as nib, numpy as np
    >>> f = os.path.join(tempfile.mkdtemp(), "ct.nii.gz")
    >>> nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.int16), np.diag([0.5, 0.5, 5, 1])), f)
    >>> v = load_volume(f)
    >>> v.dtype == np.int16, v.spacing, v.default_plane(), v.data.shape
    (True, (0.5, 0.5, 5.0), 'axial', (8, 8, 3, 1))
    """
    path = Path(path)
    name = label or f'"{path.name}" ({path})'
    img, shape, squeezed, gzipped = _open_checked(path, name, max_voxels)
    dtype = np.dtype(img.get_data_dtype())
    n_bytes = math.prod(shape) * dtype.itemsize
    try:
        data = read_voxels(path, img, gzipped)
    except MemoryError:
        raise InvalidImage(f"Image {name} ({n_bytes:,} bytes) does not fit in memory. Crop or "
                           "down-sample it.") from None
    except _READ_ERRORS as exc:
        raise InvalidImage(f"Image {name} is truncated or corrupt ({type(exc).__name__}: "
                           f"{_cause(exc, path)}). Copy or export it again.") from None
    data = np.asarray(data).reshape(squeezed)
    affine, warnings = _display_affine(img, path, name, min(len(shape), 3))
    if data.dtype.kind == "f":
        data4 = data.reshape(data.shape + (1,) * (4 - data.ndim))
        try:
            if _all_nonfinite(data4):
                warnings.append(f"Image {name} contains no finite values (all NaN or infinite); "
                                "it will show as a blank image.")
        except _READ_ERRORS as exc:
            raise InvalidImage(f"Image {name} is truncated or corrupt ({_cause(exc, path)}). "
                               "Copy or export "
                               "it again.") from None
    return Volume(data, affine, path=path, warnings=warnings)


def canonical_shape(path, *, max_voxels: int = 2_000_000_000 // 2,
                    label: str | None = None) -> tuple[int, int, int]:
    """The canonical (X, Y, Z) shape :func:`load_volume` gives ``path``, from its header alone
    (``label`` as for :func:`load_volume`).

    No voxel is read, so this is cheap even for a large compressed image (e.g. to open a
    series' annotations without loading the image).

    Raises
    ------
    InvalidImage
        As :func:`load_volume`, for every problem its header shows.

    Examples
    --------
    >>> import tempfile, os, nibabel as nib, numpy as np
    >>> f = os.path.join(tempfile.mkdtemp(), "pir.nii.gz")
    >>> pir = np.array([[0, 0, 1.0, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]])
    >>> nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), pir), f)
    >>> canonical_shape(f), load_volume(f).data.shape[:3]
    ((6, 4, 5), (6, 4, 5))
    """
    path = Path(path)
    name = label or f'"{path.name}" ({path})'
    img, shape, _, _ = _open_checked(path, name, max_voxels)
    affine, _ = _display_affine(img, path, name, min(len(shape), 3))
    file_shape = (shape + (1, 1))[:3]
    return tuple(file_shape[i] for i in _canonical_order(io_orientation(affine)))


def frame_count(path, *, max_voxels: int = 2_000_000_000 // 2, label: str | None = None) -> int:
    """The number of frames :func:`load_volume` gives ``path`` (1 for a 2D or 3D image), from
    its header alone (raises :class:`InvalidImage` as :func:`canonical_shape` does).

    Examples
    --------
    >>> import tempfile, os, nibabel as nib, numpy as np
    >>> f = os.path.join(tempfile.mkdtemp(), "cine.nii")
    >>> nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 3), np.int16), np.eye(4)), f)
    >>> frame_count(f), load_volume(f).n_frames
    (3, 3)
    """
    path = Path(path)
    _, _, squeezed, _ = _open_checked(path, label or f'"{path.name}" ({path})', max_voxels)
    return int(squeezed[3]) if len(squeezed) > 3 else 1


def _open_checked(path: Path, name: str, max_voxels: int):
    """The image's header checks of :func:`load_volume`: ``(img, shape, squeezed shape,
    gzipped)`` or :class:`InvalidImage`; no voxel is read."""
    if not path.exists():
        raise InvalidImage(f"Image {name} does not exist. Check the path, or rescan the project "
                           "if the file was moved or deleted.")
    if not path.is_file():
        raise InvalidImage(f"Image {name} is not a file. Point to a .nii or .nii.gz file.")
    not_nifti = (f"Image {name} is not a readable NIfTI file. Make sure it is a .nii or .nii.gz "
                 "image (convert DICOM series with dcm2niix) and that it was copied completely.")
    try:
        img = nib.load(str(path))
    except (ImageFileError, HeaderDataError) as exc:
        raise InvalidImage(f"{not_nifti} ({_cause(exc, path)})") from None
    except (*_READ_ERRORS, MemoryError) as exc:
        raise InvalidImage(f"{not_nifti} ({type(exc).__name__}: {_cause(exc, path)})") from None
    if not isinstance(img, nib.Nifti1Pair):  # Nifti1Image, Nifti2Image and pairs
        raise InvalidImage(f"Image {name} is a {type(img).__name__}, not NIfTI. Convert it to "
                           ".nii.gz (e.g. with nibabel or dcm2niix).")

    shape = tuple(int(n) for n in img.shape)
    if not shape or any(n <= 0 for n in shape):
        raise InvalidImage(f"Image {name} is empty: its header gives dimensions {shape}. "
                           "Re-export the image.")
    squeezed = shape[:3] + tuple(n for n in shape[3:] if n != 1)
    if len(squeezed) > 4:
        raise InvalidImage(f"Image {name} has {len(squeezed)} dimensions {squeezed}; ril_dash "
                           "shows 2D, 3D and 4D images. Split it into 3D/4D files.")
    n_vox = math.prod(shape)
    if n_vox > max_voxels:
        raise InvalidImage(f"Image {name} claims {' x '.join(map(str, shape))} = {n_vox:,} "
                           f"voxels, more than the limit of {max_voxels:,}. The header is "
                           "probably corrupt; re-export the image or crop it.")
    dtype = np.dtype(img.get_data_dtype())
    if dtype.kind not in "biuf":
        raise InvalidImage(f"Image {name} stores {dtype} voxels (colour or complex); ril_dash "
                           "shows greyscale images. Convert it to a scalar image.")
    n_bytes = n_vox * dtype.itemsize
    file_size = path.stat().st_size
    gzipped = _is_gzip(path)
    if gzipped:
        if n_bytes > _GZIP_MAX_RATIO * file_size + 1_000_000:
            raise InvalidImage(f"Image {name} claims {n_bytes:,} bytes of voxels but the "
                               f"compressed file has only {file_size:,} bytes; its header is "
                               "corrupt. Re-export the image.")
    elif (str(path).lower().endswith(".nii")
          and (need := int(img.dataobj.offset) + n_bytes) > file_size):
        raise InvalidImage(f"Image {name} is truncated or its header is corrupt: it needs "
                           f"{need:,} bytes but the file has {file_size:,}. Copy or export it "
                           "again.")
    return img, shape, squeezed, gzipped


def _display_affine(img, path: Path, name: str, n_spatial: int) -> tuple[np.ndarray, list[str]]:
    """The affine :func:`load_volume` uses (repaired when spacing or orientation is unusable)
    and the warnings about it; from the header alone."""
    warnings: list[str] = []
    raw = _raw_zooms(img, path)[:n_spatial]
    bad = [i for i, z in enumerate(raw) if not np.isfinite(z) or z == 0]
    affine = img.affine
    if bad:
        if _affine_ok(affine):
            note = "using the spacing of its affine (sform) instead"
        else:
            zooms = [1.0 if i in bad else float(abs(z)) for i, z in enumerate(raw)]
            hdr = img.header.copy()
            hdr.set_zooms(tuple(zooms) + tuple(img.header.get_zooms()[n_spatial:]))
            affine = hdr.get_best_affine()
            note = f"using 1.0 mm along {', '.join('ijk'[i] for i in bad)}"
        warnings.append(f"Image {name} has unusable voxel spacing {tuple(raw.tolist())} in its "
                        f"header; {note}. Distances and volumes may be wrong.")
    if not _affine_ok(affine):
        warnings.append(f"Image {name} has no usable orientation (affine); it is shown as if "
                        "stored in RAS order, so left/right may be wrong.")
        affine = np.diag([*(float(z) if np.isfinite(z) and z > 0 else 1.0
                            for z in (list(img.header.get_zooms()[:3]) + [1.0] * 3)[:3]), 1.0])
    elif np.max(obliquity(affine)) > _OBLIQUE_WARN_RAD:
        warnings.append(f"Image {name} is oblique; it is shown in the closest standard "
                        "orientation without resampling.")
    return affine, warnings
