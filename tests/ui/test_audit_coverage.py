"""Every change a user can make over HTTP records an audit line.

Two halves:

- **Which requests change state** is read from the app itself: its POST routes (Flask's URL
  map) and the Dash callbacks that call an application command (found in their source, through
  the UI helpers that call one). Each must be listed in :data:`ROUTES` or :data:`CALLBACKS` with
  the audit action it records, so a new route or callback that changes state without being
  listed here fails this test.
- **That each records its line** is checked on a real ``ril-dash serve --login`` server over
  HTTP: each listed request is made, and the audit log must gain the named action by its user.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re

import pytest
from support import DashUser, layout_texts, password, project_with_workflow, workflow_server
from test_list_editor import changes as editor_changes
from test_list_editor import sha

from ril_dash.project.audit import AuditLog

pytestmark = pytest.mark.slow  # starts a server

#: POST routes → the audit actions they record
ROUTES = {
    "/login": {"login"}, "/logout": {"logout"},
    "/ril/api/edit": {"save"}, "/ril/api/contour": {"save"}, "/ril/api/undo": {"undo"},
    "/ril/api/redo": {"redo"},
    "/ril/api/rollback": {"rollback"}, "/ril/api/texts": {"text_change"},
    "/ril/api/copy_frames": {"save"},  # exercised in test_frame_masks_browser.py (a 4D series)
    "/ril/api/lease": {"lock", "unlock", "break_lock"},
}
#: Dash callbacks that change state (their output, without Dash's @hash suffixes) → the action
CALLBACKS = {
    "..text-message.children...annot-version.data..": "text_change",
    "..wf-message.children...wf-refresh.data..": "transition",
    "export-result.children": "export",
    "import-result.children": "import",
    "export-status.title": "cancel_job",
    "import-status.title": "cancel_job",
    "..jobs-message.children...jobs-refresh.data..": "cancel_job",
    # model runs (the draft's line is written when the run writes a version) and the Models
    # page (checked in test_models_page.py, on a project with bundles)
    "..run-result.children...run-version.data..": "model_draft",
    "batch-result.children": "model_draft",
    "run-status.title": "cancel_job",
    "batch-status.title": "cancel_job",
    "explain-status.title": "cancel_job",  # the Cancel of a map job (maps are views)
    "..models-message.children...models-refresh.data..": "models",
    "..models-upload-result.children...models-refresh.data..": "models",
    "..wiz-created.children...wiz-token.data..": "models",
    # training: the job writes the new version's line (tests/application/test_training.py,
    # test_train_browser.py)
    "..train-result.children...train-curve.figure..": "models",
    "train-status.title": "cancel_job",
    **{key: "definitions" for prefix in ("roi", "tf") for key in (
        f"..{prefix}-table.children...roi-sha.data...{prefix}-alert.children..."
        f"{prefix}-status.children...{prefix}-add-name.value..."
        f"{prefix}-add-{'radlex' if prefix == 'roi' else 'values'}.value..",
        f"..{prefix}-table.children...roi-sha.data...{prefix}-alert.children..."
        f"{prefix}-status.children..",
        f"..{prefix}-table.children...roi-sha.data...{prefix}-alert.children..."
        f"{prefix}-status.children...{prefix}-edit-form.hidden..",
        f"..{prefix}-table.children...roi-sha.data...{prefix}-alert.children..."
        f"{prefix}-status.children...{prefix}-delete-dialog.hidden..")},
}
#: the application layer's commands that change something
COMMANDS = {
    "edit_series", "set_texts", "change_history", "move_series", "take_lease", "release_lease",
    "break_lease", "edit_guard", "export_series", "import_mask_folder", "start_export",
    "start_import", "cancel_job", "add_roi", "update_roi", "move_roi", "delete_roi",
    "add_text_field", "update_text_field", "move_text_field", "delete_text_field",
    "start_model_run", "set_model_enabled", "activate_model_version", "trust_model_version",
    "import_bundle", "create_bundle_version", "start_training",
}


def _calls(source: str, names: set[str]) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\(", source) for n in names)


def _ui_functions() -> dict[str, str]:
    import ril_dash.ui

    found = {}
    for info in pkgutil.walk_packages(ril_dash.ui.__path__, "ril_dash.ui."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                found[name] = inspect.getsource(obj)
    return found


def state_changing_callbacks(app) -> set[str]:
    """The outputs of the callbacks that call an application command, directly or through a
    UI helper (a list editor calls the commands of its spec: ``editor.changes.add(…)``)."""
    import dash._callback

    app.server.test_client().get("/_dash-dependencies")  # registers the callbacks
    mutators, functions = set(COMMANDS), _ui_functions()
    grown = True
    while grown:
        grown = False
        for name, source in functions.items():
            if name not in mutators and _calls(source, mutators):
                mutators.add(name)
                grown = True
    found = set()
    for key, spec in dash._callback.GLOBAL_CALLBACK_MAP.items():
        if "callback" not in spec:  # a clientside callback
            continue
        source = inspect.getsource(inspect.unwrap(spec["callback"]))
        if _calls(source, mutators) or ".changes." in source:
            found.add(re.sub(r"@[0-9a-f]{64}", "", key))
    return found


# ---- fixtures ---------------------------------------------------------------------------------
USERS = ("ana", "root")
S1 = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
S2 = "PHANTOM-001/CT-2026-01-14/delayed.nii.gz"


@pytest.fixture(scope="module")
def project(demo_home, tmp_path_factory):
    return project_with_workflow(demo_home, tmp_path_factory.mktemp("audit-coverage"),
                                 [(user, password(user), user == "root") for user in USERS])


@pytest.fixture(scope="module")
def server(project, demo_home):
    server = workflow_server(project, demo_home)
    yield server
    server.stop()


class Audit:
    """The project's audit log, read since the last look."""

    def __init__(self, project) -> None:
        self.log = AuditLog.for_project(project)
        self.seen = len(self.log.read())

    def new(self) -> list[tuple[str, str]]:
        entries = list(reversed(self.log.read()))
        fresh, self.seen = entries[self.seen:], len(entries)
        return [(e["action"], e["user"]) for e in fresh]


