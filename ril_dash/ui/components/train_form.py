"""The Models page's "Train a development model" form, with the live loss / Dice curve.

Shown to admins and members of a workflow pool with the ``train`` right (the command checks
again: :func:`ril_dash.application.training.start_training`). The user picks what to start from
(the example 2D U-Net for ROIs, the example CNN for a choice text field, or a bundle to
fine-tune), the new bundle's id, the series (a workflow pool or every series), the ROIs or text
field, the epochs and a time budget. **Start** runs the training job in a background callback
(progress bar, status line, Cancel; the job is listed on the Jobs page too); a one-second timer
redraws the curve (loss and validation loss; validation Dice per ROI or accuracy on the right
axis) from the epochs the job has recorded, and the result says which version was written and
which version is active.

Developer notes::

    Start ─background─► start_training ─► run_in_background ─► result + final curve
    TRAIN_TIMER (1 s) + TRAIN_JOB ─► curve_of(job) ─► TRAIN_CURVE
    Cancel ─► cancel_started(TRAIN_JOB, job id)
"""

from __future__ import annotations

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from ril_dash.application.jobs import job_store
from ril_dash.application.policy import train_decision
from ril_dash.application.training import TRAIN_JOB, curve_of, start_training
from ril_dash.errors import PermissionDenied, RilDashError
from ril_dash.jobs import JobNotFound
from ril_dash.ui import access, ids
from ril_dash.ui.components.job_views import JobControls, outcome, run_in_background
from ril_dash.ui.model_catalog import runnable
from ril_dash.ui.services import get_services

CONTROLS = JobControls(TRAIN_JOB, start=ids.TRAIN_START, cancel=ids.TRAIN_CANCEL,
                       progress=ids.TRAIN_PROGRESS, status=ids.TRAIN_STATUS, job=ids.TRAIN_JOB,
                       result=ids.TRAIN_RESULT)
ALL_SERIES = "__all__"
GRID = "#3a3f47"


def may_train() -> bool:
    return train_decision(get_services().workflow, access.actor()).allowed


def _starts(services) -> list[dict]:
    options = [{"label": "New 2D U-Net (learns ROIs)", "value": "unet"},
               {"label": "New CNN classifier (learns a choice text field)", "value": "cnn"}]
    try:
        bundles = runnable(services)
    except RilDashError:  # unreadable model settings: the Models page says why
        bundles = []
    for m in bundles:
        if m.dimension == 2:
            options.append({"label": f"Fine-tune {m.ref} ({m.task})", "value": f"@{m.ref}"})
    return options


def _field(label: str, control) -> html.Label:
    return html.Label([html.Span(label, className="ril-field-label"), control],
                      className="ril-field")


def train_section() -> html.Details | None:
    """The form (None for users without the right)."""
    if not may_train():
        return None
    services = get_services()
    config = services.project.config
    pools = [] if services.workflow is None else list(services.workflow.pools)
    return html.Details(className="ril-train", id=ids.TRAIN_SECTION, children=[
        html.Summary("Train a development model"),
        html.P("Trains on the annotated series (the version each has when you start), keeps a "
               "fixed train/validation split with the model, and writes a new version of the "
               "bundle with its provenance. A new version of an existing bundle waits for an "
               "administrator to activate it.", className="ril-muted"),
        _field("Start from", dcc.Dropdown(id=ids.TRAIN_FROM, options=_starts(services),
                                          value="unet", clearable=False)),
        _field("Bundle id", dcc.Input(id=ids.TRAIN_ID, type="text", value="dev-model",
                                      debounce=False)),
        _field("Series", dcc.Dropdown(id=ids.TRAIN_POOL, clearable=False, value=ALL_SERIES,
                                      options=[{"label": "every series", "value": ALL_SERIES}]
                                      + [{"label": f"pool {p}", "value": p} for p in pools])),
        _field("ROIs", dcc.Dropdown(id=ids.TRAIN_ROIS, multi=True, options=[
            r.name for r in config.rois if r.type == "area"])),
        _field("Text field", dcc.Dropdown(id=ids.TRAIN_FIELD, options=[
            f.name for f in config.text_fields if f.type == "choice"])),
        _field("Epochs", dcc.Input(id=ids.TRAIN_EPOCHS, type="number", min=1, max=200,
                                   value=10)),
        _field("Time budget (minutes)", dcc.Input(id=ids.TRAIN_BUDGET, type="number", min=1,
                                                  max=1440, value=10)),
        *CONTROLS.layout("Start training"),
        dcc.Graph(id=ids.TRAIN_CURVE, figure=curve_figure([]), config={"displaylogo": False},
                  className="ril-train-curve"),
        dcc.Interval(id=ids.TRAIN_TIMER, interval=1000),
    ])


