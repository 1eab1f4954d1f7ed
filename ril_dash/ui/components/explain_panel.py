"""The slice viewer's "What the model sees" section: heat maps of a model's attention.

Pick a 2D model, a method, a layer (Grad-CAM, Grad-CAM++, SAM; listed by the model worker, the
last convolution first chosen) and a target (the predicted class, a class, or a segmentation
channel's ROI). "Show for this slice" computes the map of the slice on screen at once; "Compute"
computes a slice range or the whole series as a job with progress (then every slice's map
scrolls as fast as the image). The map is a layer of the image (``assets/ril_heatmap.js``,
rainbow palette: violet low, red high) with its own opacity and a threshold below which it is
transparent: automatic (Otsu) or set with the slider. NIfTI (aligned with the source) and PNG
(this view with the colour bar) downloads. Maps are views, never annotations.

Developer notes::

    open / model / method ─► layer_options (worker.explain_layers) ;  model ─► target_options
    Show ─clientside─► rilHeat.computeSlice ─► /ril/api/heatmap-slice ─► EXPLAIN_SHOWN {…, first}
    Compute ─background─► start_map_job ─► run_in_background ─► EXPLAIN_SHOWN
    EXPLAIN_SHOWN + opacity + threshold + plane ─clientside─► rilHeat.show ─► /ril/api/heatmaps
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from ril_dash.application import explanations
from ril_dash.application.model_access import model_ref, resolve_bundle
from ril_dash.errors import RilDashError
from ril_dash.models.explain_slices import LAYER_METHODS, METHOD_LABELS
from ril_dash.models.worker_client import ModelWorker
from ril_dash.ui import access, ids
from ril_dash.ui.components.job_views import JobControls, outcome, run_in_background
from ril_dash.ui.map_routes import map_query
from ril_dash.ui.model_catalog import runnable, runnable_manifest
from ril_dash.ui.services import get_services

HELP = [
    ("Saliency", "how much each pixel changes the target: |gradient| of the target's logit "
                 "with respect to the input, the largest over the input channels."),
    ("SmoothGrad", "the same on the mean gradient over 25 noisy copies of the slice (noise "
                   "15 % of its range, fixed seed: the same map every time)."),
    ("CAM", "the class's dense weights applied to the last feature maps: only for models "
            "ending in global average pooling and one dense layer."),
    ("Grad-CAM / Grad-CAM++", "the chosen layer's feature maps weighted by the target's "
                              "gradients (positive part); coarse, at the layer's resolution."),
    ("SAM", "the gradient, at input-pixel resolution, of the chosen layer's Grad-CAM-weighted "
            "activation (summed, weights held fixed). The closest documented construction to "
            "the saliency activation map of Philbrick et al. (AJR 2018), not a copy of it."),
    ("Target", "scores are logits (before softmax or sigmoid). A segmentation channel's score "
               "is the sum of its logits over the pixels the model assigns to it (the whole "
               "slice when it assigns none)."),
]
SCOPES = [("range", "slices … to …"), ("series", "whole series")]
CONTROLS = JobControls(explanations.EXPLAIN, start=ids.EXPLAIN_START, cancel=ids.EXPLAIN_CANCEL,
                       progress=ids.EXPLAIN_PROGRESS, status=ids.EXPLAIN_STATUS,
                       job=ids.EXPLAIN_JOB, result=ids.EXPLAIN_RESULT)


def explain_section() -> html.Details:
    """The collapsible section (2D models only; nothing to choose: a short note)."""
    try:
        models = [m for m in runnable(get_services()) if int(m.dimension) == 2]
    except RilDashError as exc:
        models = []
        note = str(exc)
    else:
        note = "No 2D model is enabled for this project; see the Models page."
    if not models:
        return html.Details(className="ril-control ril-explain-panel", children=[
            html.Summary("What the model sees"), html.Div(note, className="ril-muted")])
    slider = {"min": 0, "max": 1, "step": 0.05, "marks": None,
              "tooltip": {"placement": "bottom"}}
    return html.Details(className="ril-control ril-explain-panel", open=False, children=[
        html.Summary("What the model sees", id=ids.EXPLAIN_OPEN, n_clicks=0),
        dcc.Dropdown(id=ids.EXPLAIN_MODEL, clearable=False, value=models[0].ref,
                     options=[{"label": f"{m.name} ({m.ref})", "value": m.ref} for m in models]),
        dcc.Dropdown(id=ids.EXPLAIN_METHOD, clearable=False, value="gradcam",
                     options=[{"label": v, "value": k} for k, v in METHOD_LABELS.items()]),
        dcc.Dropdown(id=ids.EXPLAIN_LAYER, placeholder="layer (default: last convolution)"),
        dcc.Dropdown(id=ids.EXPLAIN_TARGET, clearable=False),
        html.Div(className="ril-button-row", children=[
            html.Button("Show for this slice", id=ids.EXPLAIN_SHOW, className="ril-button",
                        n_clicks=0),
            html.Button("Hide", id=ids.EXPLAIN_HIDE, className="ril-button", n_clicks=0)]),
        html.Div(id=ids.EXPLAIN_MESSAGE, className="ril-muted", role="status"),
        html.Label("Opacity"),
        dcc.Slider(id=ids.EXPLAIN_OPACITY, value=0.5, **slider),
        dcc.Checklist(id=ids.EXPLAIN_AUTO, value=["auto"],
                      options=[{"label": "automatic threshold (hide low activation)",
                                "value": "auto"}]),
        dcc.Slider(id=ids.EXPLAIN_THRESHOLD, value=0.2, **slider),
        dcc.RadioItems(id=ids.EXPLAIN_SCOPE, value="series", className="ril-sub",
                       options=[{"label": label, "value": v} for v, label in SCOPES]),
        html.Div(className="ril-wl-inputs", children=[
            dcc.Input(id=ids.EXPLAIN_FIRST, type="number", min=1, step=1, placeholder="first"),
            dcc.Input(id=ids.EXPLAIN_LAST, type="number", min=1, step=1, placeholder="last")]),
        *CONTROLS.layout("Compute"),
        html.Div(className="ril-button-row", children=[
            html.Button("NIfTI", id=ids.EXPLAIN_NIFTI, className="ril-button", n_clicks=0,
                        title="The computed maps, aligned with the series (same shape and "
                              "affine)"),
            html.Button("PNG", id=ids.EXPLAIN_PNG, className="ril-button", n_clicks=0,
                        title="This view with the map and the colour bar")]),
        dcc.Download(id=ids.EXPLAIN_DOWNLOAD),
        dcc.Store(id=ids.EXPLAIN_SHOWN),
        html.Details(className="ril-help", children=[
            html.Summary("What the methods compute"),
            html.Dl([part for term, text in HELP for part in (html.Dt(term), html.Dd(text))])]),
    ])


def _alert(text: str, kind: str = "error") -> html.Div:
    return html.Div(text, className=f"ril-alert ril-alert-{kind}")


@callback(Output(ids.EXPLAIN_TARGET, "options"), Output(ids.EXPLAIN_TARGET, "value"),
          Input(ids.EXPLAIN_MODEL, "value"))
def target_options(ref):
    """The targets of the chosen model (the predicted class or the first channel first)."""
    manifest = runnable_manifest(get_services(), ref) if ref else None
    if manifest is None:
        return [], None
    choices = explanations.target_choices(manifest)
    return [{"label": str(label), "value": k} for k, label in choices], choices[0][0]


@callback(Output(ids.EXPLAIN_LAYER, "options"), Output(ids.EXPLAIN_LAYER, "value"),
          Output(ids.EXPLAIN_LAYER, "disabled"), Input(ids.EXPLAIN_OPEN, "n_clicks"),
          Input(ids.EXPLAIN_MODEL, "value"), Input(ids.EXPLAIN_METHOD, "value"),
          State(ids.VIEWER_META, "data"), prevent_initial_call=True)
def layer_options(_opened, ref, method, meta):
    """The layers with a spatial output, asked of the model worker for the layer methods (once
    the section is opened: a viewer that never opens it never starts the worker)."""
    if not ref or method not in LAYER_METHODS or not meta:
        return [], None, True
    access.require(meta["series"], "read")
    services = get_services()
    try:
        entry = resolve_bundle(services, ref)
        info = ModelWorker.shared().explain_layers(model_ref(services, entry))
    except RilDashError as exc:
        return [{"label": str(exc)[:120], "value": "", "disabled": True}], None, False
    options = [{"label": f"{item['name']} ({item['kind']}, "
                         f"{'×'.join(str(v) for v in item['shape'])})", "value": item["name"]}
               for item in info["layers"]]
    return options, info["default"], False


def shown(series: str, ref: str, method: str, layer, target) -> dict:
    """EXPLAIN_SHOWN after a map job: the map set to show (its query for /ril/api/heatmaps) and a
    new token. ("Show for this slice" makes the same in ``rilHeat.computeSlice``, with ``first``:
    that slice's PNG, on screen without another request.)"""
    return {"series": series, "query": map_query(series, ref, method, target, layer),
            "token": time.time(), "first": None}


def threshold_of(auto, threshold) -> float | None:
    """The threshold the controls ask for (None: automatic)."""
    return None if auto else float(threshold or 0.0)


clientside_callback(
    """function (_clicks, model, method, layer, target, plane, index, meta, auto, threshold) {
        const noUpdate = window.dash_clientside.no_update;
        const alert = (text) => ({type: "Div", namespace: "dash_html_components",
                                  props: {children: text, className: "ril-alert ril-alert-error"}});
        if (!model || !meta || target === null || target === undefined) {
            return [noUpdate, alert("Choose a model and a target.")];
        }
        return window.rilHeat.computeSlice({
            series: meta.series, model: model, method: method, layer: layer || "",
            target: target, plane: plane, index: index || 0,
            threshold: (auto && auto.length) ? "auto" : threshold
        }).then((answer) => answer.error ? [noUpdate, alert(answer.error)]
                                         : [answer.shown, answer.message]);
    }""",
    Output(ids.EXPLAIN_SHOWN, "data"), Output(ids.EXPLAIN_MESSAGE, "children"),
    Input(ids.EXPLAIN_SHOW, "n_clicks"),
    State(ids.EXPLAIN_MODEL, "value"), State(ids.EXPLAIN_METHOD, "value"),
    State(ids.EXPLAIN_LAYER, "value"), State(ids.EXPLAIN_TARGET, "value"),
    State(ids.PLANE, "value"), State(ids.SLICE_SLIDER, "value"),
    State(ids.VIEWER_META, "data"), State(ids.EXPLAIN_AUTO, "value"),
    State(ids.EXPLAIN_THRESHOLD, "value"), prevent_initial_call=True,
)


@CONTROLS.callbacks(
    [State(ids.EXPLAIN_MODEL, "value"), State(ids.EXPLAIN_METHOD, "value"),
     State(ids.EXPLAIN_LAYER, "value"), State(ids.EXPLAIN_TARGET, "value"),
     State(ids.EXPLAIN_SCOPE, "value"), State(ids.EXPLAIN_FIRST, "value"),
     State(ids.EXPLAIN_LAST, "value"), State(ids.VIEWER_META, "data")],
    outputs=(Output(ids.EXPLAIN_SHOWN, "data", allow_duplicate=True),))
def compute_slices(set_progress, _clicks, ref, method, layer, target, scope, first, last, meta):
    """The map job of a slice range or the whole series (rights checked when it starts)."""
    if not ref or not meta or target is None:
        return _alert("Choose a model and a target."), dash.no_update
    services, series = get_services(), meta["series"]
    try:
        context = dash.callback_context
        who = access.actor_of_cookies(context.cookies, context.remote)
        request = explanations.map_request(services, ref, method, int(target), layer=layer)
        slices = None
        if scope == "range":
            if first is None or last is None:
                raise ValueError("Give the first and the last slice of the range (1 = the "
                                 "first slice).")
            slices = tuple(sorted((int(first) - 1, int(last) - 1)))
        job = explanations.start_map_job(services, who, series, request, slices)
    except (RilDashError, ValueError) as exc:
        return _alert(str(exc)), dash.no_update
    ended = run_in_background(job, set_progress)
    return outcome(ended), shown(series, ref, method, layer, target)


@callback(Output(ids.EXPLAIN_SHOWN, "data", allow_duplicate=True),
          Input(ids.EXPLAIN_HIDE, "n_clicks"), prevent_initial_call=True)
def hide(_clicks):
    return None


@callback(Output(ids.EXPLAIN_DOWNLOAD, "data"), Output(ids.EXPLAIN_MESSAGE, "children",
                                                       allow_duplicate=True),
          Input(ids.EXPLAIN_NIFTI, "n_clicks"), Input(ids.EXPLAIN_PNG, "n_clicks"),
          State(ids.EXPLAIN_SHOWN, "data"), State(ids.PLANE, "value"),
          State(ids.SLICE_SLIDER, "value"), State(ids.FRAME, "value"),
          State(ids.WINDOW_CENTER, "value"), State(ids.WINDOW_WIDTH, "value"),
          State(ids.EXPLAIN_OPACITY, "value"), State(ids.EXPLAIN_AUTO, "value"),
          State(ids.EXPLAIN_THRESHOLD, "value"), prevent_initial_call=True)
def download(_nifti, _png, view, plane, index, frame, center, width, opacity, auto, threshold):
    """The NIfTI of the maps, or a PNG of this view with the colour bar."""
    if not view:
        return dash.no_update, _alert("Show a map first.")
    params = dict(parse_qsl(view["query"]))
    services, series = get_services(), params["series"]
    try:
        request = explanations.map_request(services, params["model"], params["method"],
                                           int(params["target"]), layer=params.get("layer"))
        stem = f"{series.replace('/', '_')}_{params['method']}"
        if dash.callback_context.triggered_id == ids.EXPLAIN_NIFTI:
            body = explanations.map_nifti_bytes(services, access.actor(), series, request)
            return dcc.send_bytes(body, f"{stem}.nii"), ""
        body = explanations.view_png(
            services, access.actor(), series, request, plane, int(index or 0), int(frame or 0),
            (float(center), float(width)), threshold_of(auto, threshold), float(opacity))
        return dcc.send_bytes(body, f"{stem}_{plane}{int(index or 0) + 1}.png"), ""
    except (RilDashError, TypeError, ValueError) as exc:
        return dash.no_update, _alert(str(exc))


clientside_callback(
    """function (view, opacity, auto, threshold, plane) {
        if (window.rilHeat) {
            window.rilHeat.show(view, {opacity: opacity, plane: plane,
                                       threshold: (auto && auto.length) ? "auto" : threshold});
        }
        return window.dash_clientside.no_update;
    }""",
    Output(ids.EXPLAIN_HIDE, "title"),
    Input(ids.EXPLAIN_SHOWN, "data"), Input(ids.EXPLAIN_OPACITY, "value"),
    Input(ids.EXPLAIN_AUTO, "value"), Input(ids.EXPLAIN_THRESHOLD, "value"),
    Input(ids.PLANE, "value"),
)
