"""``ril-dash plugins``: list, check, import, export, enable, disable, activate, trust.

Run in-process through :func:`ril_dash.cli.main`. ``check`` asks the model worker's modules
(:mod:`ril_dash.models.safety`, :mod:`ril_dash.models.worker_client`) to scan and load the model;
here they are replaced by fakes that record the call and answer given shapes, so what is tested
is this command's own part: what it passes them and how it judges their answer.
"""

from __future__ import annotations

import sys
import types
import zipfile

import pytest

from ril_dash.cli import main
from ril_dash.errors import PluginError
from ril_dash.models import catalog
from ril_dash.models.registry import ModelRegistry
from ril_dash.project.audit import AuditLog
from tests.models.bundles import SHA, write_bundle


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("RIL_DASH_PLUGINS", raising=False)
    monkeypatch.setattr(catalog, "examples_root", lambda: None)  # only this project's bundles
    root = tmp_path / "proj"
    (root / "images").mkdir(parents=True)
    (root / "project.yaml").write_text(
        "name: test\nimages: images\nrois:\n  - {name: Right kidney, color: '#ff0000', "
        "value: 1}\n")
    for version in ("1.0.0", "1.1.0"):
        write_bundle(root / "plugins", "kidney-seg", version)
    write_bundle(root / "plugins", "kidney-seg", "1.2.0", model=b"changed")
    return root


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["plugins", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


class FakeWorker:
    calls: list = []
    answer = {"inputs": [(None, 128, 128, 1)], "outputs": [(None, 128, 128, 3)],
              "params": 1234}

    @classmethod
    def shared(cls):
        return cls()

    def inspect(self, ref):
        self.calls.append(ref)
        return self.answer


@pytest.fixture
def worker(monkeypatch):
    scanned = []
    safety = types.ModuleType("ril_dash.models.safety")
    safety.scan_model_file = scanned.append
    client = types.ModuleType("ril_dash.models.worker_client")
    client.ModelRef = lambda *a: a
    client.ModelWorker = FakeWorker
    FakeWorker.calls = []
    monkeypatch.setitem(sys.modules, "ril_dash.models.safety", safety)
    monkeypatch.setitem(sys.modules, "ril_dash.models.worker_client", client)
    return scanned


def test_list_shows_status_errors_and_project_fit(project, capsys):
    code, out, _ = run(capsys, project, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("kidney-seg 1.2.0  ERROR  kidney-seg@1.2.0: the model file")
    assert lines[1] == (f"kidney-seg 1.1.0  active  segmentation 2D  Kidney segmentation  "
                        f"({project / 'plugins'})")
    assert lines[2] == ("    does not fit this project: kidney-seg@1.0.0: output channel 2 "
                        "drafts the ROI 'Left kidney', which project 'test' does not define; "
                        "add that ROI to the project (or map the channel to one of Right "
                        "kidney)").replace("1.0.0", "1.1.0")
    assert lines[3].startswith("kidney-seg 1.0.0  available  segmentation 2D")


def test_check_validates_scans_and_compares_the_loaded_shapes(project, capsys, worker):
    folder = project / "plugins" / "kidney-seg" / "1.0.0"
    code, out, err = run(capsys, project, "check", folder)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"kidney-seg@1.0.0: manifest valid (segmentation, dimension 2, axial 128×128, 1 input "
        f"channel(s)); model file model.keras matches its sha256 {SHA}")
    assert "kidney-seg@1.0.0: the model's shapes fit the manifest" in out
    assert worker == [folder / "model.keras"]
    assert FakeWorker.calls == [(str(folder / "model.keras"), SHA, "kidney-seg@1.0.0", False,
                                 None)]
    FakeWorker.answer = {"inputs": [(None, 256, 256, 1)], "outputs": [(None, 256, 256, 3)],
                         "params": 1}
    try:
        code, out, err = run(capsys, project, "check", folder / "plugin.yaml")
    finally:
        FakeWorker.answer = {"inputs": [(None, 128, 128, 1)],
                             "outputs": [(None, 128, 128, 3)], "params": 1234}
    assert code == 2 and err.startswith("ril-dash: error: kidney-seg@1.0.0: the model takes "
                                        "(None, 256, 256, 1) but the manifest gives it")
    worker.clear()
    code, out, _ = run(capsys, project, "check", folder, "--no-load")
    assert code == 0 and worker == [folder / "model.keras"] and "loaded" not in out


def test_check_refuses_a_changed_file_and_a_wrong_folder(project, capsys, worker):
    code, _, err = run(capsys, project, "check", project / "plugins" / "kidney-seg" / "1.2.0")
    assert code == 2 and "has changed since the manifest was written" in err
    code, _, err = run(capsys, project, "check", project / "plugins")
    assert code == 2 and "holds no plugin.yaml; give a bundle version folder" in err
    assert worker == []


def test_changes_are_audited_and_export_import_round_trip(project, capsys, tmp_path):
    registry = ModelRegistry(project)
    assert run(capsys, project, "activate", "kidney-seg@1.0.0", "--user", "ana")[:2] == (
        0, "kidney-seg 1.0.0 is now the active version.\n")
    assert registry.resolve("kidney-seg").version == "1.0.0"
    assert run(capsys, project, "disable", "kidney-seg")[0] == 0
    assert not registry.state().is_enabled("kidney-seg")
    assert run(capsys, project, "enable", "kidney-seg")[0] == 0
    code, out, _ = run(capsys, project, "trust", "kidney-seg@1.1.0", "--user", "root")
    assert (code, out) == (0, f"kidney-seg 1.1.0 (sha256 {SHA}) is trusted by root: its custom "
                              f"objects may be loaded.\n")
    assert run(capsys, project, "activate", "kidney-seg")[0] == 0
    assert registry.resolve("kidney-seg").version == "1.1.0"
    code, _, err = run(capsys, project, "trust", "kidney-seg")
    assert code == 2 and "give the bundle as ID@VERSION" in err

    out_zip = tmp_path / "kidney.zip"
    code, out, _ = run(capsys, project, "export", "kidney-seg", out_zip)
    assert code == 0 and out.splitlines() == [
        out.splitlines()[0], f"Wrote kidney-seg@1.1.0, kidney-seg@1.0.0 to {out_zip}."]
    assert out.startswith("skipped kidney-seg@1.2.0: ")
    with zipfile.ZipFile(out_zip) as archive:
        assert {n.split("/")[1] for n in archive.namelist()} == {"1.0.0", "1.1.0"}
    other = tmp_path / "other"
    (other / "images").mkdir(parents=True)
    (other / "project.yaml").write_text("name: other\nimages: images\n")
    code, out, _ = run(capsys, other, "import", out_zip)
    assert (code, out) == (0, f"Imported kidney-seg 1.0.0, kidney-seg 1.1.0 into "
                              f"{other / 'plugins'}.\n")
    code, _, err = run(capsys, other, "import", out_zip)
    assert code == 2 and "kidney-seg 1.0.0 is already installed" in err

    entries = [(e["user"], e["detail"]["change"]) for e in
               reversed(AuditLog.for_project(project).read(action="models"))]
    assert entries[0] == ("ana", "activate") and entries[3] == ("root", "trust")
    assert [c for _, c in entries] == ["activate", "disable", "enable", "trust", "activate"]
    with pytest.raises(PluginError):
        registry.find("kidney-seg", "1.2.0")


def test_serve_takes_extra_plugin_folders(tmp_path):
    from pathlib import Path

    from ril_dash.cli import build_parser, settings_from_args

    args = build_parser().parse_args(["serve", str(tmp_path), "--plugins", "lab",
                                      "--plugins", "/shared/models"])
    assert settings_from_args(tmp_path, args).plugin_dirs == (Path("lab"),
                                                              Path("/shared/models"))
    args = build_parser().parse_args(["--plugins", "lab"])
    assert settings_from_args(tmp_path, args).plugin_dirs == (Path("lab"),)
    assert settings_from_args(tmp_path, build_parser().parse_args([])).plugin_dirs == ()
