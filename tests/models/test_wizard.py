"""The wizard's logic without a UI or a model worker: uploads, shapes, form → manifest, the
bundle folder it writes."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from ril_dash.errors import PluginError
from ril_dash.models import wizard, wizard_files
from ril_dash.models.catalog import bundle_entry
from ril_dash.models.manifest import (ChannelMap, ClassificationOutput, InputSpec, NormSpec,
                                      Runtime, SegmentationOutput, load_manifest, manifest_yaml)
from ril_dash.models.postprocess import Classification
from tests.models.test_safety import functional, layer, write_keras

SHA = "ab" * 32
FORM = {
    "id": "liver-seg", "version": "1.2.0", "name": "Liver draft", "description": "A U-Net.",
    "author": "Lab", "license": "CC0-1.0", "changelog": "First try.",
    "task": "segmentation", "plane": "coronal", "rows": 64, "cols": "48",
    "resample": "spacing", "spacing_rows": 1.5, "spacing_cols": "0.75", "transpose": True,
    "flip": ["cols"], "slices": 3, "norm_method": "window", "window_low": -100,
    "window_high": 300, "range_low": None, "range_high": None, "clip_low": None,
    "activation": "sigmoid", "threshold": 0.4, "channels": {"0": "Liver", "1": None,
                                                           "2": "Spleen"},
    "largest_component": False, "min_size": 5, "cpu_seconds_per_slice": 0.013,
    "memory_mb": 90,
}


def test_a_form_becomes_the_manifest_a_person_would_write():
    m = wizard.build_manifest(FORM, model_file="model.keras", sha256=SHA,
                              codes={"Liver": "RID58"})
    assert m.ref == "liver-seg@1.2.0"
    assert (m.name, m.description, m.author, m.license, m.changelog) == (
        "Liver draft", "A U-Net.", "Lab", "CC0-1.0", "First try.")
    assert (m.task, m.dimension, m.model_file, m.sha256) == ("segmentation", 2, "model.keras",
                                                             SHA)
    assert m.input == InputSpec("coronal", (64, 48), "spacing", (1.5, 0.75), True, ("cols",),
                                3)
    assert m.normalization == NormSpec("window", (-100.0, 300.0))
    assert m.output == SegmentationOutput((ChannelMap(0, "Liver", "RID58"),
                                           ChannelMap(2, "Spleen", None)),
                                          "sigmoid", 0.4, False, 5)
    assert m.runtime == Runtime(0.013, 90)
    # what is written reads back equal, and is plain YAML a person could have typed
    text = manifest_yaml(m)
    assert "  resample: spacing\n  spacing: [1.5, 0.75]\n" in text
    assert wizard.parse_manifest(text, "again.yaml") == m


def test_a_classification_form_and_other_normalisations():
    form = {**FORM, "task": "classification", "activation": "softmax",
            "text_field": "Contrast phase", "classes": ["early", " late "],
            "aggregate": "max", "class_slices": "middle", "resample": "none",
            "norm_method": "percentile", "percentile_low": 2, "percentile_high": 98,
            "range_low": -1, "range_high": 1, "scope": "volume", "clip_low": -1,
            "clip_high": 1, "flip": [], "transpose": False, "slices": 1}
    m = wizard.build_manifest(form, model_file="model.h5", sha256=SHA)
    assert m.output == ClassificationOutput("Contrast phase", ("early", "late"), "softmax",
                                            "max", "middle")
    assert m.normalization == NormSpec("percentile", range=(-1.0, 1.0),
                                       percentiles=(2.0, 98.0), scope="volume",
                                       clip=(-1.0, 1.0))
    assert (m.input.resample, m.input.spacing) == ("none", None)
    z = wizard.build_manifest({**form, "norm_method": "scale", "scale": "0.001",
                               "offset": None, "clip_low": None, "clip_high": None},
                              model_file="model.h5", sha256=SHA)
    assert z.normalization == NormSpec("scale", scale=0.001, offset=0.0)


@pytest.mark.parametrize("change, message", [
    ({"slices": 2}, "input.slices: 2 adjacent slices: use an odd number"),
    ({"version": "2"}, "version: '2' is not a semantic version"),
    ({"id": "Liver Seg"}, "id: 'Liver Seg' is not a bundle id"),
    ({"channels": {"0": None}}, "output.channels: map at least one output channel"),
    ({"threshold": 1.5}, "output.threshold: 1.5: use a probability between 0 and 1"),
    ({"rows": None}, "input.size"),
])
def test_bad_choices_name_the_manifest_field(change, message):
    with pytest.raises(PluginError) as info:
        wizard.build_manifest({**FORM, **change}, model_file="model.keras", sha256=SHA)
    assert str(info.value).startswith(message), str(info.value)


def test_the_model_summary_and_the_prefilled_form():
    seg = wizard.model_summary({"inputs": [[None, 96, 80, 3]], "outputs": [[None, 96, 80, 1]],
                                "params": 1_000_000}, "u.keras")
    assert (seg.task, seg.channels, seg.outputs) == ("segmentation", 3, 1)
    assert seg.describe() == ("takes (96, 80, 3) (rows, cols, channels), gives (96, 80, 1): 1 "
                              "output channels; 1,000,000 parameters")
    assert wizard.suggested_form(seg, is_ct=True) == {
        "task": "segmentation", "rows": 96, "cols": 80, "slices": 3, "norm_method": "window",
        "window_low": -160.0, "window_high": 240.0, "memory_mb": 70, "activation": "sigmoid"}
    cls = wizard.model_summary({"inputs": [[None, None, None, 2]], "outputs": [[None, 4]]},
                               "c.h5")
    form = wizard.suggested_form(cls, is_ct=False)
    assert (cls.task, form["rows"], form["slices"], form["norm_method"],
            form["activation"]) == ("classification", 128, 1, "zscore", "softmax")
    with pytest.raises(PluginError, match="the wizard makes 2D .slice-wise. bundles"):
        wizard.model_summary({"inputs": [[None, 8, 8, 8, 1]], "outputs": [[None, 8, 8, 8, 2]]},
                             "3d.keras")
    with pytest.raises(PluginError, match="has 2 input.s. and 1 output"):
        wizard.model_summary({"inputs": [[None, 8, 8, 1]] * 2, "outputs": [[None, 2]]}, "x")


def test_the_next_free_version():
    from types import SimpleNamespace as NS

    entries = [NS(id="a", version="1.0.0"), NS(id="a", version="1.1.0"),
               NS(id="b", version="3.0.0"), NS(id="a", version="")]
    assert wizard.next_free_version(entries, "a") == "1.2.0"
    assert wizard.next_free_version(entries, "c") == "1.0.0"


def good_keras(path):
    return write_keras(path, functional())


def test_uploads_are_scanned_and_kept_privately(tmp_path):
    data = good_keras(tmp_path / "unet.keras").read_bytes()
    upload = wizard_files.save_upload(tmp_path / "proj", "C:\\models/unet.keras", data)
    assert upload.filename == "unet.keras" and upload.model_file == "model.keras"
    assert upload.path.parent.parent == tmp_path / "proj" / ".models" / "uploads"
    assert oct(upload.path.parent.stat().st_mode & 0o777) == "0o700"
    assert wizard_files.find_upload(tmp_path / "proj", upload.token) == upload
    for token in ("../../etc", "x" * 16, "0123456789abcdef"):
        with pytest.raises(PluginError, match="the uploaded model file is gone"):
            wizard_files.find_upload(tmp_path / "proj", token)
    wizard_files.discard_upload(tmp_path / "proj", upload.token)
    assert not upload.path.parent.exists()


@pytest.mark.parametrize("name, data, message", [
    ("model.pt", b"x", "model.pt is not a Keras model file: upload a .keras file"),
    ("model.keras", b"", "model.keras is empty"),
    ("model.keras", b"x" * 11, "model.keras is 0 MB, more than the wizard's 0 MB"),
])
def test_bad_uploads_are_refused_and_nothing_is_kept(tmp_path, name, data, message):
    with pytest.raises(PluginError, match=message):
        wizard_files.save_upload(tmp_path, name, data, max_bytes=10)
    assert list((tmp_path / ".models" / "uploads").glob("*")) == []


def test_a_refused_model_is_not_kept_and_old_uploads_go(tmp_path):
    data = good_keras(tmp_path / "a.keras").read_bytes()
    old = wizard_files.save_upload(tmp_path, "a.keras", data)
    past = time.time() - wizard_files.KEEP_UPLOADS_S - 10
    os.utime(old.path.parent, (past, past))
    lam = write_keras(tmp_path / "l.keras", functional(layer("Lambda", function="x")))
    with pytest.raises(PluginError, match="Lambda"):
        wizard_files.save_upload(tmp_path, "lambda.keras", lam.read_bytes())
    assert list((tmp_path / ".models" / "uploads").glob("*")) == []


def manifest_for(upload, version="1.0.0"):
    return wizard.build_manifest({**FORM, "version": version}, model_file=upload.model_file,
                                 sha256=upload.sha256)


def test_a_version_is_written_whole_and_never_overwritten(tmp_path):
    data = good_keras(tmp_path / "u.keras").read_bytes()
    upload = wizard_files.save_upload(tmp_path, "u.keras", data)
    m = manifest_for(upload)
    folder = wizard_files.write_bundle_version(tmp_path / "plugins", m, upload.path)
    assert folder == tmp_path / "plugins" / "liver-seg" / "1.0.0"
    assert sorted(p.name for p in folder.iterdir()) == ["model.keras", "plugin.yaml"]
    assert load_manifest(folder / "plugin.yaml") == m
    assert bundle_entry(tmp_path / "plugins", folder).ok
    before = (folder / "plugin.yaml").read_text()
    with pytest.raises(PluginError, match="liver-seg 1.0.0 exists already in .*; versions are "
                                          "immutable"):
        wizard_files.write_bundle_version(tmp_path / "plugins", manifest_for(upload), upload.path)
    with pytest.raises(PluginError, match="exists already in /lab/liver-seg/1.1.0"):
        wizard_files.write_bundle_version(tmp_path / "plugins", manifest_for(upload, "1.1.0"),
                                          upload.path,
                                          taken={"liver-seg@1.1.0": "/lab/liver-seg/1.1.0"})
    assert (folder / "plugin.yaml").read_text() == before
    assert sorted(p.name for p in (tmp_path / "plugins").iterdir()) == [".import.lock",
                                                                         "liver-seg"]
    # a model file that is not the manifest's is refused before anything lands
    other = tmp_path / "other.keras"
    other.write_bytes(b"other")
    with pytest.raises(PluginError, match="could not be written as asked .*has changed"):
        wizard_files.write_bundle_version(tmp_path / "plugins", manifest_for(upload, "1.2.0"),
                                          other)
    assert sorted(p.name for p in (tmp_path / "plugins" / "liver-seg").iterdir()) == ["1.0.0"]


class FakeWorker:
    """Stands in for the model worker: returns fixed probabilities for any batch."""

    def __init__(self, make):
        self.make, self.batches = make, []

    def predict(self, ref, batch):
        self.batches.append(batch)
        return self.make(batch)


def test_the_preview_runs_the_run_path_on_one_slice():
    from ril_dash.core.volume import Volume

    data = np.zeros((6, 6, 4), np.int16) - 1000
    data[1:4, 1:4, 2] = 50
    volume = Volume(data, np.eye(4))
    m = wizard.build_manifest({**FORM, "plane": "axial", "rows": 6, "cols": 6,
                               "resample": "none", "transpose": False, "flip": [],
                               "slices": 1, "channels": {"0": "Liver"}, "min_size": 0},
                              model_file="model.keras", sha256=SHA)
    worker = FakeWorker(lambda b: (b > 0.3).astype(np.float32))  # 50 HU → 0.375
    preview = wizard.preview_slice(volume, m, "ref", worker, 2)
    assert worker.batches[-1].shape == (1, 6, 6, 1)
    mask = preview.masks[0]
    assert mask.shape == volume.slice_shape("axial") and mask.sum() == 9
    assert preview.model_input.shape == (6, 6)
    assert preview.input_range == (0.0, 0.375)
    grey, rgb = wizard.preview_images(preview, {0: "#ff0000"})
    assert grey.dtype == np.uint8 and rgb.shape == (6, 6, 3)
    assert (rgb[mask][:, 0] > rgb[mask][:, 1]).all()  # red where the mask is
    assert (rgb[~mask][:, 0] == rgb[~mask][:, 1]).all()  # grey elsewhere
    with pytest.raises(PluginError, match="slice 9 is outside 0..3 of the axial plane"):
        wizard.preview_slice(volume, m, "ref", worker, 9)
    cls = wizard.build_manifest({**FORM, "task": "classification", "activation": "softmax",
                                 "text_field": "Phase", "classes": ["a", "b"], "plane": "axial",
                                 "rows": 4, "cols": 4, "resample": "size", "slices": 1,
                                 "transpose": False}, model_file="model.keras", sha256=SHA)
    preview = wizard.preview_slice(volume, cls, "ref",
                                   FakeWorker(lambda b: np.array([[0.25, 0.75]])), 1)
    assert preview.classification == Classification("b", 0.75, {"a": 0.25, "b": 0.75})