# ---- the lists are complete -----------------------------------------------------------------
def test_every_state_changing_route_and_callback_is_listed(demo_home):
    from ril_dash.project.project import Project
    from ril_dash.settings import Settings
    from ril_dash.ui.app import create_app

    project = Project.open(demo_home / "demo-project")
    app = create_app(project, Settings(project_dir=project.dir, login_required=True))
    posts = {rule.rule for rule in app.server.url_map.iter_rules()
             if "POST" in rule.methods and rule.rule != "/_dash-update-component"}
    assert posts == set(ROUTES)
    assert state_changing_callbacks(app) == set(CALLBACKS)


# ---- and each records its line ---------------------------------------------------------------
def test_each_route_records_its_audit_line(project, server):
    audit = Audit(project)
    root = DashUser(server.url, "root", password("root"))
    ana = DashUser(server.url, "ana", password("ana"))
    assert audit.new() == [("login", "root"), ("login", "ana")]

    def post(user, path, body):
        reply = user.post(path, json=body)
        assert reply.status_code == 200, (path, reply.text)
        return reply.json()

    post(root, "/ril/api/lease", {"series": S1, "action": "renew"})
    assert audit.new() == [("lock", "root")]
    lasso = {"series": S1, "tool": "lasso", "roi": 1, "plane": "axial", "index": 20,
             "path": "M100,100L140,100L140,140L100,140Z"}
    version = post(root, "/ril/api/edit", {**lasso, "parent": 0})["version"]
    assert audit.new() == [("save", "root")]
    snap = {**lasso, "tool": "snap", "path": None, "parent": version}
    version = post(root, "/ril/api/contour", snap)["version"]
    assert audit.new() == [("save", "root")]
    for action in ("undo", "redo"):
        version = post(root, f"/ril/api/{action}", {"series": S1, "parent": version})["version"]
        assert audit.new() == [(action, "root")]
    post(root, "/ril/api/rollback", {"series": S1, "parent": version, "version": 0})
    assert audit.new() == [("rollback", "root")]
    version = post(root, "/ril/api/texts", {"series": S1, "parent": None,
                                           "values": {"Contrast phase": "arterial"}})["version"]
    assert audit.new() == [("text_change", "root")]
    post(root, "/ril/api/lease", {"series": S1, "action": "release"})
    assert audit.new() == [("unlock", "root")]
    # ana holds and edits S2; root breaks her lease
    assert root.callback("..wf-message.children...wf-refresh.data..", [[(
        {"type": "wf-action", "action": "assign"}, "n_clicks", 1)]], [
        ("wf-grid", "selectedRows", [{"id": S2, "series": S2}]),
        [({"type": "wf-assign-target", "series": S2}, "value", json.dumps(["analysts", "ana"]))],
        ("wf-refresh", "data", 0)]).status_code == 200
    assert audit.new() == [("transition", "root")]
    post(ana, "/ril/api/lease", {"series": S2, "action": "renew"})
    assert audit.new() == [("lock", "ana")]
    post(root, "/ril/api/lease", {"series": S2, "action": "break"})
    assert audit.new() == [("break_lock", "root"), ("lock", "root")]
    assert ana.post("/logout").status_code in (200, 302, 303)
    assert audit.new() == [("logout", "ana")]


