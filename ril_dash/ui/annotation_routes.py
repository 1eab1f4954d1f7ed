"""HTTP routes of the annotation tools (on the slice API blueprint of :mod:`ril_dash.ui.routes`).

The browser script ``assets/ril_annotate.js`` calls them directly so that a stroke's mouse-up
reaches the screen as a new overlay without waiting in the Dash callback queue. Mutations are
JSON POSTs (a cross-site form cannot send them) and carry the version the user saw, so a stale
write is refused (409) instead of silently overwriting someone else's work.

- ``GET  /ril/api/annotations?series&plane[&version&frame]`` → version, undo/redo, slice summary,
  ``damaged`` (None, or the unreadable version file when the series is read-only because of it)
- ``GET  /ril/api/overlay?series&plane&index[&version&frame&style&opacity&hidden]`` → data URL
  or ""
- ``GET  /ril/api/overlay_thumbs?series&plane&factor[&version…]`` → ``{index: data URL}``
- ``POST /ril/api/edit`` (JSON edit, see :func:`ril_dash.project.editing.parse_edit_request`)
- ``POST /ril/api/undo`` / ``/redo`` ``{series, parent}``; ``/rollback`` ``{series, version, parent}``
- ``POST /ril/api/copy_frames`` ``{series, roi, frame, first, last, parent}``: copy an ROI of a
  frame of a 4D series to frames ``first..last`` (0-based, inclusive) as one version
- ``GET  /ril/api/versions?series`` → the history, newest first
- ``GET  /ril/api/texts?series`` → ``{version, texts, missing_required, fields}``;
  ``POST /ril/api/texts`` ``{series, parent, values: {name: value}}`` → the same (+ ``changed``)

``frame`` (default 0) picks the frame of a 4D series with masks per frame (see
:mod:`ril_dash.project.frames`); the replies describe that frame.
"""

from __future__ import annotations

import dataclasses

from flask import jsonify, request

from ril_dash.application import series_edits
from ril_dash.core.png import png_data_url
from ril_dash.errors import EditRefused, StorageError, VersionConflict
from ril_dash.project.annotation_store import AnnotationState
from ril_dash.project.annotation_views import (
    overlay_png,
    overlay_thumbnail_pngs,
    plane_summary,
)
from ril_dash.project.editing import parse_edit_request
from ril_dash.project.text_values import fields_json, missing_required
from ril_dash.ui import access
from ril_dash.ui.routes import BadRequest, blueprint, int_arg, series_arg
from ril_dash.ui.services import get_services
from ril_dash.ui.request_checks import checked_json

MAX_HIDDEN = 64


def _data_url(png: bytes | None) -> str:
    return png_data_url(png) if png else ""


def _version() -> int | None:
    raw = request.args.get("version")
    return None if raw in (None, "", "current") else int_arg("version")


def style_of(params) -> dict:
    """Overlay style from query arguments or a JSON body (style, opacity, hidden)."""
    style = params.get("style", "fill")
    if style not in ("fill", "outline"):
        raise BadRequest("'style' must be 'fill' or 'outline'")
    try:
        opacity = float(params.get("opacity", 0.4))
        hidden = params.get("hidden", "")
        if isinstance(hidden, str):
            hidden = [v for v in hidden.split(",") if v]
        values = frozenset(int(v) for v in hidden)
    except (TypeError, ValueError):
        raise BadRequest("'opacity' must be a number and 'hidden' a list of mask values") from None
    if not opacity == opacity or len(values) > MAX_HIDDEN:  # NaN or too many
        raise BadRequest("invalid overlay style")
    return {"style": style, "opacity": min(max(opacity, 0.0), 1.0), "hidden": values}


def _style() -> dict:
    return style_of(request.args)


def _frame() -> int:
    frame = int_arg("frame", 0)
    if frame < 0:
        raise BadRequest("'frame' must be 0 or more")
    return frame


def _body_int(body: dict, key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"'{key}' must be a whole number, 0 or more")
    return value


def _plane() -> str:
    plane = request.args.get("plane", "")
    if plane not in ("axial", "coronal", "sagittal"):
        raise BadRequest(f"unknown plane {plane[:20]!r}")
    return plane


def _summary_of(shown: AnnotationState, latest: int, can_undo: bool, can_redo: bool,
                plane: str) -> dict:
    return {"version": latest, "shown_version": shown.version, "can_undo": can_undo,
            "can_redo": can_redo, **plane_summary(get_services().project.config, shown, plane)}


def _summary(series: str, plane: str, version: int | None = None, frame: int = 0) -> dict:
    services = get_services()
    state = services.state(series, version, frame)
    annotations = services.annotations(series, frame)
    damage = annotations.damage  # shown read-only as of the last readable version
    return dict(_summary_of(state, annotations.version, annotations.can_undo,
                            annotations.can_redo, plane),
                damaged=None if damage is None else damage.as_json())


def change_summary(change: series_edits.SeriesChange, plane: str) -> dict:
    """The reply's summary from the state a command returned (no second load)."""
    return _summary_of(change.state, change.state.version, change.can_undo, change.can_redo,
                       plane)


def overlay_of(state: AnnotationState, plane: str, index: int, style: dict) -> dict:
    """``{"index", "src"}``: the overlay data URL of one slice of ``state``."""
    png = overlay_png(get_services().project.config, state, plane, index, **style)
    return {"index": index, "src": _data_url(png)}


def json_body() -> dict:
    """The request's JSON object (BadRequest otherwise)."""
    body = checked_json()
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object with Content-Type: application/json")
    return body


