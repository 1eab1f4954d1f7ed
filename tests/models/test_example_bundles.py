"""The example bundles shipped in ``plugins/``: intact, small, standard layers, sane predictions.

The fast tests read the files only (hash, size, the layer classes in ``config.json``), check that
the training scripts build the very manifests that ship (input, normalisation, output) and write
them so that they read back equal, and run the examples of the scripts' shared module. The slow
one loads both bundles in a subprocess (TensorFlow stays out of the test process) and runs them on
a demo patient through the app's pipeline, as the scripts validate them.
"""

from __future__ import annotations

import dataclasses
import doctest
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from ril_dash.models.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
BUNDLES = {"kidney-seg": "segmentation", "contrast-phase": "classification"}


def _manifest(bundle_id: str) -> dict:
    return yaml.safe_load((PLUGINS / bundle_id / "1.0.0" / "plugin.yaml").read_text())


def _layer_classes(config) -> set[tuple[str, str]]:
    found = set()
    if isinstance(config, dict):
        if "class_name" in config and "module" in config:
            found.add((config["module"], config["class_name"]))
        for value in config.values():
            found |= _layer_classes(value)
    elif isinstance(config, list):
        for value in config:
            found |= _layer_classes(value)
    return found


@pytest.mark.parametrize("bundle_id", sorted(BUNDLES))
def test_bundle_files_match_their_manifest(bundle_id):
    manifest = _manifest(bundle_id)
    model = PLUGINS / bundle_id / "1.0.0" / manifest["model"]["file"]
    assert (manifest["id"], manifest["version"], manifest["task"]) == (
        bundle_id, "1.0.0", BUNDLES[bundle_id])
    assert hashlib.sha256(model.read_bytes()).hexdigest() == manifest["model"]["sha256"]
    assert model.stat().st_size < 3 * 2**20
    assert manifest["validation"]["metrics"]["validation_patients"] == 3


@pytest.mark.parametrize("bundle_id", sorted(BUNDLES))
def test_bundle_models_hold_only_standard_keras_classes(bundle_id):
    with zipfile.ZipFile(PLUGINS / bundle_id / "1.0.0" / "model.keras") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
    classes = _layer_classes(config)
    layers = {name for module, name in classes if module == "keras.layers"}
    assert {"Conv2D", "BatchNormalization", "InputLayer"} <= layers
    outside = {(m, n) for m, n in classes
               if m not in ("keras", "keras.layers", "keras.initializers")}
    assert outside == {("keras.src.models.functional", "Functional")}
    assert "Lambda" not in layers and config["compile_config"] in ({}, None)


def _training_module(monkeypatch, name: str):
    """A module of plugins/training, imported as the scripts import each other."""
    monkeypatch.syspath_prepend(str(PLUGINS / "training"))
    path = PLUGINS / "training" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_training_helpers_examples_hold(monkeypatch):
    for name, least in (("phantom_training", 6), ("train_kidney_seg", 1)):
        result = doctest.testmod(_training_module(monkeypatch, name))
        assert result.attempted >= least and result.failed == 0, name


@pytest.mark.parametrize("script, bundle_id", [("train_kidney_seg", "kidney-seg"),
                                               ("train_contrast_phase", "contrast-phase")])
def test_training_scripts_build_the_shipped_manifests(monkeypatch, script, bundle_id):
    built = _training_module(monkeypatch, script).MANIFEST
    shipped = load_manifest(PLUGINS / bundle_id / "1.0.0" / "plugin.yaml")
    run = {"sha256": shipped.sha256, "changelog": shipped.changelog,
           "runtime": shipped.runtime, "validation": shipped.validation}
    assert dataclasses.replace(built, **run) == shipped
    assert built.sha256 != shipped.sha256 and built.validation is None


def test_training_manifest_is_written_to_read_back_equal(monkeypatch, tmp_path):
    pt = _training_module(monkeypatch, "phantom_training")
    manifest = _training_module(monkeypatch, "train_kidney_seg").MANIFEST
    (tmp_path / "model.keras").write_bytes(b"weights")
    metrics = {"dice_right_kidney": 0.897, "training_patients": 8}
    path = pt.write_manifest(tmp_path, manifest, n_train=8, seconds_per_slice=0.0184,
                             memory_mb=235, summary="Dice 0.90: fine", metrics=metrics)
    written = load_manifest(path)
    assert written.sha256 == hashlib.sha256(b"weights").hexdigest()
    assert (written.runtime.cpu_seconds_per_slice, written.runtime.memory_mb) == (0.018, 235)
    assert written.validation["summary"] == "Dice 0.90: fine"
    assert written.validation["metrics"] == metrics
    assert written.changelog.startswith("First version, trained on 8 synthetic phantom")
    assert dataclasses.replace(written, validation=None, sha256=manifest.sha256,
                               runtime=manifest.runtime, changelog="") == manifest


_PREDICT = """
import sys
sys.path.insert(0, sys.argv[1])
import keras
import phantom_training as pt
from ril_dash.models.pipeline import predict_series

kidney_manifest, kidney = pt.load_bundle(keras, sys.argv[2])
phase_manifest, phase = pt.load_bundle(keras, sys.argv[3])
series = pt.load_series(101, "arterial")
masks = predict_series(series.volume, kidney_manifest, None, pt.KerasAdapter(kidney)).masks
truth = pt.roi_class_map(series.label_display("axial"), ["Right kidney", "Left kidney"])
dice = [2 * (masks[k] & (truth == k)).sum() / (masks[k].sum() + (truth == k).sum())
        for k in (1, 2)]
found = predict_series(series.volume, phase_manifest, None, pt.KerasAdapter(phase))
print(" ".join(f"{d:.3f}" for d in dice), found.classification.value)
"""


@pytest.mark.slow
def test_bundles_predict_a_demo_patient():
    kidney = PLUGINS / "kidney-seg" / "1.0.0"
    phase = PLUGINS / "contrast-phase" / "1.0.0"
    result = subprocess.run(
        [sys.executable, "-c", _PREDICT, str(PLUGINS / "training"), str(kidney), str(phase)],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-2000:]
    right, left, phase = result.stdout.split()
    assert float(right) > 0.8 and float(left) > 0.8
    assert phase == "arterial"
