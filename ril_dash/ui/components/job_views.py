"""Jobs in the UI: running a job from a background callback, a page's Cancel, and how a job's
outcome reads (export page, import form, model runs, Jobs page). Starting, cancelling and
listing jobs are application commands (:mod:`ril_dash.application.jobs`).

Developer notes::

    background callback (a process forked from the request's thread: Flask's app context is
    copied with it, so get_services() works there; dash.get_app() would not do, it answers
    the last Dash app built in the process)
      ├─ actor_of_cookies ─► application.jobs.start_export / start_import (rights, job)
      └─ run_in_background(job, set_progress) ─► get_job_tier().run(services, job, mirror)
             embedded: run_job(store, id, work_for(kind, services)) in this process
             broker: send to a ril-dash worker, follow the job in the store
             progress ─► store (≤ 4 / s) and ─► set_progress (value, max, text, job id)
    Cancel (export page / import form / Jobs page) ─► application.jobs.cancel_job (owner or
        admin, audited) ─► store
"""

from __future__ import annotations

from dataclasses import dataclass

from dash import Input, Output, State, callback, dcc, html

from ril_dash.application import jobs as app_jobs
from ril_dash.application.contouring import CONTOUR_JOB
from ril_dash.application.jobs import (EXPLAIN, EXPORT, IMPORT, MODEL_RUN, TRAIN_JOB,
                                       UNCERTAINTY)
from ril_dash.jobs import CANCELLED, DAMAGED, DONE, FAILED, INTERRUPTED, Job, JobNotFound
from ril_dash.ui import access
from ril_dash.ui.components.model_text import model_result_lines
from ril_dash.ui.services import get_job_tier, get_services


def run_in_background(job: Job, set_progress) -> Job:
    """Run ``job`` from a background callback (in this process, or on a worker when the server
    has a job broker), mirroring its progress into the page's progress outputs
    ``(value, max, text, job id)``; return the job as it ended."""

    def mirror(progress) -> None:
        fraction, message, counts = progress
        value, total = counts if counts else (fraction, 1)
        set_progress((str(value), str(max(total, 1)), message, job.id))

    set_progress(("0", "1", "starting…", job.id))
    services = get_services()
    ended = get_job_tier().run(services, job, on_progress=mirror)
    mirror((ended.progress, ended.message or ended.state, ended.steps))  # not "starting…"
    return ended


def cancel_started(kind: str, job_id: str | None) -> str:
    """A page's Cancel: stop the job of ``kind`` the page started (``job_id``), or, when pressed
    before the page learnt its id, the user's newest queued or running job of that kind.
    Returns what to tell the user (PermissionDenied for someone else's job)."""
    services, who = get_services(), access.actor()
    if not job_id:
        job = next((j for j in app_jobs.job_store(services).list(owner=who.user)
                    if j.kind == kind and j.active), None)
        job_id = job.id if job is not None else None
    if not job_id:
        return "nothing to cancel"
    try:
        app_jobs.cancel_job(services, who, job_id)
    except JobNotFound as exc:
        return str(exc)
    return "cancel requested"


@dataclass(frozen=True)
class JobControls:
    """The job controls of a page (ids): start and Cancel buttons, progress bar, status line,
    the store of the started job's id and the result area; for jobs of ``kind``."""

    kind: str
    start: str
    cancel: str
    progress: str
    status: str
    job: str
    result: str

    def layout(self, label: str) -> list:
        return [
            html.Div(className="ril-button-row", children=[
                html.Button(label, id=self.start, className="ril-button", n_clicks=0),
                html.Button("Cancel", id=self.cancel, className="ril-button", n_clicks=0,
                            disabled=True)]),
            html.Progress(id=self.progress, value="0", max="1", className="ril-progress"),
            html.Div(id=self.status, className="ril-muted"),
            dcc.Store(id=self.job),
            html.Div(id=self.result),
        ]

    def callbacks(self, states: list[State], outputs: tuple[Output, ...] = ()):
        """Register the Cancel button and return the decorator of the start button: a
        background callback ``fn(set_progress, n_clicks, *states) -> result children`` (with
        ``outputs``: a tuple, the result children first) with the button disabled (and Cancel
        enabled) while it runs, and the progress outputs ``(value, max, status text, job id)``
        that :func:`run_in_background` sets."""

        @callback(Output(self.status, "title"), Input(self.cancel, "n_clicks"),
                  State(self.job, "data"), prevent_initial_call=True)
        def cancel_job_of_page(_clicks, job_id):
            return cancel_started(self.kind, job_id)

        return callback(
            Output(self.result, "children"), *outputs, Input(self.start, "n_clicks"), *states,
            background=True,
            running=[(Output(self.start, "disabled"), True, False),
                     (Output(self.cancel, "disabled"), False, True)],
            progress=[Output(self.progress, "value"), Output(self.progress, "max"),
                      Output(self.status, "children"), Output(self.job, "data")],
            interval=500,
            prevent_initial_call=True,
        )


# -- how an outcome reads ----------------------------------------------------------------------
def _alert(text: str, kind: str, **kw) -> html.Div:
    return html.Div(text, className=f"ril-alert ril-alert-{kind}", **kw)


def _with_id(done_id: str | None) -> dict:
    return {"id": done_id} if done_id else {}


