"""Browser tests of model plugins: drafting from the viewer's Models panel (the draft appears
without a reload), a classification filling its text field, a batch run from the project page
that then shows on the Jobs page, and the notice of a new bundle version.

The test bundles (kidney-draft, phase-draft; the examples shipped with ril_dash are listed
too) hold real Keras files with fixed weights, built once per session in a subprocess
(the test process never imports TensorFlow; see ``model_bundles.build_keras_model``): the
segmentation marks every pixel above the window's middle as Right kidney, the classifier says
"arterial" with probability 0.90. So the draft of each series is known exactly: the bright
square of its image, on every slice.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from model_bundles import build_keras_model, write_bundle
from support import serving_with_model_worker

from ril_dash.jobs import JobStore
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.audit import AuditLog

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SERIES = ["P01/ct.nii.gz", "P02/ct.nii.gz", "P03/ct.nii.gz"]
SHAPE = (32, 32, 8)
AFFINE = np.diag([-1.0, 1.0, 2.0, 1.0])
SQUARE = (slice(8, 20), slice(10, 18))  # the bright square (X, Y) on every slice
RIGHT_KIDNEY = 1
PROJECT_YAML = """\
name: Models
images: {images}
annotations: annotations
rois:
  - {{name: Right kidney, radlex: RID29663, color: "#e74c3c", value: 1}}
  - {{name: Left kidney, radlex: RID29662, color: "#3498db", value: 2}}
text_fields:
  - {{name: Contrast phase, type: choice, values: [non-contrast, arterial, portal-venous, delayed]}}
"""


@pytest.fixture(scope="session")
def keras_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keras-models")
    return {task: build_keras_model(folder / f"{task}.keras", task)
            for task in ("segmentation", "classification")}


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory, keras_models) -> Path:
    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("models-browser")
    image = np.full(SHAPE, -100, np.int16)
    image[SQUARE[0], SQUARE[1], :] = 200
    for sid in SERIES:
        (root / "images" / sid).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(image, AFFINE), root / "images" / sid)
    init_project(root / "project", root / "images")
    (root / "project" / "project.yaml").write_text(PROJECT_YAML.format(images=root / "images"))
    plugins = root / "project" / "plugins"
    write_bundle(plugins, "kidney-draft", "1.0.0", name="Kidney draft",
                 model=keras_models["segmentation"])
    write_bundle(plugins, "phase-draft", "1.0.0", name="Phase draft", task="classification",
                 model=keras_models["classification"])
    return root / "project"


@pytest.fixture(scope="module")
def server(project_dir, tmp_path_factory):
    """The server, with a model worker of this module only (stopped at the end)."""
    yield from serving_with_model_worker(project_dir, tmp_path_factory.mktemp("worker"))


def right_kidney(project_dir: Path, series: str) -> tuple[int, np.ndarray]:
    """(version, Right kidney mask) of ``series`` as saved now."""
    from ril_dash.core.paint import roi_mask

    state = AnnotationStore(project_dir / "annotations").series(series, SHAPE).refresh()
    if RIGHT_KIDNEY not in state.slots:
        return state.version, np.zeros(SHAPE, bool)
    return state.version, roi_mask(state.bits, state.slots[RIGHT_KIDNEY]).copy()


def expected_draft() -> np.ndarray:
    """The bright square in the store's canonical (RAS+) grid: the affine flips X."""
    mask = np.zeros(SHAPE, bool)
    mask[SQUARE[0], SQUARE[1], :] = True
    return mask[::-1]


def open_viewer(page, server, series: str) -> None:
    page.goto(f"{server.url}/view?series={series}")
    page.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().summary")
    page.click(".ril-models-panel > summary")


def choose(page, dropdown: str, label: str) -> None:
    page.click(f"#{dropdown}")
    page.get_by_role("option", name=label).click()


def test_a_draft_from_the_viewer_appears_at_once(page, server, project_dir):
    open_viewer(page, server, SERIES[0])
    choose(page, "run-model", "Kidney draft 1.0.0 (segmentation)")
    page.wait_for_function("() => document.querySelector('#run-estimate').textContent"
                           ".includes('for 8 slices')")
    assert page.inner_text("#run-estimate") == (
        "Estimated time: under 1 s for 8 slices (plus loading the model the first time).")
    page.click("#run-start")
    # a cold start says so (the model is loaded for the first time in this test session)
    page.wait_for_function("() => document.querySelector('#run-status').textContent"
                           " === 'loading model kidney-draft@1.0.0'", timeout=60_000)
    page.wait_for_selector("#run-done", timeout=120_000)
    assert page.inner_text("#run-done") == "kidney-draft@1.0.0 drafted 1 of 1 series."
    version, mask = right_kidney(project_dir, SERIES[0])
    assert version == 1 and np.array_equal(mask, expected_draft())
    drafts = [(e["series"], e["detail"]["model"], e["detail"]["version"])
              for e in AuditLog.for_project(project_dir).read() if e["action"] == "model_draft"]
    assert drafts == [(SERIES[0], "kidney-draft@1.0.0", 1)]
    # the painting layer learnt the new version and shows the draft (no reload)
    page.wait_for_function("() => window.rilAnnotate.state().version === 1 && "
                           "window.rilAnnotate.state().summary.version === 1")
    assert page.evaluate("() => window.rilAnnotate.state().summary.version") == 1
    # a slice scope needs the model's plane; on another plane only the whole series
    page.click("#run-scope >> text=this slice")
    page.wait_for_function("() => document.querySelector('#run-estimate').textContent"
                           " === 'Estimated time: under 1 s for 1 slice (plus loading the model "
                           "the first time).'")
    page.click("#plane-select >> text=Coronal")
    page.wait_for_function("() => document.querySelector('#run-estimate').textContent"
                           ".includes('switch the viewer to the axial plane')")
    assert page.js_errors == []


