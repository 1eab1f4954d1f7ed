"""Long commands as jobs: export and import started, run, listed and cancelled with rights.

:func:`start_export` / :func:`start_import` check the actor's rights at once (a refusal is
answered before anything runs), then create a :class:`~ril_dash.jobs.job.Job` whose parameters
are made from the server's own state — the project folder, the workflow file, the acting user
— never from what a browser sent. :func:`work_for` gives the plain job function
``work(job, report_progress, cancelled)`` that :func:`~ril_dash.jobs.runner.run_job` runs in a
background process (or, later, a worker on another machine): it calls the same application
command as the command line (:mod:`ril_dash.application.transfer`), with the job's actor, so
rights are checked again when it runs and the audit line is written there. :func:`cancel_job`
is for the job's owner and admins. :func:`clean_up_interrupted` removes what a killed job left
half-written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ril_dash.application import policy, rights, transfer
from ril_dash.application.contouring import CONTOUR_JOB, run_batch_contour
from ril_dash.application.job_kit import (MAX_LISTED, actor_of, base_params, job_store,
                                          open_services, steps)
from ril_dash.application.explanations import EXPLAIN, run_map_job
from ril_dash.application.model_runs import MODEL_RUN, run_model, start_model_run
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.application.training import TRAIN_JOB, clean_up_training, run_training
from ril_dash.application.uncertainty import UNCERTAINTY, run_uncertainty
from ril_dash.errors import ExportError, ImportRefused
from ril_dash.jobs import RUNNER_STOPPED, Job
from ril_dash.project.export import ExportReport, remove_partial_files
from ril_dash.project.import_masks import ImportReport

__all__ = ["EXPLAIN", "EXPORT", "EXPORT_OPTIONS", "IMPORT", "MODEL_RUN", "TRAIN_JOB", "actor_of",
           "cancel_job",
           "clean_up_interrupted", "export_params", "export_result", "import_params",
           "import_result", "job_store", "open_services", "start_export", "start_import",
           "start_model_run", "UNCERTAINTY", "visible_jobs", "work_for"]

EXPORT, IMPORT = "export", "import"
EXPORT_OPTIONS = tuple(transfer.EXPORT_OPTIONS)
Work = Callable[[Job, Callable, Callable[[], bool]], dict]


# -- export ----------------------------------------------------------------------------------
def export_params(services: Services, actor: Actor, out_dir: str | os.PathLike,
                  series: str | list[str], options) -> dict[str, Any]:
    """The parameters of an export job (``options``: names from :data:`EXPORT_OPTIONS`)."""
    unknown = set(options) - set(EXPORT_OPTIONS)
    if unknown:
        raise ExportError(f"unknown export options: {', '.join(sorted(unknown))}")
    return {**base_params(services, actor), "out_dir": str(out_dir),
            "series": series if isinstance(series, str) else list(series),
            "options": [o for o in EXPORT_OPTIONS if o in set(options)]}


def start_export(services: Services, actor: Actor, out_dir: str | os.PathLike,
                 series: str | list[str], options) -> Job:
    """Create the export job of ``actor`` (PermissionDenied at once if they may export
    nothing now; the series they may export are chosen again when it runs)."""
    transfer.exportable(services, actor, series)
    return job_store(services).create(actor.user, EXPORT, export_params(
        services, actor, out_dir, series, options))


def export_result(report: ExportReport, folder: str) -> dict[str, Any]:
    """What the pages show of an export: folder, counts, skipped series with their reasons."""
    skipped = [[s, reason] for s, reason in report.skipped if reason != "no annotations"]
    return {"folder": folder, "series": len(report.exported), "masks": report.n_masks,
            "points": report.n_points, "files": len(report.files),
            "empty": len(report.skipped) - len(skipped), "skipped": skipped[:MAX_LISTED],
            "skipped_total": len(skipped), "cancelled": report.cancelled}


def _export(services: Services, job: Job, report_progress, cancelled) -> dict[str, Any]:
    params = job.params
    options = set(params.get("options", ()))
    try:
        report = transfer.export_series(
            services, actor_of(job), params["out_dir"], series=params["series"],
            progress=steps(report_progress), cancel=cancelled,
            **{name: name in options for name in EXPORT_OPTIONS})
    except OSError as exc:
        raise ExportError(f"the export into {params['out_dir']} stopped: {exc}") from exc
    return export_result(report, params["out_dir"])


# -- import ----------------------------------------------------------------------------------
def import_params(services: Services, actor: Actor, folder: str,
                  mapping: str | None) -> dict[str, Any]:
    """The parameters of an import job."""
    return {**base_params(services, actor), "folder": str(folder),
            "mapping": None if not mapping else str(mapping)}


def start_import(services: Services, actor: Actor, folder: str, mapping: str | None) -> Job:
    """Create the import job of ``actor`` (admins only: PermissionDenied at once)."""
    rights.require_admin(services, actor, "import masks")
    return job_store(services).create(actor.user, IMPORT, import_params(
        services, actor, folder, mapping))


def import_result(report: ImportReport, folder: str) -> dict[str, Any]:
    """What the pages show of an import: counts, refused series, one line per series found."""
    refused = [[s.series_id, s.error] for s in report.errors]
    found = [[s.describe(), s.error is None] for s in report.series if s.source]
    return {"folder": folder, "imported": len(report.imported), "refused": refused[:MAX_LISTED],
            "refused_total": len(refused), "missing": len(report.missing),
            "looked_at": len(report.series), "total": report.total,
            "series": found[:MAX_LISTED], "series_total": len(found),
            "cancelled": report.cancelled}


def _import(services: Services, job: Job, report_progress, cancelled) -> dict[str, Any]:
    params = job.params
    try:
        report = transfer.import_mask_folder(services, actor_of(job), params["folder"],
                                             mapping=params.get("mapping"),
                                             progress=steps(report_progress), cancel=cancelled)
    except OSError as exc:
        raise ImportRefused(f"the import from {params['folder']} stopped: {exc}") from exc
    return import_result(report, params["folder"])


# -- running, listing, cancelling ---------------------------------------------------------------
KINDS = {EXPORT: _export, IMPORT: _import, MODEL_RUN: run_model, EXPLAIN: run_map_job,
         CONTOUR_JOB: run_batch_contour, UNCERTAINTY: run_uncertainty, TRAIN_JOB: run_training}


def work_for(kind: str, services: Services | None = None) -> Work:
    """The job function of ``kind``: ``work(job, report_progress, cancelled) -> result``. With
    ``services`` it uses this process's open project; without, it opens the job's project."""
    run = KINDS[kind]

    def work(job: Job, report_progress, cancelled) -> dict[str, Any]:
        return run(services or open_services(job.params), job, report_progress, cancelled)

    work.__name__ = f"{kind}_work"
    return work


def visible_jobs(services: Services, actor: Actor, limit: int = 200) -> tuple[list[Job], bool]:
    """The jobs ``actor`` may see (admins: everybody's) and whether they are an admin; jobs
    whose runner died meanwhile are marked interrupted first."""
    admin = rights.is_admin(services, actor)
    store = job_store(services)
    owner = None if admin else actor.user
    jobs = store.list(owner=owner, limit=limit)
    if store.mark_interrupted(RUNNER_STOPPED, cleanup=clean_up_interrupted, jobs=jobs):
        jobs = store.list(owner=owner, limit=limit)
    return jobs, admin


def cancel_job(services: Services, actor: Actor, job_id: str) -> Job:
    """Ask job ``job_id`` to stop (its owner or an admin; PermissionDenied otherwise)."""
    store = job_store(services)
    job = store.get(job_id)
    policy.job_decision(services.workflow, actor, job.owner, "cancel").check()
    job = store.request_cancel(job_id)
    services.audit.record(actor.user, "cancel_job", None, {"job": job.id, "kind": job.kind,
                                                           "owner": job.owner})
    return job


def clean_up_interrupted(job: Job) -> None:
    """Remove what a job killed mid-way left half-written: an export's temp files, a training's
    work folder. (An import commits each series atomically: a killed one leaves complete
    versions only; a training's bundle version is renamed into place whole.)"""
    if job.kind == EXPORT and job.params.get("out_dir"):
        remove_partial_files(job.params["out_dir"])
    if job.kind == TRAIN_JOB and job.params.get("project_dir"):
        clean_up_training(job.params["project_dir"], job)
