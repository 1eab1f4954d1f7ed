"""Browser test of "What the model sees": a Grad-CAM heat map appears over the slice.

The bundle is a real Keras classifier (built in a subprocess, see
``model_bundles.build_keras_model("conv-classification")``) whose only convolution fires on
bright pixels, and every slice holds a bright square on a dark background: its Grad-CAM for the
predicted class is the square (red in the rainbow palette), the background hidden.
"""

from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from model_bundles import build_keras_model, write_bundle
from PIL import Image
from scipy import ndimage
from support import serving_with_model_worker

from ril_dash.core.planes import display_stack
from ril_dash.core.volume import Volume
from ril_dash.project.annotation_store import AnnotationStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SERIES = "P01/ct.nii.gz"
SHAPE = (32, 32, 6)
AFFINE = np.array([[-0.8, 0, 0, 10], [0, 0.9, 0, -5], [0, 0, 2.5, 3], [0, 0, 0, 1]])
SQUARE = (slice(6, 14), slice(18, 28))
PROJECT_YAML = """\
name: Maps
images: {images}
annotations: annotations
rois:
  - {{name: Right kidney, radlex: RID29663, color: "#e74c3c", value: 1}}
text_fields:
  - {{name: Contrast phase, type: choice, values: [non-contrast, arterial, portal-venous, delayed]}}
"""


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory) -> Path:
    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("maps")
    model = build_keras_model(root / "conv.keras", "conv-classification")
    image = np.full(SHAPE, -100, np.int16)
    image[SQUARE[0], SQUARE[1], :] = 200
    (root / "images" / "P01").mkdir(parents=True)
    nib.save(nib.Nifti1Image(image, AFFINE), root / "images" / SERIES)
    init_project(root / "project", root / "images")
    (root / "project" / "project.yaml").write_text(PROJECT_YAML.format(images=root / "images"))
    write_bundle(root / "project" / "plugins", "phase-conv", "1.0.0", name="Phase conv",
                 task="classification", model=model)
    return root / "project"


@pytest.fixture(scope="module")
def server(project_dir, tmp_path_factory):
    yield from serving_with_model_worker(project_dir, tmp_path_factory.mktemp("worker"))


def heat_trace_source(page) -> str:
    return page.evaluate("""() => {
        const gd = document.getElementById('viewer-graph').querySelector('.js-plotly-plot')
            || document.getElementById('viewer-graph');
        return gd.data[window.rilViewer.trace('heatmap')].source || '';
    }""")


def decode(url: str) -> np.ndarray:
    import base64

    png = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    return np.asarray(png.convert("RGBA"))


def test_grad_cam_shows_over_the_slice_and_exports_aligned(page, server, project_dir):
    page.goto(f"{server.url}/view?series={SERIES}")
    page.wait_for_function("() => window.rilViewer && window.rilViewer.state().shown")
    page.click(".ril-explain-panel > summary")
    page.click("#explain-model")
    page.get_by_role("option", name="Phase conv (phase-conv@1.0.0)").click()
    page.wait_for_function("() => document.querySelector('#explain-layer').innerText"
                           ".includes('bright (Conv2D, 32×32×4)')", timeout=120_000)
    page.click("#explain-show")
    page.wait_for_function("() => window.rilHeat.state().maps === 1", timeout=120_000)
    index = page.evaluate("() => window.rilViewer.state().index")  # the middle slice
    assert page.inner_text("#explain-message").startswith(f"Grad-CAM of slice {index + 1} (")
    page.wait_for_function("() => { const gd = document.querySelector('#viewer-graph "
                           ".js-plotly-plot'); const t = gd && gd.data["
                           "window.rilViewer.trace('heatmap')]; return t && t.source && "
                           "t.source.length > 200; }")
    rgba = decode(heat_trace_source(page))
    expected = np.zeros(SHAPE, bool)
    expected[SQUARE[0], SQUARE[1], :] = True
    volume = Volume(expected.astype(np.float32), AFFINE)  # the source's own orientation
    volume_mask = display_stack(volume.data[..., 0] > 0, "axial")[index]
    shown = rgba[..., 3] > 0
    assert shown.shape == volume_mask.shape
    # the map covers the square's inside (red); the automatic threshold hides its rim, where
    # the convolution's 3 × 3 mean takes in the dark background, and the background
    inside = ndimage.binary_erosion(volume_mask)
    assert shown[inside].all() and not shown[~volume_mask].any()
    centre = np.argwhere(volume_mask).mean(axis=0).round().astype(int)
    assert tuple(rgba[centre[0], centre[1], :3]) == (255, 0, 0)
    assert page.evaluate("() => window.rilHeat.state().opacity") == 0.5

    # the NIfTI export has the source's shape and affine; nothing went to the annotations
    query = page.evaluate("() => window.rilHeat.state().key").split("&plane=")[0]
    reply = page.request.get(f"{server.url}/ril/api/heatmap.nii?{query}")
    assert reply.ok, reply.text()
    image = nib.Nifti1Image.from_bytes(reply.body())
    assert image.shape == SHAPE and np.array_equal(image.affine, nib.load(
        project_dir.parent / "images" / SERIES).affine)
    data = np.asarray(image.dataobj)
    assert data[..., index][ndimage.binary_erosion(expected[..., index])].min() > 0
    assert data[~expected].max() == 0 and np.delete(data, index, axis=2).max() == 0
    state = AnnotationStore(project_dir / "annotations").series(SERIES, SHAPE).refresh()
    assert state.version == 0

    # in a plane the model does not read, the click says what to do and the map stays
    page.click("#plane-select label:has-text('Coronal')")
    page.wait_for_function("() => window.rilViewer.state().plane === 'coronal'")
    page.click("#explain-show")
    page.wait_for_selector("#explain-message .ril-alert-error")
    assert "reads axial slices: switch the viewer to the axial plane" in \
        page.inner_text("#explain-message")
    assert page.evaluate("() => window.rilHeat.state().key").split("&plane=")[0] == query
    assert page.js_errors == []


