"""Mask slots: allocation of ROI bits, widening of the packed array, locked bit masks."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.mask_slots import (
    MAX_SLOTS,
    bits_dtype,
    locked_bits,
    slots_dtype,
    widen_bits,
    with_slots,
)
from ril_dash.errors import EditRefused


def test_bits_dtype_bounds():
    assert [bits_dtype(n) for n in (0, 8, 9, 16, 17, 32, 33, 64)] == [
        np.uint8, np.uint8, np.uint16, np.uint16, np.uint32, np.uint32, np.uint64, np.uint64]
    with pytest.raises(ValueError, match="at most 64"):
        bits_dtype(65)


def test_slots_dtype_follows_the_highest_bit():
    assert slots_dtype({}) == np.uint8 and slots_dtype({5: 7}) == np.uint8
    assert slots_dtype({5: 8}) == np.uint16 and slots_dtype({1: 0, 9: 31}) == np.uint32
    assert slots_dtype({1: 63}) == np.uint64


def test_with_slots_fills_the_lowest_free_bits_and_keeps_existing_ones():
    slots = {10: 0, 20: 2, 30: 3}
    out = with_slots(slots, [20, 40, 50, 40])
    assert out == {10: 0, 20: 2, 30: 3, 40: 1, 50: 4}
    assert slots == {10: 0, 20: 2, 30: 3}  # the input is not changed
    assert with_slots(slots, []) == slots and with_slots(slots, []) is not slots


def test_with_slots_refuses_a_65th_roi():
    full = {v: v - 1 for v in range(1, MAX_SLOTS + 1)}
    assert with_slots(full, [5]) == full
    with pytest.raises(EditRefused, match="already holds 64 ROIs"):
        with_slots(full, [1000])
    almost = {v: v - 1 for v in range(1, MAX_SLOTS)}
    assert with_slots(almost, [1000])[1000] == 63


def test_widen_bits_widens_keeps_values_and_never_narrows():
    bits = np.array([[[0, 1, 255]]], np.uint8)
    same = widen_bits(bits, {1: 7})
    assert same is bits
    wide = widen_bits(bits, {1: 0, 2: 16})
    assert wide.dtype == np.uint32 and wide.tolist() == bits.tolist()
    wider = np.zeros((1, 1, 1), np.uint64)
    assert widen_bits(wider, {1: 0}) is wider


def test_locked_bits_counts_only_values_with_a_slot():
    slots = {1: 0, 2: 1, 8: 7, 9: 40}
    assert locked_bits(slots, []) == 0
    assert locked_bits(slots, [2, 8]) == 0b10000010
    assert locked_bits(slots, [9, 77]) == 1 << 40
