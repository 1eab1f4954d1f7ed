"""What every kind of job shares: its store, the parameters that say who runs it where, the
project opened again in a worker, and progress in steps.

A job's parameters are made from the server's own state (the project folder, the workflow file,
the acting user with the admin flag they had then), never from what a browser sent; a worker
opens the project again from them (:func:`open_services`) and acts as that user
(:func:`actor_of`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.jobs import Job, JobStore
from ril_dash.project.project import Project

__all__ = ["MAX_LISTED", "actor_of", "base_params", "job_store", "open_services", "steps"]

#: at most this many series are listed by name in a result (the counts are always complete)
MAX_LISTED = 200


def job_store(services: Services) -> JobStore:
    """The job store of the project ``services`` serve."""
    return JobStore.for_project(services.project.dir)


def base_params(services: Services, actor: Actor) -> dict[str, Any]:
    workflow_file = services.workflow_file
    return {"project_dir": str(services.project.dir),
            "workflow_file": None if workflow_file is None else str(workflow_file),
            "plugin_dirs": [str(d) for d in services.models.extra_roots],
            "actor": {"user": actor.user, "admin": actor.admin, "host": actor.host}}


def actor_of(job: Job) -> Actor:
    """Who acts in ``job``: the user who started it (with the admin flag they had then)."""
    who = job.params.get("actor") or {}
    return Actor(str(who.get("user", job.owner)), bool(who.get("admin", False)),
                 str(who.get("host", "job")))


def open_services(params: dict[str, Any]) -> Services:
    """The project of a job's parameters, opened in this process (a worker's view of it)."""
    workflow_file = params.get("workflow_file")
    return Services(Project.open(params["project_dir"]),
                    workflow_file=None if workflow_file is None else Path(workflow_file),
                    background_checkpoints=False, plugin_dirs=params.get("plugin_dirs") or ())


def steps(report_progress):
    """A domain ``progress(done, total, series_id)`` that reports to the job."""

    def progress(done: int, total: int, series_id: str | None) -> None:
        report_progress(done / total if total else 1.0, f"{done} / {total}  {series_id or ''}",
                        (done, total))

    return progress