@blueprint.errorhandler(EditRefused)
def _refused(error):
    return jsonify(error=str(error)), 422


@blueprint.errorhandler(VersionConflict)
def _conflict(error):
    return jsonify(error=str(error), conflict=True), 409


@blueprint.errorhandler(StorageError)
def _storage(error):
    return jsonify(error=str(error)), 507


@blueprint.get("/annotations")
def annotations_summary():
    return jsonify(_summary(series_arg(), _plane(), _version(), _frame()))


@blueprint.get("/overlay")
def overlay():
    services = get_services()
    series, plane = series_arg(), _plane()
    state = services.state(series, _version(), _frame())
    index = int_arg("index")
    n = state.bits.shape[("sagittal", "coronal", "axial").index(plane)]
    if not 0 <= index < n:
        raise BadRequest(f"slice {index} is outside 0..{n - 1}")
    png = overlay_png(services.project.config, state, plane, index, **_style())
    return jsonify(index=index, version=state.version, overlay=_data_url(png))


@blueprint.get("/overlay_thumbs")
def overlay_thumbs():
    services = get_services()
    series, plane = series_arg(), _plane()
    factor = int_arg("factor", 1)
    if not 1 <= factor <= 64:
        raise BadRequest("'factor' must be between 1 and 64")
    state = services.state(series, _version(), _frame())
    pngs = overlay_thumbnail_pngs(services.project.config, state, plane, factor, **_style())
    return jsonify(version=state.version, images={str(i): _data_url(p) for i, p in pngs.items()})


def series_body() -> tuple[dict, str]:
    """The request's JSON object and its ``series`` (BadRequest when either is missing)."""
    body = json_body()
    series = body.get("series")
    if not isinstance(series, str) or not series:
        raise BadRequest("missing 'series'")
    return body, series


@blueprint.post("/edit")
def edit():
    body, series = series_body()
    req = parse_edit_request(body)
    change = series_edits.edit_series(get_services(), access.actor(), series, req)
    return jsonify(changed=change.changed, request=dataclasses.asdict(req),
                   overlay=overlay_of(change.state, req.plane, req.index, style_of(body)),
                   **change_summary(change, req.plane))


def _history_action(action: str):
    body = json_body()
    series, plane = body.get("series"), body.get("plane", "axial")
    if not isinstance(series, str) or plane not in ("axial", "coronal", "sagittal"):
        raise BadRequest("send 'series' and a valid 'plane'")
    parent = body.get("parent")
    if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int)):
        raise BadRequest("'parent' must be a version number")
    target = body.get("version") if action == "rollback" else None
    if action == "rollback" and (isinstance(target, bool) or not isinstance(target, int)):
        raise BadRequest("'version' must be an existing version number")
    change = series_edits.change_history(get_services(), access.actor(), series, action,
                                         parent=parent, version=target,
                                         frame=_body_int(body, "frame", 0))
    extra = {}
    index = body.get("index")
    if isinstance(index, int) and not isinstance(index, bool):  # the slice on screen
        n = change.state.bits.shape[("sagittal", "coronal", "axial").index(plane)]
        if 0 <= index < n:
            extra["overlay"] = overlay_of(change.state, plane, index, style_of(body))
    return jsonify(changed=change.changed, **extra, **change_summary(change, plane))


@blueprint.post("/copy_frames")
def copy_frames():
    body = json_body()
    series, plane = body.get("series"), body.get("plane", "axial")
    if not isinstance(series, str) or plane not in ("axial", "coronal", "sagittal"):
        raise BadRequest("send 'series' and a valid 'plane'")
    parent = body.get("parent")
    if parent is not None:
        parent = _body_int(body, "parent")
    first, last = _body_int(body, "first"), _body_int(body, "last")
    if last < first:
        raise EditRefused(f"The last frame ({last}) comes before the first ({first}).")
    change = series_edits.copy_to_frames(get_services(), access.actor(), series,
                                         _body_int(body, "roi"), _body_int(body, "frame", 0),
                                         list(range(first, last + 1)), parent)
    return jsonify(changed=change.changed, **change_summary(change, plane))


@blueprint.post("/undo")
def undo():
    return _history_action("undo")


@blueprint.post("/redo")
def redo():
    return _history_action("redo")


@blueprint.post("/rollback")
def rollback():
    return _history_action("rollback")


@blueprint.get("/versions")
def versions():
    history = get_services().annotations(series_arg()).versions(limit=int_arg("limit", 200))
    return jsonify(versions=[dataclasses.asdict(v) for v in history])


def _texts_reply(series: str, state: AnnotationState | None = None, **extra):
    services = get_services()
    state = services.annotations(series).refresh() if state is None else state
    config = services.project.config
    return jsonify(version=state.version, texts=state.texts, **extra,
                   missing_required=missing_required(config, state.texts),
                   fields=fields_json(config))


@blueprint.get("/texts")
def texts():
    return _texts_reply(series_arg())


@blueprint.post("/texts")
def save_texts():
    body = json_body()
    series, parent, values = body.get("series"), body.get("parent"), body.get("values")
    if not isinstance(series, str) or not series:
        raise BadRequest("missing 'series'")
    if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int)):
        raise BadRequest("'parent' must be a version number")
    if not isinstance(values, dict):
        raise BadRequest("'values' must be an object {field name: value}")
    change = series_edits.set_texts(get_services(), access.actor(), series, parent, values)
    return _texts_reply(series, change.state, changed=change.changed)
