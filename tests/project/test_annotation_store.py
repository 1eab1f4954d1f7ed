"""The annotation store: round trips, append-only versions, CAS, undo/redo, rollback, ENOSPC."""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import time
from dataclasses import dataclass

import numpy as np
import pytest

from ril_dash.errors import SeriesNotFound, StorageError, VersionConflict
from ril_dash.project import history, history_scan
from ril_dash.project.annotation_store import AnnotationStore, annotated_series

SHAPE = (12, 10, 6)
SID = "P1/ST1/arterial.nii.gz"


@dataclass
class Delta:
    box: tuple
    before: np.ndarray
    after: np.ndarray


def paint(bits: np.ndarray, box, value: int = 1, xor: bool = False) -> Delta:
    sl = tuple(slice(a, b) for a, b in box)
    before = bits[sl].copy()
    after = before ^ np.uint8(value) if xor else before | np.uint8(value)
    return Delta(box, before, after.astype(bits.dtype))


def meta(op="paint", user="ann", **kw):
    return {"user": user, "op": op, "tool": "brush", "roi": 1, **kw}


def random_box(rng, shape=SHAPE):
    lo = [int(rng.integers(0, n - 1)) for n in shape]
    return tuple((a, int(rng.integers(a + 1, n + 1))) for a, n in zip(lo, shape))


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore(tmp_path / "annotations", checkpoint_every=5)


def test_round_trip_exact_and_append_only(store, tmp_path):
    s = store.series(SID, SHAPE)
    assert not s.has_annotations and s.load().version == 0
    rng = np.random.default_rng(0)
    expected = np.zeros(SHAPE, np.uint8)
    for i in range(1, 13):
        box = random_box(rng)
        d = paint(expected, box, value=1 << (i % 3), xor=True)
        expected[tuple(slice(a, b) for a, b in box)] = d.after
        pts = {1: [[i, 0, 0]]} if i % 4 == 0 else None
        assert s.commit(i - 1, d, meta(slices=[{"plane": "axial", "index": box[2][0]}]),
                        points=pts, slots={1: 0, 2: 1, 3: 2}) == i
        mtimes = {p.name: p.stat().st_mtime_ns for p in (s.folder / "v").iterdir()}
        assert len(mtimes) == i
    assert s.has_annotations and annotated_series(store.root) == {SID}
    assert np.array_equal(s.load().bits, expected)
    fresh = AnnotationStore(store.root, checkpoint_every=5).series(SID, SHAPE).load()
    assert fresh.version == 12 and np.array_equal(fresh.bits, expected)
    assert fresh.points == {1: [[12, 0, 0]]} and fresh.slots == {1: 0, 2: 1, 3: 2}
    # append-only: nothing rewritten, every file still there
    assert sorted(p.name for p in (s.folder / "v").iterdir()) == [
        f"{i:08d}.npz" for i in range(1, 13)]
    assert {p.name: p.stat().st_mtime_ns for p in (s.folder / "v").iterdir()} == mtimes
    # checkpoints every 5 versions, and loading from them gives the same state
    assert sorted(p.name for p in (s.folder / "c").iterdir()) == ["00000005.npz", "00000010.npz"]
    for v in (0, 3, 5, 7, 12):
        assert np.array_equal(
            AnnotationStore(store.root, checkpoint_every=1000).series(SID, SHAPE).state_at(v).bits,
            s.state_at(v).bits)
    # nothing written outside root
    assert {p.name for p in tmp_path.iterdir()} == {"annotations"}


