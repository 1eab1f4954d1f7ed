"""In the browser: a change saved while the audit log cannot be written shows the warning.

A text value saved through a Dash callback and a stroke saved through the HTTP API both show
"saved; the audit log could not be written" in a box at the top of the page (the answer's
``X-Ril-Warning`` header, ``assets/ril_warnings.js``); the page header shows the administrator
the notice.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from test_series_information_and_export import server  # noqa: F401  (the module's fixture)

from ril_dash.project.audit_trouble import WARNING

pytestmark = pytest.mark.browser


def test_the_page_shows_the_warning_of_a_saved_change(page, server, ui):  # noqa: F811
    log_path = server.project_dir / "audit.log.jsonl"
    page.goto(f"{server.url}/view?series=P2%2Fb.nii.gz")
    page.wait_for_function("window.rilAnnotate && rilAnnotate.state().summary !== null")
    assert page.locator(".ril-audit-trouble").count() == 0
    log_path.unlink(missing_ok=True)
    log_path.mkdir()  # every audit append now fails
    try:
        # a Dash callback: the text value is saved, the page says so and shows the warning
        ui.choose_text_value(page, 0, "acceptable")
        page.wait_for_function("document.querySelector('#text-message').textContent === "
                               "'Saved.'")
        box = page.locator("#ril-warning-box .ril-warning-text")
        box.wait_for()
        assert box.inner_text() == WARNING
        texts = json.load(urllib.request.urlopen(
            f"{server.url}/ril/api/texts?series=P2%2Fb.nii.gz"))
        assert texts["texts"]["Image quality"] == "acceptable"
        page.click("#ril-warning-box button")
        assert page.locator("#ril-warning-box").count() == 0

        # the HTTP API (a stroke as the viewer script sends it)
        status = page.evaluate("""async (parent) => {
            const r = await fetch('/ril/api/edit', {method: 'POST', credentials: 'same-origin',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({series: 'P2/b.nii.gz', tool: 'brush', roi: 1,
                                      plane: 'axial', index: 1, parent: parent, brush: 2,
                                      path: 'M2,2L6,6'})});
            return r.status; }""", texts["version"])
        assert status == 200
        box.wait_for()
        assert box.inner_text() == WARNING

        # the administrator (the local user) sees the notice in the header of every page
        page.goto(f"{server.url}/audit")
        notice = page.locator(".ril-audit-trouble")
        notice.wait_for()
        assert "could not be written" in notice.inner_text()
    finally:
        log_path.rmdir()
    assert page.js_errors == []
