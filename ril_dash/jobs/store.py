"""Where jobs live: one JSON file per job in a folder of the project (``<project>/.jobs/``).

Every server process, the command line and a worker process see the same jobs because the
state is on disk, not in memory. The folder is private (mode 0700, files 0600: a job's
parameters and result can name private paths). Each file is written atomically (temp file in
the same folder, fsync, ``os.replace``), and every read-modify-write happens under one
:class:`filelock.FileLock` of the folder, so two processes never lose each other's update.
A file that cannot be read (a disk fault, a hand edit) is listed as ``damaged``, never fatal.

Examples
--------
>>> import tempfile, pathlib
>>> store = JobStore(pathlib.Path(tempfile.mkdtemp()) / ".jobs")
>>> job = store.create("ana", "export", {"out_dir": "/tmp/out"})
>>> store.request_cancel(job.id).state  # a queued job is cancelled at once
'cancelled'
>>> [j.id for j in store.list(owner="ana")] == [job.id]
True
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import atomic_write_text, private_dir
from ril_dash.errors import StorageError
from ril_dash.jobs.job import (
    CANCELLED,
    DAMAGED,
    FINISHED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    Job,
    JobNotFound,
    this_runner,
)

__all__ = ["FOLDER", "KEEP_DAYS", "JobStore", "SERVER_STOPPED", "RUNNER_STOPPED"]

log = logging.getLogger(__name__)

FOLDER = ".jobs"
#: finished jobs older than this are deleted (at job creation and at server start)
KEEP_DAYS = 30.0
_ID = re.compile(r"[0-9a-f]{32}")
_SUFFIX = ".json"
#: a temp file (".<id>.<random>.json") this old is what a killed write left
STALE_TEMP = 3600.0
#: who stopped, in the message of an interrupted job
SERVER_STOPPED = "The server"
RUNNER_STOPPED = "Its worker process"


def _percent(job: Job) -> str:
    return f"{round(100 * float(job.progress or 0.0))}%"


def interrupted_message(job: Job, who: str = SERVER_STOPPED) -> str:
    """What the user reads about a job whose runner died (``who`` stopped)."""
    if job.state == QUEUED:
        return f"{who} stopped before this job started; start it again."
    return (f"{who} stopped while this job was running (at {_percent(job)}): nothing after "
            f"the last complete series was written; start it again.")


class JobStore:
    """The jobs of one project, one JSON file each under ``folder``."""

    def __init__(self, folder: str | os.PathLike, *, keep_days: float = KEEP_DAYS,
                 lock_timeout: float = 30.0) -> None:
        self.folder = Path(folder)
        self.keep_days = keep_days
        self.lock_timeout = lock_timeout

    @classmethod
    def for_project(cls, project_dir: str | os.PathLike, **kw: Any) -> JobStore:
        return cls(Path(project_dir) / FOLDER, **kw)

    # -- files -------------------------------------------------------------------------------
    def _ensure_folder(self) -> None:
        if not self.folder.is_dir():
            private_dir(self.folder)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's lock (StorageError if another process keeps it too long)."""
        self._ensure_folder()
        lock = FileLock(str(self.folder / ".lock"), timeout=self.lock_timeout, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise StorageError(f"The job records in {self.folder} have been locked by another "
                               f"process for more than {self.lock_timeout:g} s; try again, "
                               f"or remove {self.folder / '.lock'} if no server is running."
                               ) from None
        try:
            yield
        finally:
            lock.release()

    def path_of(self, job_id: str) -> Path:
        """The file of ``job_id``; JobNotFound for anything but a job id (no path tricks)."""
        if not isinstance(job_id, str) or not _ID.fullmatch(job_id):
            raise JobNotFound(f"There is no job {str(job_id)[:40]!r}.")
        return self.folder / f"{job_id}{_SUFFIX}"

    def _read(self, path: Path) -> Job:
        """The job in ``path``; a damaged stand-in when it cannot be parsed."""
        job_id = path.name[: -len(_SUFFIX)]
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise JobNotFound(f"There is no job {job_id} (finished long ago and deleted, or "
                              f"never created).") from None
        except (OSError, UnicodeDecodeError) as exc:
            return Job.damaged(job_id, f"{type(exc).__name__}: {exc}", self._mtime(path))
        try:
            job = Job.from_dict(json.loads(text))
        except (ValueError, TypeError) as exc:
            return Job.damaged(job_id, f"{type(exc).__name__}: {exc}", self._mtime(path))
        if job.id != job_id:
            return Job.damaged(job_id, f"it holds job {job.id!r}", self._mtime(path))
        return job

    @staticmethod
    def _mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    def _write(self, job: Job) -> None:
        self._ensure_folder()
        atomic_write_text(self.path_of(job.id), json.dumps(job.to_dict(), indent=1) + "\n")

    # -- reading -----------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job ``job_id`` as stored now (state ``damaged`` if its file is unreadable)."""
        return self._read(self.path_of(job_id))

    def list(self, owner: str | None = None, limit: int | None = 100) -> list[Job]:
        """Jobs newest first: all of them, or those of ``owner`` (damaged ones have none)."""
        if not self.folder.is_dir():
            return []
        jobs = []
        for path in self.folder.glob(f"*{_SUFFIX}"):
            if not _ID.fullmatch(path.name[: -len(_SUFFIX)]):
                continue  # temp files of writes in progress (".<id>.xxxx.json")
            try:
                job = self._read(path)
            except JobNotFound:  # deleted between glob and read
                continue
            if owner is None or job.owner == owner:
                jobs.append(job)
        jobs.sort(key=lambda j: j.created or 0.0, reverse=True)
        return jobs if limit is None else jobs[:limit]

    # -- changes -----------------------------------------------------------------------------
    def create(self, owner: str, kind: str, params: dict[str, Any] | None = None) -> Job:
        """Store a new queued job (its runner fields name this process until one claims it).

        ``params`` must be a JSON object (ValueError otherwise)."""
        job = Job.new(owner, kind, params)
        try:
            json.dumps(job.params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"job parameters must be plain JSON data: {exc}") from None
        with self._locked():
            self._write(job)
        self.prune()
        return job

    def update(self, job_id: str, change: Callable[[Job], None]) -> Job:
        """Apply ``change`` (which mutates the job) under the lock and store the result."""
        path = self.path_of(job_id)
        with self._locked():
            job = self._read(path)
            if job.state == DAMAGED:
                raise JobNotFound(job.error or f"Job {job_id} cannot be read.")
            change(job)
            self._write(job)
            return job

    def claim(self, job_id: str) -> tuple[Job, bool]:
        """Mark a queued job running in this process; ``(job, True)`` if this call claimed it,
        ``(job as stored, False)`` if it was no longer queued (cancelled, or claimed already)."""
        claimed = []

        def start(job: Job) -> None:
            if job.state == QUEUED and not job.cancel_requested:
                job.state, job.started = RUNNING, time.time()
                runner = this_runner()
                job.host, job.pid = runner["host"], runner["pid"]
                job.process_started = runner["process_started"]
                claimed.append(True)

        job = self.update(job_id, start)
        return job, bool(claimed)

    def set_progress(self, job_id: str, fraction: float, message: str,
                     steps: list[int] | None = None) -> Job:
        """Record the progress of a running job (a finished one is left as it is)."""

        def change(job: Job) -> None:
            if job.state == RUNNING:
                job.progress = min(1.0, max(0.0, float(fraction)))
                job.message, job.steps = str(message), steps

        return self.update(job_id, change)

    def finish(self, job_id: str, state: str, *, result: dict | None = None,
               error: str | None = None, progress: tuple | None = None) -> Job:
        """End a job in ``state`` (one of the finished states) with its result or error;
        ``progress`` is a last ``(fraction, message, steps)`` to record with it."""
        if state not in FINISHED:
            raise ValueError(f"{state!r} is not a finished state")

        def change(job: Job) -> None:
            if progress is not None:
                job.progress, job.message, job.steps = progress
            job.state, job.result, job.error, job.finished = state, result, error, time.time()

        return self.update(job_id, change)

    def request_cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued job is cancelled at once, a running one stops at its next
        check of ``cancelled()``; a finished job is left as it is."""

        def change(job: Job) -> None:
            if job.state == QUEUED:
                job.state, job.finished = CANCELLED, time.time()
                job.cancel_requested, job.message = True, "Cancelled before it started."
            elif job.state == RUNNING:
                job.cancel_requested = True

        return self.update(job_id, change)

    def mark_interrupted(self, who: str = SERVER_STOPPED,
                         cleanup: Callable[[Job], None] | None = None,
                         jobs: list[Job] | None = None) -> list[Job]:
        """Turn the queued and running jobs of this host whose runner process is dead into
        ``interrupted`` jobs saying so (and that ``who`` stopped); run ``cleanup(job)``
        for each (e.g. remove an export's temp files) and return them.

        Run at server start over every job (then old jobs are pruned too), or over ``jobs``
        (a listing being shown) to catch a runner that died while the server runs."""
        interrupted = []
        for job in self.list(limit=None) if jobs is None else jobs:
            if not job.active or job.runner_alive() is not False:
                continue
            try:
                job = self.update(job.id, lambda stored: self._interrupt(stored, who))
            except JobNotFound:
                continue
            if job.state != INTERRUPTED:
                continue
            interrupted.append(job)
            if cleanup is not None:
                try:
                    cleanup(job)
                except Exception:  # noqa: BLE001 - a failed clean-up must not stop the server
                    log.exception("cleaning up after interrupted job %s failed", job.id)
        if jobs is None:
            self.prune()
        return interrupted

    @staticmethod
    def _interrupt(job: Job, who: str) -> None:
        if job.active and job.runner_alive() is False:  # checked again under the lock
            job.error = interrupted_message(job, who)
            job.state, job.finished = INTERRUPTED, time.time()

    def prune(self, now: float | None = None) -> int:
        """Delete finished (and damaged) jobs older than ``keep_days``, and temp files of writes
        killed more than an hour ago; return how many jobs were deleted."""
        if not self.folder.is_dir():
            return 0
        now = now if now is not None else time.time()
        limit = now - self.keep_days * 86400.0
        removed = 0
        with self._locked():
            for temp in self.folder.glob(f".*{_SUFFIX}"):
                if now - self._mtime(temp) > STALE_TEMP:
                    temp.unlink(missing_ok=True)
            for job in self.list(limit=None):
                stamp = job.finished if job.finished is not None else job.created
                if (job.state in FINISHED or job.state == DAMAGED) and (stamp or 0.0) < limit:
                    self.path_of(job.id).unlink(missing_ok=True)
                    removed += 1
        return removed
