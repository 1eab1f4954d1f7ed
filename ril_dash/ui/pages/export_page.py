"""Export page (``/export``): masks, mapping files and tables for training, as a job; and the
form to import masks (:mod:`ril_dash.ui.components.import_form`).

Export creates a job (:mod:`ril_dash.jobs`) owned by the user and runs it in a Dash background
callback (a separate process, so the server keeps serving) with a progress bar mirrored from the
job. Cancel asks the job to stop (:meth:`~ril_dash.jobs.store.JobStore.request_cancel`); the
export checks between series, so it stops with complete files only. The job is also listed on
the Jobs page with its progress, Cancel and result. Rights, the job and the work are the
application layer's (:func:`ril_dash.application.jobs.start_export`, which runs
:func:`ril_dash.application.transfer.export_series`); this page only collects the options.

Developer notes::

    Export ─background─► actor (cookies) ─► application.jobs.start_export ─► run_job
                         progress ─► bar, status, export-job (the job id)
    Cancel ─► cancel_started(export-job id) ─► the export stops after the current series
"""

from __future__ import annotations

import time

import dash
from dash import State, dcc, html

from ril_dash.application.jobs import EXPORT, start_export
from ril_dash.application.transfer import EXPORTS, export_folder
from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.auth import logins_enabled
from ril_dash.ui.components.import_form import import_section
from ril_dash.ui.components.job_views import JobControls, outcome, run_in_background
from ril_dash.ui.services import get_services

OPTIONS = [("per_roi", "one binary mask per ROI"), ("combined", "combined mask (bitwise OR)"),
           ("points", "points table"), ("mapping", "mapping files (JSON, CSV)"),
           ("tables", "statistics tables (CSV)"), ("excel", "Excel workbook"),
           ("copy_images", "copies of the source images"),
           ("copy_annotations", "copies of the annotation data")]
DEFAULTS = ["per_roi", "combined", "points", "mapping", "tables", "excel"]

CONTROLS = JobControls(EXPORT, start=ids.EXPORT_START, cancel=ids.EXPORT_CANCEL,
                       progress=ids.EXPORT_PROGRESS, status=ids.EXPORT_STATUS,
                       job=ids.EXPORT_JOB, result=ids.EXPORT_RESULT)


def register() -> None:
    dash.register_page(__name__, path="/export", name="Export",
                       title="ril_dash – export and import", layout=layout)


def default_folder() -> str:
    """A new folder name: under the project's exports/ folder (a full path with logins off)."""
    name = time.strftime("export-%Y%m%d-%H%M%S")
    return name if logins_enabled() else str(get_services().project.dir / EXPORTS / name)


def layout(glob: str | None = None, **_query) -> html.Div:
    """``?glob=PATTERN`` (from the project viewer's "Export these series") preselects series."""
    if not access.may_export_any():
        return html.Div(className="ril-page", children=[
            html.H2("Export masks and tables"),
            html.Div("Your pools have no export right; ask an administrator.",
                     className="ril-alert ril-alert-warning", id=ids.EXPORT_RESULT)])
    where = f"inside {EXPORTS}/ of the project" if logins_enabled() else "on the server"
    return html.Div(className="ril-page", children=[
        html.H2("Export masks and tables"),
        html.P("Masks are written aligned with their source images (same shape, affine and "
               "qform/sform codes), in folders that mirror the dataset.", className="ril-muted"),
        html.Label(f"Output folder ({where})", htmlFor=ids.EXPORT_OUT),
        dcc.Input(id=ids.EXPORT_OUT, value=default_folder(), className="ril-search ril-wide",
                  debounce=False),
        html.Label("Series", className="ril-sub"),
        dcc.RadioItems(id=ids.EXPORT_MODE, value="glob" if glob else "all", inline=True,
                       options=[{"label": "all", "value": "all"},
                                {"label": "matching", "value": "glob"}]),
        dcc.Input(id=ids.EXPORT_GLOB, placeholder="e.g. PHANTOM-00*/*/arterial.nii.gz",
                  value=glob or None, className="ril-search ril-wide"),
        html.Label("Include", className="ril-sub"),
        dcc.Checklist(id=ids.EXPORT_OPTIONS, value=DEFAULTS,
                      options=[{"label": label, "value": value} for value, label in OPTIONS]),
        *CONTROLS.layout("Export"),
        *([html.Hr(className="ril-rule"), import_section()] if access.is_admin() else []),
    ])


@CONTROLS.callbacks([State(ids.EXPORT_OUT, "value"), State(ids.EXPORT_MODE, "value"),
                     State(ids.EXPORT_GLOB, "value"), State(ids.EXPORT_OPTIONS, "value")])
def run_export(set_progress, _clicks, out, mode, pattern, options):
    """Check the user's export right, create the export job and run it here."""
    if not out or not str(out).strip():
        return html.Div("Choose an output folder.", className="ril-alert ril-alert-error")
    services = get_services()
    series = "all" if mode != "glob" else (pattern or "").strip() or "all"
    try:
        who = access.actor_of_cookies(dash.callback_context.cookies)
        out_dir = export_folder(services, out, confined=logins_enabled())
        job = start_export(services, who, out_dir, series, options or [])
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    return outcome(run_in_background(job, set_progress), done_id=ids.EXPORT_DONE)