def test_versions_listing_and_provenance(store):
    s = store.series(SID, SHAPE)
    bits = np.zeros(SHAPE, np.uint8)
    s.commit(0, paint(bits, ((0, 2), (0, 2), (3, 4))),
             meta(op="fill", tool="model-x", provenance={"kind": "model", "model": "liver@1.2"},
                  slices=[{"plane": "axial", "index": 3, "roi": 1}]), slots={1: 0})
    bits[0:2, 0:2, 3] = 1
    s.commit(1, paint(bits, ((5, 6), (0, 2), (3, 4))),
             meta(slices=[{"plane": "axial", "index": 3, "roi": 1}]))
    infos = s.versions()
    assert [(v.id, v.parent, v.op, v.kind) for v in infos] == [
        (2, 1, "paint", "manual"), (1, 0, "fill", "model")]
    assert infos[1].model == "liver@1.2" and infos[0].time.endswith("+00:00")
    assert s.load().provenance[("axial", 3)] == {"kind": "manual", "model": None, "version": 2,
                                                  "roi": 1}
    s.undo("ann")
    assert s.load().provenance[("axial", 3)]["kind"] == "model"
    s.undo("ann")
    assert s.load().provenance == {}
    s.redo("ann")
    assert s.load().provenance[("axial", 3)]["model"] == "liver@1.2"


def test_cas_conflict_between_objects(tmp_path):
    a = AnnotationStore(tmp_path).series(SID, SHAPE)
    b = AnnotationStore(tmp_path).series(SID, SHAPE)
    zeros = np.zeros(SHAPE, np.uint8)
    assert a.commit(0, paint(zeros, ((0, 1), (0, 1), (0, 1))), meta()) == 1
    files = sorted(os.listdir(a.folder / "v"))
    with pytest.raises(VersionConflict, match="[Rr]eload"):
        b.commit(0, paint(zeros, ((1, 2), (0, 1), (0, 1))), meta())
    assert sorted(os.listdir(a.folder / "v")) == files
    assert b.load().version == 1  # the failed commit caught b up
    assert b.refresh().bits[0, 0, 0] == 1
    assert b.commit(1, paint(b.load().bits, ((1, 2), (0, 1), (0, 1))), meta()) == 2
    assert a.load().version == 1 and a.refresh().version == 2 and a.load().bits[1, 0, 0] == 1
    with pytest.raises(VersionConflict):
        a.undo("ann", parent=1)


def test_bad_inputs(store):
    s = store.series(SID, SHAPE)
    z = np.zeros(SHAPE, np.uint8)
    with pytest.raises(ValueError):
        s.commit(0, paint(z, ((0, 13), (0, 1), (0, 1))), meta())
    with pytest.raises(ValueError):
        s.commit(0, Delta(((0, 1), (0, 1), (0, 1)), np.ones((1, 1, 1), np.uint8),
                          np.zeros((1, 1, 1), np.uint8)), meta())
    with pytest.raises(ValueError):
        s.commit(0, None, meta(op="undo"))
    for bad in ("../x", "/abs", "a\\b", "a/../../b", ""):
        with pytest.raises(SeriesNotFound):
            store.series(bad, SHAPE)
    assert not s.has_annotations


def test_undo_redo_many_steps_and_restart(store):
    s = store.series(SID, SHAPE)
    rng = np.random.default_rng(1)
    states = [s.load().bits.copy()]
    for i in range(1, 9):
        s.commit(i - 1, paint(states[-1], random_box(rng), 1 << (i % 4), xor=True),
                 meta(), points={i: [[i, i, 0]]}, slots={1: 0, 2: 1, 3: 2, 4: 3})
        states.append(s.load().bits.copy())
    assert not s.can_redo
    for k in range(7, 2, -1):  # undo 5 steps
        s.undo("ann")
        assert np.array_equal(s.load().bits, states[k]) and s.load().points == {k: [[k, k, 0]]}
    # restart: a brand-new store object derives the stacks from the log
    s2 = AnnotationStore(store.root, checkpoint_every=5).series(SID, SHAPE)
    assert s2.can_undo and s2.can_redo
    s2.redo("bob")
    s2.redo("bob")
    assert np.array_equal(s2.load().bits, states[5])
    s2.undo("bob")
    assert np.array_equal(s2.load().bits, states[4])
    # a new normal op clears the redo stack
    s2.commit(s2.version, paint(states[4], ((0, 1), (0, 1), (0, 1)), 8, xor=True), meta())
    assert not s2.can_redo and s2.redo("bob") is None
    after_new = s2.load().bits.copy()
    s2.undo("bob")
    assert np.array_equal(s2.load().bits, states[4])
    for _ in range(10):
        s2.undo("bob")
    assert s2.undo("bob") is None and not s2.can_undo
    assert not s2.load().bits.any() and s2.load().points == {}
    while s2.redo("bob") is not None:
        pass
    assert np.array_equal(s2.load().bits, after_new)
    ops = [v.op for v in s2.versions()]
    assert ops.count("undo") == 5 + 1 + 1 + 4 and len(ops) == s2.version


