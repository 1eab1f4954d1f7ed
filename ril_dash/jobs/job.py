"""The job record: what a long piece of work is, who asked for it, where it stands, who runs it.

A :class:`Job` is plain data that round-trips through JSON (one file per job in the
:class:`~ril_dash.jobs.store.JobStore`). Its ``state`` moves ``queued → running →`` one of
``done``, ``failed``, ``cancelled`` or ``interrupted`` (the process running it died). A job file
that cannot be read is listed with the state ``damaged`` instead of breaking the listing.

The runner fields (``host``, ``pid``, ``process_started``) name the process that runs the job
(or, while it is queued, the process that created it), so :func:`runner_alive` can tell a dead
runner from a live one even when the pid has been reused by another process since.

Examples
--------
>>> job = Job.new("ana", "export", {"out_dir": "/tmp/x"})
>>> job.state, job.active, len(job.id)
('queued', True, 32)
>>> Job.from_dict(job.to_dict()) == job
True
"""

from __future__ import annotations

import dataclasses
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psutil

from ril_dash.errors import RilDashError

__all__ = ["ACTIVE", "CANCELLED", "DAMAGED", "DONE", "FAILED", "FINISHED", "INTERRUPTED",
           "QUEUED", "RUNNING", "STATES", "Job", "JobNotFound", "runner_alive", "this_runner"]

QUEUED, RUNNING = "queued", "running"
DONE, FAILED, CANCELLED, INTERRUPTED = "done", "failed", "cancelled", "interrupted"
#: not a state a job reaches: how the listing shows a job file that cannot be read
DAMAGED = "damaged"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED)
ACTIVE = frozenset({QUEUED, RUNNING})
FINISHED = frozenset({DONE, FAILED, CANCELLED, INTERRUPTED})
#: a process whose start time differs from the recorded one by more than this is another one
START_TOLERANCE = 1.0


class JobNotFound(RilDashError):
    """A job id that names no job of this project (unknown, malformed or already pruned)."""


def this_runner() -> dict[str, Any]:
    """The runner fields of the calling process: host name, pid and process start time."""
    process = psutil.Process()
    return {"host": socket.gethostname(), "pid": process.pid,
            "process_started": process.create_time()}


def runner_alive(host: str | None, pid: int | None, process_started: float | None) -> bool | None:
    """Whether the process recorded as a job's runner still runs.

    ``None`` when it cannot be told (another host, or no runner recorded); ``False`` when the
    pid is gone, is a zombie, or now belongs to a process started at another time.

    >>> runner_alive(**this_runner())
    True
    """
    if pid is None or host != socket.gethostname():
        return None
    try:
        process = psutil.Process(int(pid))
        if process_started is not None and \
                abs(process.create_time() - float(process_started)) > START_TOLERANCE:
            return False  # the pid was reused
        return process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


@dataclass
class Job:
    """One job. ``progress`` is a fraction in [0, 1]; ``steps`` is ``[done, total]`` when the
    work counts items (series); ``result`` is the JSON object the work returned."""

    id: str
    owner: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    state: str = QUEUED
    progress: float = 0.0
    message: str = ""
    steps: list[int] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
    host: str | None = None
    pid: int | None = None
    process_started: float | None = None

    @classmethod
    def new(cls, owner: str, kind: str, params: dict[str, Any] | None = None) -> Job:
        """A queued job with a fresh random id, created now by the calling process."""
        return cls(id=uuid.uuid4().hex, owner=str(owner), kind=str(kind),
                   params=dict(params or {}), created=time.time(), **this_runner())

    @classmethod
    def damaged(cls, job_id: str, reason: str, when: float = 0.0) -> Job:
        """The listing's stand-in for a job file that cannot be read."""
        return cls(id=job_id, owner="", kind="", state=DAMAGED, created=when,
                   error=f"This job's record cannot be read ({reason}); it can be deleted.")

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in ACTIVE

    def duration(self, now: float | None = None) -> float | None:
        """Seconds it ran (so far, while running); None before it started."""
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else (now or time.time())
        return max(0.0, end - self.started)

    def runner_alive(self) -> bool | None:
        """See :func:`runner_alive`."""
        return runner_alive(self.host, self.pid, self.process_started)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Job:
        """Build a job from its JSON object; ValueError when it is not a job record."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"id", "owner", "kind", "state"} - set(data)
        if missing:
            raise ValueError(f"missing {', '.join(sorted(missing))}")
        job = cls(**{k: v for k, v in data.items() if k in names})
        if job.state not in STATES:
            raise ValueError(f"unknown state {job.state!r}")
        if not isinstance(job.params, dict) or not (job.result is None
                                                    or isinstance(job.result, dict)):
            raise ValueError("params and result must be JSON objects")
        return job
