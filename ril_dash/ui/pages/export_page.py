"""Export page (``/export``): masks, mapping files and tables for training, in the background;
and the form to import masks (:mod:`ril_dash.ui.components.import_form`).

The export runs in a Dash background callback (a separate process, so the server keeps serving)
with a progress bar. Cancel is cooperative: the Cancel button leaves a marker file in the output
folder that the export checks between series, so it stops with complete files only (killing the
process could leave a temporary file behind). The work itself is
:func:`ril_dash.project.export.export_project`; this page only collects the options.

Developer notes::

    Export ─background (set_progress)─► export_project(progress=…, cancel=marker exists)
    Cancel ─► writes <out>/.cancel-export ─► the export stops after the current series
"""

from __future__ import annotations

import time
from pathlib import Path

import dash
from dash import Input, Output, State, callback, dcc, html

from ril_dash.errors import ExportError, PermissionDenied, RilDashError
from ril_dash.project.audit import AuditLog
from ril_dash.project.workflow_state import exportable_series
from ril_dash.ui import access, ids
from ril_dash.ui.auth import logins_enabled, user_of_cookies, users_admin
from ril_dash.ui.components.import_form import import_section
from ril_dash.workflow.schema import Workflow, load_workflow_file, workflow_from_project

CANCEL_MARKER = ".cancel-export"
OPTIONS = [("per_roi", "one binary mask per ROI"), ("combined", "combined mask (bitwise OR)"),
           ("points", "points table"), ("mapping", "mapping files (JSON, CSV)"),
           ("tables", "statistics tables (CSV)"), ("excel", "Excel workbook"),
           ("copy_images", "copies of the source images"),
           ("copy_annotations", "copies of the annotation data")]
DEFAULTS = ["per_roi", "combined", "points", "mapping", "tables", "excel"]

#: the project this server process exports and the workflow in force (set once by create_app;
#: background jobs run in forked processes without a Flask app context, so they find them here)
_PROJECT_DIR: Path | None = None
_WORKFLOW_FILE: Path | None = None
EXPORTS = "exports"


def register(project_dir: Path, workflow_file: Path | None = None) -> None:
    """Register the page; ``workflow_file`` is the ``--workflow`` file (None: project.yaml's)."""
    global _PROJECT_DIR, _WORKFLOW_FILE
    _PROJECT_DIR, _WORKFLOW_FILE = Path(project_dir), workflow_file
    dash.register_page(__name__, path="/export", name="Export",
                       title="ril_dash – export and import", layout=layout)


def _workflow(project) -> Workflow | None:
    """The workflow in force now, read afresh (a job may start long after the server did)."""
    if _WORKFLOW_FILE is not None:
        return load_workflow_file(_WORKFLOW_FILE)
    return workflow_from_project(project.config)


def default_folder() -> str:
    """A new folder name: under the project's exports/ folder (a full path with logins off)."""
    name = time.strftime("export-%Y%m%d-%H%M%S")
    return name if logins_enabled() else str(_PROJECT_DIR / EXPORTS / name)


def output_folder(typed: str) -> Path:
    """Where an export goes. With logins on, users name a folder inside ``<project>/exports/``
    (nothing else on the server can be written); with logins off, any folder."""
    typed = str(typed).strip()
    if not logins_enabled():
        return Path(typed).expanduser()
    base = (_PROJECT_DIR / EXPORTS).resolve()
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
        html.Div(className="ril-button-row", children=[
            html.Button("Export", id=ids.EXPORT_START, className="ril-button", n_clicks=0),
            html.Button("Cancel", id=ids.EXPORT_CANCEL, className="ril-button", n_clicks=0,
                        disabled=True)]),
        html.Progress(id=ids.EXPORT_PROGRESS, value="0", max="1", className="ril-progress"),
        html.Div(id=ids.EXPORT_STATUS, className="ril-muted"),
        html.Div(id=ids.EXPORT_RESULT),
        *([html.Hr(className="ril-rule"), import_section()] if access.is_admin() else []),
    ])


