"""ROI editing of project.yaml: add / update / move / delete, validation, CAS, deletion history."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from ril_dash.errors import EditRefused, InvalidProject, VersionConflict
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.roi_editing import (
    DeleteNeedsConfirmation,
    add_roi,
    delete_roi,
    move_roi,
    read_project_yaml,
    series_using_roi,
    update_roi,
)
from ril_dash.project.schema import load_project_config

SHAPE = (6, 5, 4)


def yaml_bytes(proj) -> bytes:
    return (proj / "project.yaml").read_bytes()


def names(config) -> list[str]:
    return [r.name for r in config.rois]


def paint(store, series_id, value, bit, box, points=None, slots=None):
    """Commit one version setting ``bit`` in ``box`` (slot table ``{value: bit}`` + extras)."""
    s = store.series(series_id, SHAPE)
    state = s.refresh()
    sl = tuple(slice(a, b) for a, b in box)
    before = np.asarray(state.bits)[sl].copy()
    after = before | before.dtype.type(1 << bit)
    table = {**state.slots, value: bit, **(slots or {})}
    delta = types.SimpleNamespace(box=box, before=before, after=after)
    return s.commit(state.version, delta, {"user": "ann", "op": "paint", "roi": value},
                    points=points, slots=table)


def test_add_assigns_values_and_returns_config(proj):
    config = add_roi(proj, "Liver", "RID58", "#A0522D")
    assert names(config) == ["Example organ", "Liver"]
    liver = config.rois[1]
    assert (liver.value, liver.color, liver.radlex, liver.type, liver.locked) == (
        2, "#a0522d", "RID58", "area", False)
    assert load_project_config(proj) == config
    config = add_roi(proj, "Lesion", "", "#ff0000", value=7, type="point", locked=True)
    assert config.rois[-1] == type(liver)("Lesion", None, "#ff0000", 7, "point", True)
    assert add_roi(proj, "Spleen", None, "#00ff00").rois[-1].value == 3
    # gaps are filled: delete value 2, next free is 2 again
    delete_roi(proj, "Liver")
    assert add_roi(proj, "Kidney", None, "#0000ff").rois[-1].value == 2


def test_multi_label_values_are_powers_of_two(proj):
    text = yaml_bytes(proj).decode().replace("overlap: one_roi_per_voxel", "overlap: multi_label")
    (proj / "project.yaml").write_text(text)
    values = [add_roi(proj, f"R{i}", None, "#123456").rois[-1].value for i in range(4)]
    assert values == [2, 4, 8, 16]
    before = yaml_bytes(proj)
    with pytest.raises(InvalidProject, match="not a power of two"):
        add_roi(proj, "Bad", None, "#123456", value=12)
    assert yaml_bytes(proj) == before


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "liver"}, "already exists .*ignore case"),
    ({"name": "  "}, "name is empty"),
    ({"name": "x" * 65}, "at most 64"),
    ({"name": "a\nb"}, "line break"),
    ({"radlex": "RIDX"}, "not a RadLex ID"),
    ({"radlex": "liver"}, "not a RadLex ID"),
    ({"color": "red"}, "not a colour"),
    ({"color": "#12345"}, "not a colour"),
    ({"value": 1}, "already used by 'Example organ'"),
    ({"value": 0}, "not a valid mask value"),
    ({"value": 2**31}, "not a valid mask value"),
    ({"value": True}, "not a valid mask value"),
    ({"type": "volume"}, "not an ROI type"),
    ({"locked": "yes"}, "true or false"),
])
def test_invalid_add_is_refused_and_file_unchanged(proj, kwargs, message):
    add_roi(proj, "Liver", "RID58", "#a0522d")
    before = yaml_bytes(proj)
    args = {"name": "New", "radlex": None, "color": "#000000", **kwargs}
    with pytest.raises(InvalidProject, match=message):
        add_roi(proj, **args)
    assert yaml_bytes(proj) == before


def test_update_name_colour_radlex_lock(proj):
    add_roi(proj, "Liver", "RID58", "#a0522d")
    config = update_roi(proj, "LIVER", name="Liver (whole)", color="#00FF00", locked=True)
    roi = config.rois[1]
    assert (roi.name, roi.color, roi.radlex, roi.locked, roi.value) == (
        "Liver (whole)", "#00ff00", "RID58", True, 2)
    assert update_roi(proj, "Liver (whole)", radlex="").rois[1].radlex is None
    assert update_roi(proj, "Liver (whole)", radlex="RID59").rois[1].radlex == "RID59"
    # renaming to itself with other case is fine (no duplicate with itself)
    assert update_roi(proj, "Liver (whole)", name="LIVER (WHOLE)").rois[1].name == "LIVER (WHOLE)"
    assert load_project_config(proj).rois[1].name == "LIVER (WHOLE)"


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "example ORGAN"}, "already exists"),
    ({"color": "#gggggg"}, "not a colour"),
    ({"radlex": "58x"}, "not a RadLex ID"),
    ({"value": 5}, "cannot be changed.*re-label"),
    ({"type": "point"}, "cannot be changed"),
])
def test_invalid_update_is_refused_and_file_unchanged(proj, kwargs, message):
    add_roi(proj, "Liver", "RID58", "#a0522d")
    before = yaml_bytes(proj)
    with pytest.raises(InvalidProject, match=message):
        update_roi(proj, "Liver", **kwargs)
    assert yaml_bytes(proj) == before
    with pytest.raises(InvalidProject, match="no ROI named 'Spleen'"):
        update_roi(proj, "Spleen", color="#000000")
    assert yaml_bytes(proj) == before


def test_move(proj):
    for n in ("A", "B", "C"):
        add_roi(proj, n, None, "#111111")
    assert names(move_roi(proj, "C", -1)) == ["Example organ", "A", "C", "B"]
    assert names(move_roi(proj, "example organ", +1)) == ["A", "Example organ", "C", "B"]
    assert names(move_roi(proj, "A", -1)) == ["A", "Example organ", "C", "B"]  # clamped
    assert names(move_roi(proj, "B", +1)) == ["A", "Example organ", "C", "B"]
    assert names(load_project_config(proj)) == ["A", "Example organ", "C", "B"]


def test_compare_and_swap(proj):
    _, sha = read_project_yaml(proj)
    add_roi(proj, "Liver", None, "#a0522d", expected_sha256=sha)  # the hash the caller saw
    before = yaml_bytes(proj)
    for call in (lambda: add_roi(proj, "Spleen", None, "#000000", expected_sha256=sha),
                 lambda: update_roi(proj, "Liver", color="#000000", expected_sha256=sha),
                 lambda: move_roi(proj, "Liver", -1, expected_sha256=sha),
                 lambda: delete_roi(proj, "Liver", expected_sha256=sha)):
        with pytest.raises(VersionConflict, match="changed by someone else; reload"):
            call()
        assert yaml_bytes(proj) == before
    _, sha2 = read_project_yaml(proj)
    assert sha2 != sha
    assert names(delete_roi(proj, "Liver", expected_sha256=sha2)) == ["Example organ"]


def test_rewrite_keeps_other_settings(proj, tmp_path):
    text = yaml_bytes(proj).decode().replace("rois:", "hierarchy: [Patient, Study]\nrois:")
    (proj / "project.yaml").write_text(text)
    before = load_project_config(proj)
    after = update_roi(proj, "Example organ", color="#010203")
    assert after.hierarchy == ("Patient", "Study")
    assert after.text_fields == before.text_fields
    assert (after.images, after.annotations, after.overlap) == (
        before.images, before.annotations, before.overlap)


def test_html_name_is_stored_verbatim(proj):
    name = "<script>alert(1)</script>"
    add_roi(proj, name, None, "#ff00ff")
    assert load_project_config(proj).rois[-1].name == name


def test_delete_without_annotations(proj):
    add_roi(proj, "Liver", None, "#a0522d")
    assert series_using_roi(load_project_config(proj), 2) == []
    assert names(delete_roi(proj, "Liver")) == ["Example organ"]
    with pytest.raises(InvalidProject, match="no ROI named"):
        delete_roi(proj, "Liver")


def test_delete_locked_is_refused(proj):
    add_roi(proj, "Liver", None, "#a0522d", locked=True)
    before = yaml_bytes(proj)
    with pytest.raises(EditRefused, match="locked; unlock it"):
        delete_roi(proj, "Liver")
    assert yaml_bytes(proj) == before


def test_delete_with_annotations_needs_count_and_keeps_history(proj):
    config = add_roi(proj, "Liver", "RID58", "#a0522d")
    add_roi(proj, "Lesion", None, "#ff0000", type="point")
    store = AnnotationStore(config.annotations)
    box = ((1, 3), (0, 2), (1, 2))
    paint(store, "P1/a.nii.gz", 2, 1, box)                       # Liver voxels
    paint(store, "P1/a.nii.gz", 1, 0, ((0, 1), (0, 1), (0, 1)))  # Example organ
    paint(store, "P2/b.nii.gz", 2, 0, box, points={3: [[1, 1, 1]]}, slots={3: 5})
    paint(store, "P3/c.nii.gz", 1, 0, box)                       # no Liver here
    s4 = store.series("P4/d.nii.gz", SHAPE)                      # Liver slot, voxels erased
    paint(store, "P4/d.nii.gz", 2, 0, box)
    s4.undo("ann")
    s5 = store.series("P5/e.nii.gz", SHAPE)                      # only Lesion points
    s5.commit(0, None, {"user": "ann", "op": "point"}, points={3: [[0, 0, 0]]})

    assert series_using_roi(config, 2) == ["P1/a.nii.gz", "P2/b.nii.gz"]
    assert series_using_roi(config, 3) == ["P2/b.nii.gz", "P5/e.nii.gz"]
    before = yaml_bytes(proj)
    for count in (None, 1, 3):
        with pytest.raises(DeleteNeedsConfirmation, match="Liver has annotations in 2 series") \
                as err:
            delete_roi(proj, "Liver", confirm_series_count=count)
        assert err.value.series == ["P1/a.nii.gz", "P2/b.nii.gz"]
        assert yaml_bytes(proj) == before
    assert [v.op for v in store.series("P1/a.nii.gz", SHAPE).versions()] == ["paint", "paint"]

    config = delete_roi(proj, "liver", confirm_series_count=2, user="boss")
    assert names(config) == ["Example organ", "Lesion"]
    fresh = AnnotationStore(config.annotations)
    s1 = fresh.series("P1/a.nii.gz", SHAPE)
    latest = s1.versions()[0]
    assert (latest.op, latest.user, latest.roi) == ("delete_roi", "boss", 2)
    bits = np.asarray(s1.load().bits)
    assert not (bits & 2).any() and (bits & 1).sum() == 1       # other ROI untouched
    s2 = fresh.series("P2/b.nii.gz", SHAPE)
    assert not np.asarray(s2.load().bits).any()
    assert s2.load().points == {3: [[1, 1, 1]]}                  # Lesion points kept
    assert [v.op for v in fresh.series("P3/c.nii.gz", SHAPE).versions()] == ["paint"]
    assert series_using_roi(config, 2) == []

    # rollback restores the deleted voxels (the history kept them)
    s1.rollback(latest.parent, "boss")
    assert np.count_nonzero(np.asarray(s1.load().bits) & 2) == 2 * 2 * 1


def test_delete_point_roi_clears_points(proj):
    config = add_roi(proj, "Lesion", None, "#ff0000", type="point")
    store = AnnotationStore(config.annotations)
    s = store.series("P1/a.nii.gz", SHAPE)
    s.commit(0, None, {"user": "ann", "op": "point"}, points={2: [[0, 0, 0]], 9: [[1, 1, 1]]})
    delete_roi(proj, "Lesion", confirm_series_count=1)
    state = AnnotationStore(config.annotations).series("P1/a.nii.gz", SHAPE).load()
    assert state.points == {9: [[1, 1, 1]]}
    s.undo("ann")
    assert s.refresh().points == {2: [[0, 0, 0]], 9: [[1, 1, 1]]}


def test_module_does_not_import_dash():
    code = ("import sys, ril_dash.project.roi_editing; "
            "sys.exit(any(m == 'dash' or m.startswith('dash.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_an_roi_change_keeps_the_workflow_section(proj):
    """Regression: rewriting project.yaml dropped its ``workflow:`` (the server then ran with
    no workflow, everyone allowed everything)."""
    from ril_dash.project.schema import load_project_config
    from ril_dash.workflow.schema import workflow_from_project
    from tests.workflow.example import EXAMPLE

    path = proj / "project.yaml"
    path.write_text(path.read_text() + EXAMPLE)
    before = workflow_from_project(load_project_config(proj))
    add_roi(proj, "Kidney", None, "#0000ff")
    after = workflow_from_project(load_project_config(proj))
    assert after is not None and after.admins == before.admins == frozenset({"root"})
    assert after.pools == before.pools and after.start_pool == "analysts"
