"""The Models page, the new-version notice and the model-run callbacks on a real
``ril-dash serve --login --workflow`` server: what each user sees, and that every change is
refused (403, nothing changed) to users without the ``models`` right and audited otherwise.

The project is a private copy of the demo with the example workflow's users (ana and bob
analysts, rita reviewer, sam scientist, root admin) and three bundles in its ``plugins/``
folder: kidney-draft 1.0.0 and 1.1.0, and a broken one. No model runs here (the model files
are placeholders); runs in a browser are in ``test_models_browser.py``.
"""

from __future__ import annotations

import json

import pytest
from model_bundles import write_bundle
from support import (DashUser, dash_id, layout_texts, password, project_with_workflow,
                     workflow_server)

from ril_dash.project.audit import AuditLog

pytestmark = pytest.mark.slow  # starts a real server process for the module

USERS = ("ana", "sam", "root")
S1 = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
MANAGE = "..models-message.children...models-refresh.data.."
UPLOAD = "..models-upload-result.children...models-refresh.data.."
NOTICE = "..models-notice-seen.data...models-notice.children.."
RUN = "..run-result.children...run-version.data.."
ESTIMATE = "..run-estimate.children...run-scope.options...run-mode.style.."


@pytest.fixture(scope="module")
def project(demo_home, tmp_path_factory):
    target = project_with_workflow(demo_home, tmp_path_factory.mktemp("models-page"),
                                   [(user, password(user), user == "root") for user in USERS])
    plugins = target / "plugins"
    write_bundle(plugins, "kidney-draft", "1.0.0", name="Kidney draft",
                 changelog="first version", model=b"model one")
    write_bundle(plugins, "kidney-draft", "1.1.0", name="Kidney draft",
                 changelog="more training data", model=b"model two")
    write_bundle(plugins, "phase", "0.1.0", task="classification", model=b"classifier")
    text = (plugins / "phase" / "0.1.0" / "plugin.yaml").read_text()
    (plugins / "phase" / "0.1.0" / "plugin.yaml").write_text(
        text.replace("text_field: Contrast phase", "text_field: Phase"))
    broken = plugins / "broken" / "1.0.0"
    broken.mkdir(parents=True)
    (broken / "plugin.yaml").write_text("id: broken\nversion: 1.0.0\nsise: 3\n")
    return target


@pytest.fixture(scope="module")
def server(project, demo_home):
    server = workflow_server(project, demo_home)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def users(server) -> dict[str, DashUser]:
    return {user: DashUser(server.url, user, password(user)) for user in USERS}


def registry(project) -> dict:
    path = project / ".models" / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def audit_lines(project) -> list[tuple[str, str, object]]:
    """The audit log's (action, user, detail), oldest first."""
    return [(e["action"], e["user"], e["detail"])
            for e in reversed(AuditLog.for_project(project).read())]


def card(node, model_id: str):
    """The texts of the card of bundle ``model_id`` in a Models page layout (JSON)."""
    if isinstance(node, list):
        return next((t for t in (card(n, model_id) for n in node) if t is not None), None)
    if isinstance(node, dict):
        props = node.get("props", {})
        if props.get("data-model") == model_id:
            return layout_texts(node)
        return card(props.get("children"), model_id)
    return None


def buttons(node, kind: str) -> list[dict]:
    """The pattern-matching ids of ``kind`` in a layout (JSON)."""
    found = []
    if isinstance(node, list):
        for item in node:
            found += buttons(item, kind)
    elif isinstance(node, dict):
        props = node.get("props", {})
        if isinstance(props.get("id"), dict) and props["id"].get("type") == kind:
            found.append(props["id"])
        found += buttons(props.get("children"), kind)
    return found


