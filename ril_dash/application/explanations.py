"""What a model sees: activation and saliency maps of a series, for the viewer and for export.

A :class:`MapRequest` (:func:`map_request`) pins the bundle to ``id@version`` and its file hash
and checks the method and target against its manifest. :func:`slice_map` gives the map of one
display slice (computed on demand by the model worker, through
:func:`~ril_dash.models.explain_slices.explain_slices`, then kept); a slice range or the whole
series is a job of kind ``explain`` (:func:`start_map_job`, :func:`run_map_job`) with progress
and Cancel. Maps are views: they go to :class:`~ril_dash.application.map_store.MapStore` beside
the project, never to the annotation store; exporting one (:func:`map_nifti_bytes`,
:func:`view_png`) writes nothing in the project. Every call checks that the actor may open
the series (``read``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ril_dash.application import rights
from ril_dash.application.job_kit import actor_of, base_params, job_store
from ril_dash.application.map_store import MapStore, map_key, map_nifti, map_volume
from ril_dash.application.model_access import model_ref, resolve_bundle
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.core.heatmap import composite
from ril_dash.core.planes import display_stack
from ril_dash.core.window import apply_window
from ril_dash.errors import ModelRunError, PluginError
from ril_dash.jobs import Job
from ril_dash.models import preprocess
from ril_dash.models.explain_slices import (LAYER_METHODS, METHODS, PREDICTED, MapSpec,
                                            explain_slices)
from ril_dash.models.catalog import BundleEntry
from ril_dash.models.manifest import ClassificationOutput
from ril_dash.models.pipeline import CHUNK_SLICES
from ril_dash.models.worker_client import ModelWorker

__all__ = ["EXPLAIN", "MapRequest", "map_nifti_bytes", "map_request", "map_store",
           "run_map_job", "shown_maps", "slice_map", "start_map_job", "target_choices",
           "view_png"]

EXPLAIN = "explain"
_STORES: dict[str, MapStore] = {}


@dataclass(frozen=True)
class MapRequest:
    """One kind of map of one model version (``model`` = ``id@version``) in its ``plane``;
    ``entry``: the bundle as :func:`map_request` resolved it, so that a slice computed in the
    same request does not resolve it again (not part of the request's identity)."""

    model: str
    sha256: str
    plane: str
    spec: MapSpec
    entry: BundleEntry | None = field(default=None, compare=False, repr=False)

    def description(self) -> dict:
        return {"model": self.model, "sha256": self.sha256, "plane": self.plane,
                **asdict(self.spec)}

    def key(self, series: str) -> str:
        """The map set of ``series`` (see :func:`~ril_dash.application.map_store.map_key`)."""
        return map_key(series, self.description())

    @classmethod
    def from_params(cls, params: dict) -> MapRequest:
        fields = {k: params[k] for k in ("method", "target", "layer", "region", "samples",
                                         "noise", "seed")}
        return cls(params["model"], params["sha256"], params["plane"], MapSpec(**fields))


def map_store(services: Services) -> MapStore:
    """The map store of the project ``services`` serve (one per project and process)."""
    folder = str(services.project.dir)
    if folder not in _STORES:
        _STORES[folder] = MapStore(folder)
    return _STORES[folder]


def target_choices(manifest) -> list[tuple[int, str]]:
    """``(target, label)`` pairs of a bundle: the predicted class and each class of a
    classifier, each mapped output channel (its ROI) of a segmentation."""
    out = manifest.output
    if isinstance(out, ClassificationOutput):
        return [(PREDICTED, "the predicted class")] + list(enumerate(out.classes))
    return [(int(c.channel), c.roi) for c in out.channels]


def map_request(services: Services, model: str, method: str, target: int, *,
                layer: str | None = None, region: str = "predicted", samples: int = 25,
                noise: float = 0.15, seed: int = 0) -> MapRequest:
    """A checked request (PluginError saying what to choose when it cannot be computed)."""
    entry = resolve_bundle(services, model)
    manifest = entry.manifest
    if method not in METHODS:
        raise PluginError(f"unknown map method {method!r}; choose one of {', '.join(METHODS)}")
    if int(manifest.dimension) != 2:
        raise PluginError(f"{manifest.ref} is a 3D model; maps are computed for 2D models only")
    choices = dict(target_choices(manifest))
    if isinstance(target, bool) or int(target) not in choices:
        names = ", ".join(f"{k} ({v})" for k, v in choices.items())
        raise PluginError(f"{manifest.ref} has no target {target!r}; choose one of {names}")
    spec = MapSpec(method, int(target), layer if method in LAYER_METHODS and layer else None,
                   region, int(samples), float(noise), int(seed))
    return MapRequest(manifest.ref, manifest.sha256, manifest.input.plane, spec, entry)


def _compute(services: Services, series: str, request: MapRequest, indices: list[int],
             stats=None, background: bool = False):
    entry = request.entry or resolve_bundle(services, request.model, sha256=request.sha256)
    maps = explain_slices(services.volume(series), entry.manifest, model_ref(services, entry),
                          ModelWorker.shared(), indices, request.spec, stats=stats)
    store, key = map_store(services), request.key(series)
    for index, map2d in zip(maps.indices, maps.maps):
        store.put(key, index, map2d, background=background)
    return maps


def slice_map(services: Services, actor: Actor, series: str, request: MapRequest,
              index: int, *, compute: bool = True) -> np.ndarray | None:
    """The map of display slice ``index`` of the model's plane (None when it was not computed
    and ``compute`` is false). ModelRunError when it is zero everywhere (nothing to show)."""
    rights.require(services, actor, series, "read")
    n = services.volume(series).n_slices(request.plane)
    if not 0 <= int(index) < n:
        raise PluginError(f"slice {int(index) + 1} is outside the series (1 to {n})")
    store, key = map_store(services), request.key(series)
    found = store.get(key, int(index))
    if found is None and compute:
        # the click's own map: kept on disk after the answer (the refill reads it from memory)
        found = _compute(services, series, request, [int(index)], background=True).maps[0]
    if found is not None and not np.any(found > 0):
        raise ModelRunError(
            f"The {request.spec.method} map of slice {int(index) + 1} is zero everywhere: "
            f"{request.model} shows no positive evidence for this target here. Try another "
            f"target, another layer, or saliency.")
    return found


def shown_maps(services: Services, actor: Actor, series: str, request: MapRequest,
               plane: str) -> dict[int, np.ndarray]:
    """The computed maps as display slices of ``plane`` (any plane: another plane than the
    model's is cut from the set assembled in the series' grid), slices with nothing left out."""
    rights.require(services, actor, series, "read")
    store, key = map_store(services), request.key(series)
    if plane == request.plane:
        return {i: store.get(key, i) for i in store.indices(key)}
    volume = map_volume(store, key, request.plane, services.volume(series).data.shape[:3])
    stack = display_stack(volume, plane)
    return {i: stack[i] for i in np.flatnonzero(stack.reshape(len(stack), -1).max(1) > 0)}


def map_nifti_bytes(services: Services, actor: Actor, series: str,
                    request: MapRequest) -> bytes:
    """The computed maps as a NIfTI of the source's shape and affine (0 where none)."""
    rights.require(services, actor, series, "read")
    store, key = map_store(services), request.key(series)
    if not store.indices(key):
        raise PluginError("No map of this series is computed yet; show a map first.")
    volume = services.volume(series)
    return map_nifti(volume, map_volume(store, key, request.plane, volume.data.shape[:3]))


def view_png(services: Services, actor: Actor, series: str, request: MapRequest, plane: str,
             index: int, frame: int, window: tuple[float, float], threshold: float | None,
             opacity: float) -> bytes:
    """PNG of the slice on screen (windowed) with its map and the palette's colour bar."""
    maps = shown_maps(services, actor, series, request, plane)
    volume = services.volume(series)
    grey = apply_window(volume.get_slice(plane, int(index), int(frame)), *window)
    map2d = maps.get(int(index))
    if map2d is None:
        raise PluginError(f"No map of {plane} slice {int(index) + 1} is computed; show it "
                          "first.")
    return composite(grey, map2d, threshold, opacity)


def start_map_job(services: Services, actor: Actor, series: str, request: MapRequest,
                  slices: tuple[int, int] | None) -> Job:
    """The job that computes the maps of ``slices`` (first, last; None: the whole series)."""
    rights.require(services, actor, series, "read")
    n = services.volume(series).n_slices(request.plane)
    first, last = (0, n - 1) if slices is None else (max(0, int(slices[0])),
                                                     min(n - 1, int(slices[1])))
    if first > last:
        raise PluginError(f"The range is outside the series (slices 1 to {n}).")
    params = {**base_params(services, actor), "series": series, "first": first, "last": last,
              **request.description()}
    return job_store(services).create(actor.user, EXPLAIN, params)


def run_map_job(services: Services, job: Job, report_progress, cancelled) -> dict[str, Any]:
    """The job work: the maps of the range in chunks, each stored as soon as it is done."""
    params, actor = job.params, actor_of(job)
    series, request = params["series"], MapRequest.from_params(params)
    rights.require(services, actor, series, "read")
    indices = list(range(int(params["first"]), int(params["last"]) + 1))
    entry = resolve_bundle(services, request.model, sha256=request.sha256)
    stats = preprocess.frame_stats(services.volume(series), entry.manifest)
    report_progress(0.0, f"loading model {request.model}", None)
    done, zero, layer = 0, [], None
    for start in range(0, len(indices), CHUNK_SLICES):
        if cancelled():
            break
        maps = _compute(services, series, request, indices[start:start + CHUNK_SLICES], stats)
        layer = maps.layer
        zero += [i for i, m in zip(maps.indices, maps.maps) if not np.any(m > 0)]
        done += len(maps.indices)
        report_progress(done / len(indices), f"{series}: slice {done} / {len(indices)}",
                        (done, len(indices)))
    return {"series": series, "model": request.model, "method": request.spec.method,
            "layer": layer, "computed": done, "total": len(indices), "zero": len(zero),
            "cancelled": done < len(indices)}
