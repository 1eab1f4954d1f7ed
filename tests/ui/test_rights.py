"""Rights, leases and the workflow on a real ``ril-dash serve --login --workflow`` server.

One server for the module serves a private copy of the demo project with the users of its
example workflow (analysts ana, bob → reviewers rita → scientists sam; root is an admin) and
15-second leases. The workflow file is the demo's ``workflow.yaml`` plus one pool named with
HTML, which nobody belongs to (for the last test). Every request goes over HTTP with
``requests``, as the browser sends it: the ``/ril/api`` routes directly, Dash callbacks as the
renderer posts them (``support.DashUser``). What a refused request must not change is read back
from the project's files in this process: the annotation store, the lease files, project.yaml
and the folder tree. Each test works on series of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from urllib.parse import quote

import numpy as np
import pytest
import yaml
from skimage.draw import polygon as sk_polygon
from support import DashUser, RunningServer, layout_texts, project_copy, tree_digest

from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import display_to_canonical
from ril_dash.core.volume import canonical_shape
from ril_dash.project.annotation_store import AnnotationStore, annotated_series
from ril_dash.project.audit import AuditLog
from ril_dash.project.series_locks import SeriesLocks

pytestmark = pytest.mark.slow  # starts a real server process for the module

# ada: an admin of the users file only; nina: a user of the project in no pool
USERS = ("ana", "bob", "rita", "sam", "root", "ada", "nina")
EVIL_POOL = "<img src=x onerror=alert(1)>"
EVIL_TEXT = "<script>window.ril_pwned = 1</script><img src=x onerror=\"window.ril_pwned=2\">"
LIVER = 1
INDEX = 20


def series_id(patient: int, phase: str) -> str:
    return f"PHANTOM-00{patient}/CT-2026-01-14/{phase}.nii.gz"


S_READ = series_id(1, "non-contrast")
S_EDIT = series_id(1, "arterial")
S_LEASE = series_id(1, "portal-venous")
S_FORGE = series_id(1, "delayed")
S_TRAVERSAL = series_id(2, "non-contrast")
S_EXPORT = series_id(2, "arterial")
S_OTHER = series_id(2, "delayed")
S_GRID = series_id(2, "portal-venous")
S_AUDIT = series_id(3, "portal-venous")
S_HTML = series_id(3, "arterial")
S_TEXT = series_id(3, "delayed")
S_ADMIN = series_id(3, "non-contrast")
ESCAPING_LINK = "PHANTOM-001/CT-2026-01-14/escape.nii.gz"  # a symlink to a file outside


def password(user: str) -> str:
    return f"{user}-password-1"


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def project(demo_home, tmp_path_factory):
    """A private copy of the demo project with the workflow's users, and symlinks in its images
    folder that point outside the project (discovery must ignore them)."""
    root = tmp_path_factory.mktemp("rights")
    target = project_copy(demo_home, root / "project",
                          [(user, password(user), user in ("root", "ada")) for user in USERS])
    workflow = yaml.safe_load((target / "workflow.yaml").read_text())
    workflow["workflow"]["pools"][EVIL_POOL] = {"users": [], "rights": ["read"]}
    (root / "workflow.yaml").write_text(yaml.safe_dump(workflow, sort_keys=False))
    outside = root / "outside"
    outside.mkdir()
    shutil.copyfile(target / "images" / S_READ, outside / "secret.nii.gz")
    os.symlink(outside / "secret.nii.gz", target / "images" / ESCAPING_LINK)
    os.symlink(outside, target / "images" / "outside-dir")
    return target


@pytest.fixture(scope="module")
def server(project, demo_home):
    server = RunningServer(["serve", str(project), "--login",
                            "--workflow", str(project.parent / "workflow.yaml"),
                            "--lease-seconds", "15"], env={"RIL_DASH_HOME": str(demo_home)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def users(server) -> dict[str, DashUser]:
    return {user: DashUser(server.url, user, password(user)) for user in USERS}


@pytest.fixture(scope="module")
def store(project):
    return AnnotationStore(project / "annotations")


@pytest.fixture(scope="module")
def locks(project):
    return SeriesLocks(project / "annotations", lease_seconds=15)


# ---- helpers ------------------------------------------------------------------------------------
def shape_of(project, series: str) -> tuple[int, int, int]:
    return canonical_shape(project / "images" / series)


def stored(project, store, series: str):
    """(version, Liver voxels, texts) of ``series`` as saved now."""
    state = store.series(series, shape_of(project, series)).refresh()
    mask = (roi_mask(state.bits, state.slots[LIVER]).copy() if LIVER in state.slots
            else np.zeros(state.bits.shape, bool))
    return state.version, mask, dict(state.texts)


def version_of(project, store, series: str) -> int:
    return stored(project, store, series)[0]


def box_path(x0, y0, x1, y1) -> str:
    return f"M{x0},{y0}L{x1},{y0}L{x1},{y1}L{x0},{y1}Z"


def lasso_voxels(project, series: str, path: str, index: int = INDEX) -> np.ndarray:
    """The canonical voxels a lasso with the SVG ``path`` fills on axial slice ``index``."""
    shape = shape_of(project, series)
    display = (shape[1], shape[0])  # axial rows = Y, cols = X
    points = np.array([[float(v) for v in p.split(",")]
                       for p in path.strip("MZ").replace("L", " ").split()])
    rr, cc = sk_polygon(points[:, 1], points[:, 0], display)
    region = np.zeros(display, bool)
    region[rr, cc] = True
    out = np.zeros(shape, bool)
    rows, cols = np.nonzero(region)
    out[display_to_canonical(shape, "axial", index, rows, cols)] = True
    return out


def edit(user: DashUser, series: str, parent: int | None, path: str, index: int = INDEX):
    return user.post("/ril/api/edit", json={
        "series": series, "tool": "lasso", "roi": LIVER, "plane": "axial", "index": index,
        "parent": parent, "path": path})


def take_action(user: DashUser, series: str, action: str, target=None):
    """The board's action button (``workflow_board.take_action``) with ``series`` selected."""
    button = {"type": "wf-action", "action": action}
    targets = ([({"type": "wf-assign-target", "series": series}, "value", json.dumps(target))]
               if target is not None else [])
    return user.callback("..wf-message.children...wf-refresh.data..",
                         [[(button, "n_clicks", 1)]],
                         [("wf-grid", "selectedRows", [{"id": series, "series": series}]),
                          targets, ("wf-refresh", "data", 0)])


