"""The list editor shared by the ROIs and the text fields of ``/rois`` (``list_editor``).

The table is checked as the component draws it (which ↑ / ↓ buttons are disabled, ids, classes,
the empty list). The changes are checked on a real ``ril-dash serve --login`` server, posted as
the browser posts them (``support.DashUser``): for each kind, every change (add, move, save,
delete) is refused to a user who is not an admin, with project.yaml left byte for byte, and
then made by an admin, so the refused requests are known to be well formed.
"""

from __future__ import annotations

import hashlib

import pytest
from support import DashUser, RunningServer, layout_texts, project_copy

from ril_dash.project.schema import load_project_config, parse_project_yaml

YAML = """name: P
images: imgs
rois:
  - {name: Liver, color: "#c8763c", value: 1}
  - {name: Spleen, color: "#9b59b6", value: 2, radlex: RID86}
  - {name: "<b>Aorta</b>", color: "#f1c40f", value: 3, type: point, locked: true}
text_fields:
  - {name: Phase, type: choice, values: [arterial, venous], required: true}
  - {name: Quality, type: choice, values: [good, poor]}
  - {name: Comment, type: text}
"""
REFUSED = ["Not saved. ", "Only an administrator may change the project's ROIs and text "
                          "fields; ana is not one."]


@pytest.fixture(scope="module")
def editors():
    from ril_dash.ui.components.text_field_manager import TEXT_FIELD_EDITOR
    from ril_dash.ui.pages.roi_manager import ROI_EDITOR

    return {"roi": ROI_EDITOR, "tf": TEXT_FIELD_EDITOR}


def rows(table: list) -> list:
    return table[1].children


def cells(row) -> list:
    return row.children[:-1]


def buttons(row) -> list:
    return row.children[-1].children.children


# ---- the table --------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["roi", "tf"])
def test_first_row_cannot_move_up_and_last_row_cannot_move_down(editors, prefix):
    from ril_dash.ui.components.list_editor import editor_table

    table = editor_table(editors[prefix], parse_project_yaml(YAML, project_dir="/p"))
    states = [[(b.children, b.disabled) for b in buttons(row)] for row in rows(table)]
    assert states == [
        [("Edit", False), ("↑", True), ("↓", False), ("Delete", False)],
        [("Edit", False), ("↑", False), ("↓", False), ("Delete", False)],
        [("Edit", False), ("↑", False), ("↓", True), ("Delete", False)],
    ]
    first = buttons(rows(table)[0])
    assert [b.id for b in first] == [
        {"type": f"{prefix}-edit-button", "item": first[0].id["item"]},
        {"type": f"{prefix}-move-button", "item": first[0].id["item"], "offset": -1},
        {"type": f"{prefix}-move-button", "item": first[0].id["item"], "offset": 1},
        {"type": f"{prefix}-delete-button", "item": first[0].id["item"]}]
    assert first[3].className == f"ril-button ril-{prefix}-delete-button"
    assert all(row.className == f"ril-{prefix}-row" for row in rows(table))


def test_rows_show_each_kind_as_text(editors):
    from ril_dash.ui.components.list_editor import editor_table

    config = parse_project_yaml(YAML, project_dir="/p")
    roi_rows = rows(editor_table(editors["roi"], config))
    assert [(c.className if hasattr(c, "className") else None) for c in cells(roi_rows[2])] == [
        None, "ril-roi-name", "ril-roi-radlex", "ril-roi-value", "ril-roi-type",
        "ril-roi-locked"]
    swatch = cells(roi_rows[2])[0].children
    assert (swatch.title, swatch.style) == ("#f1c40f", {"backgroundColor": "#f1c40f"})
    assert [c.children for c in cells(roi_rows[2])[1:]] == ["<b>Aorta</b>", "—", "3", "point",
                                                            "yes"]
    assert [c.children for c in cells(roi_rows[1])[1:]] == ["Spleen", "RID86", "2", "area",
                                                            "no"]
    tf_rows = rows(editor_table(editors["tf"], config))
    assert [[c.children for c in cells(row)] for row in tf_rows] == [
        ["Phase", "choice", "arterial, venous", "yes"],
        ["Quality", "choice", "good, poor", "no"],
        ["Comment", "text", "—", "no"]]
    assert [c.className for c in cells(tf_rows[0])] == [
        "ril-tf-name", "ril-tf-type", "ril-tf-values", "ril-tf-required"]


@pytest.mark.parametrize(("prefix", "message", "columns"), [
    ("roi", "No ROIs yet; add one below.", 7), ("tf", "No text fields yet; add one below.", 5)])
def test_an_empty_list_says_how_to_start(editors, prefix, message, columns):
    from ril_dash.ui.components.list_editor import editor_table

    table = editor_table(editors[prefix], parse_project_yaml("name: P\nimages: i\n",
                                                             project_dir="/p"))
    assert len(table[0].children.children) == columns
    (only,) = rows(table)
    assert (only.children.children, only.children.colSpan) == (message, columns)


