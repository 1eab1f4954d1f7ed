"""Where a created job runs: here (the embedded default) or on a worker through the job broker.

A page or route that has created a job calls ``tier.run(services, job, on_progress)`` and gets
the job back as it ended; the tier is chosen once, when the server starts:

- :class:`Embedded` runs the job in the calling process (a Dash background callback's process,
  or the request's thread) with :func:`~ril_dash.jobs.run_job`: one machine, nothing to install.
- :class:`Brokered` (``ril-dash serve --broker redis://…``) puts the job on the project's
  queue (:func:`~ril_dash.application.celery_jobs.send_job`) and follows it in the job store,
  where the worker records progress and the end, until it ends. Cancel works through the store
  as with the embedded tier. A broker that cannot be reached fails the job at once with a
  message saying so; a job whose runner on this machine died is marked interrupted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from ril_dash.application import jobs as app_jobs
from ril_dash.application import rights
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import RilDashError
from ril_dash.jobs import FAILED, RUNNER_STOPPED, Job, run_job
from ril_dash.jobs.identity import project_identity

__all__ = ["Brokered", "Embedded", "JobTier", "EMBEDDED"]

log = logging.getLogger(__name__)

Progress = tuple[float, str, "list[int] | None"]
#: how often a brokered job's record is read while it runs
POLL_S = 0.25


class JobTier(Protocol):
    """Runs a created (queued) job and returns it as it ended."""

    def run(self, services: Services, job: Job,
            on_progress: Callable[[Progress], None] | None = None) -> Job: ...


class Embedded:
    """Run jobs in the calling process."""

    name = "embedded"

    def run(self, services: Services, job: Job,
            on_progress: Callable[[Progress], None] | None = None) -> Job:
        return run_job(app_jobs.job_store(services), job.id,
                       app_jobs.work_for(job.kind, services), on_progress=on_progress)


EMBEDDED = Embedded()


class Brokered:
    """Send jobs to Celery workers through the broker ``url`` and follow them in the store."""

    name = "broker"

    def __init__(self, url: str, app=None, poll_s: float = POLL_S) -> None:
        from ril_dash.application.celery_jobs import make_celery

        self.url = url
        self.app = app if app is not None else make_celery(url)
        self.poll_s = poll_s

    def run(self, services: Services, job: Job,
            on_progress: Callable[[Progress], None] | None = None) -> Job:
        from ril_dash.application.celery_jobs import queue_of, register_project, send_job

        store = app_jobs.job_store(services)
        project_id = project_identity(services.project.dir)
        try:
            # the broker may have restarted empty since: workers check this register at start
            register_project(self.url, project_id, services.project.config.name,
                             str(services.project.dir))
            send_job(self.app, self.url, services.project.dir, project_id, job.id, job.kind)
        except RilDashError as exc:
            log.error("job %s not sent: %s", job.id, exc)
            return store.finish(job.id, FAILED, error=str(exc))
        if on_progress is not None:
            on_progress((0.0, f"waiting for a worker ({queue_of(job.kind)} queue)", None))
        return self.follow(services, job.id, on_progress)

    def follow(self, services: Services, job_id: str,
               on_progress: Callable[[Progress], None] | None = None) -> Job:
        """Wait for the job to end, passing its recorded progress on as it changes."""
        store = app_jobs.job_store(services)
        seen = None
        while True:
            job = store.get(job_id)
            if job.active and job.runner_alive() is False:  # its runner here died
                store.mark_interrupted(RUNNER_STOPPED, cleanup=app_jobs.clean_up_interrupted,
                                       jobs=[job])
                job = store.get(job_id)
            if not job.active:
                return job
            record = (job.progress, job.message, job.steps)
            if record != seen and on_progress is not None and job.started is not None:
                on_progress(record)
            seen = record
            time.sleep(self.poll_s)

    def workers(self, services: Services, actor: Actor, timeout: float = 1.0) -> list[dict]:
        """The workers connected now that take this project's jobs (admins only): name,
        queues, and the jobs they are running (``[(job id, kind, owner)]``); BrokerUnreachable
        when the broker does not answer."""
        from ril_dash.application.celery_jobs import workers_view

        rights.require_admin(services, actor, "see the job workers")
        store = app_jobs.job_store(services)
        rows = workers_view(self.app, project_identity(services.project.dir), timeout)
        for row in rows:
            running = []
            for job_id in row["running"]:
                try:
                    job = store.get(job_id)
                    running.append((job_id, job.kind, job.owner))
                except RilDashError:
                    running.append((job_id, "?", "?"))
            row["running"] = running
        return rows
