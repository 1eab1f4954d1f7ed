"""The ROI manager page (``/rois``) in a real browser: add, edit, move, delete, errors, escaping."""

from __future__ import annotations

import numpy as np
import pytest
from support import EditorTable

from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.schema import load_project_config

pytestmark = pytest.mark.browser
ROIS = EditorTable("roi")


@pytest.fixture
def rois_page(page, new_project_server):
    page.goto(new_project_server.url + "/")
    page.click(".ril-nav-link:text-is('ROIs')")  # the header link leads here
    page.wait_for_selector("#roi-table .ril-roi-row")
    return page


def yaml_names(project_dir) -> list[str]:
    return [r.name for r in load_project_config(project_dir).rois]


def add(page, name: str, radlex: str = "", color: str = "#336699") -> None:
    page.fill("#roi-add-name", name)
    page.fill("#roi-add-radlex", radlex)
    page.fill("#roi-add-color", color)
    page.click("#roi-add")


def test_add_edit_move_delete(rois_page, new_project):
    page = rois_page
    assert ROIS.names(page) == ["Example organ"]
    add(page, "Liver", "RID58", "#a0522d")
    ROIS.wait_names(page, ["Example organ", "Liver"])
    assert page.inner_text("#roi-status") == "Added Liver."
    liver = ROIS.row(page, "Liver")
    assert liver.locator(".ril-roi-radlex").inner_text() == "RID58"
    assert liver.locator(".ril-roi-value").inner_text() == "2"
    assert liver.locator(".ril-swatch").get_attribute("title") == "#a0522d"
    config = load_project_config(new_project)
    assert [(r.name, r.radlex, r.color, r.value) for r in config.rois][1] == (
        "Liver", "RID58", "#a0522d", 2)
    assert page.input_value("#roi-add-name") == ""  # the form is cleared after adding

    # edit its colour
    liver.locator(".ril-roi-edit-button").click()
    page.wait_for_selector("#roi-edit-form:not([hidden])")
    assert page.input_value("#roi-edit-name") == "Liver"
    assert "Mask value 2" in page.inner_text("#roi-edit-fixed")
    page.fill("#roi-edit-color", "#00ff00")
    page.click("#roi-edit-save")
    page.wait_for_function("document.querySelector('#roi-status').textContent === 'Saved Liver.'")
    page.wait_for_selector("#roi-edit-form[hidden]", state="attached")
    assert ROIS.row(page, "Liver").locator(".ril-swatch").get_attribute("title") == "#00ff00"
    assert load_project_config(new_project).rois[1].color == "#00ff00"

    # move it up
    ROIS.move_to_top(page, "Liver", ["Liver", "Example organ"])
    assert yaml_names(new_project) == ["Liver", "Example organ"]

    # delete it (no annotations: one-click confirm)
    assert "Liver has no annotations in any series" in ROIS.open_delete(page, "Liver")
    assert page.locator("#roi-delete-text").is_hidden()
    page.click("#roi-delete-confirm")
    ROIS.wait_names(page, ["Example organ"])
    assert yaml_names(new_project) == ["Example organ"]
    assert page.js_errors == []


def test_delete_with_annotations_asks_for_delete(rois_page, new_project, ui):
    page = rois_page
    store = AnnotationStore(load_project_config(new_project).annotations)
    s = store.series(ui.NEW_SERIES, ui.NEW_SHAPE)
    before = np.zeros((2, 2, 1), np.uint8)
    delta = type("D", (), {"box": ((0, 2), (0, 2), (0, 1)), "before": before,
                           "after": before + 1})()
    s.commit(0, delta, {"user": "ann", "op": "paint", "roi": 1}, slots={1: 0})
    assert ROIS.open_delete(page, "Example organ") == (
        "Example organ has annotations in 1 series; deleting it removes them from the current "
        "masks (they stay in each series' history). Type DELETE to confirm.")
    page.click("#roi-delete-confirm")  # without typing DELETE: refused
    page.wait_for_selector("#roi-alert .ril-alert-error")
    assert "Type DELETE" in page.inner_text("#roi-alert")
    assert yaml_names(new_project) == ["Example organ"]
    page.fill("#roi-delete-text", "DELETE")
    page.click("#roi-delete-confirm")
    ROIS.wait_names(page, [])
    assert yaml_names(new_project) == []
    assert s.refresh().bits.sum() == 0 and s.versions()[0].op == "delete_roi"
    assert page.js_errors == []


def test_duplicate_name_shows_alert_and_html_is_text(rois_page, new_project):
    page = rois_page
    before = (new_project / "project.yaml").read_bytes()
    add(page, "example ORGAN")
    page.wait_for_selector("#roi-alert .ril-alert-error")
    assert "already exists" in page.inner_text("#roi-alert")
    assert (new_project / "project.yaml").read_bytes() == before
    assert ROIS.names(page) == ["Example organ"]

    script = "<script>alert(1)</script>"
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    add(page, script)
    ROIS.wait_names(page, ["Example organ", script])
    assert page.locator("#roi-alert").inner_text() == ""  # the earlier alert is cleared
    assert ROIS.row(page, "alert(1)").locator(".ril-roi-name").inner_html() == (
        "&lt;script&gt;alert(1)&lt;/script&gt;")
    assert page.locator("#roi-table script").count() == 0 and dialogs == []
    assert yaml_names(new_project)[-1] == script
    assert page.js_errors == []


def test_change_by_someone_else_is_a_conflict(rois_page, new_project):
    page = rois_page
    from ril_dash.project.roi_editing import add_roi

    add_roi(new_project, "Spleen", None, "#123456")  # another process, after the page loaded
    add(page, "Kidney")
    page.wait_for_selector("#roi-alert .ril-alert-error")
    assert "changed by someone else; reload" in page.inner_text("#roi-alert")
    ROIS.wait_names(page, ["Example organ", "Spleen"])  # the table shows what is on disk now
    add(page, "Kidney")  # and the retry works
    ROIS.wait_names(page, ["Example organ", "Spleen", "Kidney"])
    assert yaml_names(new_project) == ["Example organ", "Spleen", "Kidney"]
