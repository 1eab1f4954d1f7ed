"""Text-field editing of project.yaml: add / update / move / delete, refusals, CAS."""

from __future__ import annotations

import pytest

from ril_dash.errors import InvalidProject, VersionConflict
from ril_dash.project.roi_editing import read_project_yaml
from ril_dash.project.schema import TextFieldDef, load_project_config
from ril_dash.project.text_field_editing import (
    add_text_field,
    delete_text_field,
    move_text_field,
    parse_values,
    update_text_field,
)


def yaml_bytes(proj) -> bytes:
    return (proj / "project.yaml").read_bytes()


def names(config) -> list[str]:
    return [f.name for f in config.text_fields]


def refused(proj, fn, *args, match: str, exc=InvalidProject, **kwargs) -> None:
    before = yaml_bytes(proj)
    with pytest.raises(exc, match=match):
        fn(proj, *args, **kwargs)
    assert yaml_bytes(proj) == before


def test_add_every_type_and_returns_config(proj):
    config = add_text_field(proj, " Phase ", "choice", " arterial, venous ,, ", True)
    assert config.text_fields[-1] == TextFieldDef("Phase", "choice", ("arterial", "venous"), True)
    add_text_field(proj, "Findings", "multi_choice", ["cyst", "mass"])
    add_text_field(proj, "Comment", "text")
    add_text_field(proj, "Size", "number", "")
    config = add_text_field(proj, "Contrast", "yes_no", required=True)
    assert load_project_config(proj).text_fields == config.text_fields
    assert names(config) == ["Image quality", "Phase", "Findings", "Comment", "Size", "Contrast"]
    assert config.text_fields[2].values == ("cyst", "mass")
    assert config.text_fields[3] == TextFieldDef("Comment", "text", (), False)
    assert config.rois == load_project_config(proj).rois  # the ROIs are kept


@pytest.mark.parametrize("args, match", [
    (("image QUALITY", "text"), "already exists"),
    (("", "text"), "empty"),
    (("   ", "text"), "empty"),
    (("x" * 65, "text"), "65 characters long; use at most 64"),
    (("a\nb", "text"), "line break"),
    (("Phase", "date"), "not a text field type"),
    (("Phase", "choice"), "at least one allowed value"),
    (("Phase", "multi_choice", " , "), "at least one allowed value"),
    (("Phase", "text", "a, b"), "no allowed values"),
    (("Phase", "number", ["1"]), "no allowed values"),
    (("Phase", "choice", "a, A"), "listed twice"),
    (("Phase", "choice", ["a\nb"]), "line break"),
    (("Phase", "choice", ["x" * 101]), "at most 100"),
    (("Phase", "choice", [1]), "not a text"),
    (("Phase", "text", (), "yes"), "true or false"),
])
def test_add_refusals_leave_the_file_unchanged(proj, args, match):
    refused(proj, add_text_field, *args, match=match)


def test_a_64_character_name_is_fine(proj):
    assert names(add_text_field(proj, "x" * 64, "text"))[-1] == "x" * 64


def test_update_name_values_required(proj):
    config = update_text_field(proj, "image quality", name="Quality",
                               values="good, poor", required=True)
    assert config.text_fields == (TextFieldDef("Quality", "choice", ("good", "poor"), True),)
    # removing a value (even if used by annotations) is allowed; None keeps a setting
    config = update_text_field(proj, "Quality", values=["good"])
    assert config.text_fields[0] == TextFieldDef("Quality", "choice", ("good",), True)
    config = update_text_field(proj, "Quality", required=False, type="choice")
    assert config.text_fields[0].required is False
    assert update_text_field(proj, "Quality", name="QUALITY").text_fields[0].name == "QUALITY"
    assert load_project_config(proj).text_fields[0].name == "QUALITY"


def test_update_refusals(proj):
    add_text_field(proj, "Comment", "text")
    refused(proj, update_text_field, "Image quality", type="text", match="cannot be changed")
    refused(proj, update_text_field, "Image quality", name="comment", match="already exists")
    refused(proj, update_text_field, "Image quality", name="", match="empty")
    refused(proj, update_text_field, "Image quality", name="y" * 65, match="at most 64")
    refused(proj, update_text_field, "Image quality", values="", match="at least one")
    refused(proj, update_text_field, "Image quality", values="a, a", match="listed twice")
    refused(proj, update_text_field, "Comment", values="a", match="no allowed values")
    refused(proj, update_text_field, "Comment", required="no", match="true or false")
    refused(proj, update_text_field, "Nope", name="X", match="no text field named 'Nope'")


def test_move_clamps_and_refuses(proj):
    add_text_field(proj, "A", "text")
    add_text_field(proj, "B", "yes_no")
    assert names(move_text_field(proj, "b", -1)) == ["Image quality", "B", "A"]
    assert names(move_text_field(proj, "B", -5)) == ["B", "Image quality", "A"]
    assert names(move_text_field(proj, "B", 9)) == ["Image quality", "A", "B"]
    assert names(load_project_config(proj)) == ["Image quality", "A", "B"]
    refused(proj, move_text_field, "A", "up", match="whole number")
    refused(proj, move_text_field, "A", True, match="whole number")
    refused(proj, move_text_field, "Z", 1, match="no text field named")


def test_delete(proj):
    add_text_field(proj, "A", "text")
    assert names(delete_text_field(proj, "image quality")) == ["A"]
    assert names(delete_text_field(proj, "A")) == []
    assert load_project_config(proj).text_fields == ()
    refused(proj, delete_text_field, "A", match="no text field named")


def test_compare_and_swap(proj):
    _, sha = read_project_yaml(proj)
    add_text_field(proj, "A", "text", expected_sha256=sha)
    for fn, args in [(add_text_field, ("B", "text")), (update_text_field, ("A",)),
                     (move_text_field, ("A", -1)), (delete_text_field, ("A",))]:
        refused(proj, fn, *args, match="changed by someone else", exc=VersionConflict,
                expected_sha256=sha)
    _, sha2 = read_project_yaml(proj)
    assert names(delete_text_field(proj, "A", expected_sha256=sha2)) == ["Image quality"]


def test_parse_values():
    assert parse_values(None) == ()
    assert parse_values("a,b , c") == ("a", "b", "c")
    with pytest.raises(InvalidProject):
        parse_values(5)
