"""The viewer's keys in a real browser, as an analyst presses them: form controls clicked in the
side panel do not keep the arrow keys (a wrong-label stroke was one keypress away), clicking the
image gives the keyboard back, and quick ``]`` presses each count."""

from __future__ import annotations

import pytest

from ril_dash.ui import ids

pytestmark = pytest.mark.browser

SERIES = "PHANTOM-002/CT-2026-01-14/portal-venous.nii.gz"
MIDDLE = 19


@pytest.fixture
def viewer(page, demo_server, ui):
    ui.open_viewer(page, demo_server.url, SERIES, index=MIDDLE)
    page.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().summary")
    return page


def annot(page) -> dict:
    return page.evaluate("window.rilAnnotate.state()")


def test_arrow_keys_after_clicking_an_roi_or_a_plane_move_the_slice(viewer, ui):
    page = viewer
    radios = page.locator(f"#{ids.ANNOT_ROI} input[type=radio]")
    assert radios.count() >= 3
    radios.nth(1).click()
    page.wait_for_function("(v) => window.rilAnnotate.state().roi === v",
                           arg=int(radios.nth(1).get_attribute("value")))
    roi = annot(page)["roi"]
    assert page.evaluate("document.activeElement.type") == "radio"  # the click kept the focus
    page.keyboard.press("ArrowDown")  # the key a radiologist presses for the previous slice
    page.keyboard.press("ArrowDown")
    ui.wait_full(page, index=MIDDLE - 2)
    assert annot(page)["roi"] == roi  # not Aorta, Left kidney…
    page.keyboard.press("b")
    page.wait_for_function("window.rilAnnotate.state().tool === 'brush'")
    page.keyboard.press("n")
    page.wait_for_function("window.rilAnnotate.state().tool === 'navigate'")

    planes = page.locator(f"#{ids.PLANE} input[type=radio]")
    planes.nth(0).click()  # the plane already shown: the view stays
    page.keyboard.press("ArrowUp")
    ui.wait_full(page, index=MIDDLE - 1, plane="axial")
    assert annot(page)["roi"] == roi


def test_a_number_box_keeps_its_keys_until_the_image_is_clicked(viewer, ui):
    page = viewer
    box = page.locator(f"#{ids.WINDOW_CENTER}")
    box.click()
    before = ui.state(page)
    page.keyboard.press("ArrowUp")  # typing in a box goes to the box
    page.wait_for_timeout(200)
    assert ui.state(page)["index"] == before["index"]
    viewport = page.locator(f"#{ids.VIEWPORT}").bounding_box()
    page.mouse.click(viewport["x"] + viewport["width"] / 2, viewport["y"] + viewport["height"] / 2)
    assert page.evaluate("document.activeElement.id") == ids.VIEWPORT
    page.keyboard.press("ArrowUp")
    ui.wait_full(page, index=before["index"] + 1)


def test_quick_bracket_presses_each_change_the_brush(viewer):
    page = viewer
    page.locator(f"#{ids.VIEWPORT}").focus()
    page.keyboard.press("b")
    page.wait_for_function("window.rilAnnotate.state().tool === 'brush'")
    start = annot(page)["brush"]
    for _ in range(3):
        page.keyboard.press("]")  # no wait between presses: as fast as fingers go
    page.wait_for_function(
        "(v) => document.querySelector('#annot-brush [role=slider]').getAttribute('aria-valuenow') === v",
        arg=str(start + 3))
    assert annot(page)["brush"] == start + 3
    page.keyboard.press("[")
    page.keyboard.press("[")
    page.wait_for_function(
        "(v) => document.querySelector('#annot-brush [role=slider]').getAttribute('aria-valuenow') === v",
        arg=str(start + 1))
    page.keyboard.press("n")