def board_message(reply) -> str:
    assert reply.status_code == 200, reply.text
    return " ".join(layout_texts(reply.json()["response"]["wf-message"]["children"]))


def act(user: DashUser, series: str, action: str, target=None) -> str:
    return board_message(take_action(user, series, action, target))


def save_text(user: DashUser, series: str, field: str, value, version: int):
    """The viewer's text-field callback (``text_fields.save_text``)."""
    return user.callback(
        "..text-message.children...annot-version.data..",
        [[({"type": "text-field", "name": field}, "value", value)]],
        [("viewer-meta", "data", {"series": series}),
         ("annot-version", "data", {"series": series, "version": version, "viewing": None})])


def lease_of(user: DashUser, series: str, action: str):
    return user.post("/ril/api/lease", json={"series": series, "action": action})


def export(user: DashUser, out: str, mode: str = "all", pattern: str | None = None,
           options=("per_roi", "mapping", "tables")):
    """The export page's background callback, run to its end; returns the result's texts."""
    reply = user.background("export-result.children", [("export-start", "n_clicks", 1)], [
        ("export-out", "value", out), ("export-mode", "value", mode),
        ("export-glob", "value", pattern), ("export-options", "value", list(options))])
    assert reply.status_code == 200, reply.text
    return " ".join(layout_texts(reply.json()["response"]["export-result"]["children"]))


def board_rows(user: DashUser, show: str = "all") -> list[dict]:
    reply = user.callback("..wf-grid.rowData...wf-cards.children...wf-count.children..", [
        ("wf-show", "value", show), ("wf-pool", "data", None), ("wf-refresh", "data", 0),
        ("wf-timer", "n_intervals", None)])
    assert reply.status_code == 200, reply.text
    return reply.json()["response"]["wf-grid"]["rowData"]


def viewer_page(user: DashUser, series: str) -> list[str]:
    return layout_texts(user.page("/view", "?series=" + quote(series, safe="")))


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- reading ----------------------------------------------------------------------------------
READ_ROUTES = ("slice", "thumbs", "probe", "annotations", "overlay", "overlay_thumbs",
               "versions", "texts", "lease")


def read_params(series: str) -> dict:
    return {"series": series, "plane": "axial", "index": INDEX, "wc": 40, "ww": 400,
            "row": 5, "col": 5, "factor": 4}


