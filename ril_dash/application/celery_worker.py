"""A job worker on the broker: ``ril-dash worker PROJECT --broker URL`` runs the project's jobs
that servers put on its queues, on any machine that mounts the project folder.

At start the worker checks what it was given (:func:`prepare`): the folder must be a project,
its id (:func:`~ril_dash.jobs.identity.project_identity`) one that a server on this broker
serves, and the broker must answer; each refusal says what to do. Each job message carries the
job id, the project folder as the server sees it and the project id: the worker refuses a
message of another project, reads the job from its own copy of the job store and runs it with
the same :func:`~ril_dash.application.jobs.work_for` and :func:`~ril_dash.jobs.run_job` as a
server does, so the job acts as the user who started it (rights, leases, versions and audit are
those of one machine). Paths inside the project folder are translated when the worker mounts
it elsewhere. Model work goes to the shared model worker of this machine
(:class:`~ril_dash.models.worker_client.ModelWorker`): TensorFlow never enters the Celery
processes, and models stay warm across jobs.

A sweep in the worker's main process (at start, then every few seconds) turns the jobs of
this machine whose runner died (a pool process killed mid-job) into ``interrupted`` jobs saying
so, and removes what an export left half-written.

Developer notes::

    server: create job ─► send_job ─► Redis queue ril-dash.<id>.models|io
    worker main (prefork) ─ sweep thread: store.mark_interrupted(RUNNER_STOPPED) every 2 s
      └─ pool process: run_job_task(job_id, server dir, project id)
           ─► id check ─► run_job(store, job_id, work_for(kind, services of this folder))
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ril_dash.application import jobs as app_jobs
from ril_dash.application.celery_jobs import (RUN_TASK, broker_errors, make_celery,
                                              project_queues, registered_projects, safe_url,
                                              unreachable)
from ril_dash.application.services import Services
from ril_dash.errors import InvalidProject, RilDashError
from ril_dash.jobs import RUNNER_STOPPED, JobNotFound, JobStore, run_job
from ril_dash.jobs.identity import project_identity
from ril_dash.project.project import Project

__all__ = ["SWEEP_S", "WorkerSetup", "prepare", "run_job_task", "translate_params",
           "start_worker"]

log = logging.getLogger(__name__)

SWEEP_S = 2.0
#: job parameters that hold paths (translated when the worker mounts the project elsewhere)
PATH_PARAMS = ("project_dir", "workflow_file", "out_dir", "folder", "mapping")


@dataclass
class WorkerSetup:
    """What one worker process serves: the project folder as this machine mounts it."""

    project_dir: Path
    project_id: str
    project_name: str
    broker: str
    queues: list[str]
    services: dict[tuple, Services] = field(default_factory=dict)


#: the setup of this worker (set before the pool forks, so every pool process has it)
_SETUP: WorkerSetup | None = None


def prepare(project_dir: str | os.PathLike, broker: str, queue_names: list[str]) -> WorkerSetup:
    """Check the project folder and the broker; RilDashError saying what to do otherwise."""
    folder = Path(project_dir).expanduser().resolve()
    try:
        project = Project.open(folder)
    except InvalidProject as exc:
        raise RilDashError(f"{folder} is not a ril_dash project folder ({exc}); start the worker "
                           f"with the project folder as this machine mounts it (the one "
                           f"holding project.yaml).") from None
    project_id = project_identity(folder)
    try:
        known = registered_projects(broker)
    except broker_errors() as exc:
        raise unreachable(broker, exc) from None
    if known and project_id not in known:
        served = "; ".join(f"'{p.get('name')}' in {p.get('folder')} (server on {p.get('host')})"
                           for p in known.values())
        raise RilDashError(
            f"the project in {folder} ('{project.config.name}', id {project_id[:12]}) is not "
            f"the one any server on {safe_url(broker)} serves: {served}. Start the worker "
            f"with the folder of that project as this machine mounts it (a copy of it is "
            f"another project).")
    if not known:
        log.warning("no ril-dash server has registered a project on %s yet; this worker "
                    "takes the jobs of '%s' (id %s) once a server serves it",
                    safe_url(broker), project.config.name, project_id[:12])
    return WorkerSetup(folder, project_id, project.config.name, broker,
                       project_queues(project_id, queue_names))


def translate_params(params: dict[str, Any], server_dir: str, local_dir: Path) -> dict[str, Any]:
    """``params`` with the paths under the server's project folder moved under ``local_dir``.

    >>> translate_params({"out_dir": "/srv/p/exports/a", "series": "all"}, "/srv/p",
    ...                  Path("/mnt/p"))
    {'out_dir': '/mnt/p/exports/a', 'series': 'all'}
    """
    server = Path(server_dir)

    def moved(value):
        if not isinstance(value, str):
            return value
        path = Path(value)
        try:
            return str(local_dir / path.relative_to(server))
        except ValueError:
            return value

    out = dict(params)
    for key in PATH_PARAMS:
        if key in out:
            out[key] = moved(out[key])
    if isinstance(out.get("plugin_dirs"), list):
        out["plugin_dirs"] = [moved(d) for d in out["plugin_dirs"]]
    return out


def _services(setup: WorkerSetup, params: dict[str, Any]) -> Services:
    """This process's open project for a job's parameters (kept: caches stay warm)."""
    key = (params.get("workflow_file"), tuple(params.get("plugin_dirs") or ()))
    if key not in setup.services:
        setup.services[key] = app_jobs.open_services({**params,
                                                      "project_dir": str(setup.project_dir)})
    return setup.services[key]


def run_job_task(job_id: str, server_dir: str, project_id: str) -> str:
    """The body of the ``ril_dash.run_job`` task: run the job here; return its end state."""
    setup = _SETUP
    if setup is None or project_id != setup.project_id:
        mine = "none" if setup is None else f"{setup.project_id[:12]} ({setup.project_dir})"
        log.error("refused job %s: it belongs to project %s in %s, this worker serves %s",
                  job_id, project_id[:12], server_dir, mine)
        return "refused"
    store = JobStore.for_project(setup.project_dir)
    try:
        job = store.get(job_id)
    except JobNotFound:
        log.error("job %s is not in %s: is this the project folder the server uses?",
                  job_id, store.folder)
        return "not found"
    params = translate_params(job.params, server_dir, setup.project_dir)
    inner = app_jobs.work_for(job.kind, _services(setup, params))

    def work(claimed, report_progress, cancelled):
        moved = dataclasses.replace(claimed, params=translate_params(
            claimed.params, server_dir, setup.project_dir))
        return inner(moved, report_progress, cancelled)

    ended = run_job(store, job_id, work)
    return ended.state


def _sweep_once(setup: WorkerSetup) -> None:
    store = JobStore.for_project(setup.project_dir)
    active = [job for job in store.list(limit=None) if job.active]
    if active:
        store.mark_interrupted(RUNNER_STOPPED, cleanup=app_jobs.clean_up_interrupted,
                               jobs=active)


def _sweep_forever(setup: WorkerSetup, stop: threading.Event) -> None:
    while not stop.wait(SWEEP_S):
        try:
            _sweep_once(setup)
        except (RilDashError, OSError) as exc:
            log.warning("sweep of the jobs of %s failed: %s", setup.project_dir, exc)


def start_worker(setup: WorkerSetup, concurrency: int, loglevel: str = "INFO") -> None:
    """Run the Celery worker of ``setup`` in this process until it is stopped (SIGTERM, Ctrl-C)."""
    global _SETUP
    _SETUP = setup
    app = make_celery(setup.broker, name="ril_dash_worker")
    app.task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)(run_job_task)
    store = JobStore.for_project(setup.project_dir)
    store.mark_interrupted(RUNNER_STOPPED, cleanup=app_jobs.clean_up_interrupted)
    stop = threading.Event()
    threading.Thread(target=_sweep_forever, args=(setup, stop), daemon=True,
                     name="ril-dash-job-sweep").start()
    hostname = f"ril-dash-{os.getpid()}@{socket.gethostname()}"
    worker = app.Worker(hostname=hostname, concurrency=concurrency, queues=setup.queues,
                        pool="prefork", loglevel=loglevel, without_gossip=True,
                        without_mingle=True, optimization="fair")
    try:
        worker.start()
    finally:
        stop.set()
    if worker.exitcode:
        raise SystemExit(worker.exitcode)
