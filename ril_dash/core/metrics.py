"""Overlap of two masks: Dice and Jaccard per slice and per volume.

The scores of two boolean masks ``a`` and ``b`` of one shape are

- Dice ``2 |a ∩ b| / (|a| + |b|)`` and
- Jaccard ``|a ∩ b| / |a ∪ b|`` (``= Dice / (2 - Dice)``),

computed for each slice along one axis (a plane's slices: the axis it cuts, see
:data:`ril_dash.core.planes.PLANE_AXIS`) and for the *volume*, i.e. all the selected slices
together.

**Which slices.** By default the slices where either mask is non-empty; or the slice indices
given (a list or a ``range``), or ``"all"``.

**Both empty.** Two empty masks agree perfectly, so a slice where both are empty scores
Dice = Jaccard = 1.0 and is *flagged* (``both_empty``). Such slices are not in the default
selection, so they inflate no mean; they appear only when asked for by index (or ``"all"``).
When every selected slice is empty in both masks (e.g. both masks empty), the volume scores are
1.0 and :attr:`OverlapScores.volume_both_empty` is True. With the default selection the volume
scores equal the whole-volume scores, since the slices left out add nothing to either mask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["OverlapScores", "dice_jaccard", "overlap_scores", "select_slices"]

#: the selections :func:`select_slices` understands besides explicit indices
SELECTIONS = ("either", "all")


@dataclass(frozen=True)
class OverlapScores:
    """Per-slice and volume overlap of two masks (see :func:`overlap_scores`).

    The per-slice arrays are aligned with ``slices`` (the selected indices, ascending);
    ``size_a``, ``size_b`` and ``intersection`` are voxel counts.
    """

    axis: int
    slices: np.ndarray
    size_a: np.ndarray
    size_b: np.ndarray
    intersection: np.ndarray
    dice: np.ndarray
    jaccard: np.ndarray
    both_empty: np.ndarray
    volume_dice: float
    volume_jaccard: float
    volume_both_empty: bool

    def rows(self) -> list[dict]:
        """One plain dict per selected slice (``index``, counts, scores, ``both_empty``)."""
        return [{"index": int(i), "size_a": int(na), "size_b": int(nb),
                 "intersection": int(ni), "dice": float(d), "jaccard": float(j),
                 "both_empty": bool(e)}
                for i, na, nb, ni, d, j, e in zip(self.slices, self.size_a, self.size_b,
                                                  self.intersection, self.dice, self.jaccard,
                                                  self.both_empty)]


def dice_jaccard(size_a, size_b, intersection) -> tuple[np.ndarray, np.ndarray]:
    """Dice and Jaccard from voxel counts (scalars or arrays); both empty → 1.0.

    Examples
    --------
    >>> d, j = dice_jaccard([4, 0, 3], [2, 0, 0], [2, 0, 0])
    >>> d.round(4).tolist(), j.round(4).tolist()
    ([0.6667, 1.0, 0.0], [0.5, 1.0, 0.0])
    """
    na, nb, ni = (np.asarray(v, dtype=np.float64) for v in (size_a, size_b, intersection))
    total, union = na + nb, na + nb - ni
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(total > 0, 2 * ni / total, 1.0)
        jaccard = np.where(union > 0, ni / union, 1.0)
    return dice, jaccard


def _per_slice_counts(a: np.ndarray, b: np.ndarray, axis: int):
    others = tuple(i for i in range(a.ndim) if i != axis)
    return (np.count_nonzero(a, axis=others), np.count_nonzero(b, axis=others),
            np.count_nonzero(a & b, axis=others))


def _check_masks(a, b, axis: int) -> tuple[np.ndarray, np.ndarray, int]:
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"the two masks differ in shape: {a.shape} and {b.shape}; compare "
                         "annotations of the same series")
    if a.ndim < 2:
        raise ValueError(f"masks need at least 2 dimensions to have slices, got {a.ndim}")
    if not -a.ndim <= int(axis) < a.ndim:
        raise ValueError(f"axis {axis} is out of range for {a.ndim}-dimensional masks")
    return a, b, int(axis) % a.ndim


def select_slices(a, b, axis: int, which: str | Iterable[int] | None = None) -> np.ndarray:
    """The slice indices along ``axis`` that ``which`` selects, ascending and unique.

    Parameters
    ----------
    a, b : array_like of bool
        The two masks (same shape).
    axis : int
        The axis whose indices are the slices.
    which : {None, 'either', 'all'} or iterable of int
        None or ``"either"``: the slices where either mask is non-empty; ``"all"``: every
        slice; otherwise the given indices (a list, a ``range``, …).

    Raises
    ------
    ValueError
        An unknown selection word, or an index outside ``0 .. n - 1``.

    Examples
    --------
    >>> a = np.zeros((2, 2, 5), bool); a[0, 0, 1] = True
    >>> b = np.zeros((2, 2, 5), bool); b[1, 1, 3] = True
    >>> select_slices(a, b, 2).tolist(), select_slices(a, b, 2, range(2, 4)).tolist()
    ([1, 3], [2, 3])
    """
    a, b, axis = _check_masks(a, b, axis)
    n = a.shape[axis]
    if which is None or (isinstance(which, str) and which == "either"):
        others = tuple(i for i in range(a.ndim) if i != axis)
        return np.flatnonzero(a.any(axis=others) | b.any(axis=others))
    if isinstance(which, str):
        if which != "all":
            raise ValueError(f"unknown slice selection {which!r}: use one of "
                             f"{', '.join(SELECTIONS)} or a list of slice indices")
        return np.arange(n)
    try:
        chosen = np.unique(np.asarray(list(which), dtype=np.int64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"slice selection must be whole numbers, got {which!r}") from exc
    bad = chosen[(chosen < 0) | (chosen >= n)]
    if bad.size:
        raise ValueError(f"slice indices {bad.tolist()} are outside 0..{n - 1}; choose slices "
                         "that exist")
    return chosen


def overlap_scores(a, b, axis: int, slices: str | Iterable[int] | None = None
                   ) -> OverlapScores:
    """Dice and Jaccard of masks ``a`` and ``b`` per slice along ``axis`` and over the selected
    slices together.

    Parameters
    ----------
    a, b : array_like of bool
        Masks of the same shape (nonzero = inside).
    axis : int
        The slice axis (for a plane of a canonical volume: ``PLANE_AXIS[plane]``).
    slices : {None, 'either', 'all'} or iterable of int
        Which slices (see :func:`select_slices`); default: where either mask is non-empty.

    Returns
    -------
    OverlapScores
        Both-empty slices score 1.0 and are flagged; the volume scores are 1.0 with
        ``volume_both_empty`` when the selected slices hold no voxel of either mask.

    Examples
    --------
    >>> a = np.zeros((4, 4, 3), bool); b = np.zeros((4, 4, 3), bool)
    >>> a[:2, :2, 0] = True; b[:2, :1, 0] = True   # slice 0: 4 vs 2 voxels, 2 shared
    >>> a[0, 0, 2] = True                           # slice 2: only in a
    >>> s = overlap_scores(a, b, axis=2)
    >>> s.slices.tolist(), s.dice.round(4).tolist(), s.jaccard.tolist()
    ([0, 2], [0.6667, 0.0], [0.5, 0.0])
    >>> round(s.volume_dice, 4), s.volume_jaccard, s.volume_both_empty
    (0.5714, 0.4, False)
    >>> e = overlap_scores(a, b, axis=2, slices=[1])
    >>> e.dice.tolist(), e.both_empty.tolist(), e.volume_dice, e.volume_both_empty
    ([1.0], [True], 1.0, True)
    """
    a, b, axis = _check_masks(a, b, axis)
    chosen = select_slices(a, b, axis, slices)
    na, nb, ni = (c[chosen] for c in _per_slice_counts(a, b, axis))
    dice, jaccard = dice_jaccard(na, nb, ni)
    vol_a, vol_b, vol_i = int(na.sum()), int(nb.sum()), int(ni.sum())
    vol_dice, vol_jaccard = dice_jaccard(vol_a, vol_b, vol_i)
    return OverlapScores(axis, chosen, na, nb, ni, dice, jaccard, (na + nb) == 0,
                         float(vol_dice), float(vol_jaccard), vol_a + vol_b == 0)
