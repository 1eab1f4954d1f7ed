"""Browser test of the Models page's "Train a development model" form: a real server and model
worker train a U-Net on three tiny phantom series; the job's curve appears on the page and the
new bundle version is written with its provenance."""

from __future__ import annotations

import json

import pytest
from support import serving_with_model_worker

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    from tests.application.test_training import kidney_phantom_project

    root = tmp_path_factory.mktemp("train-browser") / "proj"
    kidney_phantom_project(root, 6, 25.0)
    return root


@pytest.fixture(scope="module")
def server(project_dir, tmp_path_factory):
    yield from serving_with_model_worker(project_dir, tmp_path_factory.mktemp("worker"))


def test_the_form_starts_a_training_job_and_draws_its_curve(page, server, project_dir):
    page.goto(f"{server.url}/models")
    page.click("#train-section > summary")
    page.fill("#train-id", "kidney-dev")
    page.click("#train-rois")
    page.get_by_role("option", name="Right kidney").click()
    page.fill("#train-epochs", "2")
    page.click("#train-start")
    # the curve shows the epochs as they end (two points of the loss once done)
    page.wait_for_function(
        "() => { const g = document.querySelector('#train-curve .js-plotly-plot');"
        " return g && g.data && g.data[0].x.length >= 1; }", timeout=300_000)
    page.wait_for_selector("#train-done", timeout=300_000)
    assert page.inner_text("#train-done").startswith("Wrote kidney-dev@1.0.0: validation Dice ")
    points = page.evaluate("() => document.querySelector('#train-curve .js-plotly-plot')"
                           ".data.map(t => [t.name, t.x.length])")
    assert points == [["loss", 2], ["validation loss", 2], ["validation Dice Right kidney", 2]]
    folder = project_dir / "plugins" / "kidney-dev" / "1.0.0"
    assert sorted(p.name for p in folder.iterdir()) == ["model.keras", "plugin.yaml",
                                                        "training.json"]
    provenance = json.loads((folder / "training.json").read_text())
    assert provenance["user"] == "local"  # the single local user (no logins)
    assert len(provenance["train_series"]) + len(provenance["validation_series"]) == 3

    # the Model scores page plots the round's validation Dice (round 1, by training-set size)
    page.goto(f"{server.url}/scores")
    page.wait_for_function(
        "() => { const g = document.querySelector('#scores-loop .js-plotly-plot');"
        " return g && g.data && g.data.length === 2; }", timeout=30_000)
    plotted = page.evaluate("() => document.querySelector('#scores-loop .js-plotly-plot')"
                            ".data.map(t => [t.name, t.x, t.y])")
    dice = provenance["validation"]["dice Right kidney"]
    assert plotted == [["kidney-dev: Right kidney", [1], [dice]],
                       ["kidney-dev: Right kidney", [len(provenance["train_series"])], [dice]]]