def test_a_classification_fills_the_text_field(page, server, project_dir):
    open_viewer(page, server, SERIES[1])
    choose(page, "run-model", "Phase draft 1.0.0 (classification)")
    page.click("#run-start")
    page.wait_for_selector("#run-done", timeout=120_000)
    assert page.inner_text("#run-done") == "phase-draft@1.0.0 classified 1 of 1 series."
    assert "P02/ct.nii.gz: arterial (probability 0.90), version 1" in \
        page.inner_text("#run-result")
    page.wait_for_function("() => document.querySelector('.ril-text-field').innerText"
                           ".includes('arterial')")
    state = AnnotationStore(project_dir / "annotations").series(SERIES[1], SHAPE).refresh()
    assert state.texts == {"Contrast phase": "arterial"}
    assert page.js_errors == []


def test_a_batch_from_the_project_page_shows_on_the_jobs_page(page, server, project_dir):
    page.goto(server.url + "/")
    for sid in SERIES[1:]:
        page.click(f".ag-row[row-id='{sid}'] .ag-selection-checkbox input")
    page.click(".ril-model-batch > summary")
    choose(page, "batch-model", "Kidney draft 1.0.0 (segmentation)")
    page.click("#batch-start")
    page.wait_for_selector("#batch-done", timeout=120_000)
    assert page.inner_text("#batch-done") == "kidney-draft@1.0.0 drafted 2 of 2 series."
    for sid in SERIES[1:]:
        assert np.array_equal(right_kidney(project_dir, sid)[1], expected_draft())
    job = next(j for j in JobStore.for_project(project_dir).list() if j.kind == "model")
    assert job.result["drafted"] == [[SERIES[1], 2], [SERIES[2], 1]]
    page.click(".ril-nav-link:text-is('Jobs')")
    row = page.locator(f"tr[data-job='{job.id}'][data-state='done']")
    row.wait_for()
    assert row.locator(".ril-job-kind").text_content() == "Model run"
    assert row.locator(".ril-job-result").text_content().startswith(
        "kidney-draft@1.0.0 drafted 2 of 2 series.")
    assert page.js_errors == []


def test_a_new_version_is_announced_on_open_pages(page, server, project_dir, keras_models):
    page.goto(server.url + "/jobs")
    page.wait_for_timeout(1500)  # the notice's first look (it records what exists)
    write_bundle(project_dir / "plugins", "kidney-draft", "1.3.0", name="Kidney draft",
                 model=keras_models["segmentation"], changelog="better")
    started = time.monotonic()
    page.wait_for_selector(".ril-notice-line", timeout=30_000)
    assert time.monotonic() - started < 25
    assert page.inner_text(".ril-notice-line") == "kidney-draft 1.3.0 is available"
    page.click("#models-notice >> text=Open the Models page")
    page.wait_for_selector(".ril-model-card[data-model='kidney-draft']")
    versions = page.locator(".ril-model-card[data-model='kidney-draft'] .ril-model-version")
    assert versions.all_inner_texts() == ["1.3.0", "1.0.0"]
    assert page.js_errors == []


def test_managing_models_in_the_browser(page, server, project_dir):
    """Trust asks first (saying what it means); a disabled bundle leaves the viewer's picker."""
    messages = []

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(server.url + "/models")
    card = page.locator(".ril-model-card[data-model='phase-draft']")
    card.locator("button:text-is('Trust…')").click()
    page.wait_for_selector("#models-done")
    assert page.inner_text("#models-done") == (
        "phase-draft@1.0.0 is trusted: it loads with its custom code from now on.")
    assert messages and messages[0].startswith(
        "Trust phase-draft@1.0.0? Trusting this exact model file (sha256 ")
    card.locator(".ril-model-trusted").wait_for()
    assert card.locator(".ril-model-trusted").inner_text().startswith("trusted by ")
    card.locator("button:text-is('Disable')").click()
    page.wait_for_function("() => document.querySelector('#models-done').textContent"
                           " === 'phase-draft is disabled for this project.'")
    open_viewer(page, server, SERIES[2])
    page.click("#run-model")
    # (kidney-draft's active version is 1.3.0 once the notice's test added it)
    page.get_by_role("option", name=re.compile(r"^Kidney segmentation ")).wait_for()
    assert page.get_by_role("option", name="Phase draft 1.0.0 (classification)").count() == 0
    assert page.js_errors == []