def test_every_user_sees_every_version_newest_first_and_the_errors(users):
    page = users["ana"].page("/models")
    texts = layout_texts(page)
    kidney = card(page, "kidney-draft")
    assert kidney[:2] == ["Kidney draft ", "(kidney-draft)"]
    assert [t for t in kidney if t in ("1.0.0", "1.1.0")] == ["1.1.0", "1.0.0"]
    assert kidney[kidney.index("1.1.0") + 1] == "active"
    assert kidney[kidney.index("1.0.0") + 1] == "ok"
    assert "more training data" in texts and "first version" in texts
    assert "axial · 32×32 (resized) · window -160…240 → 0…1 · 1 slice" in texts
    assert any("sise" in t for t in texts)  # the broken bundle is listed with its error
    # a bundle that does not fit the project says what to change
    assert ("phase@0.1.0: the classifier fills the text field 'Phase', which project 'ril_dash "
            "demo project' does not define; add it as a choice field with the values "
            "non-contrast, arterial, portal-venous, delayed") in texts
    # an analyst gets no management buttons; the admin gets them all
    for kind in ("models-toggle", "models-activate", "models-trust"):
        assert buttons(page, kind) == []
    admin = users["root"].page("/models")
    # (the examples shipped with ril_dash are listed too)
    assert {"type": "models-toggle", "model": "kidney-draft"} in buttons(admin, "models-toggle")
    assert {"type": "models-toggle", "model": "broken"} not in buttons(admin, "models-toggle")
    assert [b["ref"] for b in buttons(admin, "models-activate")
            if b["ref"].startswith("kidney-draft")] == ["kidney-draft@1.0.0"]
    assert {b["ref"] for b in buttons(admin, "models-trust")} >= {
        "kidney-draft@1.0.0", "kidney-draft@1.1.0", "phase@0.1.0"}


def manage(user: DashUser, kind: str, key: str, value: str, refresh: int = 0):
    ids = {"models-toggle": [], "models-activate": []}
    ids[kind] = [({"type": kind, key: value}, "n_clicks", 1)]
    return user.callback(MANAGE, [ids["models-toggle"], ids["models-activate"],
                                  ("models-trust-dialog", "submit_n_clicks", None)],
                         [("models-trust-ref", "data", None), ("models-refresh", "data", refresh)],
                         changed=[dash_id({"type": kind, key: value}) + ".n_clicks"])


def test_changes_are_refused_to_users_without_the_models_right(project, users):
    before = audit_lines(project)
    for user in ("ana", "sam"):
        reply = manage(users[user], "models-toggle", "model", "kidney-draft")
        assert reply.status_code == 403, reply.text
        assert reply.json()["error"] == (
            f"Only an administrator or a member of a workflow pool with the 'models' right may "
            f"disable model bundles; {user} is not one.")
        reply = manage(users[user], "models-activate", "ref", "kidney-draft@1.0.0")
        assert reply.status_code == 403, reply.text
        reply = users[user].callback(MANAGE, [[], [], ("models-trust-dialog", "submit_n_clicks",
                                                       1)],
                                     [("models-trust-ref", "data", "kidney-draft@1.0.0"),
                                      ("models-refresh", "data", 0)],
                                     changed=["models-trust-dialog.submit_n_clicks"])
        assert reply.status_code == 403, reply.text
        reply = users[user].callback(UPLOAD, [("models-upload", "contents",
                                               "data:application/zip;base64,UEsFBgAAAAAAAAAA")],
                                     [("models-upload", "filename", "x.zip"),
                                      ("models-refresh", "data", 0)])
        assert reply.status_code == 403, reply.text
    assert registry(project) == {}
    assert audit_lines(project) == before


