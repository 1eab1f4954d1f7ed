"""Progress of the loop: the correction effort spent on model drafts, read from the history,
with the version times fixed (a draft at 10:00, then edits, an undo and a long pause)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from ril_dash.application.effort import correction_effort, effort_by_model
from ril_dash.core.paint import Delta
from ril_dash.errors import PermissionDenied
from ril_dash.project import history
from tests.application.conftest import SERIES, SHAPE, actor

ANA, ROOT = actor("ana"), actor("root", admin=True)
DRAFT = {"user": "ana", "op": "model", "provenance": {"kind": "model", "model": "liver-seg@1.0.0"}}
PAINT = {"user": "ana", "op": "paint", "tool": "brush",
         "provenance": {"kind": "manual", "model": None}}
ERASE = {**PAINT, "op": "erase", "tool": "eraser"}


@pytest.fixture
def clock(monkeypatch):
    """Version times are taken from ``clock.times`` (HH:MM:SS of 2026-12-01, UTC) in order."""

    class Clock:
        times: list[str] = []

        @classmethod
        def now(cls, tz=None):
            hh, mm, ss = map(int, cls.times.pop(0).split(":"))
            return datetime(2026, 12, 1, hh, mm, ss, tzinfo=timezone.utc)

    monkeypatch.setattr(history, "datetime", Clock)
    return Clock


def _commit(services, series, change, meta):
    """Set Liver (bit 0) to ``change(mask)`` of the current mask, as one version."""
    state = services.state(series)
    old = ((state.bits >> 0) & 1).astype(bool) if 1 in state.slots else np.zeros(SHAPE, bool)
    new = old.copy()
    change(new)
    return services.annotations(series).commit(
        state.version, Delta(((0, 8), (0, 8), (0, 4)), old.astype(np.uint8),
                             new.astype(np.uint8)), meta, slots={1: 0})


def _set(box, value=True):
    def change(mask):
        mask[box] = value
    return change


def test_effort_counts_net_voxels_strokes_and_capped_minutes_after_the_draft(services, clock):
    series = SERIES[0]
    clock.times = ["09:00:00", "10:00:00", "10:01:00", "10:03:30", "10:04:00", "11:00:00"]
    _commit(services, series, _set((slice(0, 2), slice(0, 2), 3)), PAINT)  # before: not counted
    _commit(services, series, _set((slice(0, 4), slice(0, 4), 0)), DRAFT)  # v2: 16 voxels
    _commit(services, series, _set((slice(0, 4), slice(0, 2), 1)), PAINT)  # +8
    _commit(services, series, _set((slice(0, 2), slice(0, 2), 0), False), ERASE)  # -4 ...
    services.annotations(series).undo("ana")                               # ... undone
    _commit(services, series, _set((slice(0, 1), slice(0, 2), 0), False), ERASE)  # -2
    effort = correction_effort(services, ANA, series)
    assert effort.as_dict() == {"series": series, "model": "liver-seg@1.0.0", "draft": 2,
                                "current": 6, "voxels_changed": 10, "strokes": 3,
                                # 10:01:00 → 10:03:30 (150 s) → 11:00:00 (capped at 300 s)
                                "minutes": 7.5}
    assert correction_effort(services, ANA, series, "other@1") is None
    assert correction_effort(services, ANA, SERIES[1]) is None  # never drafted


def test_effort_by_model_gives_one_row_per_model_version(services, clock):
    clock.times = ["10:00:00", "10:01:00", "10:03:30", "12:00:00", "12:00:10", "13:00:00"]
    _commit(services, SERIES[0], _set((slice(0, 4), slice(0, 4), 0)), DRAFT)
    _commit(services, SERIES[0], _set((slice(0, 4), slice(0, 2), 1)), PAINT)       # +8
    _commit(services, SERIES[0], _set((slice(0, 2), slice(0, 2), 0), False), ERASE)  # -4
    _commit(services, SERIES[1], _set((slice(0, 4), slice(0, 4), 2)), DRAFT)
    _commit(services, SERIES[1], _set((slice(4, 5), slice(0, 5), 2)), PAINT)       # +5
    newer = {**DRAFT, "provenance": {"kind": "model", "model": "liver-seg@1.1.0"}}
    _commit(services, SERIES[1], _set((slice(0, 8), slice(0, 8), 3)), newer)       # not edited
    assert effort_by_model(services, ROOT) == [
        {"model": "liver-seg@1.0.0", "series": 2, "voxels_changed": 12 + 5 + 64,
         "median_voxels": (12 + 69) / 2, "strokes": 3, "median_strokes": 1.5,
         "minutes": 2.5, "median_minutes": 1.25},
        {"model": "liver-seg@1.1.0", "series": 1, "voxels_changed": 0, "median_voxels": 0,
         "strokes": 0, "median_strokes": 0, "minutes": 0.0, "median_minutes": 0.0}]
    with pytest.raises(PermissionDenied):
        correction_effort(services, actor("nobody"), SERIES[0])
    assert effort_by_model(services, actor("nobody")) == []
