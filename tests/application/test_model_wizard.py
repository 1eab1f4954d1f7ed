"""The wizard's audited command: who may create a bundle version, what the audit log gets, and
that an existing version is never overwritten."""

from __future__ import annotations

import pytest

from ril_dash.application import model_wizard
from ril_dash.errors import PermissionDenied, PluginError
from ril_dash.models.manifest import load_manifest
from ril_dash.models.safety import file_sha256
from tests.application.conftest import actor
from tests.models.test_safety import functional, write_keras

FORM = {"id": "liver-seg", "version": "1.0.0", "name": "Liver draft", "task": "segmentation",
        "plane": "axial", "rows": 8, "cols": 8, "resample": "size", "slices": 1,
        "norm_method": "window", "window_low": -100, "window_high": 300,
        "activation": "softmax", "channels": {"1": "Liver"}, "largest_component": True,
        "min_size": 0}


@pytest.fixture
def upload(services, tmp_path, monkeypatch):
    monkeypatch.delenv("RIL_DASH_PLUGINS", raising=False)
    data = write_keras(tmp_path / "u.keras", functional()).read_bytes()
    return model_wizard.receive_model_file(services, actor("root"), "u.keras", data)


def audit(services):
    return [(e["user"], e["detail"]) for e in reversed(services.audit.read(action="models"))]


def test_creating_a_version_writes_the_bundle_and_audits_it(services, upload):
    manifest = model_wizard.build_wizard_manifest(services, upload.token, FORM)
    assert manifest.output.channels[0].code is None  # the project's Liver has no RadLex id
    entry = model_wizard.create_bundle_version(services, actor("root"), upload.token, manifest)
    folder = services.project.dir / "plugins" / "liver-seg" / "1.0.0"
    assert entry.folder == folder and entry.ok and entry.manifest == manifest
    assert load_manifest(folder / "plugin.yaml") == manifest
    assert file_sha256(folder / "model.keras") == upload.sha256 == manifest.sha256
    assert [e.ref for e in services.models.entries() if e.id == "liver-seg"] == [
        "liver-seg@1.0.0"]
    assert audit(services) == [("root", {"change": "create", "model": "liver-seg",
                                         "version": "1.0.0", "sha256": upload.sha256})]
    assert not upload.path.exists()  # the upload is dropped once used


def test_an_existing_version_is_refused_and_kept(services, upload, tmp_path):
    manifest = model_wizard.build_wizard_manifest(services, upload.token, FORM)
    model_wizard.create_bundle_version(services, actor("root"), upload.token, manifest)
    data = write_keras(tmp_path / "v.keras", functional()).read_bytes()
    again = model_wizard.receive_model_file(services, actor("root"), "v.keras", data)
    same = model_wizard.build_wizard_manifest(services, again.token, {**FORM, "name": "New"})
    yaml_before = (services.project.dir / "plugins/liver-seg/1.0.0/plugin.yaml").read_text()
    with pytest.raises(PluginError, match="liver-seg 1.0.0 exists already in .*plugins/"
                                          "liver-seg/1.0.0; versions are immutable"):
        model_wizard.create_bundle_version(services, actor("root"), again.token, same)
    assert (services.project.dir / "plugins/liver-seg/1.0.0/plugin.yaml").read_text() == \
        yaml_before
    assert len(audit(services)) == 1 and again.path.exists()


def test_only_admins_or_the_models_right_may(services, upload):
    manifest = model_wizard.build_wizard_manifest(services, upload.token, FORM)
    message = ("Only an administrator or a member of a workflow pool with the 'models' right "
               "may create model bundles; ana is not one.")
    with pytest.raises(PermissionDenied, match=message):
        model_wizard.create_bundle_version(services, actor("ana"), upload.token, manifest)
    with pytest.raises(PermissionDenied, match=message):
        model_wizard.receive_model_file(services, actor("ana"), "u.keras", b"x")
    with pytest.raises(PermissionDenied, match=message):
        model_wizard.describe_upload(services, actor("ana"), upload.token)
    with pytest.raises(PermissionDenied, match=message):
        model_wizard.preview_wizard_slice(services, actor("ana"), upload.token, FORM,
                                          "P1/ct.nii.gz", 0)
    assert not (services.project.dir / "plugins").exists() and audit(services) == []
    # the users file's admin may, without being named in the workflow
    model_wizard.create_bundle_version(services, actor("eve", admin=True), upload.token,
                                       manifest)
    assert audit(services)[0][0] == "eve"


def test_a_manifest_for_another_file_is_refused(services, upload):
    import dataclasses

    manifest = model_wizard.build_wizard_manifest(services, upload.token, FORM)
    forged = dataclasses.replace(manifest, sha256="cd" * 32)
    with pytest.raises(PluginError, match="names the model file model.keras with sha256 "
                                          "cdcdcdcdcdcd…, not the uploaded u.keras"):
        model_wizard.create_bundle_version(services, actor("root"), upload.token, forged)
    assert not (services.project.dir / "plugins").exists()


def test_an_upload_changed_on_disk_is_refused(services, upload):
    manifest = model_wizard.build_wizard_manifest(services, upload.token, FORM)
    upload.path.write_bytes(upload.path.read_bytes() + b" ")
    with pytest.raises(PluginError, match="liver-seg@1.0.0 could not be written as asked .*has "
                                          "changed since the manifest was written"):
        model_wizard.create_bundle_version(services, actor("root"), upload.token, manifest)
    assert list((services.project.dir / "plugins").iterdir()) == []  # the temp folder went
    assert audit(services) == []


def test_outputs_that_do_not_fit_the_project_are_refused(services, upload):
    with pytest.raises(PluginError, match="liver-seg@1.0.0: output channel 1 drafts the ROI "
                                          "'Kidney', which project 'Commands' does not define"):
        model_wizard.build_wizard_manifest(services, upload.token,
                                           {**FORM, "channels": {"1": "Kidney"}})
    classifier = {**FORM, "task": "classification", "text_field": "Phase",
                  "classes": ["arterial", "late"]}
    with pytest.raises(PluginError, match="the text field 'Phase' does not allow 'late'"):
        model_wizard.build_wizard_manifest(services, upload.token, classifier)
    assert model_wizard.build_wizard_manifest(
        services, upload.token, {**classifier, "classes": ["arterial", "venous"]}
    ).output.classes == ("arterial", "venous")
