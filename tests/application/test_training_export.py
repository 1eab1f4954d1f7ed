"""A trained version leaves the project with its provenance: the bundle ``.zip`` (the plugins
command's ``export``, the one export path) carries ``training.json`` byte for byte, and an
import elsewhere installs it beside the model, where the next round's split is read from."""

from __future__ import annotations

import zipfile

from ril_dash import cli
from ril_dash.application import training_bundle
from ril_dash.models.bundle_zip import import_bundle_zip
from tests.application import test_training

#: the training tests' project and stand-in model worker
services, trainer = test_training.services, test_training.trainer


def test_the_exported_zip_carries_the_training_provenance(services, trainer, tmp_path, capsys):
    assert test_training.train(services).state == "done"
    folder = services.project.dir / "plugins" / "liver-dev" / "1.0.0"
    out = tmp_path / "liver-dev.zip"
    code = cli.main(["plugins", str(services.project.dir), "export", "liver-dev@1.0.0",
                     str(out), "--user", "root"])
    assert code == 0, capsys.readouterr().err
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        carried = archive.read("liver-dev/1.0.0/training.json")
    assert names == ["liver-dev/1.0.0/model.keras", "liver-dev/1.0.0/plugin.yaml",
                     "liver-dev/1.0.0/training.json", "liver-dev/1.0.0/validation.json"]
    assert carried == (folder / "training.json").read_bytes()
    elsewhere = tmp_path / "other" / "plugins"
    elsewhere.mkdir(parents=True)
    assert import_bundle_zip(out, elsewhere) == [("liver-dev", "1.0.0")]
    found = training_bundle.read_provenance(elsewhere / "liver-dev" / "1.0.0")
    assert found == training_bundle.read_provenance(folder)
    assert found["model"] == "liver-dev@1.0.0" and found["kept_epoch"] == 2
    assert set(found["split"]) == set(test_training.SERIES[:4])
