"""Semi-automatic contouring commands: one action on one series, and batch contouring as a job.

:func:`contour_series` checks the annotate right and the series lease
(:func:`~ril_dash.application.leases.edit_guard`), runs the action
(:class:`~ril_dash.project.contouring.Contourer`: one version, provenance ``semi-auto`` with the
tool per slice) and records the audit line. Batch contouring can take a while on a long
series, so :func:`start_batch_contour` makes it a job (kind ``contour``) whose parameters come
from the server's state plus the checked request, and :func:`run_batch_contour` is its work: the
same command, with the job's progress per slice.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ril_dash.application.job_kit import actor_of, base_params, job_store
from ril_dash.application.leases import edit_guard
from ril_dash.application.policy import Actor
from ril_dash.application.series_edits import SeriesChange, outcome
from ril_dash.application.services import Services
from ril_dash.jobs import Job
from ril_dash.project.contouring import ContourOutcome, Contourer, ContourRequest, \
    parse_contour_request

__all__ = ["CONTOUR_JOB", "contour_series", "run_batch_contour", "start_batch_contour"]

CONTOUR_JOB = "contour"


def contour_series(services: Services, actor: Actor, series: str, request: ContourRequest,
                   progress=None) -> tuple[ContourOutcome, SeriesChange]:
    """Run one contouring action on ``series`` as ``actor``; the outcome and the state after."""
    guard = edit_guard(services, actor, series)
    # the frame's own masks on a 4D series with masks per frame
    editor = services.editor(series, actor.user, guard, frame=request.frame)
    done = Contourer(editor).apply(request, progress)
    if done.version is not None:
        services.audit.record(actor.user, "save", series,
                              {"version": done.version, "tool": f"semi-auto:{request.tool}",
                               "slices": len(done.slices)})
    return done, outcome(services.annotations(series, request.frame), done.version)


def _request_json(request: ContourRequest) -> dict[str, Any]:
    body = asdict(request)
    body["params"] = request.params.to_dict()
    body["threshold"] = None if request.threshold is None else list(request.threshold)
    body["targets"] = None if request.targets is None else list(request.targets)
    return body


def start_batch_contour(services: Services, actor: Actor, series: str,
                        request: ContourRequest) -> Job:
    """Create the batch-contouring job of ``actor`` on ``series`` (the right to annotate and
    the lease are checked at once, and again when it runs)."""
    if request.tool != "batch":
        raise ValueError("only batch contouring runs as a job")
    edit_guard(services, actor, series)
    return job_store(services).create(actor.user, CONTOUR_JOB, {
        **base_params(services, actor), "series": series, "request": _request_json(request)})


def run_batch_contour(services: Services, job: Job, report_progress, cancelled
                      ) -> dict[str, Any]:
    """The job work of batch contouring: snap the slices, one version, a summary."""
    params = job.params
    request = parse_contour_request(params["request"])

    def progress(done: int, total: int) -> None:
        report_progress(done / total, f"slice {done} / {total}", (done, total))

    done, _ = contour_series(services, actor_of(job), params["series"], request, progress)
    return {"series": params["series"], "version": done.version, "slices": list(done.slices),
            "message": done.message, "skipped": [list(s) for s in done.skipped]}
