"""HTTP routes of the heat-map layer (on the slice API blueprint of :mod:`ril_dash.ui.routes`).

``assets/ril_heatmap.js`` asks for the map of the slice on screen ("Show for this slice": a plain
request, not a Dash callback, so the click costs the computation and one round trip) and fetches
every computed map of the shown plane at once, so scrolling shows them as fast as the image; the
exports are plain downloads. Every route checks that the
logged-in user may open the series (``series_arg``) and the application layer checks it again.
Nothing is computed here: a map is computed by the viewer's "What the model sees" panel (one
slice) or a map job.

Common parameters: ``series``, ``model`` (``id@version``), ``method``, ``target``, optional
``layer``, ``region``, ``samples``, ``noise``, ``seed`` (see
:func:`ril_dash.application.explanations.map_request`).

- ``GET /ril/api/heatmap-slice?…&plane&index[&threshold]`` → ``{index, plane, src, query,
  message}``: the map of one slice, computed now unless it already was (``src``: its RGBA PNG;
  ``query``: the map set's parameters for the two routes below)
- ``GET /ril/api/heatmaps?…&plane[&threshold=auto|0..1]`` → ``{images: {index: data URL},
  thresholds: {index: t}}`` (RGBA PNGs, rainbow palette, transparent below the threshold)
- ``GET /ril/api/heatmap.nii?…`` → the maps as NIfTI, same shape and affine as the source
- ``GET /ril/api/heatmap.png?…&plane&index&frame&wc&ww[&threshold&opacity]`` → the slice on
  screen with its map and the colour bar
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from flask import Response, jsonify, request

from ril_dash.application import explanations
from ril_dash.core.heatmap import heat_png
from ril_dash.core.png import png_data_url
from ril_dash.models.explain_slices import LAYER_METHODS, METHOD_LABELS
from ril_dash.ui import access
from ril_dash.ui.routes import BadRequest, blueprint, int_arg, series_arg
from ril_dash.ui.services import get_services

PLANES = ("axial", "coronal", "sagittal")


def _number(name: str, default: float, low: float, high: float) -> float:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"parameter {name!r} must be a number, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"parameter {name!r} must be between {low} and {high}")
    return value


def map_query(series: str, model: str, method: str, target: int, layer: str | None) -> str:
    """The query string that names a map set (what the heat-map layer sends back)."""
    params = {"series": series, "model": model, "method": method, "target": int(target)}
    if layer and method in LAYER_METHODS:
        params["layer"] = layer
    return urlencode(params)


def map_request_of_args() -> explanations.MapRequest:
    """The map request named by the query parameters (PluginError when it does not fit)."""
    model, method = request.args.get("model", ""), request.args.get("method", "")
    if not model or not method:
        raise BadRequest("missing parameter 'model' or 'method'")
    return explanations.map_request(
        get_services(), model, method, int_arg("target"), layer=request.args.get("layer") or None,
        region=request.args.get("region", "predicted"), samples=int_arg("samples", 25),
        noise=_number("noise", 0.15, 0.0, 1.0), seed=int_arg("seed", 0))


def _threshold() -> float | None:
    """``threshold``: ``auto`` (or absent) for Otsu's, else a fraction of the maximum."""
    if request.args.get("threshold", "auto") in ("auto", ""):
        return None
    return _number("threshold", 0.0, 0.0, 1.0)


def _plane() -> str:
    plane = request.args.get("plane", "")
    if plane not in PLANES:
        raise BadRequest(f"unknown plane {plane[:20]!r}")
    return plane


@blueprint.get("/heatmap-slice")
def heatmap_slice():
    series, plane, index = series_arg(), _plane(), int_arg("index")
    wanted, threshold = map_request_of_args(), _threshold()
    if plane != wanted.plane:
        raise BadRequest(f"{wanted.model} reads {wanted.plane} slices: switch the viewer to the "
                         f"{wanted.plane} plane to compute this slice's map, or compute the "
                         f"whole series.")
    started = time.perf_counter()
    map2d = explanations.slice_map(get_services(), access.actor(), series, wanted, index)
    took = time.perf_counter() - started
    png, _ = heat_png(map2d, threshold)
    method = wanted.spec.method
    return jsonify(index=index, plane=plane, src=png_data_url(png),
                   query=map_query(series, request.args["model"], method, wanted.spec.target,
                                   wanted.spec.layer),
                   message=f"{METHOD_LABELS[method]} of slice {index + 1} ({took:.2f} s).")


@blueprint.get("/heatmaps")
def heatmaps():
    series, plane = series_arg(), _plane()
    wanted = map_request_of_args()
    threshold = _threshold()
    images, thresholds = {}, {}
    for index, map2d in explanations.shown_maps(get_services(), access.actor(), series, wanted,
                                                plane).items():
        png, used = heat_png(map2d, threshold)
        images[str(index)] = png_data_url(png)
        thresholds[str(index)] = round(used, 4)
    return jsonify(images=images, thresholds=thresholds, plane=plane)


def _download(body: bytes, mimetype: str, name: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _file_stem(series: str, wanted: explanations.MapRequest) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in series)
    return f"{safe}_{wanted.spec.method}_{wanted.model}".replace("+", "pp")


@blueprint.get("/heatmap.nii")
def heatmap_nifti():
    series, wanted = series_arg(), map_request_of_args()
    body = explanations.map_nifti_bytes(get_services(), access.actor(), series, wanted)
    return _download(body, "application/octet-stream", _file_stem(series, wanted) + ".nii")


@blueprint.get("/heatmap.png")
def heatmap_view():
    series, plane, wanted = series_arg(), _plane(), map_request_of_args()
    center, width = _number("wc", 0.0, -1e9, 1e9), _number("ww", 1.0, 1e-6, 1e9)
    body = explanations.view_png(get_services(), access.actor(), series, wanted, plane,
                                 int_arg("index"), int_arg("frame", 0), (center, width),
                                 _threshold(), _number("opacity", 0.5, 0.0, 1.0))
    return _download(body, "image/png", f"{_file_stem(series, wanted)}_{plane}"
                                        f"{int_arg('index') + 1}.png")
