"""run_job: claims a queued job, calls the work with throttled progress and a cheap cancel flag,
and ends the job done / cancelled / failed without ever letting the work's error escape; a
runner killed mid-job is found interrupted afterwards."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time

import pytest

from ril_dash.errors import ExportError
from ril_dash.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    INTERRUPTED,
    RUNNING,
    JobCancelled,
    JobStore,
    run_job,
    this_runner,
)

SPAWN = multiprocessing.get_context("spawn")


class CountingStore(JobStore):
    """A store that counts its progress writes and its reads."""

    def __init__(self, folder):
        super().__init__(folder)
        self.progress_writes: list[tuple] = []
        self.reads = 0

    def set_progress(self, job_id, fraction, message, steps=None):
        self.progress_writes.append((fraction, message, steps))
        return super().set_progress(job_id, fraction, message, steps)

    def get(self, job_id):
        self.reads += 1
        return super().get(job_id)


def test_a_job_runs_to_done_with_its_result(store):
    job = store.create("ana", "export", {"n": 3})
    seen = {}

    def work(job, report_progress, cancelled):
        seen["job"] = store.get(job.id)
        for i in range(1, 4):
            assert cancelled() is False
            report_progress(i / 3, f"{i} / 3", (i, 3))
        return {"items": job.params["n"], "names": ["a", "b"]}

    ended = run_job(store, job.id, work)
    assert seen["job"].state == RUNNING and seen["job"].started is not None
    assert seen["job"].pid == os.getpid() == this_runner()["pid"]
    assert ended == store.get(job.id)
    assert ended.state == DONE and ended.result == {"items": 3, "names": ["a", "b"]}
    assert (ended.progress, ended.message, ended.steps) == (1.0, "3 / 3", [3, 3])
    assert ended.error is None and ended.finished >= ended.started >= ended.created
    assert run_job(store, job.id, work) == ended  # not queued any more: nothing runs again


def test_a_job_done_without_reporting_a_step_reads_complete(store):
    """E.g. an export with no annotated series: the page's bar must not stay empty."""
    job = store.create("ana", "export", {})
    ended = run_job(store, job.id, lambda job, report, cancelled: {"series": 0})
    assert (ended.state, ended.progress, ended.result) == (DONE, 1.0, {"series": 0})


def test_cancel_between_items_keeps_what_was_done(store):
    job = store.create("ana", "export")
    done = []

    def work(job, report_progress, cancelled):
        for i in range(1000):
            if cancelled():
                break
            done.append(i)
            if i == 5:
                JobStore(store.folder).request_cancel(job.id)  # e.g. another process
            time.sleep(0.01)
        return {"done": len(done)}

    ended = run_job(store, job.id, work, cancel_interval=0.05)
    assert ended.state == CANCELLED and ended.cancel_requested
    assert 6 <= ended.result["done"] == len(done) < 30  # stopped within ~0.05 s


def test_job_cancelled_raised_by_the_work(store):
    job = store.create("ana", "import")

    def work(job, report_progress, cancelled):
        report_progress(0.5, "half")
        raise JobCancelled()

    ended = run_job(store, job.id, work)
    assert ended.state == CANCELLED and ended.result is None
    assert (ended.progress, ended.message) == (0.5, "half")


def test_a_cancelled_queued_job_never_runs(store):
    job = store.create("ana", "import")
    store.request_cancel(job.id)
    calls = []
    ended = run_job(store, job.id, lambda *a: calls.append(a))
    assert calls == [] and ended.state == CANCELLED and ended.started is None


def test_errors_become_failed_jobs_never_exceptions(store, caplog):
    def refused(job, report_progress, cancelled):
        raise ExportError("refusing to export into /images: it is inside the images folder")

    ended = run_job(store, store.create("ana", "export").id, refused)
    assert ended.state == FAILED
    assert ended.error == "refusing to export into /images: it is inside the images folder"

    def buggy(job, report_progress, cancelled):
        report_progress(0.25, "a quarter")
        return 1 / 0

    with caplog.at_level(logging.ERROR):
        ended = run_job(store, store.create("ana", "export").id, buggy)
    assert ended.state == FAILED and ended.error == "internal error: ZeroDivisionError: " \
                                                    "division by zero"
    assert ended.progress == 0.25  # where it stopped, not 100%
    assert "ZeroDivisionError" in caplog.text and "Traceback" in caplog.text

    for bad, why in ((lambda *a: [1, 2], "not a dict"), (lambda *a: {"x": object()}, "object")):
        ended = run_job(store, store.create("ana", "export").id, bad)
        assert ended.state == FAILED and ended.error.startswith("internal error: TypeError")
        assert why in ended.error


