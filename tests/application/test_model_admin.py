"""Managing model bundles through the application layer: who may, what is audited, and that a
refusal writes nothing."""

from __future__ import annotations

import zipfile

import pytest

from ril_dash.application import model_admin
from ril_dash.application.policy import Actor, models_decision
from ril_dash.errors import PermissionDenied, PluginError
from ril_dash.models.registry import ModelRegistry
from ril_dash.workflow.schema import parse_workflow_yaml
from tests.application.conftest import actor
from tests.models.bundles import MODEL_BYTES, SHA, manifest_text, write_bundle
from tests.workflow.example import EXAMPLE

WITH_MODELS = EXAMPLE.replace("rights: [read, export]", "rights: [read, export, models]")


def test_models_decision():
    wf = parse_workflow_yaml(WITH_MODELS)
    assert models_decision(wf, Actor("sam")).allowed  # scientists have the models right
    assert models_decision(wf, Actor("root")).allowed  # the workflow's admin
    assert models_decision(wf, Actor("eve", admin=True)).allowed  # the users file's admin
    assert models_decision(wf, Actor("ana")).reason == (
        "Only an administrator or a member of a workflow pool with the 'models' right may "
        "manage model bundles; ana is not one.")
    assert models_decision(parse_workflow_yaml(EXAMPLE), Actor("sam")).allowed is False
    # without a workflow: admins only (the single local user is one)
    assert models_decision(None, Actor("local", admin=True)).allowed
    assert models_decision(None, Actor("ana"), "import model bundles").reason == (
        "Only an administrator may import model bundles; ana is not one.")


@pytest.fixture
def project(services, monkeypatch):
    monkeypatch.delenv("RIL_DASH_PLUGINS", raising=False)
    for version in ("1.0.0", "1.1.0"):
        write_bundle(services.project.dir / "plugins", "kidney-seg", version)
    return services


def audit(services) -> list[tuple[str, dict]]:
    return [(e["user"], e["detail"]) for e in reversed(services.audit.read(action="models"))]


def test_admin_commands_change_the_settings_and_are_audited(project):
    root = actor("root")
    registry = ModelRegistry(project.project.dir)
    model_admin.activate_model_version(project, root, "kidney-seg", "1.0.0")
    assert registry.resolve("kidney-seg").version == "1.0.0"
    state = model_admin.set_model_enabled(project, root, "kidney-seg", False)
    assert not state.is_enabled("kidney-seg")
    model_admin.set_model_enabled(project, root, "kidney-seg", True,
                                  expected_sha256=state.sha256)
    model_admin.trust_model_version(project, root, "kidney-seg", "1.1.0")
    assert registry.state().trusted[SHA]["user"] == "root"
    model_admin.activate_model_version(project, root, "kidney-seg", None)
    assert registry.resolve("kidney-seg").version == "1.1.0"
    assert audit(project) == [
        ("root", {"change": "activate", "model": "kidney-seg", "version": "1.0.0"}),
        ("root", {"change": "disable", "model": "kidney-seg"}),
        ("root", {"change": "enable", "model": "kidney-seg"}),
        ("root", {"change": "trust", "model": "kidney-seg", "version": "1.1.0", "sha256": SHA}),
        ("root", {"change": "activate", "model": "kidney-seg", "version": None})]


def test_refusals_write_nothing(project):
    ana = actor("ana")
    with pytest.raises(PermissionDenied, match="Only an administrator or a member of a "
                                               "workflow pool with the 'models' right may "
                                               "disable model bundles; ana is not one"):
        model_admin.set_model_enabled(project, ana, "kidney-seg", False)
    with pytest.raises(PermissionDenied, match="may change the active model version"):
        model_admin.activate_model_version(project, ana, "kidney-seg", "1.0.0")
    with pytest.raises(PermissionDenied, match="Only an administrator may trust a model file"):
        model_admin.trust_model_version(project, ana, "kidney-seg", "1.0.0")
    with pytest.raises(PermissionDenied, match="may import model bundles"):
        model_admin.import_bundle(project, ana, project.project.dir / "x.zip")
    with pytest.raises(PluginError, match="no model bundle 'liver'"):
        model_admin.set_model_enabled(project, actor("root"), "liver", False)
    with pytest.raises(PluginError, match="kidney-seg has no version 3.0.0"):
        model_admin.activate_model_version(project, actor("root"), "kidney-seg", "3.0.0")
    assert not (project.project.dir / ".models").exists()
    assert audit(project) == []


def test_a_pool_with_the_models_right_may_manage_but_not_trust(project, tmp_path):
    project.workflow = parse_workflow_yaml(WITH_MODELS)
    sam = actor("sam")
    model_admin.activate_model_version(project, sam, "kidney-seg", "1.0.0")
    with pytest.raises(PermissionDenied, match="Only an administrator may trust"):
        model_admin.trust_model_version(project, sam, "kidney-seg", "1.0.0")
    path = tmp_path / "liver.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("liver/2.0.0/plugin.yaml", manifest_text("liver", "2.0.0"))
        archive.writestr("liver/2.0.0/model.keras", MODEL_BYTES)
    assert model_admin.import_bundle(project, sam, path) == [("liver", "2.0.0")]
    assert ModelRegistry(project.project.dir).resolve("liver").ref == "liver@2.0.0"
    with pytest.raises(PluginError, match="liver 2.0.0 is already installed"):
        model_admin.import_bundle(project, sam, path)
    assert audit(project) == [
        ("sam", {"change": "activate", "model": "kidney-seg", "version": "1.0.0"}),
        ("sam", {"change": "import", "file": str(path), "bundles": ["liver@2.0.0"]})]


def test_an_import_never_shadows_a_version_of_another_root(project, tmp_path):
    lab = tmp_path / "lab"
    write_bundle(lab, "liver", "2.0.0")
    path = tmp_path / "liver.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("liver/2.0.0/plugin.yaml", manifest_text("liver", "2.0.0"))
        archive.writestr("liver/2.0.0/model.keras", MODEL_BYTES)
    with pytest.raises(PluginError, match=f"liver 2.0.0 is already installed in "
                                          f"{lab / 'liver' / '2.0.0'}; versions are immutable"):
        project.models = ModelRegistry(project.project.dir, [lab])  # served with --plugins LAB
        model_admin.import_bundle(project, actor("root"), path)
    assert not (project.project.dir / "plugins" / "liver").exists()
    project.models = ModelRegistry(project.project.dir)
    assert model_admin.import_bundle(project, actor("root"), path) == [("liver", "2.0.0")]
