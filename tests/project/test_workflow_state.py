"""Workflow state kept in the annotation history: transitions, guards, checkpoints, the board."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ril_dash.core.volume import Volume
from ril_dash.errors import PermissionDenied, TransitionNotAllowed
from ril_dash.project import history
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.editing import SeriesEditor, parse_edit_request
from ril_dash.project.schema import parse_project_yaml
from ril_dash.project.text_values import set_text_values
from ril_dash.project.workflow_state import (
    TransitionResult,
    annotate_guard,
    board_states,
    current_state,
    transition,
)
from ril_dash.workflow.machine import Action, SeriesState, Target, transition_label
from ril_dash.workflow.schema import parse_workflow_yaml

WORKFLOW = parse_workflow_yaml("""\
workflow:
  start_pool: analysts
  pools:
    analysts:  {users: [ana, bob], rights: [annotate], assign_to: [reviewers]}
    reviewers: {users: [rita], rights: [review, annotate], assign_to: [analysts],
                approve_to: done, send_back_to: analysts}
    done:      {users: [sam], rights: [read, export]}
  admins: [root]
""")
SID = "P1/ct.nii.gz"
SHAPE = (8, 6, 4)
PROJECT = """\
name: T
images: imgs
rois:
  - {name: Liver, color: "#ff0000", value: 1}
text_fields:
  - {name: Phase, type: choice, values: [arterial, venous]}
"""


@pytest.fixture
def store(tmp_path):
    return AnnotationStore(tmp_path / "annotations")


@pytest.fixture
def config(tmp_path):
    return parse_project_yaml(PROJECT, project_dir=tmp_path)


def files(s) -> list[str]:
    return sorted(os.listdir(s.folder / "v")) if (s.folder / "v").exists() else []


def brush(editor, parent=None, index=1):
    parent = editor.annotations.refresh().version if parent is None else parent
    return editor.apply(parse_edit_request({
        "tool": "brush", "roi": 1, "plane": "axial", "index": index, "parent": parent,
        "path": "M1,1L3,1", "brush": 1}))


def editor_for(config, s, user):
    return SeriesEditor(config, Volume(np.zeros(SHAPE, np.int16)), s, user,
                        guard=annotate_guard(WORKFLOW, user))


# ------------------------------------------------------------------ transitions
def test_every_transition_is_one_labelled_version(store):
    s = store.series(SID, SHAPE)
    assert current_state(s, WORKFLOW) == SeriesState("analysts") and not s.folder.exists()
    steps = [("ana", Action.ACQUIRE, None, SeriesState("analysts", "ana")),
             ("ana", "assign", "reviewers", SeriesState("reviewers")),
             ("rita", "acquire", None, SeriesState("reviewers", "rita")),
             ("rita", "send_back", None, SeriesState("analysts")),
             ("bob", "acquire", None, SeriesState("analysts", "bob")),
             ("root", "release", None, SeriesState("analysts")),
             ("root", "assign", Target("reviewers", "rita"), SeriesState("reviewers", "rita")),
             ("rita", "approve", None, SeriesState("done"))]
    before = current_state(s, WORKFLOW)
    for n, (user, action, target, after) in enumerate(steps, start=1):
        result = transition(s, WORKFLOW, user, action, target)
        label = transition_label(before, after, user, action)
        assert result == TransitionResult(before, after, n, label)
        assert files(s) == [f"{v:08d}.npz" for v in range(1, n + 1)]
        info = s.versions(limit=1)[0]
        assert (info.id, info.parent, info.op, info.user, info.label) == (
            n, n - 1, "transition", user, label)
        meta = history.read_version(s.folder / "v" / f"{n:08d}.npz").meta
        assert meta["from"] == {"pool": before.pool, "owner": before.owner}
        assert meta["workflow"] == {"pool": after.pool, "owner": after.owner}
        assert meta["action"] == Action(action).value
        fresh = AnnotationStore(store.root).series(SID, SHAPE)
        assert current_state(fresh, WORKFLOW) == after
        before = after
    assert [v.label for v in s.versions()][::-1][:2] == [
        "acquire analysts by ana", "assign analysts → reviewers by ana"]
    assert s.versions()[2].label == "release analysts (held by bob) by root"
    assert not s.can_undo and s.undo("rita") is None  # nothing to undo: transitions only


def test_transition_sees_other_writers(store, tmp_path):
    """Each process's store object catches up under the lock: no conflict, no stale state."""
    a = store.series(SID, SHAPE)
    b = AnnotationStore(tmp_path / "annotations").series(SID, SHAPE)
    transition(a, WORKFLOW, "ana", "acquire")
    with pytest.raises(TransitionNotAllowed, match="held by ana"):
        transition(b, WORKFLOW, "bob", "acquire")  # b never loaded version 1 itself
    transition(a, WORKFLOW, "ana", "release")
    assert transition(b, WORKFLOW, "bob", "acquire").version == 3
    assert current_state(a, WORKFLOW) == SeriesState("analysts", "bob")


