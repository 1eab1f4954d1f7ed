"""The plumbing of the viewer's scripts in a real browser: the status line of failed requests,
listeners that go away with the viewer, the component ids from the page, the layer registry."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ril_dash.ui import ids

pytestmark = pytest.mark.browser

SERIES = "PHANTOM-002/CT-2026-01-14/portal-venous.nii.gz"
MIDDLE = 19  # of 40 axial slices
SLICE_REQUEST = re.compile(r"/ril/api/slice\?")
STATUS = f"#{ids.VIEWER_STATUS}"

#: count the listeners that the ril scripts (/assets/ril*.js) hang on window and document and
#: have not removed, by "target:type:capture" (installed before any script of the page runs)
COUNT_LISTENERS = """(() => {
    const live = new Map();
    const proto = EventTarget.prototype;
    const add = proto.addEventListener, remove = proto.removeEventListener;
    const key = (target, type, fn, options) => {
        const capture = typeof options === 'boolean' ? options : !!(options && options.capture);
        return [target === window ? 'window' : 'document', type, capture].join(':');
    };
    EventTarget.prototype.addEventListener = function (type, fn, options) {
        const global = this === window || this === document;
        if (global && /\\/assets\\/ril[^/]*\\.js/.test(new Error().stack)) {
            live.set(fn, (live.get(fn) || []).concat([key(this, type, fn, options)]));
        }
        return add.call(this, type, fn, options);
    };
    EventTarget.prototype.removeEventListener = function (type, fn, options) {
        const keys = live.get(fn);
        if (keys) {
            const i = keys.indexOf(key(this, type, fn, options));
            if (i >= 0) { keys.splice(i, 1); }
        }
        return remove.call(this, type, fn, options);
    };
    window.rilListeners = () => {
        const counts = {};
        live.forEach(keys => keys.forEach(k => { counts[k] = (counts[k] || 0) + 1; }));
        return counts;
    };
})();"""


@pytest.fixture
def viewer(page, demo_server, ui):
    ui.open_viewer(page, demo_server.url, SERIES, index=MIDDLE)
    return page


def status(page) -> dict:
    return page.evaluate("""(sel) => { const e = document.querySelector(sel);
        return {text: e.textContent, visible: !e.hidden && e.offsetParent !== null}; }""", STATUS)


def wait_status(page, pattern: str) -> None:
    page.wait_for_function("""([sel, pattern]) => { const e = document.querySelector(sel);
        return !!e && !e.hidden && new RegExp(pattern).test(e.textContent); }""",
                           arg=[STATUS, pattern])


def test_a_failed_slice_request_is_shown_until_the_slice_loads(viewer, demo_home, ui):
    page = viewer
    page.route(SLICE_REQUEST, lambda route: route.abort("connectionrefused"))
    assert status(page) == {"text": "", "visible": False}
    ui.press(page, "End")  # slice 40: far from the prefetched ones, shown from its thumbnail
    wait_status(page, "^Could not load slice 40: server unreachable — retrying$")
    assert ui.state(page)["shown"] == "39t"

    # the server answers again, with an error: its words are shown
    page.unroute(SLICE_REQUEST)
    page.route(SLICE_REQUEST, lambda route: route.fulfill(
        status=500, content_type="application/json", body=json.dumps({"error": "disk on fire"})))
    wait_status(page, "^Could not load slice 40: disk on fire — retrying$")

    page.unroute(SLICE_REQUEST)  # recovered: the retry brings the slice and the line goes
    s = ui.wait_full(page, index=39)
    page.wait_for_function("(sel) => document.querySelector(sel).hidden", arg=STATUS)
    assert status(page) == {"text": "", "visible": False}
    images = demo_home / "demo-project" / "images"
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(images / SERIES, "axial", 39, s["wc"], s["ww"]))
    assert page.js_errors == []


def test_a_failed_request_of_the_annotation_layer_is_shown_too(page, demo_server, ui):
    summary = re.compile(r"/ril/api/annotations\?")
    page.route(summary, lambda route: route.fulfill(status=502, body="Bad Gateway"))
    page.goto(ui.view_url(demo_server.url, SERIES))
    wait_status(page, "^Could not load the annotations of this series: the server answered 502"
                      "( Bad Gateway)? — retrying$")
    page.unroute(summary)
    page.wait_for_function("(sel) => document.querySelector(sel).hidden", arg=STATUS)
    page.wait_for_function("rilAnnotate.state().summary !== null")
    assert page.js_errors == []


def test_leaving_the_viewer_removes_its_listeners(page, demo_server, ui):
    console_errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
    page.add_init_script(COUNT_LISTENERS)
    page.goto(demo_server.url + "/")
    row = (f"#series-grid .ag-pinned-left-cols-container .ag-row[row-id='{SERIES}'] "
           f"[col-id=name]")

    def open_from_the_grid() -> dict:
        page.click(row)
        page.wait_for_url("**/view?series=*")
        return ui.wait_full(page, index=MIDDLE)

    def leave() -> None:
        page.click(".ril-nav-link >> text=Project")
        page.wait_for_selector(row)

    page.wait_for_selector(row)
    assert page.evaluate("rilListeners()") == {}  # the scripts listen to nothing before
    open_from_the_grid()
    opened = page.evaluate("rilListeners()")
    assert opened == {"document:keydown:true": 1, "document:keydown:false": 1,
                      "window:mousemove:false": 1, "window:mouseup:false": 1,
                      "window:pagehide:false": 1, "document:click:false": 1,
                      "document:toggle:true": 1, "document:mousemove:false": 1,
                      # rilPage's keyboard hand-back and the three-plane cursor's clicks
                      "document:mousedown:true": 2, "document:change:true": 1,
                      # the fill and point tools' clicks and the three-plane cursor's clicks
                      "window:mouseup:true": 2}
    assert page.evaluate("rilPage.state()")["open"] is True

    leave()
    page.wait_for_function("!rilPage.state().open")
    assert {k: v for k, v in page.evaluate("rilListeners()").items() if v} == {}
    # a key on the project page reaches no viewer: nothing moves, nothing fails
    page.keyboard.press("ArrowDown")
    page.keyboard.press("b")
    assert page.evaluate("rilViewer.state().index") == MIDDLE

    open_from_the_grid()  # the same view again, in a new graph
    assert {k: v for k, v in page.evaluate("rilListeners()").items() if v} == opened
    ui.press(page, "ArrowDown")  # one key, one slice
    assert ui.wait_full(page, index=MIDDLE - 1)["index"] == MIDDLE - 1
    ui.press(page, "ArrowDown")
    assert ui.wait_full(page, index=MIDDLE - 2)["index"] == MIDDLE - 2
    ui.wait_text(page, "#viewer-position", f"Axial  {MIDDLE - 1} / 40")
    assert page.js_errors == []
    assert console_errors == []


def test_the_page_hands_the_scripts_their_ids(viewer):
    config = viewer.evaluate("JSON.parse(document.querySelector('[data-ril-config]')"
                             ".getAttribute('data-ril-config'))")
    assert config == {"ids": ids.BROWSER}
    assert viewer.evaluate("rilPage.id('graph')") == ids.VIEWER_GRAPH
    with pytest.raises(Exception, match="no component id named graf"):
        viewer.evaluate("rilPage.id('graf')")


def test_one_more_layer_is_one_registry_entry(viewer, ui):
    page = viewer
    red = page.evaluate("""(() => { const c = document.createElement('canvas');
        c.width = c.height = 1;
        const g = c.getContext('2d'); g.fillStyle = '#f00'; g.fillRect(0, 0, 1, 1);
        return c.toDataURL('image/png'); })()""")
    page.evaluate("rilLayers.register({name: 'heatmap', order: 30, opacity: 0.5, "
                  "palette: 'inferno'})")
    page.click("#plane-select label:has-text('Coronal')")  # the next view has the new layer
    s = ui.wait_full(page, plane="coronal")
    traces = page.evaluate("""(() => { const v = rilViewer;
        return ['image', 'roi', 'heatmap', 'points'].map(n => v.trace(n))
            .concat([v.graph().data.length]); })()""")
    assert traces == [0, 1, 2, 3, 4]
    heat = "rilViewer.graph().data[2]"
    assert page.evaluate(f"[{heat}.opacity, {heat}.visible, {heat}.hoverinfo]") == [
        0.5, True, "skip"]

    page.evaluate("([i, src]) => { rilLayers.get('heatmap').cache.put(i, src); "
                  "rilViewer.refresh(); }", [s["index"], red])
    page.wait_for_function(f"(src) => {heat}.source === src", arg=red)
    page.evaluate("rilLayers.set('heatmap', {opacity: 0.2})")
    page.wait_for_function(f"{heat}.opacity === 0.2")
    page.evaluate("rilLayers.set('heatmap', {visible: false})")
    page.wait_for_function(f"{heat}.visible === false")
    # scrolling: the image moves on, the heat map has nothing for the next slice
    ui.press(page, "ArrowUp")
    ui.wait_full(page, plane="coronal", index=s["index"] + 1)
    assert page.evaluate(f"{heat}.source") != red
    assert page.evaluate("rilViewer.graph().data[0].source") == ui.screen_source(page)
    assert page.js_errors == []


def test_a_neighbour_dropped_while_loading_is_fetched_when_it_is_shown(viewer, demo_home, ui):
    """PageDown while the neighbours of a slice are still queued, then PageDown again: the
    queued neighbours near the new slice are dropped and must be asked for again when shown
    (they used to stay marked as requested, so the slice stayed a thumbnail for good)."""
    page = viewer
    for i in range(MIDDLE - 6, MIDDLE + 7):
        page.wait_for_function(f"rilLayers.get('image').cache.has({i})")
    held, release = [], []

    def slow_server(route):
        held.append(route) if not release else route.continue_()

    page.route(SLICE_REQUEST, slow_server)
    ui.press(page, "PageDown")  # 9: its neighbours 3..15 are wanted, 3 are sent, the rest wait
    page.wait_for_function("() => rilViewer.state().index === 9")
    page.wait_for_timeout(300)  # the pause after which the neighbours are queued
    ui.press(page, "PageDown")  # 0: the queue of slice 9 is dropped
    page.wait_for_function("() => rilViewer.state().index === 0")
    page.wait_for_timeout(300)
    release.append(True)
    for route in held:
        route.continue_()
    ui.wait_full(page, index=0)
    ui.press(page, "ArrowUp", 5)  # slice 6 was queued for slice 9 and dropped
    s = ui.wait_full(page, index=5)
    page.wait_for_function("!document.querySelector('#ril-viewport').classList.contains('ril-lowres')")
    images = demo_home / "demo-project" / "images"
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(images / SERIES, "axial", 5, s["wc"], s["ww"]))
    assert page.js_errors == []


def test_a_thumbnail_on_screen_is_marked_low_resolution(viewer, ui):
    page = viewer
    page.route(SLICE_REQUEST, lambda route: route.abort("connectionrefused"))
    ui.press(page, "End")  # shown from its thumbnail until the slice loads
    page.wait_for_function("() => rilViewer.state().shown === '39t'")
    page.wait_for_function("document.querySelector('#ril-viewport').classList.contains('ril-lowres')")
    mark = page.evaluate("getComputedStyle(document.querySelector('#ril-viewport'), '::after').content")
    assert mark == '"low resolution"'
    page.unroute(SLICE_REQUEST)
    ui.wait_full(page, index=39)
    page.wait_for_function("!document.querySelector('#ril-viewport').classList.contains('ril-lowres')")
