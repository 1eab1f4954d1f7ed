"""Browser tests: series information (text fields) in the viewer, their columns in the project
viewer, and an export run from the UI with its progress bar."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from support import RunningServer  # tests/support.py

pytestmark = pytest.mark.browser

SERIES = ["P1/a.nii.gz", "P2/b.nii.gz"]
PROJECT_YAML = """\
name: Information and export
images: {images}
annotations: annotations
rois:
  - {{name: Liver, radlex: RID58, color: "#c8763c", value: 1}}
text_fields:
  - {{name: Image quality, type: choice, values: [good, acceptable, poor], required: true}}
  - {{name: Comment, type: text}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("info-export")
    images = root / "images"
    rng = np.random.default_rng(3)
    for sid in SERIES:
        (images / sid).parent.mkdir(parents=True, exist_ok=True)
        data = rng.integers(0, 100, (32, 32, 6)).astype(np.int16)
        nib.save(nib.Nifti1Image(data, np.diag([-1.0, 1.0, 3.0, 1.0])), images / sid)
    init_project(root / "project", images)
    (root / "project" / "project.yaml").write_text(PROJECT_YAML.format(images=images))
    srv = RunningServer(["serve", str(root / "project")])
    srv.project_dir = root / "project"
    yield srv
    srv.stop()


def _edit(server, series: str) -> None:
    from urllib.parse import quote

    summary = json.load(urllib.request.urlopen(
        f"{server.url}/ril/api/annotations?series={quote(series, safe='')}&plane=axial"))
    body = json.dumps({"series": series, "tool": "lasso", "roi": 1, "plane": "axial",
                       "index": 2, "parent": summary["version"],
                       "path": "M4,4L20,4L20,20L4,20Z"}).encode()
    request = urllib.request.Request(server.url + "/ril/api/edit", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def test_series_information_is_saved_and_shown_in_the_project_viewer(page, server, ui):
    page.goto(f"{server.url}/view?series=P1%2Fa.nii.gz")
    page.wait_for_function("window.rilAnnotate && rilAnnotate.state().summary !== null")
    ui.choose_text_value(page, 0, "poor")
    page.wait_for_function("document.querySelector('#text-message').textContent === 'Saved.'")
    comment = page.locator(".ril-text-field input[type=text]")
    comment.fill("<b>motion</b> artefact")
    comment.press("Enter")
    page.wait_for_function("rilAnnotate.state().version === 2")
    texts = json.load(urllib.request.urlopen(f"{server.url}/ril/api/texts?series=P1%2Fa.nii.gz"))
    assert texts["texts"] == {"Image quality": "poor", "Comment": "<b>motion</b> artefact"}
    assert texts["missing_required"] == []

    page.click(".ril-nav-link >> text=Project")
    page.wait_for_selector(".ag-row [col-id=name]")
    page.wait_for_function(
        "document.querySelector('#series-count').textContent === "
        "'2 series · 1 annotated · 1 not annotated'")
    cell = page.locator(".ag-row[row-id='P1/a.nii.gz'] [col-id='text:Comment']")
    assert cell.inner_text() == "<b>motion</b> artefact"  # shown as text, not markup
    quality = page.locator(".ag-row[row-id='P1/a.nii.gz'] [col-id='text:Image quality']")
    assert quality.inner_text() == "poor"
    assert "ril-annotated" in page.locator(".ag-row[row-id='P1/a.nii.gz']").first.get_attribute(
        "class")
    assert page.js_errors == []


def test_export_from_the_ui_runs_in_the_background_with_progress(page, server):
    _edit(server, "P2/b.nii.gz")
    page.goto(server.url + "/export")
    out = Path(page.input_value("#export-out"))
    assert out.parent == server.project_dir / "exports"
    page.click("#export-start")
    page.wait_for_selector("#export-done", timeout=60_000)
    assert page.inner_text("#export-done").startswith("Exported 2 series")
    value, maximum = page.evaluate(
        "[document.querySelector('#export-progress').value, "
        "document.querySelector('#export-progress').max]")
    assert value == maximum == 2
    source = nib.load(server.project_dir.parent / "images" / "P2" / "b.nii.gz")
    mask = nib.load(out / "masks" / "P2" / "b" / "Liver.nii.gz")
    assert mask.shape == source.shape and np.array_equal(mask.affine, source.affine)
    texts = pd.read_csv(out / "text_annotations.csv", keep_default_na=False)
    assert texts.set_index("series").loc["P1/a.nii.gz", "Image quality"] == "poor"
    stats = pd.read_csv(out / "roi_statistics.csv")
    assert set(stats["series"]) == {"P2/b.nii.gz"} and stats["count"].iloc[0] == 17 * 17

    page.fill("#export-out", str(server.project_dir.parent / "images" / "inside"))
    page.click("#export-start")
    page.wait_for_selector("#export-result .ril-alert-error", timeout=30_000)
    assert "images" in page.inner_text("#export-result")
    assert not (server.project_dir.parent / "images" / "inside").exists()
    assert page.js_errors == []


def test_import_from_the_ui_restores_exported_masks(page, server, tmp_path):
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.export import export_project
    from ril_dash.project.project import Project

    _edit(server, "P1/a.nii.gz")  # P1 now has voxels too
    project = Project.open(server.project_dir)
    export_project(project, tmp_path / "out")
    ann = AnnotationStore(project.config.annotations).series("P1/a.nii.gz", (32, 32, 6))
    before = ann.refresh().bits.copy()
    body = json.dumps({"series": "P1/a.nii.gz", "tool": "clear", "roi": 1, "plane": "axial",
                       "index": 2, "parent": ann.version}).encode()
    urllib.request.urlopen(urllib.request.Request(
        server.url + "/ril/api/edit", data=body, headers={"Content-Type": "application/json"}))
    assert not ann.refresh().bits.any()

    page.goto(server.url + "/export")
    page.fill("#import-dir", str(tmp_path / "out" / "masks"))
    page.fill("#import-mapping", str(tmp_path / "out" / "mapping.json"))
    page.click("#import-start")
    page.wait_for_selector("#import-done", timeout=30_000)
    assert page.inner_text("#import-done").startswith("Imported masks into 2 series")
    state = ann.refresh()
    assert np.array_equal(state.bits, before)
    assert ann.versions(limit=1)[0].op == "import"

    page.fill("#import-dir", str(tmp_path / "nowhere"))
    page.click("#import-start")
    page.wait_for_selector("#import-result .ril-alert-error")
    assert page.js_errors == []
