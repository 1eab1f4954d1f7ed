"""The "Text fields" section of /rois in a real browser: add, edit, move, delete, errors."""

from __future__ import annotations

import pytest
from support import EditorTable

from ril_dash.project.schema import TextFieldDef, load_project_config

pytestmark = pytest.mark.browser
FIELDS = EditorTable("tf")


def wait_status(page, text: str) -> None:
    page.wait_for_function(
        "(t) => document.querySelector('#tf-status').textContent === t", arg=text)


def choose_type(page, kind: str) -> None:
    page.click("#tf-add-type")
    page.click(f".dash-dropdown-option:has(input[value='{kind}'])")
    page.wait_for_function(
        "(k) => document.querySelector('#tf-add-type-value').textContent === k", arg=kind)


def fields(project_dir) -> tuple[TextFieldDef, ...]:
    return load_project_config(project_dir).text_fields


def test_add_edit_move_delete_choice_field(page, new_project_server, new_project):
    page.goto(new_project_server.url + "/rois")
    FIELDS.wait_names(page, ["Image quality"])
    quality = TextFieldDef("Image quality", "choice", ("good", "acceptable", "poor"))
    assert fields(new_project) == (quality,)

    # the values box is only shown for choice types
    assert page.locator("#tf-add-values-field").is_visible()
    choose_type(page, "text")
    page.wait_for_selector("#tf-add-values-field", state="hidden")
    choose_type(page, "choice")
    page.wait_for_selector("#tf-add-values-field", state="visible")

    # a choice field without values is refused with an alert, nothing written
    before = (new_project / "project.yaml").read_bytes()
    page.fill("#tf-add-name", "Phase")
    page.click("#tf-add")
    page.wait_for_selector("#tf-alert .ril-alert-error")
    assert "at least one allowed value" in page.inner_text("#tf-alert")
    assert (new_project / "project.yaml").read_bytes() == before

    # add
    page.fill("#tf-add-values", "arterial, venous")
    page.check("#tf-add-required input[type=checkbox]")
    page.click("#tf-add")
    FIELDS.wait_names(page, ["Image quality", "Phase"])
    wait_status(page, "Added Phase.")
    assert page.locator("#tf-alert").inner_text() == ""
    assert FIELDS.row(page, "Phase").locator(".ril-tf-values").inner_text() == "arterial, venous"
    assert FIELDS.row(page, "Phase").locator(".ril-tf-required").inner_text() == "yes"
    phase = TextFieldDef("Phase", "choice", ("arterial", "venous"), True)
    assert fields(new_project) == (quality, phase)
    assert page.input_value("#tf-add-name") == ""

    # edit its values
    FIELDS.row(page, "Phase").locator(".ril-tf-edit-button").click()
    page.wait_for_selector("#tf-edit-form:not([hidden])")
    assert page.input_value("#tf-edit-values") == "arterial, venous"
    assert "type (choice) is fixed" in page.inner_text("#tf-edit-fixed")
    page.fill("#tf-edit-values", "arterial, portal venous, delayed")
    page.click("#tf-edit-save")
    wait_status(page, "Saved Phase.")
    page.wait_for_selector("#tf-edit-form[hidden]", state="attached")
    phase = TextFieldDef("Phase", "choice", ("arterial", "portal venous", "delayed"), True)
    assert fields(new_project) == (quality, phase)
    assert FIELDS.row(page, "Phase").locator(".ril-tf-values").inner_text() == (
        "arterial, portal venous, delayed")

    # move it up
    FIELDS.move_to_top(page, "Phase", ["Phase", "Image quality"])
    assert fields(new_project) == (phase, quality)

    # delete it
    assert "stay in each series' history" in FIELDS.open_delete(page, "Phase")
    assert page.locator("#tf-delete-text").is_hidden()  # no word to type
    page.click("#tf-delete-confirm")
    FIELDS.wait_names(page, ["Image quality"])
    wait_status(page, "Deleted Phase.")
    assert fields(new_project) == (quality,)

    # a name with HTML is shown as text
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    script = "<img src=x onerror=alert(1)>"
    choose_type(page, "yes_no")
    page.uncheck("#tf-add-required input[type=checkbox]")
    page.fill("#tf-add-name", script)
    page.click("#tf-add")
    FIELDS.wait_names(page, ["Image quality", script])
    assert page.locator("#tf-table img").count() == 0 and dialogs == []
    assert fields(new_project)[-1] == TextFieldDef(script, "yes_no")
    assert page.js_errors == []
