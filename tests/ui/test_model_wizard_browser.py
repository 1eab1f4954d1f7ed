"""The model wizard in a browser: a bare .keras file becomes a bundle version of the project;
a refused file says why; a classifier's classes map to the values of a choice text field.

The tiny segmentation model is built by keras in a subprocess (the test process never imports
tensorflow or keras); the server's model worker runs in a private ``RIL_DASH_WORKER_DIR``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import RunningServer, project_copy

from ril_dash.models.manifest import (ChannelMap, ClassificationOutput, InputSpec, Manifest,
                                      NormSpec, Runtime, SegmentationOutput, parse_manifest)
from ril_dash.models.registry import ModelRegistry
from ril_dash.models.safety import file_sha256
from ril_dash.project.audit import AuditLog

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CT = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"

#: (32, 32, 1) → 3 channels, softmax: channel 1 where the normalised input is above 0.5
#: (bright), channel 0 (background) elsewhere, channel 2 never
BUILD = """
import sys
import keras
import numpy as np

inp = keras.Input((32, 32, 1))
conv = keras.layers.Conv2D(3, 1, activation="softmax")
model = keras.Model(inp, conv(inp))
conv.set_weights([np.array([[[[-10.0, 10.0, 0.0]]]], "float32"),
                  np.array([5.0, -5.0, -100.0], "float32")])
model.save(sys.argv[1])

classifier = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(4, activation="softmax")])
classifier.layers[-1].set_weights([np.zeros((256, 4), "float32"),
                                   np.array([0.0, 1.0, 2.0, 3.0], "float32")])
classifier.save(sys.argv[2])
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras")
    paths = folder / "Tiny Seg.keras", folder / "phase.keras"
    subprocess.run([sys.executable, "-c", BUILD, *map(str, paths)], check=True, timeout=300,
                   capture_output=True)
    return paths


@pytest.fixture(scope="module")
def model_file(models):
    return models[0]


@pytest.fixture(scope="module")
def project(demo_home, tmp_path_factory):
    return project_copy(demo_home, tmp_path_factory.mktemp("wizard") / "project")


@pytest.fixture(scope="module")
def server(project, demo_home, tmp_path_factory):
    worker_dir = tmp_path_factory.mktemp("worker")
    worker_dir.chmod(0o700)
    srv = RunningServer(["serve", str(project)],
                        env={"RIL_DASH_HOME": str(demo_home),
                             "RIL_DASH_WORKER_DIR": str(worker_dir)})
    yield srv
    srv.stop()
    from ril_dash.models.worker_client import ModelWorker

    ModelWorker(worker_dir).shutdown()


def field(page, key: str):
    return page.locator(f"#wiz-{key.replace('_', '-')}")


def fill(page, key: str, value) -> None:
    box = field(page, key)
    box.fill(str(value))
    box.press("Enter")  # the fields are debounced: Enter (or leaving) sends the value