def export_lines(result: dict, done_id: str | None = None) -> list:
    """An export's result: counts and folder, cancel note, series left out or skipped."""
    lines = [_alert(f"Exported {result['series']} series ({result['masks']} mask files) to "
                    f"{result['folder']}.", "ok", **_with_id(done_id))]
    if result.get("cancelled"):
        lines.append(_alert("Cancelled: the series exported so far are complete (with their "
                            "tables); the rest were not exported.", "warning"))
    if result.get("empty"):
        lines.append(html.Div(f"{result['empty']} series without annotations were left out.",
                              className="ril-muted"))
    for series_id, reason in result.get("skipped", []):
        lines.append(_alert(f"Skipped {series_id}: {reason}", "warning ril-skipped"))
    more = result.get("skipped_total", 0) - len(result.get("skipped", []))
    if more > 0:
        lines.append(html.Div(f"… and {more} more skipped series.", className="ril-muted"))
    return lines


def import_lines(result: dict, done_id: str | None = None) -> list:
    """An import's result: counts, cancel note, one line per series whose masks were found."""
    lines = [_alert(f"Imported masks into {result['imported']} series; "
                    f"{result['refused_total']} refused; {result['missing']} had no masks.",
                    "ok", **_with_id(done_id))]
    if result.get("cancelled"):
        lines.append(_alert(f"Cancelled after {result['looked_at']} of {result['total']} "
                            f"series: the series imported so far each have a complete new "
                            f"version; the others were not imported.", "warning"))
    lines += [_alert(text, "ok" if ok else "error") for text, ok in result.get("series", [])]
    more = result.get("series_total", 0) - len(result.get("series", []))
    if more > 0:
        lines.append(html.Div(f"… and {more} more series.", className="ril-muted"))
    return lines


def model_lines(result: dict, done_id: str | None = None) -> list:
    """A model run's result (:func:`~ril_dash.ui.components.model_text.model_result_lines`)."""
    lines = []
    for number, (text, kind) in enumerate(model_result_lines(result)):
        if kind == "muted":
            lines.append(html.Div(text, className="ril-muted ril-model-line"))
        else:
            lines.append(_alert(text, kind, **(_with_id(done_id) if number == 0 else {})))
    return lines


def explain_lines(result: dict, done_id: str | None = None) -> list:
    """A map job's result: how many slices, and those where the map is zero everywhere."""
    lines = [_alert(f"Computed the {result['method']} map of {result['computed']} of "
                    f"{result['total']} slices of {result['series']} ({result['model']}"
                    f"{', layer ' + result['layer'] if result.get('layer') else ''}).", "ok",
                    **_with_id(done_id))]
    if result.get("zero"):
        lines.append(html.Div(f"On {result['zero']} slices the map is zero everywhere (no "
                              "positive evidence for this target there).", className="ril-muted"))
    if result.get("cancelled"):
        lines.append(_alert("Cancelled: the slices computed so far are shown.", "warning"))
    return lines


def contour_lines(result: dict, done_id: str | None = None) -> list:
    """A batch contouring's result: the series, version and what was left alone."""
    saved = (f"version {result['version']}" if result.get("version") is not None
             else "nothing changed")
    return [_alert(f"Batch contouring of {result['series']}: {result['message']} ({saved})",
                   "ok", **_with_id(done_id))]


def uncertainty_lines(result: dict, done_id: str | None = None) -> list:
    """An uncertainty job's result: how many series were scored, those skipped and why."""
    lines = [_alert(f"{result['model']} scored {result['scored_total']} of {result['series']} "
                    "series; sort the grid by its Uncertainty column to annotate the most "
                    "uncertain first (reload the page to see new scores).", "ok",
                    **_with_id(done_id))]
    lines += [html.Div(f"Skipped {series}: {reason}", className="ril-muted")
              for series, reason in result.get("skipped", ())]
    if result.get("cancelled"):
        lines.append(_alert("Cancelled: the series scored so far keep their scores.", "warning"))
    return lines


def train_lines(result: dict, done_id: str | None = None) -> list:
    """A training round's result: the version written (or why none), which version is active,
    the series left out."""
    lines = []
    if result.get("version"):
        lines.append(_alert(f"Wrote {result['model']}: {result['validation']['summary']}; "
                            f"stopped: {result.get('stopped')}, after {result.get('seconds')} s.",
                            "ok", **_with_id(done_id)))
        active = result.get("activation") or {}
        if active.get("why"):
            lines.append(html.Div(f"Active version: {active['active']} ({active['why']}).",
                                  className="ril-muted"))
    else:
        lines.append(_alert("Cancelled: no version was written.", "warning"))
    for series_id, reason in result.get("skipped", []):
        lines.append(html.Div(f"Skipped {series_id}: {reason}", className="ril-muted"))
    more = result.get("skipped_total", 0) - len(result.get("skipped", []))
    if more > 0:
        lines.append(html.Div(f"… and {more} more skipped series.", className="ril-muted"))
    return lines


RESULT_LINES = {EXPORT: export_lines, IMPORT: import_lines, MODEL_RUN: model_lines,
                EXPLAIN: explain_lines, CONTOUR_JOB: contour_lines,
                UNCERTAINTY: uncertainty_lines, TRAIN_JOB: train_lines}


def outcome(job: Job, done_id: str | None = None) -> list:
    """What to show of a finished job (nothing while it is queued or running)."""
    if job.state in (DONE, CANCELLED) and job.result is not None and job.kind in RESULT_LINES:
        warnings = [_alert(str(text), "warning") for text in job.result.get("warnings", ())]
        return RESULT_LINES[job.kind](job.result, done_id) + warnings
    if job.state == CANCELLED:
        return [_alert(job.message or "Cancelled.", "warning")]
    if job.state in (FAILED, DAMAGED):
        return [_alert(job.error or "Failed.", "error")]
    if job.state == INTERRUPTED:
        return [_alert(job.error or "Interrupted.", "warning")]
    return []