def test_only_the_pools_members_may_read_a_series(project, users, locks):
    for name in ("sam", "rita"):  # neither is in analysts, the series' pool
        for route in READ_ROUTES:
            reply = users[name].get("/ril/api/" + route, params=read_params(S_READ))
            assert reply.status_code == 403, (name, route, reply.text)
            assert reply.json()["error"].startswith(f"{name} may not open {S_READ}: it is in "
                                                    f"the pool 'analysts', and you are not a "
                                                    f"member of it"), reply.text
        texts = viewer_page(users[name], S_READ)
        assert texts[0] == "This series cannot be shown. "
        assert texts[1].startswith(f"{name} may not open {S_READ}"), texts
    for name in ("ana", "bob", "root"):
        for route in READ_ROUTES:
            reply = users[name].get("/ril/api/" + route, params=read_params(S_READ))
            assert reply.status_code == 200, (name, route, reply.text)
        texts = viewer_page(users[name], S_READ)
        assert "This series cannot be shown. " not in texts and S_READ in texts
    reply = users["ana"].get("/ril/api/slice", params=read_params(S_READ))
    assert reply.text.startswith("data:image/png;base64,")
    # the board lists only what each may see, and a forged selection shows nothing
    assert S_READ in {row["id"] for row in board_rows(users["ana"])}
    assert S_READ not in {row["id"] for row in board_rows(users["sam"])}
    reply = users["sam"].callback("wf-actions.children", [
        ("wf-grid", "selectedRows", [{"id": S_READ}]), ("wf-refresh", "data", 0)])
    assert layout_texts(reply.json()["response"]["wf-actions"]["children"]) == [
        "You may not see this series."]
    # the statistics of the viewer's panel, forged for a series sam may not open
    reply = users["sam"].callback("stats-out.children", [("stats-run", "n_clicks", 1)], [
        ("stats-roi", "value", LIVER), ("stats-scope", "value", "volume"),
        ("viewer-meta", "data", {"series": S_READ}), ("plane-select", "value", "axial"),
        ("slice-slider", "value", INDEX), ("frame-slider", "value", 0)])
    texts = layout_texts(reply.json()["response"]["stats-out"]["children"])
    assert texts[0].startswith(f"sam may not open {S_READ}"), texts
    # nobody in the pool holds it: members read it but nobody took its lease
    status = users["bob"].get("/ril/api/lease", params={"series": S_READ}).json()
    assert status["editable"] is False and "acquire it on the Workflow page" in status["reason"]


def grid_rows(client, search=None, filters=None, sort=None, folder=None) -> list[dict]:
    """The project grid's first 100 rows for ``client``, as the grid asks for them."""
    request = {"startRow": 0, "endRow": 100, "filterModel": filters or {},
               "sortModel": sort or []}
    reply = client.callback("series-grid.getRowsResponse",
                            [("series-grid", "getRowsRequest", request)],
                            [("folder-selected", "data", folder),
                             ("series-search", "value", search)])
    assert reply.status_code == 200, reply.text
    response = reply.json()["response"]["series-grid"]["getRowsResponse"]
    assert response["rowCount"] == len(response["rowData"])
    return response["rowData"]


def test_the_project_grid_shows_no_annotations_of_series_one_may_not_open(project, users,
                                                                             store):
    ana, sam = users["ana"], users["sam"]
    assert act(ana, S_GRID, "acquire") == "Done: acquire analysts by ana."
    reply = ana.post("/ril/api/texts", json={"series": S_GRID, "parent": None,
                                             "values": {"Image quality": "poor"}})
    assert reply.status_code == 200, reply.text
    row = next(r for r in grid_rows(sam) if r["id"] == S_GRID)
    assert "text:Image quality" not in row and "rois" not in row and row["restricted"], row
    assert row["pool"] == "analysts" and row["owner"] == "ana"
    row = next(r for r in grid_rows(ana) if r["id"] == S_GRID)
    assert row["text:Image quality"] == "poor" and not row.get("restricted"), row
    # the search box finds the text value for ana only
    assert [r["id"] for r in grid_rows(ana, search="POOR")] == [S_GRID]
    assert grid_rows(sam, search="poor") == []
    assert [r["id"] for r in grid_rows(ana, sort=[{"colId": "text:Image quality",
                                                   "sort": "desc"}])][0] == S_GRID


def test_the_project_page_shows_no_metadata_of_series_one_may_not_open(project, users):
    description = "Synthetic abdominal CT phantom"  # a metadata column of every phantom series

    def rows(user, **query):
        return grid_rows(users[user], **query)

    nina = rows("nina")  # in no pool: every row is there, without its metadata
    assert len(nina) == 13 and all(row["restricted"] for row in nina)
    assert not [key for row in nina for key in row if key.startswith("meta:")]
    assert description not in json.dumps(nina)
    page = json.dumps(users["nina"].page("/"))  # the page as first served: rows come later
    assert S_GRID not in page and description not in page and "MNI ICBM152" not in page
    # nor can it be found through them: by the search box, a column filter or a sort
    assert rows("nina", search="synthetic abdominal") == []
    contains = {"filterType": "text", "type": "contains", "filter": "Synthetic"}
    assert rows("nina", filters={"meta:description": contains}) == []
    assert len(rows("root", search="synthetic abdominal")) == 12
    assert len(rows("root", filters={"meta:description": contains})) == 12
    by_patient = [r["id"] for r in rows("nina", sort=[{"colId": "meta:patient", "sort": "desc"}])]
    assert by_patient == [r["id"] for r in nina]  # all blank to nina: the project's order
    admin = {row["id"]: row for row in rows("root")}
    assert admin[S_GRID]["meta:description"].startswith(description)
    assert admin[S_GRID]["meta:patient"] == "PHANTOM-002"
    # the project may show metadata to every user (project.yaml, picked up while serving)
    config = project / "project.yaml"
    original = config.read_text()
    assert "settings:\n  overlap:" in original
    config.write_text(original.replace("settings:\n", "settings:\n  metadata_visible_to: "
                                                       "everyone\n", 1))
    try:
        opened = {row["id"]: row for row in rows("nina")}
        assert opened[S_GRID]["meta:patient"] == "PHANTOM-002" and opened[S_GRID]["restricted"]
        assert "text:Image quality" not in opened[S_GRID] and "rois" not in opened[S_GRID]
    finally:
        config.write_text(original)
    assert not [key for row in rows("nina") for key in row if key.startswith("meta:")]


