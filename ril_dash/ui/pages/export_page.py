"""Export page (``/export``): masks, mapping files and tables for training, as a job; and the
form to import masks (:mod:`ril_dash.ui.components.import_form`).

Export creates a job (:mod:`ril_dash.jobs`) owned by the user and runs it in a Dash background
callback (a separate process, so the server keeps serving) with a progress bar mirrored from the
job. Cancel asks the job to stop (:meth:`~ril_dash.jobs.store.JobStore.request_cancel`); the
export checks between series, so it stops with complete files only. The job is also listed on
the Jobs page with its progress, Cancel and result. The work itself is
:func:`ril_dash.jobs.project_work.export_work`; this page only collects the options.

Developer notes::

    Export ─background─► rights (cookies) ─► JobStore.create(export params) ─► run_job
                         progress ─► bar, status, export-job (the job id)
    Cancel ─► cancel_started(export-job id) ─► the export stops after the current series
"""

from __future__ import annotations

import time
from pathlib import Path

import dash
from dash import State, dcc, html

from ril_dash.errors import ExportError, PermissionDenied, RilDashError
from ril_dash.jobs.project_work import EXPORT, export_params
from ril_dash.project.export import select_series
from ril_dash.project.project import Project
from ril_dash.project.workflow_state import exportable_series
from ril_dash.ui import access, ids
from ril_dash.ui.auth import logins_enabled, user_of_cookies, users_admin
from ril_dash.ui.components.import_form import import_section
from ril_dash.ui.components.job_views import (
    JobControls,
    job_store,
    outcome,
    run_in_background,
)
from ril_dash.ui.services import get_services

OPTIONS = [("per_roi", "one binary mask per ROI"), ("combined", "combined mask (bitwise OR)"),
           ("points", "points table"), ("mapping", "mapping files (JSON, CSV)"),
           ("tables", "statistics tables (CSV)"), ("excel", "Excel workbook"),
           ("copy_images", "copies of the source images"),
           ("copy_annotations", "copies of the annotation data")]
DEFAULTS = ["per_roi", "combined", "points", "mapping", "tables", "excel"]

EXPORTS = "exports"
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


def output_folder(typed: str) -> Path:
    """Where an export goes. With logins on, users name a folder inside ``<project>/exports/``
    (nothing else on the server can be written); with logins off, any folder."""
    typed = str(typed).strip()
    if not logins_enabled():
        return Path(typed).expanduser()
    base = (get_services().project.dir / EXPORTS).resolve()
    out = (base / typed).resolve()
    if not typed or out == base or not out.is_relative_to(base):
        raise ExportError(f"Name a new folder inside {EXPORTS}/ of the project (like "
                          f"'my-export'), not {typed[:80]!r}.")
    return out


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
        # ---- rights (moves to ril_dash.application) ----------------------------------------
        user = user_of_cookies(dash.callback_context.cookies)
        if user is None:
            raise PermissionDenied("Log in first.")
        project = Project.open(services.project.dir)  # the series as they are now
        # admins (of the workflow or of the users file) may export every series
        allowed = exportable_series(project.config.annotations, [s.id for s in project.series],
                                    None if users_admin(user) else services.workflow, user)
        if allowed is not None and not allowed:
            raise PermissionDenied(f"{user} may export no series now: no series is in a pool "
                                   f"whose members may export.")
        if allowed is not None:
            chosen = set(select_series(project, series)[0])
            series = [s for s in allowed if s in chosen]
        # ---------------------------------------------------------------------------------------
        out_dir = output_folder(out)
        job = job_store().create(user, EXPORT, export_params(project.dir, out_dir, series,
                                                             options or []))
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    return outcome(run_in_background(job, set_progress), done_id=ids.EXPORT_DONE)

