"""Run a job: ``run_job(store, job_id, work)`` claims it, calls the work, records how it ended.

The work is a plain function ``work(job, report_progress, cancelled) -> dict`` that knows nothing
of Dash or of the process it runs in:

- ``report_progress(fraction, message, steps=None)`` records progress in the store, at most every
  ``progress_interval`` seconds (a report held back is written by a timer, and the last one
  always is), and passes every report on to ``on_progress`` (e.g. a page's progress bar);
- ``cancelled()`` says whether someone asked the job to stop; it reads the store at most every
  ``cancel_interval`` seconds, so calling it between items costs nothing.

The job ends ``done`` with the dict the work returned, ``cancelled`` if the work returned after
``cancelled()`` said True (its result is kept: what was done before it stopped) or raised
:class:`JobCancelled`, or ``failed``: a :class:`~ril_dash.errors.RilDashError` gives its message,
anything else "internal error: …" (logged with its traceback). No exception of the work ever
escapes ``run_job`` (but KeyboardInterrupt / SystemExit, after recording ``interrupted``).
When the work saved a change whose audit line could not be written, its result gets
``"warnings": ["saved; the audit log could not be written"]`` (shown with the job's outcome).

Developer notes::

    run_job ─ claim (queued → running, runner = this process) ─► work(job, report, cancelled)
              report ─► on_progress(progress) every time; store.set_progress ≤ 4 / s (+ timer)
              cancelled ─► store.get(job).cancel_requested ≤ 5 / s
            ◄─ result / JobCancelled / error ─ store.finish(state, result | error, last progress)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ril_dash.errors import RilDashError
from ril_dash.jobs.job import CANCELLED, DONE, FAILED, INTERRUPTED, Job
from ril_dash.jobs.store import JobStore
from ril_dash.project import audit_trouble

__all__ = ["JobCancelled", "Progress", "run_job"]

log = logging.getLogger(__name__)

#: a progress record: (fraction, message, steps or None)
Progress = tuple[float, str, "list[int] | None"]
Work = Callable[[Job, Callable[..., None], Callable[[], bool]], "dict[str, Any] | None"]


class JobCancelled(Exception):
    """Raised by a job's work to stop at once because ``cancelled()`` said True."""


class _Reporter:
    """``report_progress`` of one run: throttled writes to the store, every report passed on."""

    def __init__(self, store: JobStore, job_id: str, interval: float,
                 on_progress: Callable[[Progress], None] | None) -> None:
        self.store, self.job_id, self.interval = store, job_id, interval
        self.on_progress = on_progress
        self.latest: Progress | None = None
        self._written: Progress | None = None
        self._last_write = float("-inf")
        self._mutex = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self, fraction: float, message: str = "", steps=None) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        record = (fraction, str(message), None if steps is None else [int(s) for s in steps])
        with self._mutex:
            self.latest = record
            wait = self._last_write + self.interval - time.monotonic()
            if wait <= 0:
                self._write_locked()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()
        if self.on_progress is not None:
            self.on_progress(record)

    def _write_locked(self) -> None:
        if self.latest is None or self.latest == self._written:
            return
        try:
            self.store.set_progress(self.job_id, *self.latest)
        except (RilDashError, OSError) as exc:  # progress is best effort; the work goes on
            log.warning("job %s: progress not recorded: %s", self.job_id, exc)
        self._written, self._last_write = self.latest, time.monotonic()

    def _flush(self) -> None:
        with self._mutex:
            self._timer = None
            self._write_locked()

    def stop(self) -> Progress | None:
        """Stop the timer; return the latest report (to be written with the job's end)."""
        with self._mutex:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return self.latest


class _CancelFlag:
    """``cancelled()`` of one run: reads the store's flag at most every ``interval`` s."""

    def __init__(self, store: JobStore, job_id: str, interval: float) -> None:
        self.store, self.job_id, self.interval = store, job_id, interval
        self.seen = False
        self._last_read = float("-inf")

    def __call__(self) -> bool:
        if self.seen:
            return True
        now = time.monotonic()
        if now - self._last_read >= self.interval:
            self._last_read = now
            try:
                self.seen = bool(self.store.get(self.job_id).cancel_requested)
            except (RilDashError, OSError) as exc:
                log.warning("job %s: cancel flag not read: %s", self.job_id, exc)
        return self.seen


def _json_object(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    if not isinstance(result, dict):
        raise TypeError(f"the work returned {type(result).__name__}, not a dict")
    json.dumps(result, allow_nan=False)  # TypeError / ValueError when not plain JSON data
    return result


def run_job(store: JobStore, job_id: str, work: Work, *,
            on_progress: Callable[[Progress], None] | None = None,
            progress_interval: float = 0.25, cancel_interval: float = 0.2) -> Job:
    """Run the queued job ``job_id`` of ``store`` in this process with ``work``; return the job
    as it ended. A job that is no longer queued (cancelled before it started, or claimed by
    another runner) is returned as it is, without running anything."""
    job, claimed = store.claim(job_id)
    if not claimed:
        return job
    report = _Reporter(store, job_id, progress_interval, on_progress)
    cancelled = _CancelFlag(store, job_id, cancel_interval)
    state, result, error = DONE, None, None
    try:
        with audit_trouble.collecting() as warnings:
            result = _json_object(work(job, report, cancelled))
        if warnings and result is not None:  # saved, but the audit log could not be written
            result = {**result, "warnings": warnings}
        state = CANCELLED if cancelled.seen else DONE
    except JobCancelled:
        state = CANCELLED
    except RilDashError as exc:
        state, error = FAILED, str(exc)
    except Exception as exc:  # noqa: BLE001 - a job's bug must never crash its host process
        log.exception("job %s (%s) failed", job_id, job.kind)
        state, error = FAILED, f"internal error: {type(exc).__name__}: {exc}"
    except BaseException:
        store.finish(job_id, INTERRUPTED, progress=report.stop(),
                     error="The job was stopped (interrupt or exit of its process).")
        raise
    last = report.stop()
    if state == DONE:  # all of it was done, also when the work reported no step
        last = (1.0, last[1], last[2]) if last is not None else (1.0, "", None)
    return store.finish(job_id, state, result=result, error=error, progress=last)
