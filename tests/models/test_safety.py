"""The model-file safety checks, on hand-made archives and HDF5 files (no tensorflow needed).

The configs below have the shape Keras 3 writes (``module``, ``class_name``, ``config``,
``registered_name`` per object); real files saved by Keras are checked in ``test_worker.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import h5py
import numpy as np
import pytest

from ril_dash.errors import PluginError
from ril_dash.models.safety import config_problem, file_sha256, require_sha256, scan_model_file
from ril_dash.models.worker import keras_version_problem

ROOT = Path(__file__).resolve().parents[2]


def layer(class_name, module="keras.layers", registered_name=None, **config):
    return {"module": module, "class_name": class_name, "registered_name": registered_name,
            "config": {"name": config.pop("name", class_name.lower()), **config}}


def functional(*layers):
    init = {"module": "keras.initializers", "class_name": "GlorotUniform",
            "config": {"seed": None}, "registered_name": None}
    dtype = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
             "registered_name": None}
    inbound = [{"args": [{"class_name": "__keras_tensor__",
                          "config": {"shape": [None, 8, 8, 1], "keras_history": ["in", 0, 0]}}],
                "kwargs": {}}]
    body = [layer("InputLayer", batch_shape=[None, 8, 8, 1]),
            {**layer("Conv2D", filters=2, kernel_initializer=init, dtype=dtype,
                     activation="relu"), "inbound_nodes": inbound},
            *layers]
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "registered_name": None, "config": {"name": "functional", "layers": body},
            "compile_config": {"loss": {"module": None, "class_name": "DiceLoss",
                                        "registered_name": "lab>DiceLoss", "config": {}}}}


def write_keras(path: Path, config: dict, extra: dict | None = None, weights: bytes | None = None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights if weights is not None else plain_h5_bytes())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def plain_h5_bytes(**links) -> bytes:
    import io

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.create_dataset("layers/conv2d/vars/0", data=np.ones((3, 3, 1, 2), "float32"))
        for name, link in links.items():
            handle[name] = link
    return buffer.getvalue()


def write_h5(path: Path, config: dict | None, build=None) -> Path:
    with h5py.File(path, "w") as handle:
        if config is not None:
            handle.attrs["model_config"] = json.dumps(config)
        handle.create_dataset("model_weights/conv2d/kernel", data=np.ones((3, 3, 1, 2), "f4"))
        if build:
            build(handle)
    return path


def refusal(path) -> str:
    with pytest.raises(PluginError) as caught:
        scan_model_file(path, "kidney-seg@1.0.0")
    return str(caught.value)


# -- sha256 ------------------------------------------------------------------------------------
def test_sha256_matches_hashlib_and_refuses_an_altered_or_missing_file(tmp_path):
    model = write_keras(tmp_path / "model.keras", functional())
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert file_sha256(model) == digest
    require_sha256(model, digest.upper(), "kidney-seg@1.0.0")  # case of the hex does not matter

    with open(model, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(PluginError, match=r"kidney-seg@1\.0\.0: the model file model\.keras has "
                                          r"sha256 [0-9a-f]{64}, but the manifest records "
                                          + digest + r".*Restore the original file"):
        require_sha256(model, digest, "kidney-seg@1.0.0")
    with pytest.raises(PluginError, match="kidney-seg@1.0.0: the model file .*gone.keras is "
                                          "missing; put the bundle's model file back"):
        require_sha256(tmp_path / "gone.keras", digest, "kidney-seg@1.0.0")


# -- .keras archives -----------------------------------------------------------------------------
def test_a_plain_archive_passes_and_its_compile_config_is_not_scanned(tmp_path):
    scan_model_file(write_keras(tmp_path / "model.keras", functional(),
                                extra={"assets/vocab.txt": "a"}))


@pytest.mark.parametrize("bad_layer, expected", [
    (layer("Lambda", function={"class_name": "__lambda__", "config": {"code": "AAA"}},
           name="scale"),
     "contains a Lambda layer 'scale' (it stores Python code); rebuild the model without "
     "Lambda layers"),
    (layer("TFSMLayer", filepath="/tmp/saved", name="tfsm"),
     "contains a TFSMLayer 'tfsm' (it loads a TensorFlow SavedModel from a path)"),
    (layer("Doubler", module=None, registered_name="lab>Doubler", name="dbl"),
     "contains a custom object lab>Doubler ('dbl'), whose code would run on load"),
    (layer("system", module="os", name="evil"),
     "contains class system of module os at 'evil' (only Keras built-ins are loaded)"),
    (layer("get_file", module="keras.utils", name="fetch"),
     "contains class get_file of module keras.utils at 'fetch'"),
    (layer("SomethingNew", name="new"),
     "contains class SomethingNew at 'new', which is not on ril_dash's list of Keras built-ins"),
])
def test_an_archive_naming_code_is_refused_with_what_to_do(tmp_path, bad_layer, expected):
    message = refusal(write_keras(tmp_path / "model.keras", functional(bad_layer)))
    assert message.startswith("kidney-seg@1.0.0: model.keras (config.json) " + expected), message
    assert message.endswith("ask an admin to trust this exact version (by its hash) if you know "
                            "where it came from")


def test_objects_nested_anywhere_in_the_config_are_scanned(tmp_path):
    hidden = layer("Lambda", name="deep")
    wrapper = layer("TimeDistributed", layer=layer("Bidirectional", layer=hidden))
    nested_model = {**functional(wrapper), "name": "inner"}
    message = refusal(write_keras(tmp_path / "model.keras", functional(nested_model)))
    assert "a Lambda layer 'deep'" in message
    initializer = {"module": "builtins", "class_name": "eval", "config": {},
                   "registered_name": None}
    assert "class eval of module builtins" in config_problem(
        functional(layer("Dense", units=2, kernel_initializer=initializer)))
    function = {"module": "keras", "class_name": "function", "config": "exec",
                "registered_name": "function"}
    assert "a function reference" in config_problem(functional(layer("Dense", activation=function)))
    relu = {"module": "keras.activations", "class_name": "function", "config": "relu",
            "registered_name": "function"}
    assert config_problem(functional(layer("Dense", activation=relu))) is None


def test_an_archive_with_unknown_entries_or_no_config_is_refused(tmp_path):
    extra = write_keras(tmp_path / "extra.keras", functional(), extra={"payload.py": "import os"})
    assert "holds entries a plain Keras model does not have: payload.py" in refusal(extra)
    with zipfile.ZipFile(tmp_path / "bare.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    assert "has no config.json" in refusal(tmp_path / "bare.keras")
    (tmp_path / "text.keras").write_text("not a zip")
    assert "is not a valid .keras archive" in refusal(tmp_path / "text.keras")
    with zipfile.ZipFile(tmp_path / "json.keras", "w") as archive:
        archive.writestr("config.json", "{not json")
    assert "json.keras (config.json) is not valid JSON" in refusal(tmp_path / "json.keras")
    twice = write_keras(tmp_path / "twice.keras", functional())
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(twice, "a") as archive:
        archive.writestr("config.json", json.dumps(functional(layer("Lambda"))))
    assert "twice.keras holds config.json more than once (a tampered archive)" in refusal(twice)


def test_an_archive_whose_weights_link_outside_is_refused(tmp_path):
    weights = plain_h5_bytes(extra=h5py.ExternalLink("/etc/passwd.h5", "/data"))
    message = refusal(write_keras(tmp_path / "model.keras", functional(), weights=weights))
    assert ("model.keras (model.weights.h5) holds an external link 'extra' to "
            "/etc/passwd.h5:/data; a model file must be self-contained") in message


# -- legacy .h5 files ------------------------------------------------------------------------------
def test_a_plain_h5_passes_and_its_lambda_is_refused(tmp_path):
    legacy = copy.deepcopy(functional())
    for item in legacy["config"]["layers"]:  # legacy files carry no module
        item.pop("module")
    scan_model_file(write_h5(tmp_path / "model.h5", legacy))
    legacy["config"]["layers"].append({"class_name": "Lambda", "config": {"name": "l"}})
    assert "lambda.h5 (model_config) contains a Lambda layer 'l'" in refusal(
        write_h5(tmp_path / "lambda.h5", legacy))


@pytest.mark.parametrize("build, expected", [
    (lambda h: h.__setitem__("model_weights/link", h5py.ExternalLink("other.h5", "/w")),
     "holds an external link 'model_weights/link' to other.h5:/w"),
    (lambda h: h.create_dataset("raw", shape=(4,), dtype="f4", external=[("raw.bin", 0, 16)]),
     "holds a dataset 'raw' stored in an external file"),
    (lambda h: h.create_virtual_dataset("virtual", h5py.VirtualLayout(shape=(4,), dtype="f4")),
     "holds a virtual dataset 'virtual'"),
])
def test_h5_files_reaching_outside_are_refused(tmp_path, build, expected):
    message = refusal(write_h5(tmp_path / "model.h5", functional(), build))
    assert message == (f"kidney-seg@1.0.0: model.h5 {expected}; a model file must be "
                       f"self-contained: save the model again with model.save('model.keras')")


def test_other_files_are_refused(tmp_path):
    assert "holds weights only, no model" in refusal(write_h5(tmp_path / "w.h5", None))
    (tmp_path / "model.pb").write_bytes(b"x")
    assert "model.pb is not a Keras model file; use a .keras file" in refusal(
        tmp_path / "model.pb")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    assert "junk.h5 is not a readable HDF5 file" in refusal(tmp_path / "junk.h5")


# -- keras version, imports ------------------------------------------------------------------------
def test_keras_versions_without_the_fixes_are_refused():
    assert keras_version_problem(version("keras")) is None  # the installed one is recent enough
    assert keras_version_problem("3.13.2") is None
    assert keras_version_problem("4.0.0rc1") is None
    for old in ("3.13.1", "3.11.3", "3.8.0", "2.15.0"):
        message = keras_version_problem(old)
        assert message.startswith(f"Keras {old} is installed, but ril_dash needs Keras >= 3.13.2")
        assert message.endswith("pip install -U 'keras>=3.13.2'")


def test_the_client_side_modules_do_not_import_tensorflow():
    code = ("import sys\n"
            "import ril_dash.models.safety, ril_dash.models.worker_client, ril_dash.models.worker\n"
            "import ril_dash.models.explain, ril_dash.application.explanations\n"
            "import ril_dash.ui.map_routes, ril_dash.ui.components.explain_panel\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
