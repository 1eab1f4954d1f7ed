"""Shared fixtures: the demo project, a real ril-dash server process, headless Chromium.

The helpers themselves live in ``tests/support.py`` so the benchmarks can use them too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import CHROMIUM, CHROMIUM_ARGS, RunningServer, free_port  # noqa: F401


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A per-session RIL_DASH_HOME holding a freshly generated demo project."""
    from ril_dash.demo.demo_project import ensure_demo_project

    home = tmp_path_factory.mktemp("ril-home")
    ensure_demo_project(home / "demo-project", progress=lambda *_: None)
    return home


@pytest.fixture(scope="session")
def demo_server(demo_home):
    server = RunningServer([], env={"RIL_DASH_HOME": str(demo_home)})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Refuse a test that drives Chromium (uses the ``browser`` fixture, also through ``page``)
    without the ``browser`` marker: ``-m "not browser"`` must leave Chromium alone."""
    unmarked = [item.nodeid for item in items
                if "browser" in getattr(item, "fixturenames", ())
                and item.get_closest_marker("browser") is None]
    if unmarked:
        raise pytest.UsageError(
            "these tests drive Chromium but lack the browser marker; add "
            "`pytestmark = pytest.mark.browser` to their module or `@pytest.mark.browser` to "
            "each:\n  " + "\n  ".join(unmarked))
