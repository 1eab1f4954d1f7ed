"""plugin.yaml: what a valid manifest reads as, that it writes back equal, and that each mistake
is refused naming the file, the line, the field and what to do."""

from __future__ import annotations

import re

import pytest

from ril_dash.errors import PluginError
from ril_dash.models.manifest import (
    EXAMPLE,
    ChannelMap,
    ClassificationOutput,
    InputSpec,
    NormSpec,
    Runtime,
    load_manifest,
    manifest_yaml,
    model_shape_problems,
    parse_manifest,
    project_problems,
)
from ril_dash.project.schema import parse_project_yaml

CLASSIFIER = """\
id: phase-cls
version: 2.1.0-rc.1
name: Contrast phase
task: classification
dimension: 2
model: {file: phase.h5, sha256: "%s"}
input:
  plane: axial
  size: [64, 64]
  resample: spacing
  spacing: [1.5, 1.5]
  transpose: true
  flip: [rows, cols]
  slices: 3
  frames: [0, 2]
normalization: {method: zscore, scope: volume, clip: [-3, 3]}
output:
  activation: softmax
  text_field: Contrast phase
  classes: [non-contrast, arterial, portal-venous, delayed]
  aggregate: max
  slices: middle
""" % ("AB" * 32)

PATCHES = """\
id: liver3d
version: 0.1.0
name: Liver 3D
task: segmentation
dimension: 3
model: {file: m.keras, sha256: "%s"}
input: {plane: coronal, size: [96, 96], resample: none, patch: [32, 64, 64], overlap: 0.25,
        blend: mean}
normalization: {method: percentile, percentiles: [0.5, 99.5], range: [-1, 1]}
output:
  activation: sigmoid
  threshold: 0.4
  channels: [{channel: 0, roi: Liver}]
  largest_component: false
  min_size: 0
""" % ("0" * 64)


def test_the_readme_example_reads_with_its_defaults():
    m = parse_manifest(EXAMPLE, "plugin.yaml")
    assert (m.id, m.version, m.ref, m.task, m.dimension) == (
        "kidney-seg", "1.0.0", "kidney-seg@1.0.0", "segmentation", 2)
    assert (m.model_file, m.custom_objects) == ("model.keras", None)
    assert m.input == InputSpec("axial", (128, 128))
    assert m.input.resample == "size" and m.input.flip == () and m.input.channels == 1
    assert m.normalization == NormSpec("window", (-160.0, 240.0), (0.0, 1.0), (1.0, 99.0),
                                       "slice", 1.0, 0.0, None)
    assert m.output.channels == (ChannelMap(1, "Right kidney", "RID29663"),
                                 ChannelMap(2, "Left kidney", "RID29662"))
    assert (m.output.activation, m.output.threshold, m.output.largest_component,
            m.output.min_size) == ("softmax", 0.5, True, 20)
    assert m.runtime == Runtime(0.02, 150.0)
    assert m.validation == {"date": "2026-12-01",
                            "summary": "Dice 0.93 (right), 0.92 (left) on 2 held-out phantom "
                                       "patients",
                            "metrics": {"dice_right_kidney": 0.93, "dice_left_kidney": 0.92}}


@pytest.mark.parametrize("text", [EXAMPLE, CLASSIFIER, PATCHES])
def test_manifest_yaml_reads_back_equal(text):
    m = parse_manifest(text, "a.yaml")
    again = manifest_yaml(m)
    assert parse_manifest(again, "b.yaml") == m
    assert manifest_yaml(parse_manifest(again, "b.yaml")) == again


def test_a_classifier_and_a_patch_model():
    c = parse_manifest(CLASSIFIER, "c.yaml")
    assert c.sha256 == "ab" * 32 and c.model_file == "phase.h5"
    assert c.input.spacing == (1.5, 1.5) and c.input.flip == ("rows", "cols")
    assert c.input.frames == (0, 2) and c.input.channels == 6 and c.input.transpose
    assert c.output == ClassificationOutput("Contrast phase", (
        "non-contrast", "arterial", "portal-venous", "delayed"), "softmax", "max", "middle")
    assert c.normalization.clip == (-3.0, 3.0) and c.normalization.scope == "volume"
    p = parse_manifest(PATCHES, "p.yaml")
    assert p.input.patch == (32, 64, 64) and p.input.overlap == 0.25 and p.input.blend == "mean"
    assert p.output.channels == (ChannelMap(0, "Liver"),) and p.output.threshold == 0.4