def test_rollback_and_state_at(store):
    s = store.series(SID, SHAPE)
    rng = np.random.default_rng(2)
    snaps = {0: s.load().bits.copy()}
    for i in range(1, 8):
        s.commit(i - 1, paint(snaps[i - 1], random_box(rng), 1, xor=True), meta(),
                 points={1: [[i, 0, 0]]})
        snaps[i] = s.load().bits.copy()
    for v, bits in snaps.items():
        assert np.array_equal(s.state_at(v).bits, bits)
    with pytest.raises(ValueError):
        s.state_at(99)
    assert s.rollback(3, "ann") == 8
    st = s.load()
    assert np.array_equal(st.bits, snaps[3]) and st.points == {1: [[3, 0, 0]]}
    assert len(list((s.folder / "v").iterdir())) == 8 and s.versions()[0].target == 3
    assert np.array_equal(s.state_at(7).bits, snaps[7])  # nothing deleted
    s.undo("ann")  # a rollback is undoable
    assert np.array_equal(s.load().bits, snaps[7])


def test_slot_table_widens_dtype(store):
    s = store.series(SID, SHAPE)
    s.commit(0, paint(np.zeros(SHAPE, np.uint8), ((0, 1), (0, 1), (0, 1)), 1), meta(),
             slots={1: 0})
    slots = {i + 1: i for i in range(10)}
    d = Delta(((0, 1), (0, 1), (0, 1)), np.ones((1, 1, 1), np.uint16),
              np.full((1, 1, 1), 1 << 9, np.uint16))
    s.commit(1, d, meta(roi=10), slots=slots)
    fresh = AnnotationStore(store.root).series(SID, SHAPE).load()
    assert fresh.bits.dtype == np.uint16 and fresh.bits[0, 0, 0] == 512 and fresh.slots == slots


