"""The workflow with several people at once, in real browsers: one browser context per user.

One ``ril-dash serve --login --workflow`` server for the module serves a private copy of the demo
project with its example workflow (analysts ana, bob → reviewers rita → scientists sam; root is an
admin) and 15-second leases, so an open viewer renews its lease every 5 seconds. The users work
on the workflow board and in the viewer with the mouse; what was saved is read back from the
project's files in this process.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import DashUser, RunningServer, project_copy

from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import display_to_canonical
from ril_dash.core.raster import parse_svg_path, rasterize_brush
from ril_dash.core.volume import canonical_shape
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.series_locks import SeriesLocks

pytestmark = pytest.mark.browser

USERS = ("ana", "bob", "rita", "sam", "root")
PAINTED = "PHANTOM-002/CT-2026-01-14/portal-venous.nii.gz"
BROKEN = "PHANTOM-003/CT-2026-01-14/non-contrast.nii.gz"
LIVER = 1
#: the viewer renews its lease every lease/3 seconds, at least every 5 s
LEASE_SECONDS, RENEW_SECONDS = 15, 5


def password(user: str) -> str:
    return f"{user}-secret-word"


@pytest.fixture(scope="module")
def server(demo_home, tmp_path_factory):
    project = project_copy(demo_home, tmp_path_factory.mktemp("workflow-browser") / "project",
                           [(user, password(user), user == "root") for user in USERS])
    server = RunningServer(["serve", str(project), "--login",
                            "--workflow", str(project / "workflow.yaml"),
                            "--lease-seconds", str(LEASE_SECONDS)],
                           env={"RIL_DASH_HOME": str(demo_home)})
    server.project = project
    server.store = AnnotationStore(project / "annotations")
    server.locks = SeriesLocks(project / "annotations", lease_seconds=LEASE_SECONDS)
    yield server
    server.stop()


@pytest.fixture
def login(browser, server):
    """``login(user)`` → a page of a new browser context (its own cookies) logged in as user."""
    contexts = []

    def login(user: str):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.js_errors = []
        page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
        page.goto(server.url + "/login")
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", password(user))
        page.click("button[type=submit]")
        page.wait_for_selector(".ril-user")
        return page

    yield login
    for context in contexts:
        context.close()


# ---- helpers ------------------------------------------------------------------------------------
def board_select(page, server, series: str, show: str) -> None:
    """Open the board, show ``show`` (mine, queues or all), select ``series``' row."""
    page.goto(server.url + "/workflow")
    page.check(f"#wf-show input[value={show}]")
    page.fill("#wf-search", series)
    page.locator(f"#wf-grid .ag-row[row-id='{series}'] [col-id=series]").first.click()
    page.wait_for_selector(f"#wf-actions .ril-series-title[title='{series}']")


def board_action(page, button: str, done: str) -> None:
    """Click an action of the selected series; wait for the board to report ``done``."""
    page.click(f"#wf-actions button:text-is('{button}')")
    page.wait_for_function(
        "(text) => { const e = document.querySelector('#wf-done'); "
        "return !!e && e.textContent === text; }", arg=f"Done: {done}.")


def open_from_board(page, ui, series: str) -> dict:
    page.click("#wf-actions a:has-text('Open in the viewer')")
    ui.wait_full(page)
    assert page.inner_text("#viewer-title") == series
    page.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().summary")
    return page.evaluate("window.rilAnnotate.state()")


def banner(page) -> str:
    return page.inner_text("#lease-banner .ril-lease-reason")


def tool_section(page):
    return page.locator(".ril-annot-section:has(> summary:text-is('Tool'))")


def draw(page, ui, pixels) -> None:
    points = [ui.client_point(page, r, c) for r, c in pixels]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def saved_liver(server, series: str):
    shape = canonical_shape(server.project / "images" / series)
    state = server.store.series(series, shape).refresh()
    return state.version, roi_mask(state.bits, state.slots[LIVER]).copy()