def _bad(text: str) -> str:
    with pytest.raises(PluginError) as info:
        parse_manifest(text, "kidney-seg/1.0.0/plugin.yaml")
    return str(info.value)


@pytest.mark.parametrize("old, new, expected", [
    ("  size: [128, 128]", "  sise: [128, 128]",
     "kidney-seg/1.0.0/plugin.yaml line 15: input.sise: unknown key 'sise' in input (did you "
     "mean 'size'?)"),
    ("version: 1.0.0", "version: 1.0",
     "line 2: version: '1.0' is not a semantic version; use MAJOR.MINOR.PATCH, e.g. 1.0.0"),
    ("version: 1.0.0", "version: v1.0.0", "line 2: version: 'v1.0.0' is not a semantic"),
    ("id: kidney-seg", "id: Kidney Seg", "line 1: id: 'Kidney Seg' is not a bundle id"),
    ("task: segmentation", "task: segmentaton",
     "line 8: task: 'segmentaton' is not allowed (did you mean 'segmentation'?)"),
    ("dimension: 2", "dimension: 3",
     "line 14: input: a dimension 3 bundle needs `patch: [depth, rows, cols]`"),
    ("  size: [128, 128]", "  size: [128, 128]\n  patch: [8, 64, 64]",
     "line 16: input.patch: only dimension 3 (patch-wise) bundles use patch"),
    ("  size: [128, 128]", "  size: [128, 128]\n  slices: 2",
     "line 16: input.slices: 2 adjacent slices: use an odd number"),
    ("  size: [128, 128]", "  size: [128, 0]", "line 15: input.size: every value must be above 0"),
    ("  size: [128, 128]", "  size: [128, 128]\n  resample: spacing",
     "input.spacing: give `spacing: [row_mm, col_mm]` with `resample: spacing`"),
    ("  file: model.keras", "  file: ../model.keras",
     "line 11: model.file: '../model.keras' must be a file name in the bundle folder, without "
     "folders"),
    ("  file: model.keras", "  file: model.pt", "model.file: 'model.pt' must end with .keras or"),
    ("  sha256: 3f1c", "  sha256: zz1c", "line 12: model.sha256: 'zz1c5b6e0c2f4a1d9e8b'… is not"),
    ("  window: [-160, 240]", "  window: [240, -160]",
     "line 18: normalization.window: window [lower, upper]: the first value must be below"),
    ("    - {channel: 2, roi: Left kidney, code: RID29662}",
     "    - {channel: 1, roi: Left kidney}",
     "line 23: output.channels[1].channel: channel 1 is already mapped in channels[0]"),
    ("    - {channel: 1, roi: Right kidney, code: RID29663}", "    - {channel: 0, roi: Body}",
     "output.channels[0].channel: 0 is not a drafted channel; with softmax, channel 0 is the "
     "background"),
    ("  channels:\n    - {channel: 1, roi: Right kidney, code: RID29663}\n"
     "    - {channel: 2, roi: Left kidney, code: RID29662}", "  channels: []",
     "line 21: output.channels: map at least one output channel"),
    ("runtime:\n", "runtime:\n  gpu: 1\n", "runtime.gpu: unknown key 'gpu'"),
    ("  date: 2026-12-01", "  date: last week", "validation.date: write the date as YYYY-MM-DD"),
])
def test_each_mistake_names_line_field_and_remedy(old, new, expected):
    assert old in EXAMPLE
    assert expected in _bad(EXAMPLE.replace(old, new, 1))


@pytest.mark.parametrize("old, new, expected", [
    ("  classes: [non-contrast, arterial, portal-venous, delayed]", "  classes: []",
     "output.classes: list the text value of each class"),
    ("  classes: [non-contrast, arterial, portal-venous, delayed]",
     "  classes: [arterial, arterial]", "output.classes[1]: 'arterial' is listed twice"),
    ("  slices: 3", "  slices: 0", "input.slices: 0 adjacent slices"),
    ("  frames: [0, 2]", "  frames: [1, 1]", "input.frames: list frame indices"),
    ("  text_field: Contrast phase\n", "", "output: missing required key 'text_field'"),
])
def test_classifier_mistakes(old, new, expected):
    assert old in CLASSIFIER
    with pytest.raises(PluginError, match=re.escape(expected)):
        parse_manifest(CLASSIFIER.replace(old, new), "c.yaml")