# ---- editing ----------------------------------------------------------------------------------
def test_editing_needs_the_series_acquired(project, users, store, locks):
    ana, bob = users["ana"], users["bob"]
    v0, mask0, texts0 = stored(project, store, S_EDIT)
    path = box_path(60, 70, 90, 95)
    refused = {
        "edit": edit(ana, S_EDIT, v0, path),
        "undo": ana.post("/ril/api/undo", json={"series": S_EDIT, "plane": "axial",
                                                "parent": v0}),
        "rollback": ana.post("/ril/api/rollback", json={"series": S_EDIT, "plane": "axial",
                                                        "version": 0, "parent": v0}),
        "texts": ana.post("/ril/api/texts", json={"series": S_EDIT, "parent": v0,
                                                  "values": {"Comment": "not mine yet"}}),
    }
    for what, reply in refused.items():
        assert reply.status_code == 403, (what, reply.text)
        assert reply.json()["error"] == (
            f"ana may not annotate {S_EDIT}: it is in the pool 'analysts' and nobody holds "
            f"it; acquire it on the Workflow page first."), what
    assert stored(project, store, S_EDIT)[0] == v0
    assert locks.holder(S_EDIT) is None  # a refused edit takes no lease either

    assert act(ana, S_EDIT, "acquire") == "Done: acquire analysts by ana."
    v1 = version_of(project, store, S_EDIT)
    assert v1 == v0 + 1
    reply = edit(ana, S_EDIT, v1, path)
    assert reply.status_code == 200, reply.text
    assert reply.json()["changed"] is True and reply.json()["version"] == v1 + 1
    version, mask, texts = stored(project, store, S_EDIT)
    expected = lasso_voxels(project, S_EDIT, path)
    assert version == v1 + 1 and np.array_equal(mask, mask0 | expected)
    assert expected.sum() == 31 * 26 and texts == texts0
    assert locks.holder(S_EDIT).user == "ana"
    # bob is in the same pool, but ana holds the series
    reply = edit(bob, S_EDIT, version, box_path(10, 10, 20, 20))
    assert reply.status_code == 403 and "held by ana" in reply.json()["error"]
    assert version_of(project, store, S_EDIT) == version


# ---- leases -----------------------------------------------------------------------------------
def test_one_editor_at_a_time_and_only_admins_break_a_lock(project, users, store, locks):
    ana, bob, root = users["ana"], users["bob"], users["root"]
    assert act(ana, S_LEASE, "acquire") == "Done: acquire analysts by ana."
    reply = edit(ana, S_LEASE, version_of(project, store, S_LEASE), box_path(30, 30, 40, 40))
    assert reply.status_code == 200, reply.text
    held = locks.holder(S_LEASE)
    assert held.user == "ana"
    version = version_of(project, store, S_LEASE)

    # root may annotate everything, but ana is editing: 423, nothing saved
    reply = edit(root, S_LEASE, version, box_path(50, 50, 60, 60))
    assert reply.status_code == 423, reply.text
    assert f"{S_LEASE} is being edited by ana since " in reply.json()["error"]
    status = root.get("/ril/api/lease", params={"series": S_LEASE}).json()
    assert status["editable"] is False and status["can_break"] is True
    assert status["holder"]["user"] == "ana" and "being edited by ana since" in status["reason"]
    # bob sees who edits it, and may not break the lock
    status = bob.get("/ril/api/lease", params={"series": S_LEASE}).json()
    assert status["editable"] is False and status["can_break"] is False
    assert "held by ana" in status["reason"] and "being edited by ana since" in status["reason"]
    reply = lease_of(bob, S_LEASE, "release")  # not his to give up
    assert reply.status_code == 200 and reply.json()["released"] is False
    reply = lease_of(bob, S_LEASE, "break")
    assert reply.status_code == 403, reply.text
    assert reply.json()["error"] == ("Only an administrator may break another user's lock; "
                                     "bob is not one.")
    assert locks.holder(S_LEASE) == held
    assert version_of(project, store, S_LEASE) == version

    # root breaks it (and takes it): ana's next renewal says read-only, her edit is refused
    reply = lease_of(root, S_LEASE, "break")
    assert reply.status_code == 200, reply.text
    assert reply.json()["editable"] is True
    assert locks.holder(S_LEASE).user == "root"
    reply = lease_of(ana, S_LEASE, "renew")
    assert reply.status_code == 200
    assert reply.json()["editable"] is False
    assert "being edited by root since" in reply.json()["reason"]
    reply = edit(ana, S_LEASE, version, box_path(70, 70, 80, 80))
    assert reply.status_code == 423 and "being edited by root" in reply.json()["error"]
    assert version_of(project, store, S_LEASE) == version
    entries = AuditLog.for_project(project).read(action="break_lock", series=S_LEASE)
    assert [(e["user"], e["detail"]["holder"]) for e in entries] == [("root", "ana")]
    reply = lease_of(root, S_LEASE, "release")
    assert reply.json()["released"] is True and locks.holder(S_LEASE) is None


