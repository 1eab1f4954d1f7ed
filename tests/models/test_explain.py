"""Activation and saliency maps in the model worker, against independent reference maps.

The models and the reference maps come from ``make_explain_models.py`` (a subprocess; its
references are plain ``GradientTape`` code on logits written out from the layers' weights); the
maps under test come through the real worker (its own ``RIL_DASH_WORKER_DIR``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ril_dash.errors import ModelRunError
from ril_dash.models.safety import file_sha256
from ril_dash.models.worker_client import ModelRef, ModelWorker
from tests.models.helpers import run_model_script

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_explain_models import NOISE, SAMPLES, SEED  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return run_model_script("make_explain_models.py", tmp_path_factory.mktemp("explain_models"))


@pytest.fixture(scope="module")
def worker(tmp_path_factory, models):
    folder = tmp_path_factory.mktemp("explain_worker")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RIL_DASH_WORKER_DIR", str(folder))
        client = ModelWorker()
        yield client
        client.shutdown()


@pytest.fixture(scope="module")
def reference(models):
    return dict(np.load(models / "explain_reference.npz"))


def ref(models: Path, name: str) -> ModelRef:
    path = models / name
    return ModelRef(str(path), file_sha256(path), f"{path.stem}@1.0.0")


def correlation(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.mark.parametrize("method, key, options", [
    ("saliency", "saliency", {}),
    ("smoothgrad", "smoothgrad", {"samples": SAMPLES, "noise": NOISE, "seed": SEED}),
    ("gradcam", "gradcam", {"layer": "conv2"}),
    ("gradcam++", "gradcam_pp", {"layer": "conv2"}),
    ("sam", "sam", {"layer": "conv2"}),
])
def test_maps_match_the_reference_on_logits(worker, models, reference, method, key, options):
    got = worker.explain(ref(models, "gap.keras"), reference["x"], method,
                         int(reference["target"]), **options)
    maps = got["maps"]
    assert maps.shape == (3, 12, 12) and maps.dtype == np.float32
    assert correlation(maps, reference[key]) >= 0.99
    np.testing.assert_allclose(maps, reference[key], rtol=1e-3, atol=1e-6 * np.abs(
        reference[key]).max())
    # the scores are logits (before the softmax), not probabilities
    np.testing.assert_allclose(got["scores"], reference["logits"][:, 1], rtol=1e-4, atol=1e-5)
    assert got["regions"] == ["class"] * 3 and got["seconds"] > 0
    assert got["layer"] == (options.get("layer"))


def test_smoothgrad_with_the_same_seed_repeats_and_another_seed_differs(worker, models,
                                                                        reference):
    gap = ref(models, "gap.keras")
    one = worker.explain(gap, reference["x"], "smoothgrad", 1, samples=4, seed=9)["maps"]
    two = worker.explain(gap, reference["x"], "smoothgrad", 1, samples=4, seed=9)["maps"]
    other = worker.explain(gap, reference["x"], "smoothgrad", 1, samples=4, seed=10)["maps"]
    np.testing.assert_array_equal(one, two)
    assert not np.allclose(one, other)


def test_cam_is_its_closed_form_and_averages_to_the_logit(worker, models, reference):
    got = worker.explain(ref(models, "gap.keras"), reference["x"], "cam", 1)
    np.testing.assert_allclose(got["maps"], reference["cam"], rtol=1e-4, atol=1e-6)
    assert got["layer"] == "conv2"
    # GAP then Dense: the mean of the class map plus the bias is the class logit
    np.testing.assert_allclose(got["maps"].mean(axis=(1, 2)) + reference["bias"][1],
                               reference["logits"][:, 1], rtol=1e-4, atol=1e-5)


def test_segmentation_target_is_the_channel_logits_over_its_predicted_region(worker, models,
                                                                            reference):
    got = worker.explain(ref(models, "seg.keras"), reference["seg_x"], "saliency", 2)
    assert all(reference["seg_region_pixels"] > 0) and got["regions"] == ["predicted"] * 2
    assert correlation(got["maps"], reference["seg_saliency"]) >= 0.99
    whole = worker.explain(ref(models, "seg.keras"), reference["seg_x"], "saliency", 2,
                           region="slice")
    assert whole["regions"] == ["slice"] * 2 and not np.allclose(whole["maps"], got["maps"])


def test_default_layer_is_the_last_convolution_and_layers_are_listed(worker, models, reference):
    info = worker.explain_layers(ref(models, "gap.keras"))
    assert [item["name"] for item in info["layers"]] == ["conv1", "conv2"]
    assert info["default"] == "conv2" and info["layers"][0]["shape"] == [12, 12, 4]
    got = worker.explain(ref(models, "gap.keras"), reference["x"], "gradcam", 1)
    assert got["layer"] == "conv2"
    np.testing.assert_allclose(got["maps"], reference["gradcam"], rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize("model, method, target, options, words", [
    ("concat.keras", "cam", 0, {}, "CAM needs a model whose output is one Dense layer on a "
                                   "GlobalAveragePooling2D; concat@1.0.0 ends in Dense ← "
                                   "Concatenate. Use Grad-CAM instead"),
    ("gap.keras", "gradcam", 0, {"layer": "gap"}, "layer 'gap' of gap@1.0.0 has output shape "
                                                  "(None, 6), not a spatial"),
    ("concat.keras", "sam", 0, {"layer": "pool"}, "layer 'pool' of concat@1.0.0 is a "
                                                   "MaxPooling2D, neither a convolution nor a "
                                                   "non-linear activation; choose one of: conv"),
    ("gap.keras", "gradcam", 0, {"layer": "nope"}, "gap@1.0.0 has no layer named 'nope'; "
                                                   "choose one of: conv1, conv2"),
    ("gap.keras", "saliency", 3, {}, "gap@1.0.0 has 3 classes (0 to 2); target 3 is out of "
                                     "range"),
    ("seg.keras", "saliency", -1, {}, "seg@1.0.0 has 3 output channels (0 to 2); target -1"),
    ("embed.keras", "saliency", 0, {}, "embed@1.0.0 has no gradient path from its output to "
                                       "the input"),
    ("gap.keras", "smoothgrad", 0, {"samples": 0}, "SmoothGrad takes 1 to 200 samples"),
    ("gap.keras", "lime", 0, {}, "unknown map method 'lime'"),
])
def test_bad_requests_get_a_clear_message_and_the_worker_goes_on(worker, models, reference,
                                                                model, method, target, options,
                                                                words):
    x = reference["x"] if model == "gap.keras" else np.zeros(
        (1, 8, 8, 1) if model == "embed.keras" else (1, 12, 12, 1), np.float32)
    with pytest.raises(ModelRunError) as caught:
        worker.explain(ref(models, model), x, method, target, **options)
    assert words in str(caught.value)
    assert worker.explain(ref(models, "gap.keras"), reference["x"], "cam", 1)["maps"].shape == \
        (3, 12, 12)


def test_a_layer_method_still_works_below_an_integer_cast(worker, models):
    got = worker.explain(ref(models, "embed.keras"), np.ones((1, 8, 8, 1), np.float32),
                         "gradcam", 0)
    assert got["layer"] == "conv" and got["maps"].shape == (1, 8, 8)
