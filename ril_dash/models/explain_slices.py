"""Activation and saliency maps of display slices, in the series' own voxel grid.

:func:`explain_slices` prepares display slices exactly as a model run does
(:func:`~ril_dash.models.preprocess.prepare_slices`), has the model worker compute the maps
(:mod:`ril_dash.models.explain`, run in the worker), resizes a layer-resolution map to the model
input (:func:`~ril_dash.models.preprocess.zoom_to`, linear) and puts it back on the display grid
with the exact inverse geometry (:func:`~ril_dash.models.preprocess.restore_slices`; pixels the
model never saw are 0). So a map lines up with the image it explains in every plane: the display
slices of the model's plane are slices of the canonical volume.

No tensorflow here: this runs in the web server's process or in a job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ril_dash.errors import ModelRunError
from ril_dash.models import preprocess
from ril_dash.models.manifest import Manifest

__all__ = ["LAYER_METHODS", "METHODS", "METHOD_LABELS", "PREDICTED", "MapSpec", "SliceMaps",
           "explain_slices"]

#: the map methods (see :mod:`ril_dash.models.explain` for what each computes)
METHODS = ("saliency", "smoothgrad", "cam", "gradcam", "gradcam++", "sam")
#: methods that read a chosen layer
LAYER_METHODS = ("gradcam", "gradcam++", "sam")
#: the names users read (the viewer's method list and its messages)
METHOD_LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "sam": "SAM (saliency "
                 "activation map)", "saliency": "Saliency", "smoothgrad": "SmoothGrad",
                 "cam": "CAM (global average pooling models)"}
#: the target "the class the model predicts on each slice" (classifiers)
PREDICTED = -1


@dataclass(frozen=True)
class MapSpec:
    """What to compute: ``method`` for output ``target`` (class or channel index), on ``layer``
    (None: the worker's default for layer methods), segmentation ``region``, SmoothGrad's
    ``samples``, ``noise`` and ``seed``."""

    method: str
    target: int
    layer: str | None = None
    region: str = "predicted"
    samples: int = 25
    noise: float = 0.15
    seed: int = 0

    def options(self) -> dict:
        """The worker's keyword arguments besides method and target."""
        return {"layer": self.layer, "region": self.region, "samples": int(self.samples),
                "noise": float(self.noise), "seed": int(self.seed)}


@dataclass
class SliceMaps:
    """Maps of ``indices`` (display slices of ``plane``): float32 ``(n, rows, cols)``; the layer
    the worker used, the target and region of each slice and the worker's own seconds."""

    plane: str
    indices: list[int]
    maps: np.ndarray
    layer: str | None
    targets: list[int]
    regions: list[str]
    seconds: float


def explain_slices(volume, manifest: Manifest, ref, worker, indices, spec: MapSpec,
                   stats=None) -> SliceMaps:
    """Maps of ``spec`` for display slices ``indices`` of the manifest's plane.

    Raises
    ------
    ModelRunError
        A 3D bundle, or the worker refused (method, layer or target does not fit the model).
    """
    if int(manifest.dimension) != 2:
        raise ModelRunError(f"{manifest.ref} is a 3D model; activation maps are computed for "
                            "2D (slice-wise) models only.")
    batch, geometry = preprocess.prepare_slices(volume, manifest, indices, stats=stats)
    n = len(geometry.indices)
    targets = np.full(n, int(spec.target))
    if spec.target == PREDICTED:  # each slice's own predicted class
        targets = np.asarray(worker.predict(ref, batch)).reshape(n, -1).argmax(axis=1)
    maps, regions, layer, seconds = None, [""] * n, None, 0.0
    for target in np.unique(targets):
        chosen = np.flatnonzero(targets == target)
        got = worker.explain(ref, batch[chosen], spec.method, int(target), **spec.options())
        part = np.asarray(got["maps"], np.float32)
        if part.ndim != 3 or part.shape[0] != len(chosen):
            raise ModelRunError(f"{manifest.ref}: the worker returned maps of shape "
                                f"{part.shape} for {len(chosen)} slices")
        if maps is None:
            maps = np.zeros((n, *part.shape[1:]), np.float32)
        maps[chosen] = part
        for k, region in zip(chosen, got.get("regions", [])):
            regions[k] = region
        layer, seconds = got.get("layer"), seconds + float(got.get("seconds", 0.0))
    at_input = preprocess.zoom_to(maps, geometry.size)
    display = preprocess.restore_slices(at_input[..., None], geometry, fill=0.0)[..., 0]
    return SliceMaps(geometry.plane, list(geometry.indices), display, layer,
                     [int(t) for t in targets], regions, seconds)
