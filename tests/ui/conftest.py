"""Helpers for the real-browser tests of the UI: open the slice viewer, wait for what is on screen.

The tests never sleep for a fixed time: they wait for the state the browser script reports
(``window.rilViewer.state()``) or for the DOM, with Playwright's default timeout.
"""

from __future__ import annotations

import base64
import io
import types
from urllib.parse import quote

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from support import RunningServer

#: true when the full-resolution slice of the current index is on screen *and* the plotly figure
#: on the page is the one the script configured last (its layout.meta.gen)
FULL_SHOWN_JS = """() => {
    const v = window.rilViewer;
    if (!v) { return false; }
    const s = v.state();
    const gd = document.querySelector('#viewer-graph .js-plotly-plot');
    return !!(gd && gd.layout && gd.layout.meta && gd.layout.meta.gen === s.gen &&
              s.shown === s.index + 'f' && s.painted === s.shown);
}"""

GRAPH_JS = "document.querySelector('#viewer-graph .js-plotly-plot')"


def view_url(base_url: str, series: str) -> str:
    return f"{base_url}/view?series={quote(series, safe='')}"


def state(page) -> dict:
    return page.evaluate("window.rilViewer.state()")


def wait_full(page, **expected) -> dict:
    """Wait until the full-res slice is shown and the state has ``expected`` values; return it."""
    page.wait_for_function(
        f"(expected) => ({FULL_SHOWN_JS})() && Object.entries(expected).every("
        f"([k, v]) => window.rilViewer.state()[k] === v)", arg=expected)
    return state(page)


def open_viewer(page, base_url: str, series: str, **expected) -> dict:
    page.goto(view_url(base_url, series))
    return wait_full(page, **expected)


def wait_text(page, selector: str, text: str) -> None:
    """Wait until the element's textContent is exactly ``text`` (whitespace included)."""
    page.wait_for_function(
        "([sel, text]) => { const e = document.querySelector(sel); "
        "return !!e && e.textContent === text; }", arg=[selector, text])


def screen_source(page) -> str:
    """The data URL of the image trace on screen."""
    return page.evaluate(f"{GRAPH_JS}.data[0].source")


def decode_data_url(url: str) -> np.ndarray:
    from PIL import Image

    prefix = "data:image/png;base64,"
    assert url.startswith(prefix), url[:60]
    with Image.open(io.BytesIO(base64.b64decode(url[len(prefix):]))) as img:
        assert img.mode == "L", img.mode
        return np.asarray(img).copy()


def screen_pixels(page) -> np.ndarray:
    """Grey pixels of the image on screen, decoded from the plotly trace's PNG source."""
    return decode_data_url(screen_source(page))


def svg_image_href(page) -> str | None:
    """href of the <image> element plotly drew (what the user actually sees)."""
    return page.evaluate(
        "(() => { const e = document.querySelector('#viewer-graph image'); "
        "return e && (e.getAttribute('href') || e.getAttribute('xlink:href')); })()")


def expected_pixels(path, plane: str, index: int, center: float, width: float,
                    frame: int = 0) -> np.ndarray:
    """What the server should render for a slice, computed in the test process."""
    from ril_dash.core.volume import load_volume
    from ril_dash.core.window import apply_window

    return apply_window(load_volume(path).get_slice(plane, index, frame), center, width)


def press(page, key: str, times: int = 1) -> None:
    """Press ``key`` with the viewport focused (where an analyst's keys go)."""
    page.focus("#ril-viewport")
    for _ in range(times):
        page.keyboard.press(key)


def choose_text_value(page, field: int, value: str) -> None:
    """Choose ``value`` in the dropdown of the viewer's ``field``-th text field (from 0).

    The dropdown's script arrives after the page (Dash loads it apart), and its first render
    can close a menu opened just before it: the menu is opened again until the value shows."""
    box, option = page.locator(".ril-text-field").nth(field), page.get_by_text(value, exact=True)
    for _ in range(3):
        box.click()
        try:
            option.last.wait_for(timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    option.last.click()


def client_point(page, row: float, col: float) -> tuple[float, float]:
    """Page coordinates of the centre of screen pixel (row, col) of the image."""
    x, y = page.evaluate(
        """([row, col]) => {
            const gd = document.querySelector('#viewer-graph .js-plotly-plot');
            const fl = gd._fullLayout, r = gd.getBoundingClientRect();
            return [r.left + fl.xaxis._offset + fl.xaxis.l2p(col),
                    r.top + fl.yaxis._offset + fl.yaxis.l2p(row)];
        }""", [row, col])
    return x, y


def drag_slider_to_end(page, slider_id: str) -> None:
    """Drag the thumb of the Dash slider ``slider_id`` past the right end of its track."""
    thumb = page.locator(f"#{slider_id} [role=slider]").bounding_box()
    track = page.locator(f"#{slider_id} .dash-slider-track").bounding_box()
    page.mouse.move(thumb["x"] + thumb["width"] / 2, thumb["y"] + thumb["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] + 20, track["y"] + track["height"] / 2, steps=5)
    page.mouse.up()


NEW_SERIES, NEW_SHAPE = "P1/t1.nii.gz", (8, 8, 3)


@pytest.fixture
def new_project(tmp_path):
    """The folder of a new project (``init_project``: one example ROI and text field) over one
    int16 series ``NEW_SERIES`` of shape ``NEW_SHAPE``."""
    import nibabel as nib

    from ril_dash.project.project import init_project

    (tmp_path / "images" / "P1").mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.arange(np.prod(NEW_SHAPE), dtype=np.int16).reshape(NEW_SHAPE),
                             np.eye(4)), tmp_path / "images" / NEW_SERIES)
    return init_project(tmp_path / "proj", tmp_path / "images", name="New").dir


@pytest.fixture
def new_project_server(new_project):
    """``ril-dash serve`` of ``new_project`` (no logins)."""
    server = RunningServer(["serve", str(new_project)])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ui():
    """The helpers above, for the test modules (a conftest cannot be imported)."""
    return types.SimpleNamespace(
        FULL_SHOWN_JS=FULL_SHOWN_JS, view_url=view_url, state=state, wait_full=wait_full,
        open_viewer=open_viewer, wait_text=wait_text, screen_source=screen_source,
        decode_data_url=decode_data_url, screen_pixels=screen_pixels,
        svg_image_href=svg_image_href, expected_pixels=expected_pixels, press=press,
        choose_text_value=choose_text_value,
        client_point=client_point, drag_slider_to_end=drag_slider_to_end,
        NEW_SERIES=NEW_SERIES, NEW_SHAPE=NEW_SHAPE)
