"""Jobs: long work (export, import; model inference next) as records any process can see.

A job has an id, an owner, a kind, parameters, a state, progress, a result or an error and
timestamps (:mod:`ril_dash.jobs.job`); its record lives in the project
(:class:`~ril_dash.jobs.store.JobStore`), so every server process, the command line and a worker
see the same job. :func:`~ril_dash.jobs.runner.run_job` runs one with a plain function
``work(job, report_progress, cancelled)``. Nothing here imports Dash or Flask: a worker process
imports this package as it is.
"""

from ril_dash.jobs.job import (
    ACTIVE,
    CANCELLED,
    DAMAGED,
    DONE,
    FAILED,
    FINISHED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    STATES,
    Job,
    JobNotFound,
    runner_alive,
    this_runner,
)
from ril_dash.jobs.runner import JobCancelled, run_job
from ril_dash.jobs.store import RUNNER_STOPPED, SERVER_STOPPED, JobStore

__all__ = ["ACTIVE", "CANCELLED", "DAMAGED", "DONE", "FAILED", "FINISHED", "INTERRUPTED",
           "QUEUED", "RUNNER_STOPPED", "RUNNING", "SERVER_STOPPED", "STATES", "Job",
           "JobCancelled", "JobNotFound", "JobStore", "run_job", "runner_alive", "this_runner"]
