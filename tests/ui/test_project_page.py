"""The project page (``/``) of the demo project in a real browser: folders, grid, search, opening."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PHANTOM_IDS = [f"PHANTOM-00{p}/CT-2026-01-14/{phase}.nii.gz" for p in (1, 2, 3)
               for phase in ("arterial", "delayed", "non-contrast", "portal-venous")]
ALL_IDS = ["MNI152/T1-2009a/t1.nii.gz"] + PHANTOM_IDS


#: the series ids of the grid's rows in display order (the DOM order is not the visual one)
ROW_IDS_JS = """() => Array.from(
    document.querySelectorAll('#series-grid .ag-center-cols-container .ag-row[row-id]'))
    .map(e => [Number(e.getAttribute('row-index')), e.getAttribute('row-id')])
    .sort((a, b) => a[0] - b[0]).map(r => r[1])"""


def wait_rows(page, expected: list[str]) -> None:
    """Wait until the grid shows exactly ``expected``, in this order (checked in one look: the
    grid may fetch its rows again, emptying itself for a moment, between two looks)."""
    page.wait_for_function(
        f"(expected) => JSON.stringify(({ROW_IDS_JS})()) === JSON.stringify(expected)",
        arg=expected)


#: the folder buttons as sorted [name, count] pairs, read in one look (the list is drawn again
#: when the grid's folder changes, so two looks may see two lists)
FOLDERS_JS = """() => Array.from(document.querySelectorAll('.ril-folder'))
    .map(e => [e.querySelector('.ril-folder-name').innerText,
               e.querySelector('.ril-count').innerText]).sort()"""


def wait_folders(page, expected: dict[str, str]) -> None:
    """Wait until the folder buttons are exactly ``expected`` (name → count)."""
    page.wait_for_function(
        f"(expected) => JSON.stringify(({FOLDERS_JS})()) === JSON.stringify(expected)",
        arg=[list(item) for item in sorted(expected.items())])


@pytest.fixture
def project_page(page, demo_server):
    page.goto(demo_server.url + "/")
    page.wait_for_selector("#series-grid .ag-row[row-id]")
    return page


def test_lists_every_series_and_the_top_folders(project_page):
    page = project_page
    wait_rows(page, ALL_IDS)
    assert page.inner_text("#series-count").startswith("13 series · ")
    wait_folders(page, {"MNI152": "1", "PHANTOM-001": "4", "PHANTOM-002": "4",
                        "PHANTOM-003": "4"})
    names = page.eval_on_selector_all(
        "#series-grid .ag-pinned-left-cols-container .ag-row[row-id] [col-id=name]",
        "els => els.map(e => e.textContent)")
    assert sorted(names) == sorted(["t1"] + ["arterial", "delayed", "non-contrast",
                                             "portal-venous"] * 3)
    assert page.js_errors == []


def test_folder_click_narrows_the_grid_and_shows_sub_folders(project_page):
    page = project_page
    page.click(".ril-folder:has(.ril-folder-name:text-is('PHANTOM-002'))")
    page.wait_for_function(
        "document.querySelector('#series-count').textContent.startsWith('4 series in PHANTOM-002 · ')")
    wait_rows(page, [i for i in PHANTOM_IDS if i.startswith("PHANTOM-002/")])
    wait_folders(page, {"CT-2026-01-14": "4"})
    assert page.locator(".ril-crumb").all_inner_texts() == ["All series", "PHANTOM-002"]
    # "Export these series" carries the folder to the export page
    assert page.get_attribute("#export-link", "href") == "/export?glob=PHANTOM-002%2F%2A"
    page.click("#export-link")
    page.wait_for_selector("#export-glob")
    assert page.input_value("#export-glob") == "PHANTOM-002/*"
    page.go_back()
    page.wait_for_selector(".ril-folder")
    # and back to the whole project through the breadcrumb
    page.click(".ril-crumb:text-is('All series')")
    page.wait_for_function(
        "document.querySelector('#series-count').textContent.startsWith('13 series · ')")
    wait_rows(page, ALL_IDS)
    assert page.js_errors == []


def test_search_box_filters_rows(project_page):
    page = project_page
    page.fill("#series-search", "arterial")
    wait_rows(page, [i for i in PHANTOM_IDS if i.endswith("/arterial.nii.gz")])
    page.fill("#series-search", "")
    wait_rows(page, ALL_IDS)
    assert page.js_errors == []


def test_clicking_a_series_name_opens_the_viewer(project_page, ui):
    page = project_page
    series = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
    page.click(f"#series-grid .ag-pinned-left-cols-container .ag-row[row-id='{series}'] "
               f"[col-id=name]")
    page.wait_for_url("**/view?series=*")
    assert page.url == ui.view_url(page.url.split("/view?")[0], series)
    ui.wait_full(page, index=19, plane="axial")
    assert page.inner_text("#viewer-title") == series
    assert ui.svg_image_href(page) == ui.screen_source(page)
    assert ui.screen_pixels(page).shape == (256, 256)
    assert page.js_errors == []