@pytest.mark.parametrize("where", ["write", "fsync", "link"])
def test_enospc_leaves_previous_version_intact(store, monkeypatch, where):
    s = store.series(SID, SHAPE)
    s.commit(0, paint(np.zeros(SHAPE, np.uint8), ((0, 3), (0, 3), (0, 3))), meta())
    before = sorted(os.listdir(s.folder / "v"))

    def boom(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "write":
        real = np.savez_compressed

        def partial(fh, **arrays):
            fh.write(b"PK\x03\x04 partial")
            boom()
        monkeypatch.setattr(np, "savez_compressed", partial)
        assert real is not None
    else:
        monkeypatch.setattr(history.os, where, boom)
    with pytest.raises(StorageError, match="disk is full"):
        s.commit(1, paint(s.load().bits, ((5, 6), (5, 6), (5, 6))), meta())
    monkeypatch.undo()
    assert sorted(os.listdir(s.folder / "v")) == before  # no stray temp, no new version
    assert s.load().version == 1 and s.load().bits[5, 5, 5] == 0
    fresh = AnnotationStore(store.root).series(SID, SHAPE)
    assert fresh.load().version == 1 and fresh.load().bits[:3, :3, :3].all()
    assert s.commit(1, paint(s.load().bits, ((5, 6), (5, 6), (5, 6))), meta()) == 2


def test_stray_temp_files_are_ignored_and_cleaned(store):
    s = store.series(SID, SHAPE)
    s.commit(0, paint(np.zeros(SHAPE, np.uint8), ((0, 1), (0, 1), (0, 1))), meta())
    (s.folder / "v" / ".00000002.abc.npz").write_bytes(b"garbage")
    (s.folder / "c" / ".00000005.xyz.npz").write_bytes(b"garbage")
    fresh = AnnotationStore(store.root).series(SID, SHAPE)
    assert fresh.load().version == 1
    assert os.listdir(s.folder / "v") == ["00000001.npz"] and os.listdir(s.folder / "c") == []
    assert fresh.commit(1, paint(fresh.load().bits, ((1, 2), (0, 1), (0, 1))), meta()) == 2


def _race_worker(root: str, p: int, n: int, q) -> None:
    s = AnnotationStore(root, checkpoint_every=20).series(SID, SHAPE)
    conflicts = 0
    for i in range(n):
        box = random_box(np.random.default_rng(1000 * p + i))
        while True:
            st = s.refresh()
            try:
                s.commit(st.version, paint(st.bits, box, 1 << p, xor=True),
                         meta(user=f"p{p}", step=i))
                break
            except VersionConflict:
                conflicts += 1
    q.put(conflicts)


@pytest.mark.slow
def test_multiprocess_race(tmp_path):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(str(tmp_path), p, 50, q)) for p in range(4)]
    t0 = time.perf_counter()
    for pr in procs:
        pr.start()
    conflicts = [q.get(timeout=120) for _ in procs]
    for pr in procs:
        pr.join(60)
        assert pr.exitcode == 0
    print(f"\n4×50 racing commits: {time.perf_counter() - t0:.2f} s, conflicts {sum(conflicts)}")
    s = AnnotationStore(tmp_path).series(SID, SHAPE)
    infos = s.versions()
    assert [v.id for v in infos] == list(range(200, 0, -1))
    assert all(v.parent == v.id - 1 for v in infos)
    seen = {(v.user, history.read_version(s.folder / "v" / f"{v.id:08d}.npz",
                                          arrays=False).meta["step"]) for v in infos}
    assert seen == {(f"p{p}", i) for p in range(4) for i in range(50)}
    expected = np.zeros(SHAPE, np.uint8)  # xor is commutative: any commit order gives this
    for p in range(4):
        for i in range(50):
            box = random_box(np.random.default_rng(1000 * p + i))
            expected[tuple(slice(a, b) for a, b in box)] ^= np.uint8(1 << p)
    assert np.array_equal(s.load().bits, expected)


# ------------------------------------------------------------------ workflow state and guards
def _to(pool, owner=None, user="ann", label=None):
    return lambda current: {"user": user, "workflow": {"pool": pool, "owner": owner},
                            "label": label, "from": current}


def test_transition_versions_carry_the_workflow_state(store):
    s = store.series(SID, SHAPE)
    assert s.load().workflow is None and not s.folder.exists()
    assert s.commit_transition(_to("a", "ann", label="acquire a by ann")) == 1  # creates folder
    s.commit(1, paint(s.load().bits, ((0, 2), (0, 2), (0, 1))), meta(), slots={1: 0})
    assert s.commit_transition(_to("b", label="assign a → b by ann")) == 3
    st = s.load()
    assert st.workflow == {"pool": "b", "owner": None} and st.bits.sum() == 4
    infos = s.versions()
    assert [(v.op, v.label) for v in infos] == [("transition", "assign a → b by ann"),
                                                ("paint", None),
                                                ("transition", "acquire a by ann")]
    meta3 = history.read_version(s.folder / "v" / "00000003.npz").meta
    assert meta3["from"] == {"pool": "a", "owner": "ann"} and meta3["parent"] == 2
    # transitions are not undoable: undo takes back the paint, redo re-applies it
    assert s.undo("ann") == 4 and s.load().bits.sum() == 0 and s.undo("ann") is None
    assert s.redo("ann") == 5 and s.load().bits.sum() == 4
    # rolling back to before every transition leaves the workflow state alone
    assert s.rollback(0, "ann") == 6 and s.load().bits.sum() == 0
    assert s.load().workflow == {"pool": "b", "owner": None}
    assert s.state_at(1).workflow == {"pool": "a", "owner": "ann"} and s.state_at(0).workflow is None
    fresh = AnnotationStore(store.root).series(SID, SHAPE)
    assert fresh.load().workflow == {"pool": "b", "owner": None}
    summary = history_scan.read_summaries(store.root)[SID]
    assert summary["workflow"] == {"pool": "b", "owner": None} and summary["version"] == 6