def curve_figure(history: list[dict], rois=()) -> go.Figure:
    """Loss and validation loss per epoch, and the validation Dice per ROI (named ``rois``) or
    the accuracy on a second axis."""
    epochs = [h["epoch"] for h in history]
    fig = go.Figure()
    fig.add_scatter(x=epochs, y=[h.get("loss") for h in history], name="loss",
                    mode="lines+markers")
    fig.add_scatter(x=epochs, y=[h.get("val_loss") for h in history], name="validation loss",
                    mode="lines+markers")
    dice = [h.get("val_dice") or [] for h in history]
    for k in range(max((len(d) for d in dice), default=0)):
        fig.add_scatter(x=epochs, y=[d[k] if k < len(d) else None for d in dice], yaxis="y2",
                        name=f"validation Dice {rois[k] if k < len(rois) else k + 1}",
                        mode="lines+markers")
    if any(h.get("val_accuracy") is not None for h in history):
        fig.add_scatter(x=epochs, y=[h.get("val_accuracy") for h in history], yaxis="y2",
                        name="validation accuracy", mode="lines+markers")
    fig.update_layout(height=260, margin=dict(l=44, r=44, t=10, b=30),
                      paper_bgcolor="#1e2126", plot_bgcolor="#1e2126",
                      font=dict(color="#e6e8eb", size=10),
                      xaxis=dict(title="epoch", gridcolor=GRID, rangemode="tozero"),
                      yaxis=dict(title="loss", gridcolor=GRID, rangemode="tozero"),
                      yaxis2=dict(title="Dice / accuracy", overlaying="y", side="right",
                                  range=[0, 1], showgrid=False),
                      legend=dict(orientation="h"))
    return fig


@callback(Output(ids.TRAIN_CURVE, "figure"), Input(ids.TRAIN_TIMER, "n_intervals"),
          State(ids.TRAIN_JOB, "data"), prevent_initial_call=True)
def draw_curve(_tick, job_id):
    """Redraw the curve from the epochs the page's training job has recorded so far."""
    if not job_id:
        raise dash.exceptions.PreventUpdate
    services, who = get_services(), access.actor()
    try:
        job = job_store(services).get(job_id)
    except JobNotFound:
        raise dash.exceptions.PreventUpdate from None
    if job.owner != who.user and not access.is_admin():
        raise PermissionDenied(f"{who.user} may not see the training job of {job.owner}")
    return curve_figure(curve_of(services, job), _rois(job))


def _rois(job) -> list[str]:
    return list((job.params.get("target") or {}).get("names") or ())


def _form_options(start, bundle_id, pool, rois, field, epochs, budget) -> dict:
    options = {"bundle_id": (bundle_id or "").strip() or None,
               "pool": None if pool in (None, ALL_SERIES) else pool,
               "series": "all" if pool in (None, ALL_SERIES) else None,
               "epochs": epochs or 10, "time_budget_s": float(budget or 10) * 60}
    if str(start).startswith("@"):
        options["parent"] = str(start)[1:]
        options["rois"] = list(rois or ())
    else:
        options.update(architecture=start, rois=list(rois or ()), text_field=field)
    return options


@CONTROLS.callbacks([State(ids.TRAIN_FROM, "value"), State(ids.TRAIN_ID, "value"),
                     State(ids.TRAIN_POOL, "value"), State(ids.TRAIN_ROIS, "value"),
                     State(ids.TRAIN_FIELD, "value"), State(ids.TRAIN_EPOCHS, "value"),
                     State(ids.TRAIN_BUDGET, "value")],
                    outputs=(Output(ids.TRAIN_CURVE, "figure", allow_duplicate=True),))
def run_training_job(set_progress, _clicks, start, bundle_id, pool, rois, field, epochs, budget):
    """Start the training job (start_training checks the right) and run it here."""
    try:
        context = dash.callback_context
        who = access.actor_of_cookies(context.cookies, context.remote)
        services = get_services()
        job = start_training(services, who, **_form_options(start, bundle_id, pool, rois,
                                                            field, epochs, budget))
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error"), dash.no_update
    ended = run_in_background(job, set_progress)
    return outcome(ended, done_id=ids.TRAIN_DONE), curve_figure(curve_of(services, ended), _rois(ended))