def _summary(report, out: Path) -> list:
    lines = [html.Div(f"Exported {len(report.exported)} series ({report.n_masks} mask files) "
                      f"to {out}.", className="ril-alert ril-alert-ok", id=ids.EXPORT_DONE)]
    if report.cancelled:
        lines.append(html.Div("Cancelled: the series exported so far are complete (with their "
                              "tables); the rest were not exported.",
                              className="ril-alert ril-alert-warning"))
    empty = [series_id for series_id, reason in report.skipped if reason == "no annotations"]
    if empty:
        lines.append(html.Div(f"{len(empty)} series without annotations were left out.",
                              className="ril-muted"))
    for series_id, reason in report.skipped:
        if reason != "no annotations":
            lines.append(html.Div(f"Skipped {series_id}: {reason}",
                                  className="ril-alert ril-alert-warning ril-skipped"))
    return lines


@callback(
    Output(ids.EXPORT_RESULT, "children"),
    Input(ids.EXPORT_START, "n_clicks"),
    State(ids.EXPORT_OUT, "value"), State(ids.EXPORT_MODE, "value"),
    State(ids.EXPORT_GLOB, "value"), State(ids.EXPORT_OPTIONS, "value"),
    background=True,
    running=[(Output(ids.EXPORT_START, "disabled"), True, False),
             (Output(ids.EXPORT_CANCEL, "disabled"), False, True)],
    progress=[Output(ids.EXPORT_PROGRESS, "value"), Output(ids.EXPORT_PROGRESS, "max"),
              Output(ids.EXPORT_STATUS, "children")],
    prevent_initial_call=True,
)
def run_export(set_progress, _clicks, out, mode, pattern, options):
    from ril_dash.project.export import export_project, select_series
    from ril_dash.project.project import Project

    if not out or not str(out).strip():
        return html.Div("Choose an output folder.", className="ril-alert ril-alert-error")
    try:
        user = user_of_cookies(dash.callback_context.cookies)
        if user is None:
            raise PermissionDenied("Log in first.")
        project = Project.open(_PROJECT_DIR)
        # admins (of the workflow or of the users file) may export every series
        allowed = exportable_series(project.config.annotations, [s.id for s in project.series],
                                    None if users_admin(user) else _workflow(project), user)
        if allowed is not None and not allowed:
            raise PermissionDenied(f"{user} may export no series now: no series is in a pool "
                                   f"whose members may export.")
        out_dir = output_folder(out)
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    marker = out_dir / CANCEL_MARKER
    options = set(options or [])
    series = "all" if mode != "glob" else (pattern or "").strip() or "all"
    if allowed is not None:
        chosen = set(select_series(project, series)[0])
        series = [s for s in allowed if s in chosen]

    def progress(done, total, series_id):
        set_progress((str(done), str(max(total, 1)), f"{done} / {total}  {series_id or ''}"))

    try:
        marker.unlink(missing_ok=True)
        report = export_project(
            project, out_dir, series=series,
            per_roi="per_roi" in options, combined="combined" in options,
            points="points" in options, mapping="mapping" in options,
            tables="tables" in options, excel="excel" in options,
            copy_images="copy_images" in options, copy_annotations="copy_annotations" in options,
            progress=progress, cancel=marker.exists)
    except (RilDashError, OSError) as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    finally:
        marker.unlink(missing_ok=True)
    AuditLog.for_project(_PROJECT_DIR).record(user, "export", None, {
        "folder": str(out_dir), "series": len(report.exported), "masks": report.n_masks})
    return _summary(report, out_dir)


@callback(
    Output(ids.EXPORT_STATUS, "title"),
    Input(ids.EXPORT_CANCEL, "n_clicks"),
    State(ids.EXPORT_OUT, "value"),
    prevent_initial_call=True,
)
def cancel_export(_clicks, out):
    """Ask the running export to stop after the series it is writing."""
    try:
        folder = output_folder(out)
        if folder.is_dir():
            (folder / CANCEL_MARKER).touch()
    except (OSError, RilDashError):
        pass
    return "cancel requested"
