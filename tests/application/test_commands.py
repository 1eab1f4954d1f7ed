"""The application layer's commands: rights checked, the change made, the audit line written —
and nothing written when refused. (The HTTP wiring is tested in tests/ui/test_rights.py.)"""

from __future__ import annotations

import re

import numpy as np
import pytest

from ril_dash.application import definitions, moves, series_edits, transfer
from ril_dash.application.series_edits import UnknownVersion
from ril_dash.errors import ExportError, LockHeld, PermissionDenied
from ril_dash.project.editing import EditRequest
from ril_dash.workflow.machine import Target
from tests.application.conftest import SERIES, actor

S1, S2 = SERIES
LASSO = "M1,1L1,5L5,5L5,1Z"


def audit(services, **filters) -> list[dict]:
    return list(reversed(services.audit.read(**filters)))


def lasso(parent: int, roi: int = 1) -> EditRequest:
    return EditRequest(tool="lasso", roi=roi, plane="axial", index=2, parent=parent, path=LASSO)


def test_definitions_are_for_admins_and_audited(services):
    yaml_before = (services.project.dir / "project.yaml").read_bytes()
    with pytest.raises(PermissionDenied, match="Only an administrator may change the project"):
        definitions.add_roi(services, actor("ana"), "Kidney", None, "#0000ff")
    assert (services.project.dir / "project.yaml").read_bytes() == yaml_before
    assert audit(services) == []

    config = definitions.add_roi(services, actor("root"), "Kidney", "RID205", "#0000ff")
    assert [r.name for r in config.rois] == ["Liver", "Spleen", "Kidney"]
    assert [r.name for r in services.project.config.rois] == ["Liver", "Spleen", "Kidney"]
    definitions.update_roi(services, actor("alice", admin=True), "Kidney", name="Kidneys")
    definitions.move_text_field(services, actor("root"), "Phase", 1)
    entries = audit(services, action="definitions")
    assert [(e["user"], e["detail"]) for e in entries] == [
        ("root", {"change": "add ROI", "name": "Kidney"}),
        ("alice", {"change": "change ROI", "name": "Kidney", "new_name": "Kidneys"}),
        ("root", {"change": "move text field", "name": "Phase"}),
    ]


def test_an_edit_needs_the_series_held_and_saves_one_audited_version(services):
    ana, bob = actor("ana"), actor("bob")
    with pytest.raises(PermissionDenied, match="nobody holds it; acquire it"):
        series_edits.edit_series(services, ana, S1, lasso(0))
    assert not services.annotations(S1).has_annotations

    moves.move_series(services, ana, S1, "acquire")
    change = series_edits.edit_series(services, ana, S1, lasso(1))
    assert change.changed and change.version == 2 and change.state.version == 2
    assert change.can_undo and not change.can_redo
    painted = np.argwhere(change.state.bits != 0)
    assert len(painted) > 0 and set(painted[:, 2]) == {2}
    assert services.locks.holder(S1).user == "ana"
    assert [(e["action"], e["user"]) for e in audit(services, series=S1)] == [
        ("transition", "ana"), ("lock", "ana"), ("save", "ana")]
    assert audit(services, action="save")[0]["detail"] == {"version": 2, "tool": "lasso"}

    # bob may not paint it (ana holds it); nothing is written
    with pytest.raises(PermissionDenied, match="held by ana"):
        series_edits.edit_series(services, bob, S1, lasso(2))
    assert services.annotations(S1).refresh().version == 2


def test_another_host_of_the_same_user_is_refused_while_the_lease_lasts(services):
    moves.move_series(services, actor("ana"), S1, "acquire")
    series_edits.set_texts(services, actor("ana"), S1, 1, {"Phase": "venous"})
    other = actor("ana")
    other = type(other)(other.user, other.admin, host="laptop")
    with pytest.raises(LockHeld):
        series_edits.set_texts(services, other, S1, 2, {"Phase": "arterial"})
    assert services.annotations(S1).refresh().texts == {"Phase": "venous"}


def test_undo_redo_rollback_are_audited_and_a_rollback_needs_an_existing_version(services):
    root = actor("root")
    series_edits.edit_series(services, root, S2, lasso(0))
    undone = series_edits.change_history(services, root, S2, "undo", parent=1)
    assert undone.version == 2 and not np.any(undone.state.bits)
    redone = series_edits.change_history(services, root, S2, "redo", parent=2)
    assert np.any(redone.state.bits) and redone.version == 3
    with pytest.raises(UnknownVersion):
        series_edits.change_history(services, root, S2, "rollback", version=9, parent=3)
    back = series_edits.change_history(services, root, S2, "rollback", version=0, parent=3)
    assert back.version == 4 and not np.any(back.state.bits)
    assert [e["action"] for e in audit(services, series=S2)] == [
        "lock", "save", "undo", "redo", "rollback"]


def test_export_is_limited_to_the_series_a_pool_may_export(services, tmp_path):
    ana, sam, root = actor("ana"), actor("sam"), actor("root")
    for sid in SERIES:
        series_edits.edit_series(services, root, sid, lasso(0))
    with pytest.raises(PermissionDenied, match="ana may not export"):
        transfer.export_series(services, ana, tmp_path / "out-ana")
    assert not (tmp_path / "out-ana").exists()
    with pytest.raises(PermissionDenied, match="sam may export no series now"):
        transfer.export_series(services, sam, tmp_path / "out-sam")
    moves.move_series(services, root, S2, "assign", Target("scientists"))
    report = transfer.export_series(services, sam, tmp_path / "out-sam", excel=False)
    assert report.exported == [S2]
    assert (tmp_path / "out-sam" / "masks" / "P2" / "ct" / "Liver.nii.gz").exists()
    assert not (tmp_path / "out-sam" / "masks" / "P1").exists()
    (entry,) = audit(services, action="export")
    assert entry["user"] == "sam" and entry["detail"]["series"] == 1


def test_import_is_for_admins(services, tmp_path):
    with pytest.raises(PermissionDenied, match="Only an administrator may import masks"):
        transfer.import_mask_folder(services, actor("sam"), tmp_path)
    assert audit(services) == []


def test_the_export_folder_stays_inside_exports_when_confined(services):
    base = (services.project.dir / "exports").resolve()
    assert transfer.export_folder(services, "run-1", confined=True) == base / "run-1"
    for bad in ("", "..", "../elsewhere", "/tmp/x", "a/../../b"):
        with pytest.raises(Exception, match="inside exports/"):
            transfer.export_folder(services, bad, confined=True)
    assert str(transfer.export_folder(services, "/tmp/x", confined=False)) == "/tmp/x"


@pytest.mark.parametrize("confined", [True, False])
def test_export_folder_names_the_disk_cannot_hold_are_refused(services, tmp_path, confined):
    """A NUL byte, a 5,000-character name or path is refused before any job starts."""
    root = "" if confined else f"{tmp_path}/"
    cases = [(root + "run\x00one", "control characters (U+0000)"),
             (root + "run\tone", "control characters (U+0009)"),
             (root + "a" * 5000, "longer than 4095 bytes"),
             (root + "a" * 256, "is 256 bytes long; use at most 255"),
             (root + "é" * 128, "is 256 bytes long"),
             (root + "/".join(["b" * 200] * 21), "longer than 4095 bytes")]
    for typed, words in cases:
        with pytest.raises(ExportError, match=re.escape(words)):
            transfer.export_folder(services, typed, confined=confined)
    ok = transfer.export_folder(services, root + "a" * 255, confined=confined)
    assert ok.name == "a" * 255
