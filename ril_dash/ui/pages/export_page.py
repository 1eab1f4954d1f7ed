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

from ril_dash.errors import RilDashError
from ril_dash.ui import ids
from ril_dash.ui.components.import_form import import_section

CANCEL_MARKER = ".cancel-export"
OPTIONS = [("per_roi", "one binary mask per ROI"), ("combined", "combined mask (bitwise OR)"),
           ("points", "points table"), ("mapping", "mapping files (JSON, CSV)"),
           ("tables", "statistics tables (CSV)"), ("excel", "Excel workbook"),
           ("copy_images", "copies of the source images"),
           ("copy_annotations", "copies of the annotation data")]
DEFAULTS = ["per_roi", "combined", "points", "mapping", "tables", "excel"]

#: the project this server process exports (set once by create_app; background jobs run in
#: forked processes without a Flask app context, so they find it here)
_PROJECT_DIR: Path | None = None


def register(project_dir: Path) -> None:
    global _PROJECT_DIR
    _PROJECT_DIR = Path(project_dir)
    dash.register_page(__name__, path="/export", name="Export",
                       title="ril_dash – export and import", layout=layout)


def default_folder() -> str:
    return str(_PROJECT_DIR / "exports" / time.strftime("export-%Y%m%d-%H%M%S"))


def layout(glob: str | None = None, **_query) -> html.Div:
    """``?glob=PATTERN`` (from the project viewer's "Export these series") preselects series."""
    return html.Div(className="ril-page", children=[
        html.H2("Export masks and tables"),
        html.P("Masks are written aligned with their source images (same shape, affine and "
               "qform/sform codes), in folders that mirror the dataset.", className="ril-muted"),
        html.Label("Output folder (on the server)", htmlFor=ids.EXPORT_OUT),
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
        html.Hr(className="ril-rule"),
        import_section(),
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
    from ril_dash.project.export import export_project
    from ril_dash.project.project import Project

    if not out or not str(out).strip():
        return html.Div("Choose an output folder.", className="ril-alert ril-alert-error")
    out_dir = Path(str(out).strip()).expanduser()
    marker = out_dir / CANCEL_MARKER
    options = set(options or [])
    series = "all" if mode != "glob" else (pattern or "").strip() or "all"

    def progress(done, total, series_id):
        set_progress((str(done), str(max(total, 1)), f"{done} / {total}  {series_id or ''}"))

    try:
        marker.unlink(missing_ok=True)
        report = export_project(
            Project.open(_PROJECT_DIR), out_dir, series=series,
            per_roi="per_roi" in options, combined="combined" in options,
            points="points" in options, mapping="mapping" in options,
            tables="tables" in options, excel="excel" in options,
            copy_images="copy_images" in options, copy_annotations="copy_annotations" in options,
            progress=progress, cancel=marker.exists)
    except (RilDashError, OSError) as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    finally:
        marker.unlink(missing_ok=True)
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
        folder = Path(str(out).strip()).expanduser()
        if folder.is_dir():
            (folder / CANCEL_MARKER).touch()
    except OSError:
        pass
    return "cancel requested"