@pytest.mark.parametrize("user, action, target, match", [
    ("bob", "acquire", None, "held by ana"),
    ("rita", "release", None, "only its holder or an admin"),
    ("ana", "approve", None, "no review right"),
    ("ana", "assign", "done", "may only assign to: reviewers"),
    ("ana", "assign", Target("reviewers", "bob"), "bob is not a member"),
    ("ana", "steal", None, "unknown action"),
])
def test_refused_transitions_write_nothing(store, user, action, target, match):
    s = store.series(SID, SHAPE)
    transition(s, WORKFLOW, "ana", "acquire")
    with pytest.raises(TransitionNotAllowed, match=match):
        transition(s, WORKFLOW, user, action, target)
    assert files(s) == ["00000001.npz"]
    assert current_state(AnnotationStore(store.root).series(SID, SHAPE), WORKFLOW) == SeriesState(
        "analysts", "ana")


def test_refused_transition_on_a_new_series_writes_no_version(store):
    s = store.series(SID, SHAPE)
    with pytest.raises(TransitionNotAllowed):
        transition(s, WORKFLOW, "rita", "acquire")
    assert files(s) == [] and not s.has_annotations


def test_undo_redo_rollback_leave_ownership_alone(store, config):
    s = store.series(SID, SHAPE)
    transition(s, WORKFLOW, "ana", "acquire")                                  # v1
    ana = editor_for(config, s, "ana")
    assert brush(ana) == 2
    assert set_text_values(config, s, None, {"Phase": "venous"}, "ana",
                           guard=annotate_guard(WORKFLOW, "ana")) == 3
    transition(s, WORKFLOW, "ana", "assign", Target("reviewers", "rita"))      # v4
    rita = SeriesState("reviewers", "rita")
    rita_guard = annotate_guard(WORKFLOW, "rita")
    assert s.undo("rita", guard=rita_guard) == 5 and s.load().texts == {}     # the text
    assert current_state(s, WORKFLOW) == rita
    assert s.undo("rita", guard=rita_guard) == 6 and not s.load().bits.any()  # the paint
    assert s.undo("rita", guard=rita_guard) is None  # Ctrl+Z never undoes the assignment
    assert current_state(s, WORKFLOW) == rita
    assert s.redo("rita", guard=rita_guard) == 7 and s.load().bits.any()
    assert current_state(s, WORKFLOW) == rita
    # roll back to before every transition: the annotations go back, the ownership stays
    assert s.rollback(0, "rita", guard=rita_guard) == 8 and not s.load().bits.any()
    assert current_state(s, WORKFLOW) == rita
    assert s.rollback(3, "rita", guard=rita_guard) == 9
    assert s.load().texts == {"Phase": "venous"} and s.load().bits.any()
    assert current_state(AnnotationStore(store.root).series(SID, SHAPE), WORKFLOW) == rita
    assert [v.op for v in s.versions()] == ["rollback", "rollback", "redo", "undo", "undo",
                                           "transition", "text", "paint", "transition"]


def test_checkpoints_keep_the_workflow_state(store):
    s = store.series(SID, SHAPE)
    transition(s, WORKFLOW, "ana", "acquire")
    guard = annotate_guard(WORKFLOW, "ana")
    rng = np.random.default_rng(0)
    for v in range(2, 104):
        bits = s.load().bits
        x, y, z = (int(rng.integers(0, n)) for n in SHAPE)
        delta = type("D", (), {"box": ((x, x + 1), (y, y + 1), (z, z + 1)),
                               "before": bits[x:x + 1, y:y + 1, z:z + 1].copy(),
                               "after": bits[x:x + 1, y:y + 1, z:z + 1] ^ np.uint8(1)})
        assert s.commit(v - 1, delta, {"user": "ana", "op": "paint"}, guard=guard) == v
    transition(s, WORKFLOW, "ana", "assign", "reviewers")                      # v104
    checkpoint = history.read_checkpoint(s.folder / "c" / "00000100.npz", SHAPE)
    assert checkpoint.workflow == {"pool": "analysts", "owner": "ana"}
    fresh = AnnotationStore(store.root).series(SID, SHAPE)
    assert fresh.version == 104 and current_state(fresh, WORKFLOW) == SeriesState("reviewers")
    assert np.array_equal(fresh.load().bits, s.load().bits)
    assert fresh.state_at(100).workflow == {"pool": "analysts", "owner": "ana"}