def brush_voxels(server, series: str, request: dict) -> np.ndarray:
    shape = canonical_shape(server.project / "images" / series)
    display = (shape[1], shape[0])  # axial: rows = Y, cols = X
    region = np.zeros(display, bool)
    for pts in parse_svg_path(request["path"]):
        region |= rasterize_brush(pts, request["brush"], request["brush"], display)
    out = np.zeros(shape, bool)
    rows, cols = np.nonzero(region)
    out[display_to_canonical(shape, "axial", request["index"], rows, cols)] = True
    return out


def forged_break(page, series: str) -> int:
    return page.evaluate(
        """(series) => fetch('/ril/api/lease', {method: 'POST', credentials: 'same-origin',
               headers: {'Content-Type': 'application/json'},
               body: JSON.stringify({series: series, action: 'break'})}).then(r => r.status)""",
        series)


# ---- the tests ----------------------------------------------------------------------------------
def test_analyst_paints_while_the_other_analyst_sees_it_read_only(server, login, ui):
    ana = login("ana")
    board_select(ana, server, PAINTED, "queues")
    assert "In analysts, nobody holds it." in ana.inner_text("#wf-actions")
    board_action(ana, "Acquire", "acquire analysts by ana")
    state = open_from_board(ana, ui, PAINTED)
    assert state["readOnly"] is False and ana.locator("#lease-banner").is_hidden()
    version = state["version"]
    ui.press(ana, "b")
    ui.press(ana, "1")
    ana.wait_for_function("() => { const s = window.rilAnnotate.state(); "
                          "return s.tool === 'brush' && s.roi === 1 && "
                          "window.rilViewer.graph()._fullLayout.dragmode === 'drawopenpath'; }")
    draw(ana, ui, [(100.3, 90.2), (120.6, 130.1), (140.2, 150.7)])
    ana.wait_for_function("(v) => { const s = window.rilAnnotate.state(); "
                          "return s.version > v && !s.busy && s.queued === 0; }", arg=version)
    request = ana.evaluate("window.rilAnnotate.state().summary.request")
    saved, liver = saved_liver(server, PAINTED)
    assert saved == version + 1
    expected = brush_voxels(server, PAINTED, request)
    assert (request["tool"], request["roi"], request["brush"]) == ("brush", LIVER, 5.0)
    assert np.array_equal(liver, expected) and 200 < expected.sum() < 1000
    lease = server.locks.holder(PAINTED)
    assert lease.user == "ana"

    bob = login("bob")
    bob.goto(ui.view_url(server.url, PAINTED))
    ui.wait_full(bob)
    bob.wait_for_selector("#lease-banner", state="visible")
    reason = banner(bob)
    assert reason.startswith(f"Read only: it is in the pool 'analysts' and is held by ana; "
                             f"{PAINTED} is being edited by ana since "), reason
    assert bob.evaluate("window.rilAnnotate.state().readOnly") is True
    assert tool_section(bob).count() == 1 and tool_section(bob).is_hidden()
    assert tool_section(ana).is_visible()
    assert bob.locator("#lease-break").is_hidden()
    assert forged_break(bob, PAINTED) == 403
    assert server.locks.holder(PAINTED).token == lease.token
    assert saved_liver(server, PAINTED)[0] == saved
    assert ana.js_errors == [] and bob.js_errors == []


def acquire_over_http(server, user: str, series: str) -> str:
    """The board's Acquire, posted as the Dash renderer does; returns the response text."""
    http = DashUser(server.url, user, password(user))
    reply = http.callback("..wf-message.children...wf-refresh.data..",
                          [[({"type": "wf-action", "action": "acquire"}, "n_clicks", 1)]],
                          [("wf-grid", "selectedRows", [{"id": series}]), [],
                           ("wf-refresh", "data", 0)])
    assert reply.status_code == 200, reply.text
    return reply.text