# ---- the changes, on a server -----------------------------------------------------------------
@pytest.fixture(scope="module")
def served(demo_home, tmp_path_factory):
    project = project_copy(demo_home, tmp_path_factory.mktemp("editors") / "project",
                           [("ana", "ana-password-1", False), ("root", "root-password-1", True)])
    server = RunningServer(["serve", str(project), "--login"],
                           env={"RIL_DASH_HOME": str(demo_home)})
    yield (project, DashUser(server.url, "ana", "ana-password-1"),
           DashUser(server.url, "root", "root-password-1"))
    server.stop()


def sha(project) -> str:
    return hashlib.sha256((project / "project.yaml").read_bytes()).hexdigest()


def names(project, prefix: str) -> list[str]:
    config = load_project_config(project)
    return [x.name for x in (config.rois if prefix == "roi" else config.text_fields)]


def changes(prefix: str, project) -> list[tuple]:
    """(output, inputs, state without the hash, status when done) of each change, in order."""
    first, second, last = (names(project, prefix)[i] for i in (0, 1, -1))
    out = (f"..{prefix}-table.children...roi-sha.data...{prefix}-alert.children..."
           f"{prefix}-status.children..")
    if prefix == "roi":
        add_form = [("name", "Forged"), ("radlex", ""), ("color", "#ffffff"), ("type", "area"),
                    ("locked", [])]
        cleared, edit_form = ("name", "radlex"), [("name", "Renamed"), ("radlex", "RID1"),
                                                  ("color", "#123456"), ("locked", ["locked"])]
        confirmed = {"count": 0}
    else:
        add_form = [("name", "Forged"), ("type", "text"), ("values", "ignored, hidden"),
                    ("required", [])]
        cleared, edit_form = ("name", "values"), [("name", "Renamed"), ("values", "x, y"),
                                                  ("required", ["required"])]
        confirmed = {}
    return [
        (out[:-2] + "".join(f"...{prefix}-add-{k}.value" for k in cleared) + "..",
         [(f"{prefix}-add", "n_clicks", 1)],
         [(f"{prefix}-add-{k}", "value", v) for k, v in add_form], "Added Forged."),
        (out, [[({"type": f"{prefix}-move-button", "item": second, "offset": -1}, "n_clicks",
                 1)]], [], f"Moved {second} up."),
        (out[:-2] + f"...{prefix}-edit-form.hidden..", [(f"{prefix}-edit-save", "n_clicks", 1)],
         [(f"{prefix}-edit-target", "data", first)]
         + [(f"{prefix}-edit-{k}", "value", v) for k, v in edit_form], "Saved Renamed."),
        (out[:-2] + f"...{prefix}-delete-dialog.hidden..",
         [(f"{prefix}-delete-confirm", "n_clicks", 1)],
         [(f"{prefix}-delete-target", "data", {"name": last, "typed": False,
                                               "confirmed": confirmed}),
          (f"{prefix}-delete-text", "value", "")], f"Deleted {last}."),
    ]


@pytest.mark.parametrize("prefix", ["roi", "tf"])
def test_every_change_is_for_admins(served, prefix):
    project, ana, root = served
    before = names(project, prefix)
    for output, inputs, state, done in changes(prefix, project):
        yaml_before = (project / "project.yaml").read_bytes()
        state = [*state, ("roi-sha", "data", sha(project))]
        reply = ana.callback(output, inputs, state)
        assert reply.status_code == 200, reply.text
        assert layout_texts(reply.json()["response"][f"{prefix}-alert"]["children"]) == REFUSED
        assert (project / "project.yaml").read_bytes() == yaml_before, done
        reply = root.callback(output, inputs, state)
        assert reply.status_code == 200, reply.text
        answer = reply.json()["response"]
        assert answer[f"{prefix}-status"]["children"] == done, answer
        assert answer["roi-sha"]["data"] == sha(project)
    # added at the end, moved the second up, renamed the (new) second, deleted the last
    assert names(project, prefix) == [before[1], "Renamed", *before[2:-1], "Forged"]
    config = load_project_config(project)
    if prefix == "roi":
        renamed, forged = config.rois[1], config.rois[-1]
        assert (renamed.radlex, renamed.color, renamed.locked) == ("RID1", "#123456", True)
        assert (forged.value, forged.color, forged.type) == (7, "#ffffff", "area")
    else:
        renamed, forged = config.text_fields[1], config.text_fields[-1]
        assert (renamed.type, renamed.values, renamed.required) == ("choice", ("x", "y"), True)
        # the values box is hidden for a text field: what it held was not sent
        assert (forged.type, forged.values) == ("text", ())
