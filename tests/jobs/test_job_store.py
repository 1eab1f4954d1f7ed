"""The job store: one private JSON file per job, atomic writes, updates of several processes
under one lock, listing (owner, newest first, limit, pruning), damaged files, interruptions."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ril_dash.jobs import (
    CANCELLED,
    DAMAGED,
    DONE,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    Job,
    JobNotFound,
    JobStore,
    this_runner,
)

SPAWN = multiprocessing.get_context("spawn")


def dead_pid() -> tuple[int, float]:
    """The pid and start time of a process that has exited (and been reaped)."""
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = psutil.Process(proc.pid).create_time()
    proc.kill()
    proc.wait()
    return proc.pid, started


# ---- records and files -------------------------------------------------------------------------
def test_a_new_job_is_queued_in_a_private_file(store, tmp_path):
    job = store.create("ana", "export", {"out_dir": "/data/out", "series": ["a", "b"]})
    assert len(job.id) == 32 and int(job.id, 16) >= 0
    assert job.state == QUEUED and job.owner == "ana" and job.kind == "export"
    runner = this_runner()
    assert (job.host, job.pid, job.process_started) == (
        runner["host"], runner["pid"], runner["process_started"])
    path = tmp_path / ".jobs" / f"{job.id}.json"
    assert json.loads(path.read_text())["params"] == {"out_dir": "/data/out",
                                                      "series": ["a", "b"]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / ".jobs").stat().st_mode) == 0o700
    assert store.get(job.id) == job
    assert [p.name for p in (tmp_path / ".jobs").iterdir() if p.suffix == ".json"] == [
        f"{job.id}.json"]  # no temp file left behind


def test_parameters_must_be_json_and_ids_are_never_paths(store, tmp_path):
    with pytest.raises(ValueError, match="plain JSON"):
        store.create("ana", "export", {"out": Path("/x")})
    with pytest.raises(ValueError, match="plain JSON"):
        store.create("ana", "export", {"x": float("nan")})
    for bad in ("../../etc/passwd", "abc", "A" * 32, f"{'0' * 32}/x", None, 7):
        with pytest.raises(JobNotFound):
            store.get(bad)
    with pytest.raises(JobNotFound, match="There is no job"):
        store.get("0" * 32)
    assert store.list() == []


def test_listing_by_owner_newest_first_with_a_limit(store):
    jobs = []
    for i, owner in enumerate(["ana", "sam", "ana", "ana"]):
        job = store.create(owner, "import")
        jobs.append(store.update(job.id, lambda j, i=i: setattr(j, "created", 1000.0 + i)))
    assert [j.id for j in store.list()] == [j.id for j in reversed(jobs)]
    assert [j.id for j in store.list(owner="ana")] == [jobs[3].id, jobs[2].id, jobs[0].id]
    assert [j.id for j in store.list(owner="ana", limit=2)] == [jobs[3].id, jobs[2].id]
    assert store.list(owner="nobody") == []


def test_old_finished_jobs_are_pruned_active_and_recent_ones_kept(tmp_path):
    store = JobStore.for_project(tmp_path, keep_days=10)
    day = 86400.0
    now = time.time()
    old_done = store.finish(store.claim(store.create("ana", "export").id)[0].id, DONE)
    recent_done = store.finish(store.claim(store.create("ana", "export").id)[0].id, DONE)
    old_running = store.claim(store.create("ana", "export").id)[0]
    store.update(old_done.id, lambda j: setattr(j, "finished", now - 11 * day))
    store.update(old_running.id, lambda j: setattr(j, "created", now - 40 * day))
    assert store.prune() == 1
    assert {j.id for j in store.list()} == {recent_done.id, old_running.id}
    # creating a job prunes too
    store.update(recent_done.id, lambda j: setattr(j, "finished", now - 12 * day))
    new = store.create("sam", "import")
    assert {j.id for j in store.list()} == {old_running.id, new.id}


def test_cancel_a_queued_job_at_once_a_running_one_by_its_flag(store):
    queued = store.create("ana", "export")
    assert store.request_cancel(queued.id).state == CANCELLED
    assert store.claim(queued.id) == (store.get(queued.id), False)  # never starts now
    running, claimed = store.claim(store.create("ana", "export").id)
    assert claimed and running.state == RUNNING and running.started is not None
    flagged = store.request_cancel(running.id)
    assert flagged.state == RUNNING and flagged.cancel_requested
    done = store.finish(running.id, CANCELLED)
    assert store.request_cancel(done.id) == done  # finished: left as it is
    assert store.claim(done.id)[1] is False
    with pytest.raises(ValueError):
        store.finish(done.id, RUNNING)


# ---- damaged files -----------------------------------------------------------------------------
def test_a_damaged_job_file_is_listed_as_damaged_never_a_crash(store, tmp_path):
    good = store.create("ana", "export")
    folder = tmp_path / ".jobs"
    torn = folder / f"{'a' * 32}.json"
    torn.write_text(json.dumps(good.to_dict())[:57])  # a write cut short (not via the store)
    (folder / f"{'b' * 32}.json").write_text('{"id": "x"}')
    (folder / f"{'c' * 32}.json").write_text(json.dumps({**good.to_dict(), "id": "c" * 32,
                                                         "state": "exploded"}))
    (folder / f"{'d' * 32}.json").write_bytes(b"\xff\xfe\x00garbage")
    (folder / f".{'e' * 32}.k2j4x0qa.json").write_text("{")  # a temp file of a killed write
    jobs = {j.id: j for j in store.list()}
    assert set(jobs) == {good.id, "a" * 32, "b" * 32, "c" * 32, "d" * 32}
    assert jobs[good.id].state == QUEUED
    for job_id in ("a" * 32, "b" * 32, "c" * 32, "d" * 32):
        assert jobs[job_id].state == DAMAGED and jobs[job_id].owner == ""
        assert jobs[job_id].error.startswith("This job's record cannot be read (")
    assert "unknown state 'exploded'" in jobs["c" * 32].error
    assert store.list(owner="ana") == [store.get(good.id)]
    assert store.get("a" * 32).state == DAMAGED
    with pytest.raises(JobNotFound, match="cannot be read"):
        store.request_cancel("a" * 32)
    assert torn.read_text() == json.dumps(good.to_dict())[:57]  # left for a person to see


def _write_progress_forever(folder: str, job_id: str) -> None:
    store = JobStore(folder)
    i = 0
    while True:
        i += 1
        store.set_progress(job_id, (i % 100) / 100, "x" * (i % 5000), [i, 10**9])


@pytest.mark.slow  # starts processes
def test_a_write_killed_at_any_moment_never_leaves_a_torn_job_file(store, tmp_path):
    job, _ = store.claim(store.create("ana", "export").id)
    for round_ in range(8):
        proc = SPAWN.Process(target=_write_progress_forever, args=(str(store.folder), job.id))
        proc.start()
        deadline = time.monotonic() + 30
        while (store.get(job.id).steps or [0])[0] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.003 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        listed = store.list()
        assert [j.state for j in listed] == [RUNNING], listed
        assert listed[0].steps[0] >= 5
        json.loads(store.path_of(job.id).read_text())  # a whole record
    store.set_progress(job.id, 0.5, "still writable")  # the lock was not left held
    assert store.get(job.id).message == "still writable"
    # the temp files of killed writes (if a kill hit one) go with the next prune, once stale
    stray = store.folder / f".{job.id}.k2j4x0qa.json"
    stray.write_text('{"id": ')
    store.prune()
    assert stray.exists()  # maybe a write in progress
    old = time.time() - 7200
    for temp in store.folder.glob(".*.json"):
        os.utime(temp, (old, old))
    store.prune()
    assert sorted(p.name for p in store.folder.iterdir()) == [".lock", f"{job.id}.json"]


# ---- several processes -------------------------------------------------------------------------
def _increment(folder: str, job_id: str, times: int) -> None:
    store = JobStore(folder)

    def bump(job: Job) -> None:
        job.result = {"count": (job.result or {}).get("count", 0) + 1,
                      "pids": sorted({*(job.result or {}).get("pids", []), os.getpid()})}

    for _ in range(times):
        store.update(job_id, bump)
        store.create(f"user-{os.getpid()}", "import")


@pytest.mark.slow  # starts processes
def test_two_processes_updating_one_job_lose_no_update(store):
    job = store.create("ana", "export")
    procs = [SPAWN.Process(target=_increment, args=(str(store.folder), job.id, 40))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    _increment(str(store.folder), job.id, 40)  # and this process at the same time
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    result = store.get(job.id).result
    assert result["count"] == 120
    assert len(result["pids"]) == 3
    assert len(store.list(limit=None)) == 1 + 120


# ---- interrupted jobs --------------------------------------------------------------------------
def test_jobs_of_dead_runners_are_marked_interrupted(store):
    pid, started = dead_pid()
    running, _ = store.claim(store.create("ana", "export").id)
    store.set_progress(running.id, 0.4, "4 / 10  P1/a.nii.gz", [4, 10])
    store.update(running.id, lambda j: setattr(j, "pid", pid) or setattr(
        j, "process_started", started))
    queued = store.create("sam", "import")
    store.update(queued.id, lambda j: setattr(j, "pid", pid) or setattr(
        j, "process_started", started))
    reused, _ = store.claim(store.create("ana", "export").id)  # pid alive, but another process
    store.update(reused.id, lambda j: setattr(j, "process_started", j.process_started - 3600))
    alive, _ = store.claim(store.create("ana", "export").id)
    elsewhere, _ = store.claim(store.create("ana", "export").id)
    store.update(elsewhere.id, lambda j: setattr(j, "host", "another-machine"))
    finished = store.finish(store.claim(store.create("ana", "export").id)[0].id, DONE)

    cleaned = []
    interrupted = store.mark_interrupted(cleanup=cleaned.append)
    assert {j.id for j in interrupted} == {running.id, queued.id, reused.id}
    assert [j.id for j in cleaned] == [j.id for j in interrupted]
    job = store.get(running.id)
    assert job.state == INTERRUPTED and job.finished is not None
    assert job.error == ("The server stopped while this job was running (at 40%): nothing "
                         "after the last complete series was written; start it again.")
    assert store.get(queued.id).error == ("The server stopped before this job started; start "
                                          "it again.")
    assert store.get(reused.id).state == INTERRUPTED
    for untouched in (alive, elsewhere, finished):
        assert store.get(untouched.id).state == untouched.state
    assert store.mark_interrupted() == []  # nothing left to do


def test_a_failing_cleanup_does_not_stop_the_others(store, caplog):
    pid, started = dead_pid()
    ids = []
    for _ in range(2):
        job, _ = store.claim(store.create("ana", "export").id)
        store.update(job.id, lambda j: setattr(j, "pid", pid) or setattr(
            j, "process_started", started))
        ids.append(job.id)

    def boom(job):
        raise OSError("disk gone")

    assert len(store.mark_interrupted(cleanup=boom)) == 2
    assert all(store.get(i).state == INTERRUPTED for i in ids)
    assert "cleaning up after interrupted job" in caplog.text


@pytest.mark.slow  # starts processes
def test_the_jobs_package_imports_neither_dash_nor_flask():
    """A worker process imports ril_dash.jobs (and the application layer's job work) as it is."""
    code = ("import sys, ril_dash.jobs, ril_dash.application.jobs; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dash', 'flask')); "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
