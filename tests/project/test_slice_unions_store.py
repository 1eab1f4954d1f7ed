"""The per-slice ROI unions the store keeps (slice indicator, ROI presence) never go stale.

After every kind of change — strokes, undo, redo, rollback, a slot table that widens the bits
to 16 bits, commits made by another store object (another process) — the unions answered for
the cached state equal a fresh pass over its bits, in every plane.
"""

from __future__ import annotations

import numpy as np
from test_annotation_store import SID, meta, paint, random_box

from ril_dash.core.overlay import slice_ranges
from ril_dash.core.slice_unions import per_slice_union
from ril_dash.project.annotation_store import AnnotationStore

SHAPE = (12, 10, 7)
PLANES = ("axial", "coronal", "sagittal")


def check(state) -> None:
    assert state.unions is not None and state.unions.describes(state.bits)
    for axis, plane in zip((2, 1, 0), PLANES):
        assert np.array_equal(state.unions.of(state.bits, axis),
                              per_slice_union(np.asarray(state.bits), axis)), plane
        assert slice_ranges(state.bits, plane, state.unions) == slice_ranges(state.bits, plane)


def test_unions_follow_every_change(tmp_path):
    store = AnnotationStore(tmp_path / "annotations", checkpoint_every=4)
    s = store.series(SID, SHAPE)
    rng = np.random.default_rng(7)
    check(s.load())  # computed once, then kept
    for i in range(1, 10):
        bits = np.array(s.load().bits)
        d = paint(bits, random_box(rng, SHAPE), value=1 << (i % 3), xor=True)
        s.commit(i - 1, d, meta())
        check(s.load())
    s.undo("ann")
    check(s.load())
    s.undo("ann")
    s.redo("ann")
    check(s.load())
    s.rollback(3, "ann")
    check(s.load())
    # a ninth ROI widens the bits to 16 bits: a new array, new unions
    version = s.load().version
    slots = {**s.load().slots, 9: 8}
    bits = np.array(s.load().bits).astype(np.uint16)
    box = ((2, 5), (1, 4), (3, 4))
    d = paint(bits, box)
    d.after = d.after | np.uint16(1 << 8)
    s.commit(version, d, meta(roi=9), slots=slots)
    state = s.load()
    assert state.bits.dtype == np.uint16
    check(state)
    assert 8 in slice_ranges(state.bits, "axial", state.unions)


def test_commits_of_another_process_and_frames(tmp_path):
    mine = AnnotationStore(tmp_path / "annotations").series(SID, SHAPE)
    check(mine.load())
    other = AnnotationStore(tmp_path / "annotations").series(SID, SHAPE)
    zeros = np.zeros(SHAPE, np.uint8)
    other.commit(0, paint(zeros, ((0, 3), (0, 2), (6, 7)), value=2), meta())
    state = mine.refresh()  # caught up by replaying the other's version
    check(state)
    assert slice_ranges(state.bits, "axial", state.unions) == {1: [[6, 7]]}
    # a part of the array (a frame of a 4D series) is computed directly, never from the cache
    part = state.bits[:, :, 4:7]
    assert not state.unions.describes(part)
    assert slice_ranges(part, "axial", state.unions) == {1: [[2, 3]]}
