"""What to annotate next, in Chromium on a ``ril-dash serve --login`` server with a workflow:
the project grid's "Uncertainty (model@version)" column, sorted most uncertain first by a click
on its header, and the viewer's "Check first" list of the slices where the model's draft and
the humans disagree most, worst first, a click moving the viewer to that slice.

The scores are written to the model version's file as the uncertainty job would (the job
itself is tested in ``tests/application/test_uncertainty.py``)."""

from __future__ import annotations

import hashlib

import nibabel as nib
import numpy as np
import pytest
from support import commit_roi, serving

from ril_dash.models.uncertainty import METHOD
from ril_dash.models.uncertainty_store import write_scores
from tests.ui.model_bundles import write_bundle
from tests.workflow.example import EXAMPLE

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SERIES = ["P1/ct.nii.gz", "P2/ct.nii.gz", "P3/ct.nii.gz"]
SCORES = {SERIES[0]: 0.2, SERIES[1]: 0.7, SERIES[2]: 0.45}
SHAPE = (16, 16, 6)
YAML = """\
name: Next
images: {images}
rois:
  - {{name: Liver, color: "#c8763c", value: 1}}
"""
MODEL_BYTES = b"not a real model"
# axial slices z = 1, 2, 3 (draft) and 2, 3, 4 (human): 64 voxels a slice, 48 shared on 2 and 3
DRAFT = [(x, y, z) for x in range(2, 10) for y in range(2, 10) for z in range(1, 4)]
HUMAN = [(x, y, z) for x in range(4, 12) for y in range(2, 10) for z in range(2, 5)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.project import Project, init_project
    from ril_dash.project.users import UsersFile

    root = tmp_path_factory.mktemp("next")
    rng = np.random.default_rng(5)
    for sid in SERIES:
        (root / "images" / sid).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(rng.integers(0, 200, SHAPE).astype(np.int16), np.eye(4)),
                 root / "images" / sid)
    project = root / "project"
    init_project(project, root / "images")
    (project / "project.yaml").write_text(YAML.format(images=root / "images") + EXAMPLE)
    UsersFile.for_project(project).add("ana", "ana-password-1")
    write_bundle(project / "plugins", "liver-seg", "1.0.0", model=MODEL_BYTES)
    write_scores(project, "liver-seg@1.0.0", hashlib.sha256(MODEL_BYTES).hexdigest(), METHOD,
                 {s: {"score": v, "voxels": 10} for s, v in SCORES.items()})
    annotations = AnnotationStore(Project.open(project).config.annotations).series(SERIES[0],
                                                                                  SHAPE)
    commit_roi(annotations, 1, DRAFT, {"kind": "model", "model": "liver-seg@1.0.0"})
    commit_roi(annotations, 1, HUMAN, user="ana")
    yield from serving(["serve", str(project), "--login"])


@pytest.fixture
def ana_page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    page.goto(server.url + "/login")
    page.fill("input[name=user]", "ana")
    page.fill("input[name=password]", "ana-password-1")
    page.click("button[type=submit]")
    page.wait_for_selector(".ril-user")
    yield page
    context.close()


def _column(page, field: str) -> list[tuple[str, str]]:
    """(row id, cell text) of a grid column, in display order."""
    cells = page.eval_on_selector_all(
        f"#series-grid .ag-center-cols-container .ag-row[row-id] [col-id='{field}']",
        "els => els.map(e => [Number(e.closest('.ag-row').getAttribute('row-index')), "
        "e.closest('.ag-row').getAttribute('row-id'), e.textContent])")
    return [(row_id, text) for _, row_id, text in sorted(cells)]


def test_the_grid_sorts_series_by_the_models_uncertainty(ana_page, server):
    page = ana_page
    page.goto(server.url + "/")
    field = "uncertainty:liver-seg_1_0_0"
    header = page.locator(f"#series-grid .ag-header-cell[col-id='{field}']")
    header.scroll_into_view_if_needed()
    assert header.inner_text().strip() == "Uncertainty (liver-seg@1.0.0)"
    assert sorted(_column(page, field)) == [(SERIES[0], "0.200"), (SERIES[1], "0.700"),
                                            (SERIES[2], "0.450")]
    header.locator(".ag-header-cell-label").click()  # first click: most uncertain first
    page.wait_for_function(
        f"""() => {{
            const row = document.querySelector(
                "#series-grid .ag-center-cols-container .ag-row[row-index='0']");
            return row && row.getAttribute('row-id') === '{SERIES[1]}';
        }}""")
    assert [row for row, _ in _column(page, field)] == [SERIES[1], SERIES[2], SERIES[0]]
    assert page.js_errors == []


def test_check_first_lists_the_worst_slices_and_jumps_to_them(ana_page, server, ui):
    page = ana_page
    ui.open_viewer(page, server.url, SERIES[0])
    page.click("#disagree-open")
    page.wait_for_selector(".ril-disagree-row")
    assert page.inner_text("#disagree-list .ril-sub") == \
        "Liver: draft v1 (liver-seg@1.0.0) vs current, worst first"
    assert page.eval_on_selector_all(".ril-disagree-row", "els => els.map(e => e.textContent)") == [
        "Slice 2 · Dice 0.00 · 64 voxels differ", "Slice 5 · Dice 0.00 · 64 voxels differ",
        "Slice 3 · Dice 0.75 · 32 voxels differ", "Slice 4 · Dice 0.75 · 32 voxels differ"]
    page.locator(".ril-disagree-row").nth(1).click()
    ui.wait_full(page, index=4)
    page.locator(".ril-disagree-row").nth(2).click()
    ui.wait_full(page, index=2)
    assert page.inner_text("#viewer-position") == "Axial  3 / 6"
    assert page.js_errors == []