def test_admin_disables_activates_and_trusts_with_confirmation(project, users):
    root = users["root"]
    reply = manage(root, "models-toggle", "model", "kidney-draft")
    assert reply.status_code == 200, reply.text
    out = reply.json()["response"]
    assert layout_texts(out["models-message"]["children"]) == [
        "kidney-draft is disabled for this project."]
    assert registry(project)["enabled"] == {"kidney-draft": False}
    reply = manage(root, "models-activate", "ref", "kidney-draft@1.0.0", refresh=1)
    assert layout_texts(reply.json()["response"]["models-message"]["children"]) == [
        "kidney-draft 1.0.0 is now the active version: new runs use it."]
    assert registry(project)["active"] == {"kidney-draft": "1.0.0"}
    kidney = card(root.page("/models"), "kidney-draft")
    assert kidney[kidney.index("1.0.0") + 1] == "active"
    assert kidney[kidney.index("1.1.0") + 1] == "ok"
    # trusting asks first, saying what it means; only the dialog's OK trusts
    reply = root.callback("..models-trust-dialog.displayed...models-trust-dialog.message..."
                          "models-trust-ref.data..",
                          [[({"type": "models-trust", "ref": "kidney-draft@1.1.0"}, "n_clicks",
                             1)]])
    assert reply.status_code == 200, reply.text
    dialog = reply.json()["response"]
    assert dialog["models-trust-dialog"]["displayed"] is True
    assert "run the custom code" in dialog["models-trust-dialog"]["message"]
    assert dialog["models-trust-ref"]["data"] == "kidney-draft@1.1.0"
    assert registry(project).get("trusted", {}) == {}
    reply = root.callback(MANAGE, [[], [], ("models-trust-dialog", "submit_n_clicks", 1)],
                          [("models-trust-ref", "data", "kidney-draft@1.1.0"),
                           ("models-refresh", "data", 2)],
                          changed=["models-trust-dialog.submit_n_clicks"])
    assert reply.status_code == 200, reply.text
    trusted = registry(project)["trusted"]
    assert [t["user"] for t in trusted.values()] == ["root"]
    assert "trusted by root on " in " ".join(card(root.page("/models"), "kidney-draft"))
    # enable again for the tests that follow
    manage(root, "models-toggle", "model", "kidney-draft", refresh=3)
    assert registry(project)["enabled"] == {}  # enabled is the default
    changes = [(d["change"], d["model"], d.get("version")) for a, user, d in audit_lines(project)
               if (a, user) == ("models", "root")]
    assert changes == [("disable", "kidney-draft", None), ("activate", "kidney-draft", "1.0.0"),
                       ("trust", "kidney-draft", "1.1.0"), ("enable", "kidney-draft", None)]


def test_a_bad_upload_says_what_is_wrong(users):
    reply = users["root"].callback(UPLOAD, [("models-upload", "contents",
                                             "data:text/plain;base64,aGVsbG8=")],
                                   [("models-upload", "filename", "notes.txt"),
                                    ("models-refresh", "data", 0)])
    assert reply.status_code == 200, reply.text
    assert layout_texts(reply.json()["response"]["models-upload-result"]["children"]) == [
        "notes.txt is not a .zip: upload a bundle folder zipped (ril-dash plugins export "
        "makes one)."]


def test_a_new_version_is_announced_without_a_restart(project, users, server):
    import requests

    ana = users["ana"]
    first = ana.callback(NOTICE, [("models-notice-timer", "n_intervals", None)],
                         [("models-notice-seen", "data", None), ("models-notice", "children",
                                                                  None)])
    assert first.status_code == 200, first.text
    looked = first.json()["response"]["models-notice-seen"]["data"]
    assert "models-notice" not in first.json()["response"]  # the first look announces nothing
    again = ana.callback(NOTICE, [("models-notice-timer", "n_intervals", 1)],
                         [("models-notice-seen", "data", looked), ("models-notice", "children",
                                                                   None)])
    assert "models-notice" not in again.json()["response"]  # nothing new
    looked = again.json()["response"]["models-notice-seen"]["data"]
    write_bundle(project / "plugins", "kidney-draft", "1.3.0", model=b"model three")
    reply = ana.callback(NOTICE, [("models-notice-timer", "n_intervals", 2)],
                         [("models-notice-seen", "data", looked), ("models-notice", "children",
                                                                   None)])
    out = reply.json()["response"]
    assert out["models-notice-seen"]["data"] > looked
    texts = layout_texts(out["models-notice"]["children"])
    assert texts[0] == "kidney-draft 1.3.0 is available"
    assert "Open the Models page" in texts
    # nobody without a session is answered
    anonymous = requests.post(server.url + "/_dash-update-component", timeout=30, json={
        "output": ana.output_key(NOTICE),
        "outputs": [{"id": "models-notice-seen", "property": "data"},
                    {"id": "models-notice", "property": "children"}],
        "inputs": [{"id": "models-notice-timer", "property": "n_intervals", "value": 1}],
        "state": [{"id": "models-notice-seen", "property": "data", "value": None},
                  {"id": "models-notice", "property": "children", "value": None}],
        "changedPropIds": ["models-notice-timer.n_intervals"]})
    assert anonymous.status_code in (302, 401, 403)


