"""Mask slots: which bit of the packed annotation array holds which ROI, and which bits are locked.

A series' area annotations are one unsigned-integer array (see :mod:`ril_dash.core.paint`). Its
slot table maps each ROI's mask value (from project.yaml) to a bit number; a value gets a slot
the first time it is painted or imported, the lowest bit still free, and keeps it. The array is
as narrow as its slots allow (uint8 for slots 0–7, uint16 up to 15, ...) and is widened, never
narrowed, when a new slot needs more bits. At most 64 ROIs fit in one series.

The edit rules (:class:`ril_dash.core.paint.Rules`) name locked ROIs by their bits;
:func:`locked_bits` turns the locked mask values into that bit mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ril_dash.errors import EditRefused

__all__ = ["MAX_SLOTS", "bits_dtype", "locked_bits", "slots_dtype", "widen_bits", "with_slots"]

MAX_SLOTS = 64
_DTYPES = (np.uint8, np.uint16, np.uint32, np.uint64)


def bits_dtype(n_bits: int) -> np.dtype:
    """Smallest unsigned dtype that holds ``n_bits`` ROI bits (uint8 .. uint64).

    Examples
    --------
    >>> bits_dtype(3), bits_dtype(9), bits_dtype(33)
    (dtype('uint8'), dtype('uint16'), dtype('uint64'))
    """
    for dt in _DTYPES:
        if n_bits <= np.dtype(dt).itemsize * 8:
            return np.dtype(dt)
    raise ValueError(f"at most {MAX_SLOTS} ROI bits are supported, got {n_bits}")


def slots_dtype(slots: Mapping[int, int]) -> np.dtype:
    """Smallest unsigned dtype that holds every bit of the slot table ``slots`` (value → bit).

    Examples
    --------
    >>> slots_dtype({}), slots_dtype({1: 0, 7: 8}), slots_dtype({2: 40})
    (dtype('uint8'), dtype('uint16'), dtype('uint64'))
    """
    return bits_dtype(max(slots.values(), default=0) + 1)


def with_slots(slots: Mapping[int, int], values: Iterable[int]) -> dict[int, int]:
    """A copy of ``slots`` in which every mask value of ``values`` has a slot: those without
    one get the lowest free bits, in the order given.

    Raises
    ------
    EditRefused
        All 64 slots are taken.

    Examples
    --------
    >>> with_slots({1: 0, 4: 2}, [4, 8, 2])
    {1: 0, 4: 2, 8: 1, 2: 3}
    >>> with_slots({}, [])
    {}
    """
    out = {int(v): int(b) for v, b in slots.items()}
    free = sorted(set(range(MAX_SLOTS)) - set(out.values()), reverse=True)
    for value in values:
        if int(value) in out:
            continue
        if not free:
            raise EditRefused(f"This series already holds {MAX_SLOTS} ROIs, the most one "
                              f"series can hold; ROI value {value} cannot be added to it.")
        out[int(value)] = free.pop()
    return out


def widen_bits(bits: np.ndarray, slots: Mapping[int, int]) -> np.ndarray:
    """``bits`` itself when its dtype holds every slot, else a copy in the narrowest dtype that
    does (never narrower than ``bits``).

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.array([1, 2], np.uint8)
    >>> widen_bits(bits, {1: 0, 2: 1}) is bits
    True
    >>> widen_bits(bits, {1: 0, 2: 1, 3: 8}).dtype, widen_bits(bits.astype(np.uint32), {}).dtype
    (dtype('uint16'), dtype('uint32'))
    """
    dtype = slots_dtype(slots)
    return bits.astype(dtype) if dtype.itemsize > bits.dtype.itemsize else bits


def locked_bits(slots: Mapping[int, int], locked_values: Iterable[int]) -> int:
    """The bit mask of the locked ROIs (by mask value) that have a slot; others are ignored.

    Examples
    --------
    >>> bin(locked_bits({1: 0, 2: 1, 4: 5}, [2, 4, 16]))
    '0b100010'
    """
    mask = 0
    for value in locked_values:
        if int(value) in slots:
            mask |= 1 << int(slots[int(value)])
    return mask