def test_bad_map_requests_are_refused_with_a_reason(page, server):
    page.goto(f"{server.url}/view?series={SERIES}")
    base = f"{server.url}/ril/api/heatmaps?series={SERIES}&model=phase-conv&plane=axial"
    reply = page.request.get(base + "&method=cam&target=7")
    assert reply.status == 422 and "phase-conv@1.0.0 has no target 7" in reply.json()["error"]
    reply = page.request.get(base.replace(SERIES, "nope.nii.gz") + "&method=cam&target=1")
    assert reply.status == 404
    reply = page.request.get(base + "&method=gradcam&target=1&threshold=2")
    assert reply.status == 400 and "'threshold' must be between 0.0 and 1.0" in \
        reply.json()["error"]
    # "Show for this slice": the model's plane only, a slice of the series
    one = base.replace("/heatmaps?", "/heatmap-slice?") + "&method=gradcam&target=1"
    reply = page.request.get(one.replace("plane=axial", "plane=coronal") + "&index=0")
    assert reply.status == 400 and "phase-conv@1.0.0 reads axial slices: switch the viewer " \
        "to the axial plane" in reply.json()["error"]
    reply = page.request.get(one + "&index=6")
    assert reply.status == 422 and reply.json()["error"] == \
        "slice 7 is outside the series (1 to 6)"
    reply = page.request.get(one)
    assert reply.status == 400 and reply.json()["error"] == "missing parameter 'index'"


def test_a_series_job_then_scrolling_shows_each_slice_s_map(page, server):
    page.goto(f"{server.url}/view?series={SERIES}")
    page.wait_for_function("() => window.rilViewer && window.rilViewer.state().shown")
    page.click(".ril-explain-panel > summary")
    page.click("#explain-model")
    page.get_by_role("option", name="Phase conv (phase-conv@1.0.0)").click()
    page.click("#explain-method")
    page.get_by_role("option", name="SAM (saliency activation map)").click()
    page.wait_for_function("() => document.querySelector('#explain-layer').innerText"
                           ".includes('bright')", timeout=120_000)
    page.click("#explain-start")  # the scope is the whole series by default
    page.wait_for_function("() => document.querySelector('#explain-result').innerText"
                           ".includes('Computed the sam map of 6 of 6 slices')", timeout=120_000)
    page.wait_for_function("() => window.rilHeat.state().maps === 6")
    for _ in range(3):  # each slice's map is on screen with the slice, no request needed
        page.evaluate("() => window.rilViewer.step(-1)")
        page.wait_for_function("() => { const gd = document.querySelector('#viewer-graph "
                               ".js-plotly-plot'); const i = window.rilViewer.state().index; "
                               "return gd.data[window.rilViewer.trace('heatmap')].source === "
                               "window.rilLayers.get('heatmap').cache.get(i).src; }")
    assert sorted(page.evaluate("() => window.rilHeat.state().indices")) == list(range(6))
    # without the automatic threshold the slider's (0.2) is asked for; the opacity only restyles
    page.click("#explain-auto input")
    page.wait_for_function("() => window.rilHeat.state().key.includes('threshold=0.2')")
    page.evaluate("() => window.dash_clientside.set_props('explain-opacity', {value: 0.8})")
    page.wait_for_function("() => window.rilLayers.get('heatmap').opacity === 0.8")
    # this view as a PNG: the slice (32 × 32 on screen) with its map and the colour bar
    with page.expect_download() as caught:
        page.click("#explain-png")
    download = caught.value
    picture = np.asarray(Image.open(download.path()))
    assert download.suggested_filename.endswith(".png") and picture.shape == (32, 32 + 20, 3)
    assert tuple(picture[0, -1]) == (255, 0, 0) and tuple(picture[-1, -1]) == (128, 0, 255)
    page.click("#explain-hide")
    page.wait_for_function("() => window.rilHeat.state().maps === 0")
    assert page.js_errors == []
