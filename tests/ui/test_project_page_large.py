"""The project page of a project of 3,000 series in a real browser: the grid gets its rows from
the server block by block (AG Grid's infinite row model), and shows exactly the right rows after
a scroll to the end, a search, a column filter, a sort and a folder click."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest
from support import RunningServer

pytestmark = pytest.mark.browser

PATIENTS, STUDIES, SERIES = 300, 2, 5
PHASES = ["native", "arterial", "venous"]
ROWS = "#series-grid .ag-center-cols-container .ag-row[row-id]"


def series_id(p: int, s: int, k: int) -> str:
    return f"P{p:04d}/ST{s}/series{k}.nii.gz"


ALL = [series_id(p, s, k) for p in range(PATIENTS) for s in range(STUDIES) for k in range(SERIES)]


@pytest.fixture(scope="module")
def large_server(tmp_path_factory):
    """``ril-dash serve`` of 3,000 series (hard links of one tiny file), metadata: phase."""
    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("large")
    one = root / "one.nii.gz"
    one.write_bytes(gzip.compress(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16),
                                                  np.eye(4)).to_bytes()))
    lines = ["series,phase"]
    for p in range(PATIENTS):
        for s in range(STUDIES):
            (root / "images" / f"P{p:04d}" / f"ST{s}").mkdir(parents=True)
            for k in range(SERIES):
                os.link(one, root / "images" / series_id(p, s, k))
                lines.append(f"{series_id(p, s, k)},{PHASES[k % 3]}")
    (root / "meta.csv").write_text("\n".join(lines) + "\n")
    project = init_project(root / "proj", root / "images").dir
    text = (project / "project.yaml").read_text()
    (project / "project.yaml").write_text(text + f"hierarchy: [Patient, Study]\nmetadata: "
                                                 f"{{file: {root / 'meta.csv'}}}\n")
    server = RunningServer(["serve", str(project)])
    yield server
    server.stop()


def shown_ids(page) -> list[str]:
    rows = page.eval_on_selector_all(
        ROWS, "els => els.map(e => [Number(e.getAttribute('row-index')), "
              "e.getAttribute('row-id')])")
    return [row_id for _, row_id in sorted(rows)]


def wait_ids(page, expected: list[str]) -> None:
    """Wait until the grid's rendered rows are exactly ``expected`` (in that order)."""
    page.wait_for_function(
        """([sel, expected]) => {
            const rows = Array.from(document.querySelectorAll(sel)).map(
                e => [Number(e.getAttribute('row-index')), e.getAttribute('row-id')]);
            rows.sort((a, b) => a[0] - b[0]);
            return JSON.stringify(rows.map(r => r[1])) === JSON.stringify(expected);
        }""", arg=[ROWS, expected])


def grid_call(page, code: str) -> None:
    page.evaluate(f"() => {{ const api = dash_ag_grid.getApi('series-grid'); {code}; }}")


def test_a_large_project_pages_filters_and_narrows_on_the_server(page, large_server):
    page.goto(large_server.url + "/")
    page.wait_for_function("(document.querySelector('#series-count') || {textContent: ''}).textContent"
                           ".startsWith('3000 series · 0 annotated')")
    page.wait_for_selector(ROWS)
    first = shown_ids(page)
    assert first == ALL[:len(first)] and 10 <= len(first) < 100  # only what is on screen
    # the last rows, fetched when scrolled to
    grid_call(page, "api.ensureIndexVisible(2999, 'bottom')")
    page.wait_for_selector(f"{ROWS}[row-index='2999'][row-id='{ALL[-1]}']")
    assert shown_ids(page)[-3:] == ALL[-3:]
    # the search box: every word somewhere in the row
    page.fill("#series-search", "p0123 arterial")
    wait_ids(page, [series_id(123, s, k) for s in range(STUDIES) for k in (1, 4)])
    # plus a column filter, then a sort
    page.fill("#series-search", "P0123")
    wait_ids(page, [series_id(123, s, k) for s in range(STUDIES) for k in range(SERIES)])
    grid_call(page, "api.setFilterModel({'meta:phase': {filterType: 'text', type: 'equals', "
                    "filter: 'native'}})")
    wait_ids(page, [series_id(123, s, k) for s in range(STUDIES) for k in (0, 3)])
    grid_call(page, "api.applyColumnState({state: [{colId: 'name', sort: 'desc'}]})")
    wait_ids(page, [series_id(123, 0, 3), series_id(123, 1, 3), series_id(123, 0, 0),
                    series_id(123, 1, 0)])
    grid_call(page, "api.setFilterModel(null); api.applyColumnState({defaultState: "
                    "{sort: null}})")
    page.fill("#series-search", "")
    page.wait_for_selector(f"{ROWS}[row-index='0'][row-id='{ALL[0]}']")
    # the folder panel: find a patient among 300, open it, then a study
    page.fill("#folder-filter", "P0299")
    page.click(".ril-folder:has(.ril-folder-name:text-is('P0299'))")
    page.wait_for_function("(document.querySelector('#series-count') || {textContent: ''}).textContent"
                           ".startsWith('10 series in P0299 · ')")
    wait_ids(page, [series_id(299, s, k) for s in range(STUDIES) for k in range(SERIES)])
    assert page.input_value("#folder-filter") == ""
    page.click(".ril-folder:has(.ril-folder-name:text-is('ST1'))")
    wait_ids(page, [series_id(299, 1, k) for k in range(SERIES)])
    page.click(".ril-crumb:text-is('All series')")
    page.wait_for_function("(document.querySelector('#series-count') || {textContent: ''}).textContent"
                           ".startsWith('3000 series')")
    page.wait_for_selector(f"{ROWS}[row-index='0'][row-id='{ALL[0]}']")
    assert page.js_errors == []