def test_transition_refused_by_decide_writes_nothing(store):
    s = store.series(SID, SHAPE)
    s.commit_transition(_to("a", "ann"))

    def refuse(current):
        assert current == {"pool": "a", "owner": "ann"}
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        s.commit_transition(refuse)
    for bad in ({"pool": 3}, {"pool": "a", "owner": 5}, None):
        with pytest.raises(ValueError, match="transition needs"):
            s.commit_transition(lambda current, bad=bad: {"user": "x", "workflow": bad})
    with pytest.raises(ValueError, match="commit_transition"):
        s.commit(1, None, meta(op="transition"))
    with pytest.raises(ValueError, match="commit_transition"):
        s.commit(1, None, meta(workflow={"pool": "b", "owner": None}))
    assert os.listdir(s.folder / "v") == ["00000001.npz"] and s.refresh().version == 1


def test_workflow_state_survives_checkpoints(tmp_path):
    store = AnnotationStore(tmp_path, checkpoint_every=4)
    s = store.series(SID, SHAPE)
    s.commit_transition(_to("a", "ann"))
    for i in range(2, 11):
        s.commit(i - 1, paint(s.load().bits, ((i % 12, i % 12 + 1), (0, 1), (0, 1)), xor=True),
                 meta())
    assert sorted(os.listdir(s.folder / "c")) == ["00000004.npz", "00000008.npz"]
    for v in (1, 2, 3):  # the transition is known from the checkpoints only
        (s.folder / "v" / f"{v:08d}.npz").unlink()
    fresh = AnnotationStore(tmp_path, checkpoint_every=4).series(SID, SHAPE)
    assert fresh.load().workflow == {"pool": "a", "owner": "ann"} and fresh.version == 10
    assert history.latest_workflow(s.folder) == {"pool": "a", "owner": "ann"}


@pytest.mark.parametrize("action", ["commit", "texts", "undo", "redo", "rollback"])
def test_guard_refusal_writes_nothing(store, action):
    s = store.series(SID, SHAPE)
    s.commit(0, paint(s.load().bits, ((0, 2), (0, 2), (0, 1))), meta(), slots={1: 0})
    s.commit(1, paint(s.load().bits, ((3, 4), (0, 2), (0, 1))), meta())
    s.undo("ann")
    s.commit_transition(_to("a", "bob"))
    seen = []

    def guard(workflow):
        seen.append(workflow)
        raise PermissionError("held by bob")

    files, state = sorted(os.listdir(s.folder / "v")), s.load()
    calls = {"commit": lambda: s.commit(4, paint(s.load().bits, ((5, 6), (0, 1), (0, 1))), meta(),
                                        guard=guard),
             "texts": lambda: s.commit(4, None, meta(op="text"), texts={"a": "b"}, guard=guard),
             "undo": lambda: s.undo("ann", guard=guard),
             "redo": lambda: s.redo("ann", guard=guard),
             "rollback": lambda: s.rollback(0, "ann", guard=guard)}
    with pytest.raises(PermissionError):
        calls[action]()
    assert seen == [{"pool": "a", "owner": "bob"}]
    assert sorted(os.listdir(s.folder / "v")) == files
    fresh = AnnotationStore(store.root).series(SID, SHAPE).load()
    assert fresh.version == state.version == 4 and np.array_equal(fresh.bits, state.bits)
    assert fresh.texts == {} and fresh.workflow == {"pool": "a", "owner": "bob"}
    # a guard that lets it through sees the state after catching up with other writers
    AnnotationStore(store.root).series(SID, SHAPE).commit_transition(_to("a", "ann"))
    seen.clear()
    assert s.undo("ann", guard=seen.append) == 6 and seen == [{"pool": "a", "owner": "ann"}]
