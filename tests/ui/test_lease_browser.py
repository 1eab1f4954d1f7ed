"""The viewer gives its series' lease up when the user leaves it: by following a link inside the
app, or by closing the page (``navigator.sendBeacon`` on ``pagehide``)."""

from __future__ import annotations

import time

import pytest

from ril_dash.project.series_locks import SeriesLocks

pytestmark = pytest.mark.browser

SERIES = "PHANTOM-003/CT-2026-01-14/delayed.nii.gz"


def holder(demo_home):
    return SeriesLocks(demo_home / "demo-project" / "annotations").holder(SERIES)


def wait_until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the lease was not released"
        time.sleep(0.1)


def test_leaving_the_viewer_releases_the_lease(demo_server, demo_home, browser, ui):
    page = browser.new_page()
    try:
        ui.open_viewer(page, demo_server.url, SERIES)
        lease = holder(demo_home)
        assert lease is not None and lease.user == "local"
        assert page.evaluate("window.rilAnnotate.state()")["lease"] == SERIES

        page.click(".ril-nav-link >> text=Project")  # inside the app: the viewer unmounts
        page.wait_for_selector("#series-grid")
        wait_until(lambda: holder(demo_home) is None)

        ui.open_viewer(page, demo_server.url, SERIES)
        assert holder(demo_home) is not None
    finally:
        page.close(run_before_unload=True)  # the tab closes: pagehide sends the beacon
    wait_until(lambda: holder(demo_home) is None)