def test_the_wizard_turns_a_keras_file_into_a_bundle_version(page, server, project,
                                                             model_file):
    page.goto(server.url + "/models/new")
    # the series of the preview, chosen first: a CT, so the wizard proposes a CT window
    page.click("#wiz-series")
    page.click(f".dash-dropdown-option:has(input[value='{CT}'])")
    page.locator("#wiz-upload input[type=file]").set_input_files(str(model_file))
    page.wait_for_selector("#wiz-upload-status .ril-alert", timeout=120_000)
    status = page.locator("#wiz-upload-status").text_content()
    assert "Tiny Seg.keras" in status and ("takes (32, 32, 1) (rows, cols, channels), gives "
                                           "(32, 32, 3): 3 output channels; 6 parameters"
                                           ) in status, status
    # prefilled from the file and the shapes
    assert field(page, "id").input_value() == "tiny-seg"
    assert field(page, "version").input_value() == "1.0.0"
    assert (field(page, "rows").input_value(), field(page, "cols").input_value()) == ("32", "32")
    assert field(page, "slices").input_value() == "1"
    assert field(page, "window_low").input_value() == "-160"  # the demo is CT
    assert page.locator("#wiz-activation input[value=softmax]").is_checked()
    # identity
    fill(page, "name", "Tiny segmentation")
    fill(page, "description", "Bright tissue as the right kidney.")
    fill(page, "author", "Test lab")
    fill(page, "license", "CC0-1.0")
    fill(page, "changelog", "First version.")
    # outputs: channel 1 → Right kidney, channel 2 → Left kidney (prefilled: Liver, Spleen)
    for channel, roi in ((1, "Right kidney"), (2, "Left kidney")):
        dropdown = f"[id='{{\"channel\":{channel},\"type\":\"wiz-channel\"}}']"
        page.click(dropdown)
        page.click(f".dash-dropdown-option:has(input[value='{roi}'])")
        # the next dropdown is opened only once this one shows its choice
        page.wait_for_function("([sel, roi]) => document.querySelector(sel).textContent"
                               ".includes(roi)", arg=[dropdown, roi])
    page.locator("#wiz-largest-component input").uncheck()
    fill(page, "min_size", 0)
    # the live preview on the chosen series and slice
    fill(page, "slice", 20)
    page.wait_for_function("() => { const i = document.querySelector('#wiz-preview-output');"
                           " return !!i && i.src.startsWith('data:image/png;base64,'); }",
                           timeout=120_000)
    # the caption of the preview of every choice above, read in the same look as it is found
    # (the previews of earlier choices may still arrive)
    drafted = page.wait_for_function(
        "() => { const m = /axial slice 20: Right kidney (\\d+) px, Left kidney (\\d+) px/"
        ".exec(document.querySelector('#wiz-preview').textContent); return m && Array.from(m); }"
    ).json_value()
    assert int(drafted[1]) > 100 and int(drafted[2]) == 0, drafted  # channel 2 never wins
    assert page.locator("#wiz-preview-input").get_attribute("src").startswith("data:image/png")
    page.wait_for_function("() => document.querySelector('#wiz-yaml').textContent"
                           ".includes('Right kidney') && document.querySelector('#wiz-yaml')"
                           ".textContent.includes('cpu_seconds_per_slice')")
    page.click("#wiz-create")
    page.wait_for_selector("#wiz-created .ril-alert")
    page.wait_for_function("() => document.querySelector('#wiz-create').disabled")
    shown = page.locator("#wiz-yaml").text_content()  # kept: what was written
    assert page.locator("#wiz-created").text_content().startswith(
        f"Created tiny-seg 1.0.0 in {project / 'plugins' / 'tiny-seg' / '1.0.0'}")
    assert page.locator("#wiz-create").is_disabled()

    entries = [e for e in ModelRegistry(project).entries() if e.id == "tiny-seg"]
    assert [(e.version, e.ok) for e in entries] == [("1.0.0", True)]
    written = entries[0].manifest
    measured = written.runtime.cpu_seconds_per_slice
    assert 0 < measured < 5
    expected = Manifest(
        id="tiny-seg", version="1.0.0", name="Tiny segmentation", task="segmentation",
        dimension=2, model_file="model.keras", sha256=file_sha256(model_file),
        input=InputSpec("axial", (32, 32)),
        output=SegmentationOutput((ChannelMap(1, "Right kidney", "RID29663"),
                                   ChannelMap(2, "Left kidney", "RID29662")), "softmax", 0.5,
                                  False, 0),
        description="Bright tissue as the right kidney.", author="Test lab",
        license="CC0-1.0", changelog="First version.",
        normalization=NormSpec("window", (-160.0, 240.0)),
        runtime=Runtime(measured, written.runtime.memory_mb))
    assert written == expected
    assert parse_manifest(shown, "shown") == written  # the page showed what was written
    assert (entries[0].folder / "plugin.yaml").read_text() == shown
    line = AuditLog.for_project(project).read(action="models")[0]
    assert line["detail"] == {"change": "create", "model": "tiny-seg", "version": "1.0.0",
                              "sha256": expected.sha256}
    assert list((project / ".models" / "uploads").iterdir()) == []
    # the version proposed for an id that exists is its next free one
    for model_id, version in (("kidney-seg", "1.1.0"), ("tiny-seg", "1.1.0"),
                              ("brand-new", "1.0.0")):
        fill(page, "id", model_id)
        page.wait_for_function("(v) => document.querySelector('#wiz-version').value === v",
                               arg=version)
    assert page.js_errors == []


def test_a_refused_file_says_why_and_a_classifier_maps_classes_to_text_values(
        page, server, project, models, tmp_path):
    from tests.models.test_safety import functional, layer, write_keras

    page.goto(server.url + "/models/new")
    page.click("#wiz-series")
    page.click(f".dash-dropdown-option:has(input[value='{CT}'])")
    bad = write_keras(tmp_path / "lambda.keras", functional(layer("Lambda", function="x")))
    page.locator("#wiz-upload input[type=file]").set_input_files(str(bad))
    page.wait_for_selector("#wiz-upload-status .ril-alert-error")
    assert "Lambda" in page.locator("#wiz-upload-status").text_content()
    assert page.locator("#wiz-steps").inner_html() == ""

    page.locator("#wiz-upload input[type=file]").set_input_files(str(models[1]))
    page.wait_for_function("() => document.querySelector('#wiz-upload-status')"
                           ".textContent.includes('phase.keras')", timeout=120_000)
    assert "gives (4): 4 class probabilities" in page.locator(
        "#wiz-upload-status").text_content()
    assert page.locator("#wiz-task input[value=classification]").is_checked()
    assert page.locator("#wiz-seg-outputs").is_hidden()
    # class index → the values of the project's first choice field, in order
    page.wait_for_function("() => document.querySelector('#wiz-preview-output') !== null",
                           timeout=120_000)
    table = page.locator("#wiz-preview-output").text_content()
    assert table.startswith("Contrast phaseprobabilitynon-contrast0.032arterial0.087"
                            "portal-venous0.237delayed0.644"), table
    assert "model says 'delayed' (0.64)" in page.locator("#wiz-preview").text_content()
    page.wait_for_function("() => !document.querySelector('#wiz-create').disabled")
    page.click("#wiz-create")
    page.wait_for_selector("#wiz-created .ril-alert")
    entry = next(e for e in ModelRegistry(project).entries() if e.id == "phase")
    assert entry.ok and entry.manifest.output == ClassificationOutput(
        "Contrast phase", ("non-contrast", "arterial", "portal-venous", "delayed"))
    assert entry.manifest.input == InputSpec("axial", (16, 16))
    assert page.js_errors == []
