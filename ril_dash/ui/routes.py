"""Plain HTTP routes of the slice viewer (a Flask blueprint beside the Dash callbacks).

Slices travel as small binary-free text responses (``data:`` URLs) that the browser script in
``assets/ril_viewer.js`` caches and shows with ``Plotly.restyle``; going around the Dash callback
queue keeps scrolling independent of other callbacks. Every parameter is validated; a series id
is only ever looked up among the project's discovered series, never joined to a path.

Routes (all GET):

- ``/ril/api/slice?series=ID&plane=P&index=I&frame=F&wc=C&ww=W`` → ``text/plain`` data URL
- ``/ril/api/thumbs?series=ID&plane=P&frame=F&wc=C&ww=W`` → JSON ``{factor, images: [...]}``
- ``/ril/api/probe?series=ID&plane=P&index=I&row=R&col=C&frame=F`` → JSON read-out
"""

from __future__ import annotations

import logging
import math

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ril_dash.core.png import png_data_url
from ril_dash.errors import (
    DamagedAnnotations,
    LockHeld,
    NotLoggedIn,
    PermissionDenied,
    RilDashError,
    SeriesNotFound,
)
from ril_dash.ui import access
from ril_dash.ui.services import get_services

blueprint = Blueprint("ril_api", __name__, url_prefix="/ril/api")
log = logging.getLogger(__name__)



class BadRequest(ValueError):
    """A query parameter is missing or malformed."""


def int_arg(name: str, default: int | None = None) -> int:
    """The whole-number query parameter ``name`` (``default`` when absent, if given)."""
    raw = request.args.get(name)
    if raw is None:
        if default is None:
            raise BadRequest(f"missing parameter {name!r}")
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"parameter {name!r} must be an integer, not {raw[:40]!r}") from None


def _float(name: str) -> float:
    raw = request.args.get(name, "")
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"parameter {name!r} must be a number, not {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise BadRequest(f"parameter {name!r} must be finite")
    return value


def series_arg() -> str:
    """The ``series`` query parameter, once the logged-in user may open that series."""
    series = request.args.get("series")
    if not series:
        raise BadRequest("missing parameter 'series'")
    access.require(series, "read")
    return series


def _window() -> tuple[float, float]:
    center, width = _float("wc"), _float("ww")
    if width <= 0:
        raise BadRequest("window width 'ww' must be positive")
    return center, width


@blueprint.errorhandler(BadRequest)
@blueprint.errorhandler(ValueError)
def _bad_request(error: Exception):
    return jsonify(error=str(error)), 400


@blueprint.errorhandler(SeriesNotFound)
def _not_found(error: Exception):
    return jsonify(error=str(error)), 404


@blueprint.errorhandler(NotLoggedIn)
def _not_logged_in(error: Exception):
    return jsonify(error=str(error), login="/login"), 401


@blueprint.errorhandler(PermissionDenied)
def _forbidden(error: Exception):
    return jsonify(error=str(error), forbidden=True), 403


@blueprint.errorhandler(LockHeld)
def _locked(error: Exception):
    return jsonify(error=str(error), locked=True), 423


@blueprint.errorhandler(DamagedAnnotations)
def _damaged(error: DamagedAnnotations):
    return jsonify(error=str(error), damaged={"file": error.file, "version": error.version}), 423


@blueprint.errorhandler(RilDashError)
def _unprocessable(error: Exception):
    return jsonify(error=str(error)), 422


@blueprint.errorhandler(Exception)
def _internal(error: Exception):
    """Anything unforeseen still answers JSON (the scripts show its ``error``), never HTML."""
    if isinstance(error, HTTPException):
        return error
    log.exception("error in %s", request.path)
    return jsonify(error="The server could not answer this request (an internal error, "
                         "written to the server's log). Tell the administrator."), 500


@blueprint.get("/slice")
def slice_image() -> Response:
    series, plane = series_arg(), request.args.get("plane", "")
    center, width = _window()
    png = get_services().slice_png(series, plane, int_arg("index"), int_arg("frame", 0), center,
                                   width)
    body = png_data_url(png)
    response = Response(body, mimetype="text/plain")
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@blueprint.get("/thumbs")
def thumbnails() -> Response:
    series, plane = series_arg(), request.args.get("plane", "")
    center, width = _window()
    factor, pngs = get_services().thumbnails(series, plane, int_arg("frame", 0), center, width)
    images = [png_data_url(p) for p in pngs]
    return jsonify(factor=factor, images=images)


@blueprint.get("/probe")
def probe() -> Response:
    result = get_services().probe(series_arg(), request.args.get("plane", ""), int_arg("index"),
                                  int_arg("row"), int_arg("col"), int_arg("frame", 0))
    return jsonify(result)