# ------------------------------------------------------------------ the annotate guard
def test_guard_refuses_paint_texts_undo_rollback_of_non_holders(store, config):
    s = store.series(SID, SHAPE)
    transition(s, WORKFLOW, "ana", "acquire")
    assert brush(editor_for(config, s, "ana")) == 2
    before = files(s)
    bob_guard = annotate_guard(WORKFLOW, "bob")
    refused = [lambda: brush(editor_for(config, s, "bob"), index=2),
               lambda: set_text_values(config, s, None, {"Phase": "arterial"}, "bob",
                                       guard=bob_guard),
               lambda: s.undo("bob", guard=bob_guard),
               lambda: s.rollback(0, "bob", guard=bob_guard)]
    for call in refused:
        with pytest.raises(PermissionDenied, match="bob cannot annotate this series: it is held "
                                                   "by ana in analysts"):
            call()
    assert files(s) == before and s.refresh().version == 2


def test_guard_is_checked_when_saving_not_when_opening(store, config):
    """An editor opened while holding the series cannot save once an admin took it."""
    s = store.series(SID, SHAPE)
    transition(s, WORKFLOW, "ana", "acquire")
    ana = editor_for(config, s, "ana")
    parent = s.load().version
    other_process = AnnotationStore(store.root).series(SID, SHAPE)
    transition(other_process, WORKFLOW, "root", "acquire")  # an admin breaks the hold
    with pytest.raises(PermissionDenied, match="held by root"):
        brush(ana, parent)  # refused for the right reason, not as a version conflict
    assert files(s) == ["00000001.npz", "00000002.npz"]
    assert brush(editor_for(config, s, "root")) == 3  # admins may annotate anything


@pytest.mark.parametrize("steps, user, match", [
    ([], "ana", "nobody holds it \\(it is in analysts\\); acquire it first"),
    ([("ana", "acquire", None)], "bob", "it is held by ana in analysts"),
    ([("root", "assign", Target("done", "sam"))], "sam", "the pool 'done' has no annotate right"),
    ([("ana", "acquire", None)], "rita", "it is held by ana in analysts"),
])
def test_guard_messages(store, steps, user, match):
    s = store.series(SID, SHAPE)
    for who, action, target in steps:
        transition(s, WORKFLOW, who, action, target)
    with pytest.raises(PermissionDenied, match=match):
        annotate_guard(WORKFLOW, user)(s.load().workflow)


def test_no_workflow_no_guard(store, config):
    assert annotate_guard(None, "anyone") is None
    s = store.series(SID, SHAPE)
    editor = SeriesEditor(config, Volume(np.zeros(SHAPE, np.int16)), s, "anyone")
    assert brush(editor) == 1  # the existing call sites keep working


# ------------------------------------------------------------------ the board
def test_board_states_from_summaries(store):
    ids = ["P1/new.nii.gz", "P1/painted.nii.gz", "P2/held.nii.gz", "P3/sent.nii.gz"]
    painted = store.series(ids[1], SHAPE)
    painted.commit(0, None, {"user": "ana", "op": "text"}, texts={"Phase": "venous"})
    transition(store.series(ids[2], SHAPE), WORKFLOW, "bob", "acquire")
    sent = store.series(ids[3], SHAPE)
    transition(sent, WORKFLOW, "ana", "acquire")
    transition(sent, WORKFLOW, "ana", "assign", Target("reviewers", "rita"))
    expected = {ids[0]: SeriesState("analysts"), ids[1]: SeriesState("analysts"),
                ids[2]: SeriesState("analysts", "bob"), ids[3]: SeriesState("reviewers", "rita")}
    assert board_states(store.root, ids, WORKFLOW) == expected
    summary = json.loads((sent.folder / "summary.json").read_text())
    assert summary["workflow"] == {"pool": "reviewers", "owner": "rita"}
    # a stale summary (its writer died before updating it) or a missing one: read the versions
    (sent.folder / "summary.json").write_text(json.dumps({**summary, "version": 1,
                                                          "workflow": None}))
    (store.series(ids[2], SHAPE).folder / "summary.json").unlink()
    assert board_states(store.root, ids, WORKFLOW) == expected
    # transitions after a paint, read back through the versions alone
    transition(painted, WORKFLOW, "bob", "acquire")
    painted.commit(2, None, {"user": "bob", "op": "text"}, texts={"Phase": "arterial"})
    (painted.folder / "summary.json").unlink()
    assert board_states(store.root, ids[1:2], WORKFLOW) == {ids[1]: SeriesState("analysts",
                                                                                "bob")}
