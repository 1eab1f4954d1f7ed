"""The work of the project's jobs: exporting and importing masks, as plain job functions.

Each ``*_work(job, report_progress, cancelled)`` reads everything it needs from the job's
parameters (made by the server from its own state, never from what a browser sent), calls the
domain function with progress and cancel wired in, writes the audit line and returns a JSON
result that the pages show. They know nothing of Dash, so a worker process can run them.
:func:`clean_up_interrupted` removes what a killed job left half-written.

Rights are checked before a job is created (by the page that creates it); the audit lines are
written here, in one marked spot per function, until the application layer takes both over.
"""

from __future__ import annotations

import os
from typing import Any

from ril_dash.errors import ExportError, ImportRefused
from ril_dash.jobs.job import Job
from ril_dash.project.audit import AuditLog
from ril_dash.project.export import ExportReport, export_project, remove_partial_files
from ril_dash.project.import_masks import ImportReport, import_masks
from ril_dash.project.project import Project

__all__ = ["EXPORT", "EXPORT_OPTIONS", "IMPORT", "WORK", "clean_up_interrupted", "export_params",
           "export_result", "export_work", "import_params", "import_result", "import_work"]

EXPORT, IMPORT = "export", "import"
EXPORT_OPTIONS = ("per_roi", "combined", "points", "mapping", "tables", "excel", "copy_images",
                  "copy_annotations")
#: at most this many series are listed by name in a result (the counts are always complete)
MAX_LISTED = 200


def _steps(report_progress):
    """A domain ``progress(done, total, series_id)`` that reports to the job."""

    def progress(done: int, total: int, series_id: str | None) -> None:
        report_progress(done / total if total else 1.0, f"{done} / {total}  {series_id or ''}",
                        (done, total))

    return progress


# -- export ----------------------------------------------------------------------------------
def export_params(project_dir: str | os.PathLike, out_dir: str | os.PathLike,
                  series: str | list[str], options) -> dict[str, Any]:
    """The parameters of an export job (``options``: names from :data:`EXPORT_OPTIONS`)."""
    unknown = set(options) - set(EXPORT_OPTIONS)
    if unknown:
        raise ExportError(f"unknown export options: {', '.join(sorted(unknown))}")
    return {"project_dir": str(project_dir), "out_dir": str(out_dir),
            "series": series if isinstance(series, str) else list(series),
            "options": [o for o in EXPORT_OPTIONS if o in set(options)]}


def export_result(report: ExportReport, folder: str) -> dict[str, Any]:
    """What the pages show of an export: folder, counts, skipped series with their reasons."""
    skipped = [[s, reason] for s, reason in report.skipped if reason != "no annotations"]
    return {"folder": folder, "series": len(report.exported), "masks": report.n_masks,
            "points": report.n_points, "files": len(report.files),
            "empty": len(report.skipped) - len(skipped), "skipped": skipped[:MAX_LISTED],
            "skipped_total": len(skipped), "cancelled": report.cancelled}


def export_work(job: Job, report_progress, cancelled) -> dict[str, Any]:
    """Export as ``job.params`` say (see :func:`export_params`)."""
    params = job.params
    project = Project.open(params["project_dir"])
    options = set(params.get("options", ()))
    try:
        report = export_project(project, params["out_dir"], series=params["series"],
                                **{name: name in options for name in EXPORT_OPTIONS},
                                progress=_steps(report_progress), cancel=cancelled)
    except OSError as exc:
        raise ExportError(f"the export into {params['out_dir']} stopped: {exc}") from exc
    # ---- audit (moves to ril_dash.application with the rights checks) ----------------------
    AuditLog.for_project(project.dir).record(job.owner, "export", None, {
        "folder": params["out_dir"], "series": len(report.exported), "masks": report.n_masks})
    # -------------------------------------------------------------------------------------------
    return export_result(report, params["out_dir"])


# -- import ----------------------------------------------------------------------------------
def import_params(project_dir: str | os.PathLike, folder: str,
                  mapping: str | None) -> dict[str, Any]:
    """The parameters of an import job."""
    return {"project_dir": str(project_dir), "folder": str(folder),
            "mapping": None if not mapping else str(mapping)}


def import_result(report: ImportReport, folder: str) -> dict[str, Any]:
    """What the pages show of an import: counts, refused series, one line per series found."""
    refused = [[s.series_id, s.error] for s in report.errors]
    found = [[s.describe(), s.error is None] for s in report.series if s.source]
    return {"folder": folder, "imported": len(report.imported), "refused": refused[:MAX_LISTED],
            "refused_total": len(refused), "missing": len(report.missing),
            "looked_at": len(report.series), "total": report.total,
            "series": found[:MAX_LISTED], "series_total": len(found),
            "cancelled": report.cancelled}


def import_work(job: Job, report_progress, cancelled) -> dict[str, Any]:
    """Import the masks as ``job.params`` say (see :func:`import_params`); the new versions
    are the job owner's."""
    params = job.params
    project = Project.open(params["project_dir"])
    try:
        report = import_masks(project, params["folder"], mapping=params.get("mapping"),
                              user=job.owner, progress=_steps(report_progress),
                              cancel=cancelled)
    except OSError as exc:
        raise ImportRefused(f"the import from {params['folder']} stopped: {exc}") from exc
    # ---- audit (moves to ril_dash.application with the rights checks) ----------------------
    AuditLog.for_project(project.dir).record(job.owner, "import", None, {
        "folder": params["folder"], "series": len(report.imported)})
    # -------------------------------------------------------------------------------------------
    return import_result(report, params["folder"])


WORK = {EXPORT: export_work, IMPORT: import_work}


def clean_up_interrupted(job: Job) -> None:
    """Remove what a job killed mid-way left half-written: an export's temp files. (An import
    commits each series atomically: a killed one leaves complete versions only.)"""
    if job.kind == EXPORT and job.params.get("out_dir"):
        remove_partial_files(job.params["out_dir"])
