"""Maps of display slices back on the display grid (a stand-in worker: no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.volume import Volume
from ril_dash.errors import ModelRunError
from ril_dash.models.explain_slices import PREDICTED, MapSpec, explain_slices
from tests.models.helpers import class_output, input_spec, manifest


class Worker:
    """Layer-resolution maps (n, 4, 4) holding each item's first input pixel; predicted classes
    alternate 1, 0, 1, …"""

    def __init__(self):
        self.calls = []

    def predict(self, ref, batch):
        n = len(batch)
        return np.array([[0.1, 0.9] if i % 2 == 0 else [0.9, 0.1] for i in range(n)])

    def explain(self, ref, batch, method, target, **options):
        self.calls.append((method, target, len(batch), options["layer"]))
        maps = np.repeat(np.repeat(batch[:, :1, :1, 0], 4, axis=1), 4, axis=2)
        return {"maps": maps, "layer": "conv", "regions": ["class"] * len(batch), "seconds": 0.1}


def volume() -> Volume:
    data = np.zeros((10, 12, 5), np.float32)
    for k in range(5):
        data[..., k] = k + 1  # every voxel of axial slice k holds k + 1
    return Volume(data, np.diag([0.7, 0.8, 2.0, 1.0]))


def test_layer_maps_cover_the_whole_slice_in_its_display_shape():
    m = manifest("classification", inp=input_spec(size=[8, 8], resample="size", transpose=True,
                                                  flip=["rows"]), output=class_output())
    worker = Worker()
    got = explain_slices(volume(), m, None, worker, [0, 3, 4], MapSpec("gradcam", 2))
    assert got.maps.shape == (3, 12, 10) and got.indices == [0, 3, 4]
    for map2d, value in zip(got.maps, (1, 4, 5)):
        np.testing.assert_allclose(map2d, value)
    assert worker.calls == [("gradcam", 2, 3, None)] and got.targets == [2, 2, 2]
    assert got.layer == "conv" and got.seconds == pytest.approx(0.1)


def test_the_predicted_class_is_each_slice_s_own_and_pixels_the_model_never_saw_are_zero():
    m = manifest("classification", inp=input_spec(size=[8, 8], resample="none"),
                 output=class_output())
    worker = Worker()
    got = explain_slices(volume(), m, None, worker, [0, 1, 2], MapSpec("gradcam", PREDICTED))
    assert got.targets == [1, 0, 1]
    assert sorted(worker.calls) == [("gradcam", 0, 1, None), ("gradcam", 1, 2, None)]
    # the 8 × 8 model window is the centre of the 12 × 10 slice: the rest was cropped away
    for map2d, value in zip(got.maps, (1, 2, 3)):
        assert (map2d[2:10, 1:9] == value).all() and map2d.sum() == value * 64


def test_a_3d_model_is_refused():
    m = manifest(dimension=3)
    with pytest.raises(ModelRunError, match="3D model; activation maps are computed for 2D"):
        explain_slices(volume(), m, None, Worker(), [0], MapSpec("saliency", 1))