# ---- forged callbacks ---------------------------------------------------------------------------
def test_forged_callbacks_are_refused(project, users, store, tmp_path):
    from ril_dash.project.export import export_project
    from ril_dash.project.project import Project

    ana, bob, sam, root = users["ana"], users["bob"], users["sam"], users["root"]
    assert act(ana, S_FORGE, "acquire") == "Done: acquire analysts by ana."
    assert edit(ana, S_FORGE, version_of(project, store, S_FORGE),
                box_path(40, 40, 70, 70)).status_code == 200
    version, mask, texts = stored(project, store, S_FORGE)

    # the text field of the viewer, posted by users who may not annotate the series
    for user in (bob, sam):
        reply = save_text(user, S_FORGE, "Comment", "forged", version)
        if reply.status_code < 400:
            message = layout_texts(reply.json()["response"]["text-message"]["children"])
            assert "annot-version" not in reply.json()["response"], reply.text
            assert message and message[0].startswith(f"{user.user} may not annotate"), message
    assert stored(project, store, S_FORGE)[0] == version
    # ... and by ana, who holds it (the same request is not refused for everybody)
    reply = save_text(ana, S_FORGE, "Comment", "mine", version)
    assert reply.json()["response"]["text-message"]["children"] == "Required: Contrast phase"
    version += 1
    assert stored(project, store, S_FORGE)[2] == dict(texts, Comment="mine")
    # reading another series' texts through the viewer's callback
    comment = {"type": "text-field", "name": "Comment"}
    reply = sam.callback('{"name":["ALL"],"type":"text-field"}.value',
                         [("annot-version", "data", {"series": S_FORGE, "viewing": None})],
                         [[(comment, "value", None)], [(comment, "id", comment)]],
                         outputs=[{"id": comment, "property": "value"}])
    assert reply.status_code == 403 and "mine" not in reply.text

    # workflow actions the rules do not allow
    for user, action, expected in (
            (sam, "approve", "sam cannot approve this series (in analysts): it is held by ana"),
            (bob, "acquire", "bob cannot acquire this series (in analysts): it is held by ana"),
            (bob, "release", "bob cannot release this series (in analysts): it is held by ana"),
            (ana, "approve", "ana cannot approve this series (in analysts): the pool "
                             "'analysts' has no review right")):
        assert act(user, S_FORGE, action).startswith(expected)
    message = act(ana, S_FORGE, "assign", ["scientists", None])
    assert message.startswith("ana cannot assign this series (in analysts): the pool "
                              "'analysts' may only assign to: reviewers")
    assert stored(project, store, S_FORGE)[0] == version

    # project.yaml changes and imports are for admins: the ROI page says so, shows no editing
    # controls (the page class hides them) and the server refuses a forged change
    page = ana.page("/rois")
    assert "Only an administrator changes the ROIs and text fields; you see them read-only." \
        in layout_texts(page)
    assert "ril-defs-read-only" in page["props"]["className"]
    page = users["root"].page("/rois")
    assert "ril-defs-read-only" not in page["props"]["className"]
    yaml_sha = sha256(project / "project.yaml")
    reply = ana.callback(
        "..roi-table.children...roi-sha.data...roi-alert.children...roi-status.children..."
        "roi-add-name.value...roi-add-radlex.value..",
        [("roi-add", "n_clicks", 1)],
        [("roi-add-name", "value", "Forged"), ("roi-add-radlex", "value", ""),
         ("roi-add-color", "value", "#ffffff"), ("roi-add-type", "value", "area"),
         ("roi-add-locked", "value", []), ("roi-sha", "data", yaml_sha)])
    assert reply.status_code == 200, reply.text
    assert layout_texts(reply.json()["response"]["roi-alert"]["children"]) == [
        "Not saved. ", "Only an administrator may change the project's ROIs and text fields; "
                       "ana is not one."]
    assert sha256(project / "project.yaml") == yaml_sha

    export_project(Project.open(project), tmp_path / "masks-out", series=[S_FORGE],
                   excel=False, tables=False)
    assert ana.post("/ril/api/edit", json={
        "series": S_FORGE, "tool": "clear", "roi": LIVER, "plane": "axial", "index": INDEX,
        "parent": version}).status_code == 200
    version += 1
    assert not stored(project, store, S_FORGE)[1].any()
    for user in (ana, sam):  # the import is a background callback (a job): run it to its end
        reply = user.background("import-result.children", [("import-start", "n_clicks", 1)],
                              [("import-dir", "value", str(tmp_path / "masks-out" / "masks")),
                               ("import-mapping", "value",
                                str(tmp_path / "masks-out" / "mapping.json"))])
        assert reply.status_code == 200, reply.text
        assert layout_texts(reply.json()["response"]["import-result"]["children"]) == [
            f"Only an administrator may import masks; {user.user} is not one."]
    assert stored(project, store, S_FORGE)[0] == version
    assert not stored(project, store, S_FORGE)[1].any()
    # the admin may: the same request imports the masks back (so the refusals were real)
    reply = root.background("import-result.children", [("import-start", "n_clicks", 1)],
                          [("import-dir", "value", str(tmp_path / "masks-out" / "masks")),
                           ("import-mapping", "value",
                            str(tmp_path / "masks-out" / "mapping.json"))])
    assert layout_texts(reply.json()["response"]["import-result"]["children"])[0].startswith(
        "Imported masks into 1 series")
    assert np.array_equal(stored(project, store, S_FORGE)[1], mask)