def test_progress_is_written_at_most_every_interval_and_the_last_one_always(tmp_path):
    store = CountingStore(tmp_path / ".jobs")
    job = store.create("ana", "export")
    mirrored = []

    def work(job, report_progress, cancelled):
        for i in range(1, 201):
            report_progress(i / 200, f"{i} / 200", (i, 200))
        return {}

    start = time.monotonic()
    ended = run_job(store, job.id, work, on_progress=mirrored.append, progress_interval=0.25)
    elapsed = time.monotonic() - start
    assert len(mirrored) == 200 and mirrored[-1] == (1.0, "200 / 200", [200, 200])
    assert 1 <= len(store.progress_writes) <= 1 + elapsed / 0.25 + 1
    assert store.progress_writes[0] == (0.005, "1 / 200", [1, 200])  # the first at once
    assert (ended.message, ended.steps) == ("200 / 200", [200, 200])  # the last with the end


def test_a_held_back_report_is_written_by_the_timer(tmp_path):
    store = CountingStore(tmp_path / ".jobs")
    job = store.create("ana", "export")
    observed = []

    def work(job, report_progress, cancelled):
        report_progress(0.1, "first")
        report_progress(0.2, "second")  # held back: within the interval
        assert store.get(job.id).message == "first"
        time.sleep(0.6)  # a long item: the timer writes "second" meanwhile
        observed.append(store.get(job.id).message)
        return {}

    run_job(store, job.id, work, progress_interval=0.2)
    assert observed == ["second"]
    assert [w[1] for w in store.progress_writes] == ["first", "second"]


def test_the_cancel_flag_is_read_at_most_every_interval(tmp_path):
    store = CountingStore(tmp_path / ".jobs")
    job = store.create("ana", "export")

    def work(job, report_progress, cancelled):
        before = store.reads
        until = time.monotonic() + 0.5
        calls = 0
        while time.monotonic() < until:
            cancelled()
            calls += 1
        return {"calls": calls, "reads": store.reads - before}

    result = run_job(store, job.id, work, cancel_interval=0.2).result
    # at 0, 0.2, 0.4 s (fewer when a loaded machine gives the loop less time), never per call
    assert result["calls"] > 50
    assert 1 <= result["reads"] <= 4 and result["reads"] * 10 < result["calls"]


def test_a_progress_write_that_fails_does_not_stop_the_work(store, monkeypatch):
    def broken(*a, **kw):
        raise OSError("disk full")

    job = store.create("ana", "export")

    def work(job, report_progress, cancelled):
        monkeypatch.setattr(store, "set_progress", broken)
        report_progress(0.5, "half")
        monkeypatch.undo()
        return {"ok": True}

    assert run_job(store, job.id, work).state == DONE


# ---- a runner killed mid-job -------------------------------------------------------------------
def _stuck_work(job, report_progress, cancelled):
    report_progress(0.4, "4 / 10  P1/d.nii.gz", (4, 10))
    threading.Event().wait()  # forever, until killed


def _run_stuck(folder: str, job_id: str) -> None:
    run_job(JobStore(folder), job_id, _stuck_work)


@pytest.mark.slow  # starts a process and kills it
def test_a_runner_killed_mid_job_is_found_interrupted(store):
    job = store.create("ana", "export")
    proc = SPAWN.Process(target=_run_stuck, args=(str(store.folder), job.id))
    proc.start()
    deadline = time.monotonic() + 60
    while store.get(job.id).progress < 0.4 and time.monotonic() < deadline:
        time.sleep(0.02)
    running = store.get(job.id)
    assert running.state == RUNNING and running.pid == proc.pid
    assert store.mark_interrupted() == []  # its runner lives: left alone
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    [interrupted] = store.mark_interrupted()
    assert interrupted.id == job.id and store.get(job.id).state == INTERRUPTED
    assert interrupted.error == ("The server stopped while this job was running (at 40%): "
                                 "nothing after the last complete series was written; start "
                                 "it again.")
    assert interrupted.message == "4 / 10  P1/d.nii.gz"


def test_a_change_saved_without_its_audit_line_ends_done_with_the_warning(store, tmp_path):
    from ril_dash.project.audit import AuditLog
    from ril_dash.ui.components.job_views import outcome

    log = AuditLog(tmp_path / "audit.log.jsonl")
    (tmp_path / "audit.log.jsonl").mkdir()  # every append fails
    job = store.create("ana", "export", {"n": 1})

    def work(job, report_progress, cancelled):
        (tmp_path / "exported.txt").write_text("the change")  # committed
        log.record("ana", "export", None, {"n": 1})
        return {"folder": "out", "series": 1, "masks": 1, "points": 0, "files": 1, "empty": 0,
                "skipped": [], "skipped_total": 0, "cancelled": False}

    ended = run_job(store, job.id, work)
    assert ended.state == DONE and ended.error is None
    assert ended.result["warnings"] == ["saved; the audit log could not be written"]
    assert (tmp_path / "exported.txt").read_text() == "the change"
    shown = outcome(ended)
    assert shown[-1].children == "saved; the audit log could not be written"
    assert "ril-alert-warning" in shown[-1].className
    # a job whose audit line is written has no warnings
    (tmp_path / "audit.log.jsonl").rmdir()
    job = store.create("ana", "export", {"n": 1})
    assert "warnings" not in run_job(store, job.id, work).result
