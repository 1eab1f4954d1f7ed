"""Jobs page (``/jobs``): the user's running and recent jobs (admins: everybody's, with the owner).

Each row shows the kind, the state, a progress bar with the job's message, when it started,
how long it ran and its result (an export's folder and counts, an import's counts and refused
series, a model run's drafted, unchanged and skipped series) or error, and a Cancel button
while it runs. The table refreshes every second while a job is queued or running (every 10 s
otherwise). The server checks every cancel: only the job's
owner or an admin may (a forged request is answered 403). A job whose process died while the
server kept running is shown as interrupted (at server start,
:func:`ril_dash.ui.app.create_app` does the same for every job). In lab mode admins also see
the job workers connected to the broker (:mod:`ril_dash.ui.components.job_workers`).

Developer notes::

    jobs-timer / jobs-refresh ─► refresh_jobs ─► application.jobs.visible_jobs
    Cancel {"type": jobs-cancel, "job": id} ─► application.jobs.cancel_job [owner or admin]
        ─► jobs-refresh
"""

from __future__ import annotations

import time

import dash
from dash import ALL, Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from ril_dash.application import jobs as app_jobs
from ril_dash.application.contouring import CONTOUR_JOB
from ril_dash.application.jobs import (EXPLAIN, EXPORT, IMPORT, MODEL_RUN, TRAIN_JOB,
                                       UNCERTAINTY)
from ril_dash.jobs import CANCELLED, RUNNING, Job, JobNotFound
from ril_dash.ui import access, ids
from ril_dash.ui.components.job_views import outcome
from ril_dash.ui.components.job_workers import workers_section
from ril_dash.ui.services import get_services

MAX_JOBS = 50
FAST_MS, SLOW_MS = 1000, 10_000
KINDS = {EXPORT: "Export", IMPORT: "Import", MODEL_RUN: "Model run", EXPLAIN: "Model maps",
         CONTOUR_JOB: "Batch contouring", UNCERTAINTY: "Uncertainty", TRAIN_JOB: "Training"}


def register() -> None:
    dash.register_page(__name__, path="/jobs", name="Jobs", title="ril_dash – jobs",
                       layout=layout)


def _when(stamp: float | None) -> str:
    return "" if not stamp else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def format_duration(seconds: float | None) -> str:
    """``"4.2 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``; empty before a job starts.

    >>> format_duration(4.21), format_duration(185), format_duration(7620), format_duration(None)
    ('4.2 s', '3 min 05 s', '2 h 07 min', '')
    """
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _state_label(job: Job) -> str:
    return "stopping" if job.state == RUNNING and job.cancel_requested else job.state


def _row(job: Job, show_owner: bool, now: float) -> html.Tr:
    cancel = ""
    if job.active and not job.cancel_requested:
        cancel = html.Button("Cancel", id={"type": ids.JOBS_CANCEL, "job": job.id},
                             n_clicks=0, className="ril-button ril-job-cancel")
    cells = [html.Td(KINDS.get(job.kind, job.kind or "?"), className="ril-job-kind")]
    if show_owner:
        cells.append(html.Td(job.owner, className="ril-job-owner"))
    cells += [
        html.Td(_state_label(job), className=f"ril-job-state ril-job-{job.state}"),
        html.Td(className="ril-job-progress", children=[
            html.Progress(value=str(job.progress), max="1", className="ril-progress"),
            html.Div(job.message, className="ril-muted ril-job-message")]),
        html.Td(_when(job.started or job.created), className="ril-job-started"),
        html.Td(format_duration(job.duration(now)), className="ril-job-duration"),
        html.Td(outcome(job), className="ril-job-result"),
        html.Td(cancel),
    ]
    return html.Tr(cells, className="ril-job-row", **{"data-job": job.id,
                                                       "data-state": job.state})


def jobs_table(jobs: list[Job], show_owner: bool) -> html.Div | html.Table:
    if not jobs:
        return html.Div("No jobs yet: exports, imports and model runs you start are listed "
                        "here.", className="ril-muted", id=ids.JOBS_EMPTY)
    heads = ["Kind", *(["Owner"] if show_owner else []), "State", "Progress", "Started",
             "Duration", "Result", ""]
    now = time.time()
    return html.Table(className="ril-roi-table ril-jobs-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in heads])),
        html.Tbody([_row(job, show_owner, now) for job in jobs])])


def visible_jobs() -> tuple[list[Job], bool]:
    """The jobs the logged-in user sees (admins: everybody's) and whether they are an admin."""
    return app_jobs.visible_jobs(get_services(), access.actor(), limit=MAX_JOBS)


def layout(**_query) -> html.Div:
    jobs, admin = visible_jobs()
    whose = "everybody's jobs (you are an administrator)" if admin else "your jobs"
    return html.Div(className="ril-page ril-jobs", children=[
        html.H2("Jobs"),
        html.P(f"Exports, imports and model runs: {whose}, newest first. Running jobs update "
               f"every second; a cancelled job stops after the series (a model run: the "
               f"slices) it is working on.", className="ril-muted"),
        dcc.Interval(id=ids.JOBS_TIMER, interval=FAST_MS),
        dcc.Store(id=ids.JOBS_REFRESH, data=0),
        html.Div(id=ids.JOBS_MESSAGE),
        html.Div(jobs_table(jobs, admin), id=ids.JOBS_TABLE),
        *workers_section(admin),
    ])


@callback(
    Output(ids.JOBS_TABLE, "children"), Output(ids.JOBS_TIMER, "interval"),
    Input(ids.JOBS_TIMER, "n_intervals"), Input(ids.JOBS_REFRESH, "data"),
    prevent_initial_call=True,
)
def refresh_jobs(_ticks, _refresh):
    jobs, admin = visible_jobs()
    return jobs_table(jobs, admin), FAST_MS if any(j.active for j in jobs) else SLOW_MS


@callback(
    Output(ids.JOBS_MESSAGE, "children"), Output(ids.JOBS_REFRESH, "data"),
    Input({"type": ids.JOBS_CANCEL, "job": ALL}, "n_clicks"),
    State(ids.JOBS_REFRESH, "data"),
    prevent_initial_call=True,
)
def cancel_from_list(_clicks, refresh):
    """Cancel the job whose button was pressed (owner or admin only: 403 otherwise)."""
    trigger = dash.ctx.triggered_id
    if not isinstance(trigger, dict) or not dash.ctx.triggered[0].get("value"):
        raise PreventUpdate  # buttons (re)drawn by a refresh, not a click
    try:
        job = app_jobs.cancel_job(get_services(), access.actor(), str(trigger.get("job")))
    except JobNotFound as exc:  # (PermissionDenied is answered 403 by the app)
        return html.Div(str(exc), className="ril-alert ril-alert-error"), (refresh or 0) + 1
    if job.state == CANCELLED:
        text = "Cancelled before it started."
    elif job.active:
        text = "Cancel requested: the job stops after the series it is working on."
    else:
        text = f"The job had already ended ({job.state})."
    return html.Div(text, className="ril-alert ril-alert-ok", id=ids.JOBS_CANCEL_DONE), \
        (refresh or 0) + 1