# ---- path traversal -----------------------------------------------------------------------------
BAD_IDS = ["../x", "../../etc/passwd", "/etc/passwd", "%2e%2e/%2e%2e/etc/passwd",
           "PHANTOM-001/../../outside/secret.nii.gz", "./" + S_TRAVERSAL, S_TRAVERSAL + "/..",
           ESCAPING_LINK, "outside-dir/secret.nii.gz", "not/a-series.nii.gz",
           "PHANTOM-001\\..\\x", "a\0b"]


def everything(project) -> dict[str, str]:
    """Every file and folder beside and inside the project, but the sessions, the audit log
    and what is inside the annotation folders of real series (checkpoints are written in the
    background after saves)."""
    digest = tree_digest(project.parent)
    series = re.compile(r"project/annotations/(PHANTOM|MNI152)[^/]*/[^/]+/[^/]+\.ril/")
    return {k: v for k, v in digest.items()
            if "/.sessions" not in k and "audit.log.jsonl" not in k and not series.search(k)}


def test_series_ids_never_escape(project, users):
    from ril_dash.project.project import Project

    known = {s.id for s in Project.open(project).series}
    assert len(known) == 13 and S_TRAVERSAL in known
    assert ESCAPING_LINK not in known and "outside-dir/secret.nii.gz" not in known
    before = everything(project)
    checked = 0
    for user in (users["ana"], users["root"]):
        for bad in BAD_IDS:
            params = dict(read_params(bad))
            reply = user.get("/ril/api/slice", params=params)
            assert 400 <= reply.status_code < 500, (user.user, bad, reply.status_code)
            for action in ("renew", "break", "release"):
                reply = lease_of(user, bad, action)
                assert 400 <= reply.status_code < 500, (user.user, bad, action, reply.text)
            reply = edit(user, bad, 0, box_path(1, 1, 9, 9))
            assert 400 <= reply.status_code < 500, (user.user, bad, reply.text)
            reply = user.post("/ril/api/texts", json={"series": bad, "parent": 0,
                                                      "values": {"Comment": "x"}})
            assert 400 <= reply.status_code < 500, (user.user, bad, reply.text)
            texts = viewer_page(user, bad)
            assert texts[0] == "This series cannot be shown. ", (user.user, bad, texts)
            reply = take_action(user, bad, "acquire")
            assert 400 <= reply.status_code < 500, (user.user, bad, reply.text)
            checked += 1
        # the same ids percent-encoded in the query string, as a browser may send them
        for raw in ("%2e%2e/%2e%2e/etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
                    "PHANTOM-001%2F..%2F..%2Foutside%2Fsecret.nii.gz"):
            reply = user.get(f"/ril/api/slice?series={raw}&plane=axial&index=0&wc=0&ww=1")
            assert 400 <= reply.status_code < 500, (user.user, raw, reply.status_code)
            texts = layout_texts(user.page("/view", f"?series={raw}"))
            assert texts[0] == "This series cannot be shown. ", (user.user, raw, texts)
    assert checked == 2 * len(BAD_IDS)
    assert everything(project) == before
    # a real series still works for both (the refusals were about the ids)
    assert users["root"].get("/ril/api/slice", params=read_params(S_TRAVERSAL)).status_code == 200