def test_running_needs_the_rights_on_the_series(project, users):
    from ril_dash.project.annotation_store import annotated_series

    meta = {"series": S1, "planes": {"axial": {"n": 40}, "coronal": {"n": 64},
                                     "sagittal": {"n": 64}}}
    # sam (scientists) may not even open the series: the estimate is refused
    reply = users["sam"].callback(ESTIMATE, [
        ("run-model", "value", "kidney-draft@1.0.0"), ("run-scope", "value", "series"),
        ("run-first", "value", None), ("run-last", "value", None),
        ("plane-select", "value", "axial")], [("viewer-meta", "data", meta)])
    assert reply.status_code == 403, reply.text
    reply = users["ana"].callback(ESTIMATE, [
        ("run-model", "value", "kidney-draft@1.0.0"), ("run-scope", "value", "series"),
        ("run-first", "value", None), ("run-last", "value", None),
        ("plane-select", "value", "axial")], [("viewer-meta", "data", meta)])
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"]["run-estimate"]["children"] == (
        "Estimated time: under 1 s for 40 slices (plus loading the model the first time).")
    # ana may read it but not annotate it (nobody holds it): the run is refused at once
    reply = users["ana"].background(RUN, [("run-start", "n_clicks", 1)], [
        ("run-model", "value", "kidney-draft@1.0.0"), ("run-scope", "value", "series"),
        ("run-first", "value", None), ("run-last", "value", None),
        ("run-mode", "value", "empty_slices"), ("plane-select", "value", "axial"),
        ("slice-slider", "value", 3), ("viewer-meta", "data", meta)])
    assert reply.status_code == 200, reply.text
    texts = layout_texts(reply.json()["response"]["run-result"]["children"])
    assert texts == ["ana may annotate none of the chosen series, so kidney-draft@1.0.0 cannot "
                     "draft them; ask an administrator."]
    assert S1 not in annotated_series(project / "annotations")


def test_unreadable_model_settings_are_reported_and_stop_nothing(project, users):
    settings = project / ".models" / "state.json"
    saved = settings.read_bytes() if settings.exists() else None
    settings.parent.mkdir(exist_ok=True)
    settings.write_text("{not json")
    try:
        problem = (f"{settings} is not a valid model settings file; restore it from a backup "
                   f"or delete it (every bundle is then enabled, at its newest version, and "
                   f"nothing is trusted)")
        assert problem in layout_texts(users["root"].page("/models"))
        viewer = layout_texts(users["ana"].page("/view", f"?series={S1}"))
        reply = users["ana"].callback("viewer-sections.children",
                                      [("viewer-sections-wanted", "data", True)])
        assert reply.status_code == 200, reply.text
        sections = layout_texts(reply.json()["response"]["viewer-sections"]["children"])
        assert S1 in viewer and problem in sections  # the viewer opens all the same
        assert "Run a model" not in layout_texts(users["ana"].page("/"))
    finally:
        if saved is None:
            settings.unlink()
        else:
            settings.write_bytes(saved)