def test_each_callback_records_its_audit_line(project, server):
    audit = Audit(project)
    root = DashUser(server.url, "root", password("root"))
    audit.new()

    reply = root.callback("..text-message.children...annot-version.data..",
                          [[({"type": "text-field", "name": "Contrast phase"}, "value",
                             "delayed")]],
                          [("viewer-meta", "data", {"series": S1}),
                           ("annot-version", "data", {"series": S1, "version": None,
                                                      "viewing": None})])
    assert reply.status_code == 200, reply.text
    assert ("text_change", "root") in audit.new()

    for prefix in ("roi", "tf"):
        for output, inputs, state, done in editor_changes(prefix, project):
            reply = root.callback(output, inputs, [*state, ("roi-sha", "data", sha(project))])
            assert reply.status_code == 200, reply.text
            assert reply.json()["response"][f"{prefix}-status"]["children"] == done
            assert audit.new() == [("definitions", "root")], done

    reply = root.background("export-result.children", [("export-start", "n_clicks", 1)], [
        ("export-out", "value", "audited"), ("export-mode", "value", "all"),
        ("export-glob", "value", None), ("export-options", "value", ["per_roi"])])
    assert reply.status_code == 200, reply.text
    assert audit.new() == [("export", "root")]
    (project / "exports" / "no-masks").mkdir()
    reply = root.background("import-result.children", [("import-start", "n_clicks", 1)], [
        ("import-dir", "value", str(project / "exports" / "no-masks")),
        ("import-mapping", "value", None)])
    assert reply.status_code == 200, reply.text
    assert audit.new() == [("import", "root")]

    from ril_dash.jobs import JobStore

    job = JobStore.for_project(project).list(owner="root")[0]
    for output, inputs, state in (
            ("export-status.title", [("export-cancel", "n_clicks", 1)],
             [("export-job", "data", job.id)]),
            ("import-status.title", [("import-cancel", "n_clicks", 1)],
             [("import-job", "data", job.id)]),
            ("..jobs-message.children...jobs-refresh.data..",
             [[({"type": "jobs-cancel", "job": job.id}, "n_clicks", 1)]],
             [("jobs-refresh", "data", 0)])):
        reply = root.callback(output, inputs, state)
        assert reply.status_code == 200, reply.text
        assert audit.new() == [("cancel_job", "root")], output


def test_the_model_wizard_records_its_audit_line_and_refuses_others(project, server, tmp_path):
    from ril_dash.models.wizard_files import save_upload
    from ril_dash.ui.components.wizard_form import CHANNEL, FIELDS
    from tests.models.test_safety import functional, write_keras

    audit = Audit(project)
    root = DashUser(server.url, "root", password("root"))
    ana = DashUser(server.url, "ana", password("ana"))
    audit.new()
    upload = save_upload(project, "t.keras",
                         write_keras(tmp_path / "t.keras", functional()).read_bytes())
    form = {key: None for key in FIELDS} | {
        "id": "audited", "version": "1.0.0", "name": "Audited", "task": "segmentation",
        "plane": "axial", "rows": 8, "cols": 8, "resample": "size", "slices": 1,
        "norm_method": "none", "activation": "softmax", "largest_component": [],
        "min_size": 0}
    from ril_dash.project.schema import load_project_config

    # an area ROI of the project as the tests above left it (they edit the ROIs)
    roi = next(r.name for r in load_project_config(project).rois if r.type == "area")
    channel = {"type": CHANNEL, "channel": 1}
    state = [("wiz-token", "data", upload.token), ("wiz-runtime-store", "data", 0.01),
             *((cid, prop, form[key]) for key, (cid, prop) in FIELDS.items()),
             [(channel, "value", roi)], [(channel, "id", channel)], []]
    output = "..wiz-created.children...wiz-token.data.."
    assert any("ana is not one" in t for t in layout_texts(ana.page("/models/new")))
    refused = ana.callback(
        "..wiz-upload-status.children...wiz-token.data...wiz-steps.children..."
        "wiz-runtime-store.data...wiz-yaml.children..",
        [("wiz-upload", "contents", "data:;base64,eA==")],
        [("wiz-upload", "filename", "x.keras"), ("wiz-series", "value", S1)])
    assert refused.status_code == 403 and "ana is not one" in refused.text
    assert list((project / ".models" / "uploads").iterdir()) == [upload.path.parent]
    refused = ana.callback(output, [("wiz-create", "n_clicks", 1)], state)
    assert refused.status_code == 403 and "ana is not one" in refused.text
    assert audit.new() == []
    reply = root.callback(output, [("wiz-create", "n_clicks", 1)], state)
    assert reply.status_code == 200, reply.text
    assert "Created audited 1.0.0" in reply.text, reply.text
    assert audit.new() == [("models", "root")]
    assert (project / "plugins" / "audited" / "1.0.0" / "plugin.yaml").is_file()
