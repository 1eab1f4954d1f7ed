"""A version file that cannot be read (truncated, zeroed, foreign): the series opens read-only
as of its last readable version, every write is refused naming the file, every store instance
(another server process) agrees, and an admin's repair rolls it forward keeping everything."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from ril_dash.errors import DamagedAnnotations
from ril_dash.project.annotation_store import AnnotationStore

SHAPE = (8, 6, 4)
SID = "P1/ST1/arterial.nii.gz"
FILE2 = "P1/ST1/arterial.nii.gz.ril/v/00000002.npz"


@dataclass
class Delta:
    box: tuple
    before: np.ndarray
    after: np.ndarray


def paint(series, value: int, box=((0, 4), (0, 3), (1, 2))) -> int:
    state = series.load()
    sl = tuple(slice(a, b) for a, b in box)
    after = np.full(state.bits[sl].shape, value, state.bits.dtype)
    return series.commit(state.version, Delta(box, state.bits[sl].copy(), after),
                         {"user": "ann", "op": "paint", "roi": 1}, slots={1: 0, 2: 1})


def truncate(series, version: int) -> None:
    path = series.folder / "v" / f"{version:08d}.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def root(tmp_path):
    return tmp_path / "annotations"


@pytest.fixture
def first(root):
    """The series with two versions (ROI 1 painted, then ROI 1 and 2), as one process sees it."""
    series = AnnotationStore(root).series(SID, SHAPE)
    assert paint(series, 1) == 1 and paint(series, 3, ((2, 6), (1, 4), (1, 3))) == 2
    return series


def test_a_truncated_newest_version_opens_read_only_at_the_last_good_one(first, root):
    good = first.state_at(1).bits.copy()
    assert not np.array_equal(good, first.load().bits)
    other = AnnotationStore(root).series(SID, SHAPE)  # another process, series cached too
    assert other.load().version == 2
    truncate(first, 2)
    for series in (first, other, AnnotationStore(root).series(SID, SHAPE)):  # + a fresh one
        damage = series.damage
        assert (damage.version, damage.file, damage.readable_version) == (2, FILE2, 1)
        assert "BadZipFile" in damage.reason and FILE2 in damage.message()
        assert "ril-dash repair PROJECT_DIR P1/ST1/arterial.nii.gz" in damage.message()
        state = series.refresh()
        assert state.version == 1 and np.array_equal(state.bits, good)
        assert np.array_equal(series.load().bits, good)
        with pytest.raises(DamagedAnnotations, match="00000002.npz") as refused:
            paint(series, 1)
        assert refused.value.file == FILE2 and refused.value.version == 2
        for write in (lambda: series.undo("ann"), lambda: series.rollback(0, "ann"),
                      lambda: series.commit_transition(
                          lambda wf: {"user": "ann", "workflow": {"pool": "a", "owner": None}})):
            with pytest.raises(DamagedAnnotations, match="is damaged"):
                write()
        assert [(v.id, v.op) for v in series.versions()] == [(2, "damaged"), (1, "paint")]


def test_repair_rolls_forward_and_every_instance_agrees(first, root):
    good = first.state_at(1).bits.copy()
    other = AnnotationStore(root).series(SID, SHAPE)
    other.load()
    truncate(first, 2)
    assert other.damage is not None
    assert first.repair("root") == (2, ["00000002.npz.damaged"])
    assert first.repair("root") is None  # nothing left to repair
    for series in (first, other, AnnotationStore(root).series(SID, SHAPE)):
        assert series.damage is None
        state = series.refresh()
        assert state.version == 2 and np.array_equal(state.bits, good)
        versions = series.versions()
        assert [(v.id, v.op, v.user, v.target) for v in versions] == [
            (2, "repair", "root", 1), (1, "paint", "ann", None)]
        assert "set aside 00000002.npz.damaged" in versions[0].label
    # the damaged file is kept beside the versions; the series is editable again everywhere
    names = sorted(p.name for p in (first.folder / "v").iterdir())
    assert names == ["00000001.npz", "00000002.npz", "00000002.npz.damaged"]
    assert paint(other, 2) == 3
    assert first.refresh().version == 3 and np.array_equal(first.load().bits, other.load().bits)


def test_a_damaged_version_before_the_newest_sets_the_later_ones_aside(root):
    series = AnnotationStore(root, checkpoint_every=100).series(SID, SHAPE)
    for value in (1, 2, 3, 1):
        paint(series, value)
    good = series.state_at(1).bits.copy()
    truncate(series, 2)
    fresh = AnnotationStore(root).series(SID, SHAPE)
    damage = fresh.damage
    assert (damage.version, damage.newest, damage.readable_version) == (2, 4, 1)
    assert "Versions 3–4, which build on it, cannot be shown either." in damage.message()
    assert [v.op for v in fresh.versions()] == ["paint", "paint", "damaged", "paint"]
    version, aside = fresh.repair("root")
    assert version == 2 and aside == ["00000002.npz.damaged", "00000003.npz.damaged",
                                      "00000004.npz.damaged"]
    assert np.array_equal(AnnotationStore(root).series(SID, SHAPE).load().bits, good)
    assert series.load().version == 2  # the first instance's cache noticed the repair


def test_a_damaged_file_behind_a_checkpoint_only_marks_the_history(root):
    series = AnnotationStore(root, checkpoint_every=3).series(SID, SHAPE)
    for value in (1, 2, 3, 1):
        paint(series, value)
    latest = series.load().bits.copy()
    (series.folder / "v" / "00000002.npz").write_bytes(b"")  # zeroed by a disk fault
    fresh = AnnotationStore(root).series(SID, SHAPE)
    assert fresh.damage is None and np.array_equal(fresh.load().bits, latest)
    listed = fresh.versions()
    assert [(v.id, v.op) for v in listed] == [(4, "paint"), (3, "paint"), (2, "damaged"),
                                              (1, "paint")]
    assert "00000002.npz cannot be read" in listed[2].label
    assert paint(fresh, 2) == 5  # still editable: the state does not need that file
    with pytest.raises(DamagedAnnotations, match="00000002.npz cannot be read"):
        fresh.state_at(2)


def test_a_version_file_holding_another_version_is_damaged(first, root):
    v1 = first.folder / "v" / "00000001.npz"
    (first.folder / "v" / "00000002.npz").write_bytes(v1.read_bytes())  # a bad copy
    damage = AnnotationStore(root).series(SID, SHAPE).damage
    assert damage.version == 2 and "holds version 1" in damage.reason
