"""The slice viewer's "Models" panel: run an enabled model on this series and see its draft.

The picker lists the active version of every enabled bundle (segmentation and
classification). A segmentation runs on the current slice, a slice range or the whole series;
slice scopes need the viewer to show the model's plane (a 3D model always takes the whole
series). The merge mode says how the draft meets what is there (fill empty slices, replace the
ROI on the covered slices, union). Before the run the panel shows the runtime estimate from the
bundle's manifest ("about 3 s for 150 slices"). Run starts a model job
(:func:`ril_dash.application.model_runs.start_model_run`, which checks the rights again) in a
background callback with progress ("loading model" on a cold start) and Cancel; when it ends
the panel shows the result and hands the new version to the painting layer, which reloads the
annotations (the draft appears, lighter) and the text fields (a classification's value).

Developer notes::

    model / scope / range / plane ─► describe_run ─► estimate, scope options, mode box
    Run ─background─► start_model_run ─► run_in_background ─► result + RUN_VERSION
    RUN_VERSION ─clientside─► ANNOT_VERSION
    ANNOT_VERSION ─clientside (text_fields.py)─► rilAnnotate.sync ─► overlays, history, texts
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from ril_dash.application.model_runs import MODEL_RUN, start_model_run
from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.components.job_views import JobControls, outcome, run_in_background
from ril_dash.ui.components.model_text import (MODES, estimate_slices, model_label,
                                               runtime_estimate)
from ril_dash.ui.model_catalog import runnable, runnable_manifest
from ril_dash.ui.services import get_services

SCOPES = [("slice", "this slice"), ("range", "slices … to …"), ("series", "whole series")]
CONTROLS = JobControls(MODEL_RUN, start=ids.RUN_START, cancel=ids.RUN_CANCEL,
                       progress=ids.RUN_PROGRESS, status=ids.RUN_STATUS, job=ids.RUN_JOB,
                       result=ids.RUN_RESULT)


def run_slices(manifest, scope: str, plane: str, index, first, last, n_slices: int
               ) -> tuple[tuple[int, int] | None, int]:
    """The ``slices`` of a run (None: the whole series) and how many slices it reads.

    Raises ValueError with what to do when the scope cannot be used: a slice scope while the
    viewer shows another plane than the model's, or on a 3D or classification model."""
    if scope == "series":
        return None, estimate_slices(manifest, n_slices)
    if manifest.dimension == 3 or manifest.task == "classification":
        raise ValueError(f"{manifest.ref} runs on whole series only; choose 'whole series'.")
    if plane != manifest.input.plane:
        raise ValueError(f"{manifest.ref} reads {manifest.input.plane} slices: switch the "
                         f"viewer to the {manifest.input.plane} plane or run it on the whole "
                         f"series.")
    if scope == "slice":
        return (int(index), int(index)), 1
    if first is None or last is None:
        raise ValueError("Give the first and the last slice of the range (1 = the first "
                         "slice).")
    lo, hi = sorted((int(first) - 1, int(last) - 1))
    lo, hi = max(lo, 0), min(hi, n_slices - 1)
    if lo > hi:
        raise ValueError(f"The range is outside the series (slices 1 to {n_slices}).")
    return (lo, hi), hi - lo + 1


def models_section() -> html.Details:
    """The panel's collapsible section (its picker is filled by the server on page load)."""
    try:
        models, problem = runnable(get_services()), None
    except RilDashError as exc:  # e.g. unreadable model settings: the viewer still opens
        models, problem = [], str(exc)
    options = [{"label": model_label(m), "value": m.ref} for m in models]
    if not options:
        return html.Details(className="ril-control ril-models-panel", children=[
            html.Summary("Models"),
            html.Div(problem or "No model is enabled for this project; see the Models page.",
                     className="ril-alert ril-alert-warning" if problem else "ril-muted")])
    return html.Details(className="ril-control ril-models-panel ril-edit-only", open=False,
                        children=[
        html.Summary("Models"),
        dcc.Dropdown(id=ids.RUN_MODEL, options=options, value=options[0]["value"],
                     clearable=False),
        dcc.RadioItems(id=ids.RUN_SCOPE, value="series", className="ril-sub",
                       options=[{"label": label, "value": v} for v, label in SCOPES]),
        html.Div(className="ril-wl-inputs", children=[
            dcc.Input(id=ids.RUN_FIRST, type="number", min=1, step=1, placeholder="first"),
            dcc.Input(id=ids.RUN_LAST, type="number", min=1, step=1, placeholder="last")]),
        dcc.RadioItems(id=ids.RUN_MODE, value="empty_slices", className="ril-sub",
                       options=[{"label": label, "value": v} for v, label in MODES.items()]),
        html.Div(id=ids.RUN_ESTIMATE, className="ril-muted"),
        *CONTROLS.layout("Run"),
        dcc.Store(id=ids.RUN_VERSION),
    ])


