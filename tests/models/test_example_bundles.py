"""The example bundles shipped in ``plugins/``: intact, small, standard layers, sane predictions.

The fast tests read the files only (hash, size, the layer classes in ``config.json``) and run the
examples of the training scripts' shared module (the model input they train on). The slow one loads both models in a subprocess (TensorFlow stays out of the test process) and runs them
on a demo patient, prepared by the training scripts' own input function.
"""

from __future__ import annotations

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


def test_training_helpers_examples_hold(monkeypatch):
    path = PLUGINS / "training" / "phantom_training.py"
    spec = importlib.util.spec_from_file_location("phantom_training", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted >= 8 and result.failed == 0


_PREDICT = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, keras
import phantom_training as pt

kidney = keras.saving.load_model(sys.argv[2], compile=False, safe_mode=True)
phase = keras.saving.load_model(sys.argv[3], compile=False, safe_mode=True)
series = pt.load_series(101, "arterial")
index = 15
probs = kidney.predict(pt.prepare_slices(series.hu[index:index + 1], (128, 128), (-160, 240)),
                       verbose=0)
predicted = np.argmax(pt.restore_probabilities(probs, 256, 256), axis=-1)[0]
truth = pt.roi_class_map(series.labels[index], ["Right kidney", "Left kidney"])
dice = [2 * ((predicted == k) & (truth == k)).sum() / ((predicted == k).sum() + (truth == k).sum())
        for k in (1, 2)]
middle = series.hu[pt.middle_third(len(series.hu))]
mean = phase.predict(pt.prepare_slices(middle, (64, 64), (-160, 640)), verbose=0).mean(axis=0)
print(" ".join(f"{d:.3f}" for d in dice), int(np.argmax(mean)))
"""


@pytest.mark.slow
def test_bundles_predict_a_demo_patient():
    kidney = PLUGINS / "kidney-seg" / "1.0.0" / "model.keras"
    phase = PLUGINS / "contrast-phase" / "1.0.0" / "model.keras"
    result = subprocess.run(
        [sys.executable, "-c", _PREDICT, str(PLUGINS / "training"), str(kidney), str(phase)],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-2000:]
    right, left, phase_index = result.stdout.split()
    assert float(right) > 0.8 and float(left) > 0.8
    assert int(phase_index) == 1  # arterial
