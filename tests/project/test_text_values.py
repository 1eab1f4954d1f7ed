"""Per-series text values: validation, saving as undoable versions, store round trips."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ril_dash.errors import EditRefused, VersionConflict
from ril_dash.project import history
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.schema import TextFieldDef
from ril_dash.project.text_values import (
    MAX_TEXT,
    missing_required,
    set_text_values,
    validate_text_value,
)

SHAPE = (6, 5, 4)
SID = "P1/ct.nii.gz"
FIELDS = (TextFieldDef("Phase", "choice", ("arterial", "venous"), required=True),
          TextFieldDef("Findings", "multi_choice", ("cyst", "mass", "stone")),
          TextFieldDef("Comment", "text"),
          TextFieldDef("Size", "number", required=True),
          TextFieldDef("Contrast", "yes_no"))
CONFIG = SimpleNamespace(text_fields=FIELDS)
PHASE, FINDINGS, COMMENT, SIZE, CONTRAST = FIELDS


class Delta(SimpleNamespace):
    pass


def paint(s, box):
    bits = s.load().bits
    sl = tuple(slice(a, b) for a, b in box)
    return Delta(box=box, before=bits[sl].copy(), after=bits[sl] | np.uint8(1))


@pytest.fixture
def store(tmp_path: Path) -> AnnotationStore:
    return AnnotationStore(tmp_path / "annotations", checkpoint_every=4)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("field, raw, expected", [
    (PHASE, "venous", "venous"), (PHASE, " arterial ", "arterial"), (PHASE, "", None),
    (PHASE, None, None), (FINDINGS, ["mass", "cyst"], ["mass", "cyst"]), (FINDINGS, [], None),
    (COMMENT, "  hello \n", "hello"), (COMMENT, "   ", None), (COMMENT, "x" * MAX_TEXT, "x" * MAX_TEXT),
    (SIZE, 3, 3.0), (SIZE, "-2.5e1", -25.0), (SIZE, 0, 0.0),
    (CONTRAST, True, True), (CONTRAST, False, False), (CONTRAST, "YES", True), (CONTRAST, "false", False),
])
def test_valid_values(field, raw, expected):
    value = validate_text_value(field, raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("field, raw, words", [
    (PHASE, "late", ["Phase", "'arterial'", "'venous'"]),
    (PHASE, 3, ["Phase", "'arterial'"]),
    (FINDINGS, ["cyst", "cyst"], ["Findings", "twice"]),
    (FINDINGS, ["tumour"], ["Findings", "'cyst'", "'mass'", "'stone'"]),
    (FINDINGS, "cyst", ["Findings", "'cyst'"]),
    (COMMENT, "x" * (MAX_TEXT + 1), ["Comment", str(MAX_TEXT)]),
    (COMMENT, 12, ["Comment"]),
    (SIZE, "abc", ["Size", "number"]), (SIZE, float("nan"), ["Size", "finite"]),
    (SIZE, "inf", ["Size", "finite"]), (SIZE, True, ["Size"]), (SIZE, [1], ["Size"]),
    (CONTRAST, "maybe", ["Contrast", "yes", "no"]), (CONTRAST, 1, ["Contrast"]),
])
def test_invalid_values_are_refused_with_a_useful_message(field, raw, words):
    with pytest.raises(EditRefused) as err:
        validate_text_value(field, raw)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_missing_required():
    assert missing_required(CONFIG, {}) == ["Phase", "Size"]
    assert missing_required(CONFIG, {"Phase": "venous", "Size": 0.0}) == []
    assert missing_required(CONFIG, {"Phase": "", "Size": 1.0, "Contrast": False}) == ["Phase"]


# ------------------------------------------------------------------ saving
def test_set_values_round_trip_and_reload(store):
    s = store.series(SID, SHAPE)
    v = set_text_values(CONFIG, s, 0, {"Phase": "venous", "Size": "12", "Findings": ["stone"],
                                       "Contrast": "no", "Comment": " ok "}, "ann")
    want = {"Phase": "venous", "Size": 12.0, "Findings": ["stone"], "Contrast": False,
            "Comment": "ok"}
    assert v == 1 and s.load().texts == want
    info = s.versions()[0]
    assert (info.op, info.kind, info.user) == ("text", "manual", "ann")
    meta = history.read_version(s.folder / "v" / "00000001.npz", arrays=False).meta
    assert meta["texts_before"] == {} and meta["texts_after"] == want
    assert set_text_values(CONFIG, s, 1, {"Phase": "venous"}, "ann") is None  # unchanged
    assert set_text_values(CONFIG, s, 1, {"phase": "arterial", "Comment": ""}, "ann") == 2
    want2 = {**want, "Phase": "arterial"}
    del want2["Comment"]
    assert s.load().texts == want2
    fresh = AnnotationStore(store.root).series(SID, SHAPE)
    assert fresh.load().texts == want2 and fresh.state_at(1).texts == want
    assert fresh.state_at(0).texts == {}


def test_refusals_save_nothing(store):
    s = store.series(SID, SHAPE)
    with pytest.raises(EditRefused, match="Unknown text field 'Nope'"):
        set_text_values(CONFIG, s, 0, {"Phase": "venous", "Nope": 1}, "ann")
    with pytest.raises(EditRefused, match="Size"):
        set_text_values(CONFIG, s, 0, {"Phase": "venous", "Size": "big"}, "ann")
    assert s.load().version == 0 and not s.has_annotations
    set_text_values(CONFIG, s, 0, {"Phase": "venous"}, "ann")
    with pytest.raises(VersionConflict):
        set_text_values(CONFIG, s, 0, {"Phase": "arterial"}, "other")
    assert s.load().texts == {"Phase": "venous"} and s.load().version == 1


def test_undo_redo_rollback_restore_texts(store):
    s = store.series(SID, SHAPE)
    set_text_values(CONFIG, s, 0, {"Phase": "venous"}, "ann")                         # 1
    s.commit(1, paint(s, ((0, 2), (0, 2), (0, 1))), {"user": "ann", "op": "paint"})   # 2
    set_text_values(CONFIG, s, 2, {"Phase": "arterial", "Findings": ["cyst"]}, "ann")  # 3
    assert s.undo("ann") == 4 and s.load().texts == {"Phase": "venous"}
    assert s.load().bits.sum() == 4  # the paint stays
    assert s.undo("ann") == 5 and s.load().bits.sum() == 0 and s.load().texts == {"Phase": "venous"}
    assert s.undo("ann") == 6 and s.load().texts == {}
    assert not s.can_undo
    assert s.redo("ann") == 7 and s.load().texts == {"Phase": "venous"}
    assert s.redo("ann") == 8 and s.redo("ann") == 9
    assert s.load().texts == {"Phase": "arterial", "Findings": ["cyst"]}
    assert s.rollback(1, "ann") == 10
    assert s.load().texts == {"Phase": "venous"} and s.load().bits.sum() == 0
    assert s.undo("ann") == 11 and s.load().texts == {"Phase": "arterial", "Findings": ["cyst"]}
    assert s.rollback(0, "ann") == 12 and s.load().texts == {}
    fresh = AnnotationStore(store.root, checkpoint_every=4).series(SID, SHAPE)
    assert fresh.load().texts == {} and fresh.state_at(9).texts == s.state_at(9).texts


def test_checkpoints_store_texts(store):
    s = store.series(SID, SHAPE)
    for i in range(1, 10):
        set_text_values(CONFIG, s, i - 1, {"Size": i}, "ann")
    assert sorted(p.name for p in (s.folder / "c").iterdir()) == ["00000004.npz", "00000008.npz"]
    ck = history.read_checkpoint(s.folder / "c" / "00000008.npz", SHAPE)
    assert ck.texts == {"Size": 8.0} and ck.version == 8
    # versions before the checkpoint are not needed any more to load the texts
    (s.folder / "v" / "00000003.npz").unlink()
    fresh = AnnotationStore(store.root).series(SID, SHAPE)
    assert fresh.load().texts == {"Size": 9.0}
    assert fresh.undo("ann") == 10 and fresh.load().texts == {"Size": 8.0}


def test_commit_texts_argument_and_old_files(store):
    s = store.series(SID, SHAPE)
    d = paint(s, ((0, 1), (0, 1), (0, 1)))
    assert s.commit(0, d, {"user": "ann", "op": "paint"}, texts={"Comment": "x"}) == 1
    assert s.load().texts == {"Comment": "x"} and s.load().bits.sum() == 1
    # a commit whose texts equal the current ones records no text change
    assert s.commit(1, None, {"user": "ann", "op": "points"}, texts={"Comment": "x"}) == 2
    meta = history.read_version(s.folder / "v" / "00000002.npz", arrays=False).meta
    assert "texts_after" not in meta
    # version files written before texts existed load as {}
    old = history.read_version(s.folder / "v" / "00000001.npz")
    old.meta.pop("texts_before"), old.meta.pop("texts_after")
    other = AnnotationStore(store.root / "old").series(SID, SHAPE)
    other._vdir.mkdir(parents=True)
    history.write_version(other._vdir, old)
    assert other.load().texts == {} and other.load().bits.sum() == 1
    # texts returned by load() are copies: mutating them changes nothing stored
    got = s.load().texts
    got["Comment"] = "changed"
    assert s.load().texts == {"Comment": "x"}
