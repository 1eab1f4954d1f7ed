"""Plane geometry shared by every layer: canonical (X, Y, Z) arrays ↔ display slices.

Volumes and annotation arrays are held in canonical RAS+ order ``(X, Y, Z)``. A plane cuts one
canonical axis (:data:`PLANE_AXIS`); the two remaining axes, kept in canonical order, form the
in-plane array ``c2d`` (axial ``A[:, :, k]``, coronal ``A[:, j, :]``, sagittal ``A[i, :, :]``),
which is shown on screen as ``c2d[::-1, ::-1].T`` (radiological convention: every screen axis
runs against its canonical axis). This module is the ONLY place that knows these flips.

Display pixel ``(row, col)`` has its centre at plotly data coordinates ``x = col, y = row``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PLANES",
    "PLANE_AXIS",
    "ROW_COL_AXES",
    "display_shape",
    "display_stack",
    "display_to_canonical",
    "display_view",
    "from_display",
    "plane_axes",
    "plane_mapping",
    "slab_bounds",
    "stack_to_canonical",
    "to_display",
]

PLANES = ("axial", "coronal", "sagittal")
#: canonical axis cut by each plane
PLANE_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
#: canonical axes shown along screen rows and columns
ROW_COL_AXES = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}


def plane_axes(plane: str) -> tuple[int, int, int]:
    """``(slice_axis, row_axis, col_axis)``: the canonical axes of a plane.

    Raises
    ------
    ValueError
        Unknown plane.

    Examples
    --------
    >>> plane_axes("coronal")
    (1, 2, 0)
    """
    if plane not in PLANE_AXIS:
        raise ValueError(f"unknown plane {plane!r}; use one of {', '.join(PLANES)}")
    return (PLANE_AXIS[plane],) + ROW_COL_AXES[plane]


def display_shape(shape, plane: str) -> tuple[int, int]:
    """``(rows, cols)`` of a display slice of ``plane`` cut from a canonical array of ``shape``.

    Examples
    --------
    >>> display_shape((4, 5, 6), "sagittal")
    (6, 5)
    """
    _, r, c = plane_axes(plane)
    return int(shape[r]), int(shape[c])


def _check_index(shape, plane: str, index: int) -> int:
    n = int(shape[plane_axes(plane)[0]])
    if not 0 <= int(index) < n:
        raise IndexError(f"{plane} slice {index} is out of range 0..{n - 1}")
    return int(index)


def to_display(c2d: np.ndarray) -> np.ndarray:
    """In-plane canonical 2D array → display orientation (a view).

    Examples
    --------
    >>> import numpy as np
    >>> to_display(np.array([[1, 2], [3, 4], [5, 6]]))
    array([[6, 4, 2],
           [5, 3, 1]])
    """
    return c2d[::-1, ::-1].T


def from_display(d2d: np.ndarray) -> np.ndarray:
    """Display-oriented 2D array → in-plane canonical order (a view); undoes :func:`to_display`.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.arange(6).reshape(3, 2)
    >>> bool((from_display(to_display(c)) == c).all())
    True
    """
    return d2d.T[::-1, ::-1]


def display_view(array3d: np.ndarray, plane: str, index: int) -> np.ndarray:
    """2D view of slice ``index`` of ``plane`` in display orientation; writes reach ``array3d``.

    Parameters
    ----------
    array3d : ndarray, shape (X, Y, Z)
        Canonical array.
    plane : {'axial', 'coronal', 'sagittal'}
    index : int
        Slice index along the plane's canonical axis.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(24).reshape(2, 3, 4)
    >>> display_view(a, "axial", 0)  # top = most anterior (y = 2), left = right (x = 1)
    array([[20,  8],
           [16,  4],
           [12,  0]])
    >>> display_view(a, "axial", 0)[0, 0] = -1
    >>> int(a[1, 2, 0])
    -1
    """
    axis = plane_axes(plane)[0]
    index = _check_index(array3d.shape, plane, index)
    key = [slice(None)] * 3
    key[axis] = index
    return to_display(array3d[tuple(key)])


def display_stack(array3d: np.ndarray, plane: str) -> np.ndarray:
    """3D view ``(slice, row, col)`` of every display slice of ``plane``.

    ``display_stack(a, p)[i]`` equals ``display_view(a, p, i)``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(24).reshape(2, 3, 4)
    >>> bool((display_stack(a, "coronal")[1] == display_view(a, "coronal", 1)).all())
    True
    """
    s, r, c = plane_axes(plane)
    return np.flip(array3d, (r, c)).transpose(s, r, c)


def stack_to_canonical(stack: np.ndarray, plane: str) -> np.ndarray:
    """Canonical ``(X, Y, Z)`` array of a full display stack of ``plane`` (undoes
    :func:`display_stack`; a view).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(24).reshape(2, 3, 4)
    >>> all(np.array_equal(stack_to_canonical(display_stack(a, p), p), a) for p in PLANES)
    True
    """
    s, r, c = plane_axes(plane)
    return np.flip(np.asarray(stack).transpose(np.argsort((s, r, c))), (r, c))


def slab_bounds(shape, plane: str, index: int, depth: int) -> tuple[int, int]:
    """Half-open ``(start, stop)`` of slices ``index - depth .. index + depth``, clipped.

    Examples
    --------
    >>> slab_bounds((4, 5, 6), "axial", 1, 2)
    (0, 4)
    """
    index = _check_index(shape, plane, index)
    depth = int(depth)
    if depth < 0:
        raise ValueError(f"slab depth must be >= 0, got {depth}")
    n = int(shape[PLANE_AXIS[plane]])
    return max(0, index - depth), min(n, index + depth + 1)


def display_to_canonical(shape, plane: str, index, rows, cols):
    """Canonical ``(x, y, z)`` integer arrays of display pixels ``(rows, cols)`` of a slice.

    No range check beyond the plane name: out-of-range pixels map to out-of-range voxels.

    Examples
    --------
    >>> x, y, z = display_to_canonical((2, 3, 4), "axial", 0, [0], [0])
    >>> int(x[0]), int(y[0]), int(z[0])
    (1, 2, 0)
    """
    s, r, c = plane_axes(plane)
    rows = np.asarray(rows, dtype=np.intp)
    cols = np.asarray(cols, dtype=np.intp)
    rows, cols = np.broadcast_arrays(rows, cols)
    out = [None, None, None]
    out[s] = np.full(rows.shape, int(index), dtype=np.intp)
    out[r] = int(shape[r]) - 1 - rows
    out[c] = int(shape[c]) - 1 - cols
    return tuple(out)


def plane_mapping() -> dict[str, dict]:
    """How each plane maps canonical voxels, for the browser (the three-plane view): the
    ``axes`` (slice, row, column) and whether rows and columns run against their canonical
    axis (``flip``): ``row = shape[row_axis] - 1 - xyz[row_axis]`` when flipped.

    Examples
    --------
    >>> plane_mapping()["coronal"]
    {'axes': [1, 2, 0], 'flip': [True, True]}
    """
    return {plane: {"axes": list(plane_axes(plane)), "flip": [True, True]} for plane in PLANES}


def canonical_to_display(shape, plane: str, xyz) -> tuple[int, int, int]:
    """``(index, row, col)`` of canonical voxel ``xyz`` in ``plane`` (inverse of
    :func:`display_to_canonical`).

    Examples
    --------
    >>> canonical_to_display((2, 3, 4), "axial", (1, 2, 0))
    (0, 0, 0)
    >>> x, y, z = display_to_canonical((5, 6, 7), "coronal", 3, [4], [1])
    >>> canonical_to_display((5, 6, 7), "coronal", (int(x[0]), int(y[0]), int(z[0])))
    (3, 4, 1)
    """
    s, r, c = plane_axes(plane)
    return int(xyz[s]), int(shape[r]) - 1 - int(xyz[r]), int(shape[c]) - 1 - int(xyz[c])