# ---- export -------------------------------------------------------------------------------------
def test_export_follows_the_export_right_and_stays_in_the_exports_folder(project, users, store):
    import nibabel as nib

    ana, rita, sam = users["ana"], users["rita"], users["sam"]
    assert act(ana, S_EXPORT, "acquire") == "Done: acquire analysts by ana."
    path = box_path(100, 110, 140, 150)
    assert edit(ana, S_EXPORT, version_of(project, store, S_EXPORT), path).status_code == 200
    assert act(ana, S_EXPORT, "assign", ["reviewers", None]) == \
        "Done: assign analysts → reviewers by ana."
    assert act(rita, S_EXPORT, "acquire") == "Done: acquire reviewers by rita."
    assert act(rita, S_EXPORT, "approve") == "Done: approve reviewers → scientists by rita."
    # another series with annotations stays in analysts: sam may not export it
    assert act(ana, S_OTHER, "acquire") == "Done: acquire analysts by ana."
    assert edit(ana, S_OTHER, version_of(project, store, S_OTHER),
                box_path(5, 5, 9, 9)).status_code == 200

    exports = project / "exports"
    text = export(sam, "sam-all")
    assert text.startswith(f"Exported 1 series (1 mask files) to {exports / 'sam-all'}."), text
    masks = sorted(p.relative_to(exports / "sam-all" / "masks").as_posix()
                   for p in (exports / "sam-all" / "masks").rglob("*.nii.gz"))
    assert masks == [S_EXPORT.removesuffix(".nii.gz") + "/Liver.nii.gz"]
    assert json.loads((exports / "sam-all" / "mapping.json").read_text())["rois"]
    tables = list((exports / "sam-all").glob("*.csv"))
    assert tables and any(S_EXPORT in t.read_text() for t in tables)
    for table in tables:
        assert S_OTHER not in table.read_text() and S_EDIT not in table.read_text(), table
    saved = nib.load(exports / "sam-all" / "masks" / masks[0])
    _, mask, _ = stored(project, store, S_EXPORT)
    assert int(np.asarray(saved.dataobj).astype(bool).sum()) == int(mask.sum()) == 41 * 41
    # a pattern that only matches series of other pools exports nothing
    text = export(sam, "sam-p1", "glob", "PHANTOM-002/*/delayed.nii.gz")
    assert text.startswith("Exported 0 series"), text
    assert not list((exports / "sam-p1").rglob("*.nii.gz"))

    # ana has no export right: the page says so, a forged export is refused
    assert layout_texts(ana.page("/export")) == [
        "Export masks and tables", "Your pools have no export right; ask an administrator."]
    assert export(ana, "ana-out") == ("ana may not export: none of their pools has the export "
                                      "right; ask an administrator.")
    assert not (exports / "ana-out").exists()

    # no folder outside <project>/exports/
    for out in ("../../escaped", str(project.parent / "escaped-abs"), "/tmp/ril-escape-test",
                "..", ".", "sam-all/../../escaped", ""):
        text = export(sam, out)
        assert text.startswith("Name a new folder inside exports/") or \
            text == "Choose an output folder.", (out, text)
    assert not (project.parent / "escaped").exists()
    assert not (project.parent / "escaped-abs").exists()
    assert not os.path.exists("/tmp/ril-escape-test")


def test_admins_of_the_users_file_are_admins_of_the_workflow(project, users, store):
    """ada is an admin in the users file but not among the workflow's admins: she may still do
    everything (access.is_admin), on the board and in exports too."""
    ada = users["ada"]
    assert act(ada, S_ADMIN, "acquire") == "Done: acquire analysts by ada."
    assert act(users["ana"], S_ADMIN, "acquire").startswith("ana cannot acquire this series")
    assert act(ada, S_ADMIN, "assign", ["scientists", "sam"]) == \
        "Done: assign analysts → scientists (sam) by ada."
    assert act(ada, S_ADMIN, "release") == "Done: release scientists (held by sam) by ada."
    reply = edit(ada, S_ADMIN, version_of(project, store, S_ADMIN), box_path(8, 8, 12, 12))
    assert reply.status_code == 200, reply.text
    text = export(ada, "ada-all")
    exported = {p.parent.relative_to(project / "exports" / "ada-all" / "masks").as_posix()
                for p in (project / "exports" / "ada-all" / "masks").rglob("*.nii.gz")}
    assert {s.removesuffix(".nii.gz") for s in (S_EXPORT, S_OTHER, S_ADMIN)} <= exported, text
    annotated = annotated_series(project / "annotations")
    assert text.startswith(f"Exported {len(annotated)} series ({len(exported)} mask files)"), text
    assert layout_texts(ada.page("/audit"))[0] == "Audit log"
    assert "Import masks" in layout_texts(ada.page("/export"))