def test_a_series_travels_from_analyst_to_reviewer_to_scientist(server, login, ui):
    shape = canonical_shape(server.project / "images" / PAINTED)
    if server.store.series(PAINTED, shape).refresh().workflow is None:
        acquire_over_http(server, "ana", PAINTED)  # run on its own: ana takes it first
    ana = login("ana")
    viewer = ana.context.new_page()  # ana also has the series open in a second tab
    viewer.goto(ui.view_url(server.url, PAINTED))
    ui.wait_full(viewer)
    viewer.wait_for_function("() => window.rilAnnotate.state().lease !== null")
    board_select(ana, server, PAINTED, "mine")
    assert "In analysts, held by ana." in ana.inner_text("#wf-actions")
    board_action(ana, "Assign", "assign analysts → reviewers by ana")
    # the series left ana's pool: her viewer turns read-only at its next renewal, saying why
    viewer.wait_for_function("() => window.rilAnnotate.state().readOnly === true",
                             timeout=(RENEW_SECONDS + 10) * 1000)
    assert banner(viewer) == (f"Read only: ana may not open {PAINTED}: it is in the pool "
                              f"'reviewers', and you are not a member of it (your pools: "
                              f"analysts).")
    assert viewer.locator("#lease-banner").is_visible() and tool_section(viewer).is_hidden()
    assert server.locks.holder(PAINTED) is None

    rita = login("rita")
    board_select(rita, server, PAINTED, "queues")
    assert rita.locator(f"#wf-grid .ag-row[row-id='{PAINTED}'] [col-id=pool]").first \
        .inner_text() == "reviewers"
    board_action(rita, "Acquire", "acquire reviewers by rita")
    rita.wait_for_selector("#wf-actions button:text-is('Approve')")
    board_action(rita, "Approve", "approve reviewers → scientists by rita")

    sam = login("sam")
    board_select(sam, server, PAINTED, "queues")
    assert "In scientists, nobody holds it." in sam.inner_text("#wf-actions")
    state = open_from_board(sam, ui, PAINTED)
    assert state["readOnly"] is True
    assert banner(sam) == ("Read only: it is in the pool 'scientists', whose members may not "
                           "annotate.")
    assert tool_section(sam).is_hidden()
    sam.click(".ril-annot-section > summary:text-is('History')")
    sam.wait_for_selector("#annot-history .ril-history-row")
    sam.wait_for_function("() => document.querySelectorAll('#annot-history .ril-history-row')"
                          ".length >= 4")
    labels = sam.locator("#annot-history .ril-history-op").all_inner_texts()
    assert labels[:3] == ["approve reviewers → scientists by rita", "acquire reviewers by rita",
                          "assign analysts → reviewers by ana"], labels
    assert labels[-2:] == ["acquire analysts by ana", "empty"], labels
    assert sam.locator("#annot-history button:text-is('Roll back')").count() == 0
    assert ana.js_errors == rita.js_errors == sam.js_errors == []


def test_an_admin_breaks_a_lock_from_the_banner(server, login, ui):
    assert "Done: acquire analysts by ana." in acquire_over_http(server, "ana", BROKEN)
    ana = login("ana")
    ana.goto(ui.view_url(server.url, BROKEN))
    ui.wait_full(ana)
    ana.wait_for_function("() => window.rilAnnotate.state().lease !== null")
    assert server.locks.holder(BROKEN).user == "ana"

    root = login("root")
    root.goto(ui.view_url(server.url, BROKEN))
    ui.wait_full(root)
    root.wait_for_selector("#lease-banner", state="visible")
    assert f"{BROKEN} is being edited by ana since " in banner(root)
    assert root.locator("#lease-break").is_visible()
    root.once("dialog", lambda dialog: dialog.accept())
    root.click("#lease-break")
    root.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().lease === "
                           f"'{BROKEN}' && !window.rilAnnotate.state().readOnly")
    assert root.locator("#lease-banner").is_hidden() and tool_section(root).is_visible()
    assert server.locks.holder(BROKEN).user == "root"

    # ana's page learns it at its next renewal (every 5 s): read-only, with the reason
    ana.wait_for_function("() => window.rilAnnotate.state().readOnly === true",
                          timeout=(RENEW_SECONDS + 10) * 1000)
    ana.wait_for_selector("#lease-banner", state="visible")
    assert f"{BROKEN} is being edited by root since " in banner(ana)
    assert tool_section(ana).is_hidden()
    assert ana.inner_text("#annot-message") == banner(ana)
    assert server.locks.holder(BROKEN).user == "root"
    assert ana.js_errors == [] and root.js_errors == []