def _n_slices(meta: dict, plane: str) -> int:
    return int(meta["planes"][plane]["n"])


@callback(
    Output(ids.RUN_ESTIMATE, "children"), Output(ids.RUN_SCOPE, "options"),
    Output(ids.RUN_MODE, "style"),
    Input(ids.RUN_MODEL, "value"), Input(ids.RUN_SCOPE, "value"), Input(ids.RUN_FIRST, "value"),
    Input(ids.RUN_LAST, "value"), Input(ids.PLANE, "value"), State(ids.VIEWER_META, "data"),
)
def describe_run(ref, scope, first, last, plane, meta):
    """The runtime estimate of the run as chosen, and which scopes the model allows here (not
    asked again while scrolling: the current slice does not change the estimate)."""
    if not ref or not meta:
        return "", dash.no_update, dash.no_update
    access.require(meta["series"], "read")
    manifest = runnable_manifest(get_services(), ref)
    if manifest is None:
        return "This model is no longer enabled; reload the page.", dash.no_update, \
            dash.no_update
    slice_ok = manifest.dimension == 2 and manifest.task == "segmentation" and \
        plane == manifest.input.plane
    options = [{"label": label, "value": v, "disabled": v != "series" and not slice_ok}
               for v, label in SCOPES]
    mode_style = {} if manifest.task == "segmentation" else {"display": "none"}
    try:
        _, n = run_slices(manifest, scope, plane, 0, first, last,
                          _n_slices(meta, manifest.input.plane))
    except ValueError as exc:
        return str(exc), options, mode_style
    text = runtime_estimate(manifest.runtime.cpu_seconds_per_slice, n)
    return f"Estimated time: {text} (plus loading the model the first time).", options, \
        mode_style


def _new_version(job, series: str) -> dict | object:
    """RUN_VERSION (then ANNOT_VERSION) for the version a finished run wrote into ``series``
    (or no_update)."""
    for line in (job.result or {}).get("drafted", []):
        if line[0] == series and line[1] is not None:
            return {"series": series, "version": int(line[1]), "can_undo": True,
                    "can_redo": False, "viewing": None}
    return dash.no_update


@CONTROLS.callbacks(
    [State(ids.RUN_MODEL, "value"), State(ids.RUN_SCOPE, "value"), State(ids.RUN_FIRST, "value"),
     State(ids.RUN_LAST, "value"), State(ids.RUN_MODE, "value"), State(ids.PLANE, "value"),
     State(ids.SLICE_SLIDER, "value"), State(ids.VIEWER_META, "data")],
    outputs=(Output(ids.RUN_VERSION, "data"),))
def run_on_series(set_progress, _clicks, ref, scope, first, last, mode, plane, index, meta):
    """Start the model job on this series (rights checked by start_model_run) and run it."""
    if not ref or not meta:
        return html.Div("Choose a model.", className="ril-alert ril-alert-error"), \
            dash.no_update
    services, series = get_services(), meta["series"]
    try:
        context = dash.callback_context
        who = access.actor_of_cookies(context.cookies, context.remote)
        manifest = runnable_manifest(services, ref)
        if manifest is None:
            raise ValueError(f"{ref} is no longer enabled for this project; reload the page.")
        slices, _ = run_slices(manifest, scope, plane, index, first, last,
                               _n_slices(meta, manifest.input.plane))
        job = start_model_run(services, who, ref, [series], slices=slices,
                              mode=mode or "empty_slices")
    except (RilDashError, ValueError) as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error"), dash.no_update
    ended = run_in_background(job, set_progress)
    return outcome(ended, done_id=ids.RUN_DONE), _new_version(ended, series)


# The run's outputs stay inside the panel, which the viewer adds after the page (Dash calls a
# callback whose button is added later, prevent_initial_call or not, when one of its outputs
# was on the page before: it would start a run); this hands the version on.
clientside_callback(
    "function (version) { return version || window.dash_clientside.no_update; }",
    Output(ids.ANNOT_VERSION, "data", allow_duplicate=True),
    Input(ids.RUN_VERSION, "data"),
    prevent_initial_call=True,
)
