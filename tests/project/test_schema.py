"""Tests for project.yaml parsing: the valid format, every validation error and its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ril_dash.errors import InvalidProject
from ril_dash.project.project_yaml_writer import default_project_yaml, dump_project_yaml
from ril_dash.project.schema import (
    MetadataDef,
    ProjectConfig,
    RoiDef,
    TextFieldDef,
    load_project_config,
    parse_project_yaml,
)

FULL = """\
# ril_dash project
name: Demo project
images: images            # folder of NIfTI series
annotations: annotations  # annotation store
hierarchy: [Patient, Study, Series]
metadata:
  file: metadata.csv
  path_column: series
settings:
  overlap: one_roi_per_voxel
rois:
  - name: Liver
    radlex: RID58
    color: "#a0522d"
    value: 1
    type: area
    locked: false
  - name: Lesion
    radlex: RID38780
    color: "#FF0000"
    value: 2
    type: point
text_fields:
  - name: Contrast phase
    type: choice
    values: [non-contrast, arterial, portal-venous, delayed]
    required: true
  - name: Comment
    type: text
"""

PD = Path("/data/proj")


def parse(text: str) -> ProjectConfig:
    return parse_project_yaml(textwrap.dedent(text), project_dir=PD)


def error_of(text: str) -> str:
    with pytest.raises(InvalidProject) as info:
        parse(text)
    return str(info.value)


def test_full_example_parses() -> None:
    cfg = parse(FULL)
    assert cfg.name == "Demo project"
    assert cfg.images == PD / "images" and cfg.annotations == PD / "annotations"
    assert cfg.hierarchy == ("Patient", "Study", "Series")
    assert cfg.metadata == MetadataDef(PD / "metadata.csv", "series")
    assert cfg.overlap == "one_roi_per_voxel"
    assert cfg.rois == (RoiDef("Liver", "RID58", "#a0522d", 1, "area", False),
                        RoiDef("Lesion", "RID38780", "#ff0000", 2, "point", False))
    assert cfg.text_fields == (
        TextFieldDef("Contrast phase", "choice",
                     ("non-contrast", "arterial", "portal-venous", "delayed"), True),
        TextFieldDef("Comment", "text", (), False))
    assert cfg.source is None
    assert cfg.line_of("images") == 3 and cfg.line_of("rois[1].color") == 20


def test_minimal_defaults_and_absolute_paths() -> None:
    cfg = parse("name: P\nimages: /mnt/scans\nannotations: /mnt/ann\n")
    assert cfg.images == Path("/mnt/scans") and cfg.annotations == Path("/mnt/ann")
    assert cfg.hierarchy == () and cfg.metadata is None and cfg.rois == ()
    assert cfg.text_fields == () and cfg.overlap == "one_roi_per_voxel"
    assert parse("name: P\nimages: x\n").annotations == PD / "annotations"


def test_empty_optional_sections_are_allowed() -> None:
    cfg = parse("name: P\nimages: i\nhierarchy:\nmetadata:\nsettings:\nrois:\ntext_fields:\n")
    assert cfg.rois == () and cfg.metadata is None and cfg.hierarchy == ()
    assert parse("name: P\nimages: i\nrois: []\n").rois == ()


def test_multi_label_powers_of_two() -> None:
    cfg = parse("""\
        name: P
        images: i
        settings: {overlap: multi_label}
        rois:
          - {name: A, color: "#000000", value: 1}
          - {name: B, color: "#000000", value: 8}
        """)
    assert cfg.overlap == "multi_label" and [r.value for r in cfg.rois] == [1, 8]


def test_numbers_written_as_names_are_kept_as_text() -> None:
    cfg = parse("name: 2024\nimages: i\ntext_fields:\n  - {name: Grade, type: choice, "
                "values: [1, 2, 3.50]}\n")
    assert cfg.name == "2024" and cfg.text_fields[0].values == ("1", "2", "3.50")


def test_round_trip_dump() -> None:
    cfg = parse(FULL)
    text = dump_project_yaml(cfg, PD)
    assert "images: images" in text
    again = parse_project_yaml(text, project_dir=PD)
    assert again == cfg
    outside = parse("name: 'yes'\nimages: /elsewhere/x\n")
    assert parse_project_yaml(dump_project_yaml(outside, PD), project_dir=PD) == outside


def test_default_project_yaml_parses_with_its_example_roi_and_field() -> None:
    text = default_project_yaml("My: study", "images", "/abs/ann dir")
    cfg = parse_project_yaml(text, project_dir=PD)
    assert cfg.name == "My: study" and cfg.annotations == Path("/abs/ann dir")
    (roi,) = cfg.rois
    assert (roi.name, roi.radlex, roi.color, roi.value, roi.type, roi.locked) == \
        ("Example organ", "RID58", "#a0522d", 1, "area", False)
    (field,) = cfg.text_fields
    assert (field.name, field.type, field.values) == \
        ("Image quality", "choice", ("good", "acceptable", "poor"))


def test_load_project_config_reads_file(tmp_path: Path) -> None:
    (tmp_path / "project.yaml").write_text(FULL)
    cfg = load_project_config(tmp_path)
    assert cfg.source == tmp_path.resolve() / "project.yaml"
    assert cfg.images == tmp_path.resolve() / "images"
    assert dump_project_yaml(cfg).count("images: images") == 1


def test_load_project_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidProject, match="no project.yaml in .*ril-dash init"):
        load_project_config(tmp_path)


def test_error_names_full_path_when_loaded(tmp_path: Path) -> None:
    (tmp_path / "project.yaml").write_text("name: P\nimages: i\nbogus: 1\n")
    with pytest.raises(InvalidProject) as info:
        load_project_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path.resolve() / 'project.yaml'} line 3: bogus:")


def test_colour_error_matches_brief_example() -> None:
    text = FULL.replace('color: "#FF0000"', "color: bluish")
    assert error_of(text).startswith(
        "project.yaml line 20: rois[1].color: 'bluish' is not a colour; use #rrggbb")


def roi_doc(*rois: str, overlap: str = "one_roi_per_voxel") -> str:
    head = f"name: P\nimages: i\nsettings:\n  overlap: {overlap}\nrois:\n"
    return head + "".join(rois)


GOOD_ROI = '  - name: Liver\n    color: "#a0522d"\n    value: 1\n'   # lines 6-8

CASES = [
    # (id, text, line, fragments expected in the message)
    ("syntax", "name: P\nimages: [i\n", 3, ["YAML syntax error"]),
    ("syntax-indent", "name: P\n images: i\n", 2, ["YAML syntax error"]),
    ("empty-file", "", 1, ["empty"]),
    ("top-list", "- a\n- b\n", 1, ["top level must be a mapping"]),
    ("top-scalar", "hello\n", 1, ["top level must be a mapping"]),
    ("unknown-top", "name: P\nimages: i\nimage_dir: x\n", 3,
     ["image_dir: unknown key 'image_dir'", "allowed keys"]),
    ("duplicate-key", "name: P\nimages: i\nname: Q\n", 3, ["duplicate key 'name'"]),
    ("missing-name", "images: i\n", 1, ["missing required key 'name'", "add `name:"]),
    ("missing-images", "name: P\nannotations: a\n", 1, ["missing required key 'images'"]),
    ("name-empty", "name:\nimages: i\n", 1, ["name: must not be empty"]),
    ("name-type", "name: [a]\nimages: i\n", 1, ["name: expected text, got a list"]),
    ("name-bool", "name: yes\nimages: i\n", 1, ["expected text", "quote it"]),
    ("images-mapping", "name: P\nimages: {a: 1}\n", 2, ["images: expected text"]),
    ("hierarchy-type", "name: P\nimages: i\nhierarchy: Patient\n", 3,
     ["hierarchy: expected a list"]),
    ("hierarchy-item", "name: P\nimages: i\nhierarchy:\n  - Patient\n  - [x]\n", 5,
     ["hierarchy[1]: expected text"]),
    ("metadata-type", "name: P\nimages: i\nmetadata: m.csv\n", 3,
     ["metadata: expected a mapping"]),
    ("metadata-unknown", "name: P\nimages: i\nmetadata:\n  file: m.csv\n  column: s\n", 5,
     ["metadata.column: unknown key 'column'"]),
    ("metadata-missing-file", "name: P\nimages: i\nmetadata:\n  path_column: s\n", 4,
     ["metadata: missing required key 'file'"]),
    ("settings-unknown", "name: P\nimages: i\nsettings:\n  overlapp: multi_label\n", 4,
     ["settings.overlapp: unknown key", "did you mean 'overlap'"]),
    ("overlap-enum", "name: P\nimages: i\nsettings:\n  overlap: many\n", 4,
     ["settings.overlap: 'many' is not allowed", "one_roi_per_voxel, multi_label"]),
    ("rois-type", "name: P\nimages: i\nrois: Liver\n", 3, ["rois: expected a list"]),
    ("roi-not-mapping", roi_doc("  - Liver\n"), 6, ["rois[0]: expected a mapping"]),
    ("roi-unknown", roi_doc(GOOD_ROI + "    colour: red\n"), 9,
     ["rois[0].colour: unknown key 'colour'", "did you mean 'color'"]),
    ("roi-missing-value", roi_doc('  - name: Liver\n    color: "#a0522d"\n'), 6,
     ["rois[0]: missing required key 'value'"]),
    ("roi-name-empty", roi_doc('  - name: ""\n    color: "#a0522d"\n    value: 1\n'), 6,
     ["rois[0].name: must not be empty"]),
    ("roi-name-long", roi_doc(f'  - name: {"x" * 65}\n    color: "#a0522d"\n    value: 1\n'), 6,
     ["rois[0].name:", "65 characters", "at most 64"]),
    ("roi-radlex", roi_doc(GOOD_ROI + "    radlex: 58\n"), 9,
     ["rois[0].radlex: '58' is not a RadLex ID", "RID"]),
    ("roi-radlex-lower", roi_doc(GOOD_ROI + "    radlex: rid58x\n"), 9,
     ["rois[0].radlex: 'rid58x' is not a RadLex ID"]),
    ("roi-colour", roi_doc('  - name: Liver\n    value: 1\n    color: bluish\n'), 8,
     ["rois[0].color: 'bluish' is not a colour; use #rrggbb"]),
    ("roi-colour-unquoted", roi_doc('  - name: Liver\n    value: 1\n    color: #a0522d\n'), 8,
     ["rois[0].color: is empty", "quote"]),
    ("roi-colour-short", roi_doc('  - name: Liver\n    value: 1\n    color: "#abc"\n'), 8,
     ["'#abc' is not a colour"]),
    ("roi-value-zero", roi_doc('  - name: Liver\n    color: "#a0522d"\n    value: 0\n'), 8,
     ["rois[0].value: 0 is not a valid mask value"]),
    ("roi-value-float", roi_doc('  - name: Liver\n    color: "#a0522d"\n    value: 1.5\n'), 8,
     ["rois[0].value: expected a whole number, got '1.5'"]),
    ("roi-value-bool", roi_doc('  - name: Liver\n    color: "#a0522d"\n    value: true\n'), 8,
     ["rois[0].value: expected a whole number"]),
    ("roi-type-enum", roi_doc(GOOD_ROI + "    type: volume\n"), 9,
     ["rois[0].type: 'volume' is not allowed", "area, point"]),
    ("roi-locked-type", roi_doc(GOOD_ROI + "    locked: maybe\n"), 9,
     ["rois[0].locked: expected true or false"]),
    ("roi-dup-name", roi_doc(GOOD_ROI, '  - name: LIVER\n    color: "#000000"\n    value: 2\n'), 9,
     ["rois[1].name: 'LIVER' is already used by rois[0]"]),
    ("roi-dup-value", roi_doc(GOOD_ROI, '  - name: Spleen\n    color: "#000000"\n    value: 1\n'),
     11, ["rois[1].value: mask value 1 is already used by rois[0] ('Liver')"]),
    ("roi-not-power-of-two",
     roi_doc(GOOD_ROI, '  - name: Spleen\n    color: "#000000"\n    value: 3\n',
             overlap="multi_label"), 11, ["rois[1].value: 3 is not a power of two"]),
    ("field-unknown", "name: P\nimages: i\ntext_fields:\n  - name: A\n    type: text\n"
     "    choices: [a]\n", 6, ["text_fields[0].choices: unknown key", "allowed keys"]),
    ("field-type-enum", "name: P\nimages: i\ntext_fields:\n  - name: A\n    type: date\n", 5,
     ["text_fields[0].type: 'date' is not allowed", "yes_no"]),
    ("field-missing-type", "name: P\nimages: i\ntext_fields:\n  - name: A\n", 4,
     ["text_fields[0]: missing required key 'type'"]),
    ("field-values-missing", "name: P\nimages: i\ntext_fields:\n  - name: A\n    type: choice\n",
     4, ["text_fields[0]: a choice field needs `values"]),
    ("field-values-empty", "name: P\nimages: i\ntext_fields:\n  - name: A\n"
     "    type: multi_choice\n    values: []\n", 6, ["text_fields[0].values: is empty"]),
    ("field-values-dup", "name: P\nimages: i\ntext_fields:\n  - name: A\n    type: choice\n"
     "    values:\n      - a\n      - a\n", 8, ["text_fields[0].values[1]: 'a' is listed twice"]),
    ("field-values-forbidden", "name: P\nimages: i\ntext_fields:\n  - name: A\n    type: text\n"
     "    values: [a]\n", 6, ["text_fields[0].values: only choice and multi_choice"]),
    ("field-required-type", "name: P\nimages: i\ntext_fields:\n  - name: A\n    type: text\n"
     "    required: 1\n", 6, ["text_fields[0].required: expected true or false"]),
    ("field-dup-name", "name: P\nimages: i\ntext_fields:\n  - {name: Phase, type: text}\n"
     "  - {name: phase, type: number}\n", 5,
     ["text_fields[1].name: 'phase' is already used by text_fields[0]"]),
    ("field-name-long", f"name: P\nimages: i\ntext_fields:\n  - name: {'y' * 70}\n"
     "    type: text\n", 4, ["text_fields[0].name:", "at most 64"]),
    ("ann-inside-images", "name: P\nimages: data\nannotations: data/ann\n", 3,
     ["annotations:", "inside the images folder", "outside it"]),
    ("ann-equals-images", "name: P\nimages: data\nannotations: ./data/\n", 3,
     ["annotations:", "inside the images folder"]),
    ("ann-default-inside-images", "name: P\nimages: .\n", 1,
     ["annotations:", "inside the images folder"]),
    ("images-inside-ann", "name: P\nimages: store/images\nannotations: store\n", 3,
     ["annotations:", "inside the annotation folder"]),
]


@pytest.mark.parametrize("text,line,fragments", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_validation_errors(text: str, line: int, fragments: list[str]) -> None:
    message = error_of(text)
    assert message.startswith(f"project.yaml line {line}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_errors_name_the_source() -> None:
    with pytest.raises(InvalidProject, match=r"^custom\.yaml line 1: "):
        parse_project_yaml("[1]", project_dir=PD, source_name="custom.yaml")


def test_audit_rotation_setting_is_checked_and_kept_when_rewritten():
    cfg = parse("name: P\nimages: i\nsettings: {audit_rotate_mb: 8}\n")
    assert cfg.audit_rotate_mb == 8.0
    assert parse("name: P\nimages: i\n").audit_rotate_mb == 64.0
    again = parse_project_yaml(dump_project_yaml(cfg, PD), project_dir=PD)
    assert again.audit_rotate_mb == 8.0 and again == cfg
    message = error_of("name: P\nimages: i\nsettings: {audit_rotate_mb: 0}\n")
    assert "settings.audit_rotate_mb" in message and "use a number from 0.01 to 1000000" in message
    assert "expected a finite number" in error_of(
        "name: P\nimages: i\nsettings: {audit_rotate_mb: big}\n")
