"""The project page's "Run a model" form: draft the selected series (or all shown) with a model.

The picker lists the active version of every enabled bundle. The series are the grid's ticked
rows, or every row the grid shows under its folder, search box and column filters (asked of
the server: the grid holds only the rows scrolled through). The run is one model job
(:func:`ril_dash.application.model_runs.start_model_run`: rights checked at once and again per
series, which are skipped with the reason when the user may not annotate them or someone else
edits them) run in a background callback with progress and Cancel; it is listed on the Jobs
page too. "Score uncertainty" runs the same model as an ``uncertainty`` job instead
(:func:`ril_dash.application.uncertainty.start_uncertainty`): nothing is drafted, the grid gets an
"Uncertainty (model@version)" column to sort by, so the most uncertain series are annotated
first.

Developer notes::

    model ─► describe_batch ─► per-slice estimate, merge mode shown for segmentations
    Run ─background─► batch_series(scope, selectedRows | matching_ids(folder, search,
        filterModel)) ─► start_model_run
        ─► run_in_background ─► result (drafted / unchanged / skipped series)
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html

from ril_dash.application.grid_query import GridQuery, GridQueryError
from ril_dash.application.model_runs import MODEL_RUN, start_model_run
from ril_dash.application.series_table import matching_ids
from ril_dash.application.uncertainty import start_uncertainty
from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.components.job_views import JobControls, outcome, run_in_background
from ril_dash.ui.components.model_text import MODES, model_label, runtime_estimate
from ril_dash.ui.model_catalog import runnable, runnable_manifest
from ril_dash.ui.services import get_services

ACTIONS = [("draft", "Draft annotations"),
           ("uncertainty", "Score uncertainty (what to annotate next)")]
SCOPES = [("selected", "the ticked series"), ("shown", "every series shown (the filter)")]
CONTROLS = JobControls(MODEL_RUN, start=ids.BATCH_START, cancel=ids.BATCH_CANCEL,
                       progress=ids.BATCH_PROGRESS, status=ids.BATCH_STATUS, job=ids.BATCH_JOB,
                       result=ids.BATCH_RESULT)


def batch_series(scope: str, selected: list | None, shown: list | None) -> list[str]:
    """The series ids a batch run takes from the grid's rows (in their order, once each).

    >>> batch_series("selected", [{"id": "b"}, {"id": "a"}], [{"id": "c"}])
    ['b', 'a']
    >>> batch_series("shown", None, [{"id": "c"}, {"id": "c"}, {}])
    ['c']
    """
    rows = (selected if scope == "selected" else shown) or []
    return list(dict.fromkeys(str(r["id"]) for r in rows if isinstance(r, dict) and r.get("id")))


def batch_section() -> html.Details | None:
    """The form (None when no model is enabled, or the model settings cannot be read: nothing
    to run; the Models page says why)."""
    try:
        models = runnable(get_services())
    except RilDashError:
        return None
    if not models:
        return None
    options = [{"label": model_label(m), "value": m.ref} for m in models]
    return html.Details(className="ril-model-batch", children=[
        html.Summary("Run a model"),
        dcc.Dropdown(id=ids.BATCH_MODEL, options=options, value=options[0]["value"],
                     clearable=False),
        dcc.RadioItems(id=ids.BATCH_ACTION, value="draft", inline=True,
                       options=[{"label": label, "value": v} for v, label in ACTIONS]),
        dcc.RadioItems(id=ids.BATCH_SCOPE, value="selected", inline=True,
                       options=[{"label": label, "value": v} for v, label in SCOPES]),
        dcc.RadioItems(id=ids.BATCH_MODE, value="empty_slices", inline=True,
                       options=[{"label": label, "value": v} for v, label in MODES.items()]),
        html.Div(id=ids.BATCH_ESTIMATE, className="ril-muted"),
        *CONTROLS.layout("Run"),
    ])


@callback(Output(ids.BATCH_ESTIMATE, "children"), Output(ids.BATCH_MODE, "style"),
          Input(ids.BATCH_MODEL, "value"))
def describe_batch(ref):
    """The model's runtime per series of 100 slices, and the merge mode for segmentations."""
    access.current_user()  # logged-in users only
    manifest = runnable_manifest(get_services(), ref) if ref else None
    if manifest is None:
        return "", dash.no_update
    per = manifest.runtime.cpu_seconds_per_slice
    return (f"{per:g} s per slice: {runtime_estimate(per, 100)} (on CPU).",
            {} if manifest.task == "segmentation" else {"display": "none"})


def _shown(who, scope: str, folder, search, filters) -> list[dict] | None:
    """The rows the grid shows under its folder, search box and filters (scope "shown")."""
    if scope != "shown":
        return None
    try:
        query = GridQuery.from_request({"filterModel": filters}, folder, search)
    except (TypeError, ValueError, AttributeError):
        raise GridQueryError("the grid's filters could not be read; reload the page") from None
    from ril_dash.ui.pages.project_viewer import grid_numbers  # (it imports this module)

    return [{"id": s} for s in matching_ids(get_services(), who, query, grid_numbers())]


@CONTROLS.callbacks([State(ids.BATCH_MODEL, "value"), State(ids.BATCH_SCOPE, "value"),
                     State(ids.BATCH_MODE, "value"), State(ids.GRID, "selectedRows"),
                     State(ids.FOLDER_STORE, "data"), State(ids.SEARCH, "value"),
                     State(ids.GRID, "filterModel"), State(ids.BATCH_ACTION, "value")])
def run_batch(set_progress, _clicks, ref, scope, mode, selected, folder, search, filters,
              action="draft"):
    """Start the model job (a draft, or the uncertainty scores) on the chosen series (the
    start commands check rights) and run it."""
    context = dash.callback_context
    try:
        who = access.actor_of_cookies(context.cookies, context.remote)
        shown = _shown(who, scope, folder, search, filters)
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    series = batch_series(scope, selected, shown)
    if not ref:
        return html.Div("Choose a model.", className="ril-alert ril-alert-error")
    if not series:
        what = "Tick the series to run it on" if scope == "selected" else \
            "No series is shown; change the filter"
        return html.Div(f"{what}.", className="ril-alert ril-alert-error")
    try:
        if action == "uncertainty":
            job = start_uncertainty(get_services(), who, ref, series)
        else:
            job = start_model_run(get_services(), who, ref, series,
                                  mode=mode or "empty_slices")
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    return outcome(run_in_background(job, set_progress), done_id=ids.BATCH_DONE)
