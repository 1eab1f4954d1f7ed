"""The first slice before the graph, in Chromium: a new viewer page shows its first slice as a
plain image (the preview) where the figure will put it, until the graph has drawn it.

On a series whose axial pixels are not square: the preview sits exactly over the figure's image
(also at another aspect ratio), shows the page's slice on a first opening and before the graph
does, the slice the viewer kept when a view comes back, and nothing when the view comes back in
another window (the page's slice would be the wrong picture).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.browser

SERIES = "P1/ct.nii.gz"
SHAPE = (40, 24, 10)       # canonical (X, Y, Z): axial slices 24 rows × 40 columns
SPACING = (1.0, 2.0, 3.0)  # axial rows 2 mm, columns 1 mm
MIDDLE = (SHAPE[2] - 1) // 2

#: per animation frame from the page's start: the first frame with the preview on screen and
#: the first with the graph's image showing the same picture (recorded before the app runs)
FRAMES = """(() => {
    window.__frames = {preview: null, graph: null};
    (function tick() {
        const p = document.querySelector('.ril-preview');
        const image = document.querySelector('.ril-graph .imagelayer image');
        const now = performance.now();
        if (p && !p.hidden && p.complete && p.naturalWidth && window.__frames.preview === null) {
            window.__frames.preview = now;
        }
        const href = image && (image.getAttribute('href') || image.getAttribute('xlink:href'));
        if (p && href && href === p.getAttribute('src') &&
                window.__frames.graph === null) {
            window.__frames.graph = now;
        }
        if (window.__frames.graph === null) { requestAnimationFrame(tick); }
    })();
})()"""

#: the preview's box and the figure's image's box (the preview shown for the measurement)
BOXES = """() => {
    const p = document.querySelector('.ril-preview'), hidden = p.hidden;
    p.hidden = false;
    const a = p.getBoundingClientRect();
    const b = document.querySelector('.ril-graph .imagelayer image').getBoundingClientRect();
    p.hidden = hidden;
    return [[a.x, a.y, a.width, a.height], [b.x, b.y, b.width, b.height]];
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import nibabel as nib
    from support import RunningServer

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("preview")
    (root / "images" / "P1").mkdir(parents=True)
    data = np.random.default_rng(3).integers(0, 400, SHAPE).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([*SPACING, 1.0])), root / "images" / SERIES)
    project = init_project(root / "project", root / "images")
    running = RunningServer(["serve", str(project.dir)])
    yield running
    running.stop()


def preview(page) -> dict:
    return page.evaluate("""() => { const p = document.querySelector('.ril-preview');
        return {hidden: p.hidden, shows: p.getAttribute('data-ril-shows'),
                src: p.getAttribute('src')}; }""")


def reopen(page, ui) -> dict:
    """Back to the project page, then the series again (inside the app: the viewer's script
    and its caches stay)."""
    page.click(".ril-nav-link >> text=Project")
    page.click(".ag-row [col-id=name]")
    return ui.wait_full(page)


def test_the_preview_shows_the_first_slice_first_exactly_where_the_figure_puts_it(
        page, server, ui):
    page.add_init_script(FRAMES)
    shown = ui.open_viewer(page, server.url, SERIES, index=MIDDLE)
    frames = page.evaluate("window.__frames")
    assert frames["preview"] is not None and frames["preview"] <= frames["graph"]
    seen = preview(page)
    assert seen["hidden"] and seen["shows"] == f"{MIDDLE}f" == shown["painted"]
    assert seen["src"] == ui.screen_source(page)  # the same picture as the graph's
    for size in ({"width": 1400, "height": 900}, {"width": 900, "height": 1000}):
        page.set_viewport_size(size)
        page.wait_for_timeout(400)  # plotly's resize is debounced
        box, image = page.evaluate(BOXES)
        assert image[2] / image[3] == pytest.approx(40 * 1.0 / (24 * 2.0), rel=0.01)
        assert np.allclose(box, image, atol=1.0), (size, box, image)


def test_a_view_that_comes_back_shows_its_kept_slice_and_a_new_window_shows_none(page, server,
                                                                                  ui):
    ui.open_viewer(page, server.url, SERIES, index=MIDDLE)
    ui.press(page, "ArrowUp", 3)
    ui.wait_full(page, index=MIDDLE + 3)
    back = reopen(page, ui)
    assert back["index"] == MIDDLE + 3
    seen = preview(page)
    assert seen["hidden"] and seen["shows"] == f"{MIDDLE + 3}f"
    assert seen["src"] == ui.screen_source(page)

    page.fill("#window-width", "123")
    page.press("#window-width", "Enter")
    page.wait_for_function("window.rilViewer.state().ww === 123")
    ui.wait_full(page)
    back = reopen(page, ui)  # the page opens in its own window: the slice is fetched again
    assert back["index"] == MIDDLE + 3 and back["ww"] != 123
    assert preview(page)["shows"] is None