@pytest.mark.parametrize("old, new, expected", [
    ("overlap: 0.25", "overlap: 1.0", "input.overlap: 1 is not a fraction of the patch"),
    ("overlap: 0.25", "overlap: -0.1", "input.overlap: -0.1 is not a fraction"),
    ("resample: none,", "resample: none, slices: 3,", "leave slices at 1"),
    ("threshold: 0.4", "threshold: 1.5", "output.threshold: 1.5: use a probability"),
])
def test_patch_model_mistakes(old, new, expected):
    with pytest.raises(PluginError, match=re.escape(expected)):
        parse_manifest(PATCHES.replace(old, new), "p.yaml")


def test_empty_and_unreadable_manifests(tmp_path):
    assert "the manifest is empty" in _bad("# nothing\n")
    assert "YAML syntax error" in _bad("id: [kidney\n")
    with pytest.raises(PluginError, match="no such file; a bundle folder needs a plugin.yaml"):
        load_manifest(tmp_path / "plugin.yaml")


PROJECT = """\
name: P
images: images
rois:
  - {name: Right kidney, color: "#ff0000", value: 1}
  - {name: Left kidney, color: "#00ff00", value: 2, type: point}
text_fields:
  - {name: Contrast phase, type: choice, values: [non-contrast, arterial, delayed]}
  - {name: Note, type: text}
"""


def test_project_problems(tmp_path):
    config = parse_project_yaml(PROJECT, project_dir=tmp_path)
    seg = parse_manifest(EXAMPLE, "s.yaml")
    assert project_problems(seg, config) == [
        "kidney-seg@1.0.0: output channel 2 drafts the ROI 'Left kidney', a point ROI; a "
        "segmentation needs an area ROI"]
    other = parse_project_yaml(PROJECT.replace("Right kidney", "Liver"), project_dir=tmp_path)
    assert project_problems(seg, other)[0].startswith(
        "kidney-seg@1.0.0: output channel 1 drafts the ROI 'Right kidney', which project 'P' "
        "does not define")
    cls = parse_manifest(CLASSIFIER, "c.yaml")
    assert project_problems(cls, config) == [
        "phase-cls@2.1.0-rc.1: the text field 'Contrast phase' does not allow 'portal-venous'; "
        "add it to its values"]
    note = parse_manifest(CLASSIFIER.replace("text_field: Contrast phase", "text_field: Note"),
                          "c.yaml")
    assert "is a text field; a classifier fills a choice field" in project_problems(
        note, config)[0]
    fine = parse_project_yaml(PROJECT.replace("delayed]", "portal-venous, delayed]")
                              .replace(", type: point", ""), project_dir=tmp_path)
    assert project_problems(seg, fine) == [] and project_problems(cls, fine) == []


def test_model_shape_problems():
    seg = parse_manifest(EXAMPLE, "s.yaml")
    assert model_shape_problems(seg, [(None, 128, 128, 1)], [(None, 128, 128, 3)]) == []
    assert model_shape_problems(seg, [(None, None, None, 1)], [(None, None, None, 3)]) == []
    assert model_shape_problems(seg, [(None, 128, 128, 3)], [(None, 128, 128, 3)]) == [
        "kidney-seg@1.0.0: the model takes (None, 128, 128, 3) but the manifest gives it "
        "(None, 128, 128, 1) (input.size/patch, slices × frames channels); fix the input "
        "section"]
    assert model_shape_problems(seg, [(None, 128, 128, 1)], [(None, 128, 128, 2)]) == [
        "kidney-seg@1.0.0: output.channels maps channel 2, but the model has only 2 output "
        "channels (0–1)"]
    cls = parse_manifest(CLASSIFIER, "c.yaml")
    assert model_shape_problems(cls, [(None, 64, 64, 6)], [(None, 4)]) == []
    assert "expects one probability per class (None, 4)" in model_shape_problems(
        cls, [(None, 64, 64, 6)], [(None, 3)])[0]


def test_the_readme_documents_a_manifest_that_reads_with_every_key():
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[2] / "plugins" / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    full = parse_manifest(blocks[0], "README.md")
    assert full == parse_manifest(EXAMPLE, "plugin.yaml")
    from ril_dash.models import manifest_parser as mp

    documented = {key for block in blocks for key in re.findall(r"(\w+):", block)}
    for group in (mp._TOP, mp._MODEL, mp._INPUT, mp._NORM, mp._SEG, mp._CHANNEL, mp._RUNTIME,
                  mp._VALIDATION, mp._CLS):
        assert set(group) <= documented, set(group) - documented
    classifier = blocks[0].split("output:")[0] + blocks[1]
    classifier = classifier.replace("task: segmentation", "task: classification")
    assert parse_manifest(classifier, "README.md").output.classes == (
        "non-contrast", "arterial", "portal-venous", "delayed")