# ---- audit --------------------------------------------------------------------------------------
def audit_rows(user: DashUser, action=None, who="", series=""):
    return user.callback(
        "..audit-grid.rowData...audit-count.children...audit-page.data...audit-older.disabled..",
        [("audit-user", "value", who), ("audit-action", "value", action),
         ("audit-series", "value", series), ("audit-since", "value", ""),
         ("audit-newest", "n_clicks", 0), ("audit-older", "n_clicks", 0)],
        [("audit-page", "data", None)])


def test_the_audit_log_is_for_admins(project, users, store):
    ana, root = users["ana"], users["root"]
    assert act(ana, S_AUDIT, "acquire") == "Done: acquire analysts by ana."
    assert edit(ana, S_AUDIT, version_of(project, store, S_AUDIT),
                box_path(20, 20, 30, 30)).status_code == 200
    assert export(root, "root-audit", "glob", S_AUDIT).startswith("Exported 1 series")

    reply = audit_rows(root)
    assert reply.status_code == 200, reply.text
    rows = reply.json()["response"]["audit-grid"]["rowData"]
    log = AuditLog.for_project(project).read(limit=5000)
    assert [(r["user"], r["action"], r["series"]) for r in rows] == [
        (e["user"], e["action"], e["series"] or "") for e in log]
    assert {"login", "transition", "save", "export", "lock"} <= {r["action"] for r in rows}
    assert {r["user"] for r in rows if r["action"] == "login"} >= set(USERS)
    transition = next(r for r in rows if r["action"] == "transition" and r["series"] == S_AUDIT)
    assert transition["user"] == "ana"
    assert json.loads(transition["detail"])["label"] == "acquire analysts by ana"
    save = next(r for r in rows if r["action"] == "save" and r["series"] == S_AUDIT)
    assert save["user"] == "ana" and json.loads(save["detail"])["tool"] == "lasso"
    exported = next(r for r in rows if r["action"] == "export")
    assert exported["user"] == "root"
    assert json.loads(exported["detail"])["folder"] == str(project / "exports" / "root-audit")
    # filters
    reply = audit_rows(root, action="export", who="root")
    rows = reply.json()["response"]["audit-grid"]["rowData"]
    assert rows and {(r["user"], r["action"]) for r in rows} == {("root", "export")}
    assert reply.json()["response"]["audit-count"]["children"] == f"{len(rows)} entries"

    # not for others: the page says so, the callback is refused
    assert layout_texts(ana.page("/audit")) == [
        "Audit log", "Only an administrator may read the audit log; ana is not one."]
    reply = audit_rows(ana)
    assert reply.status_code == 403 and "rowData" not in reply.text


# ---- HTML in names ------------------------------------------------------------------------------
def browser_login(context, url: str, user: str):
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{url}/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password(user))
    page.click("button[type=submit]")
    page.wait_for_selector(".ril-user")
    return page


@pytest.mark.browser
def test_html_in_pool_names_and_text_values_is_shown_as_text(server, users, browser, ui):
    root, ana = users["root"], users["ana"]
    assert act(root, S_HTML, "assign", [EVIL_POOL, None]) == \
        f"Done: assign analysts → {EVIL_POOL} by root."
    assert act(ana, S_TEXT, "acquire") == "Done: acquire analysts by ana."
    reply = ana.post("/ril/api/texts", json={"series": S_TEXT, "parent": None,
                                             "values": {"Comment": EVIL_TEXT}})
    assert reply.status_code == 200 and reply.json()["texts"]["Comment"] == EVIL_TEXT
    dialogs = []
    for user in ("root", "ana"):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        try:
            page = browser_login(context, server.url, user)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            if user == "root":
                page.goto(server.url + "/workflow")
                page.click("#wf-show label:has-text('everything I can see')")
                card = page.locator(".ril-pool-card strong", has_text=EVIL_POOL)
                card.wait_for()
                assert card.inner_text() == EVIL_POOL
                row = page.locator(f"#wf-grid .ag-row[row-id='{S_HTML}']").first
                row.locator("[col-id=pool]").wait_for()
                assert row.locator("[col-id=pool]").inner_text() == EVIL_POOL
                row.locator("[col-id=series]").click()
                page.wait_for_selector("#wf-actions .ril-series-title")
                assert f"In {EVIL_POOL}, nobody holds it." in page.inner_text("#wf-actions")
                assert page.locator(".ril-board img").count() == 0
            else:
                ui.open_viewer(page, server.url, S_TEXT)
                field = page.locator(".ril-text-field input[type=text]")
                assert field.input_value() == EVIL_TEXT
                assert page.locator(".ril-annot-panel img, .ril-annot-panel script").count() == 0
            assert page.evaluate("window.ril_pwned") is None
        finally:
            context.close()
    assert dialogs == []
