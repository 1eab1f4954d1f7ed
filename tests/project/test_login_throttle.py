"""The failed-login counts under a burst of logins from several processes.

A successful login of a user with no failures on record must not wait on the counts' file lock
(a hundred logins at once used to queue on it and some were answered 503), while failures
counted by several processes at once must all be kept. The single-process behaviour (windows,
limits, damaged files, sharing between two app instances) is tested in
``tests/ui/test_auth.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from ril_dash.errors import StorageError
from ril_dash.project.login_throttle import LoginThrottle, login_keys

#: one process of the burst: PROCESS THREADS; 1) THREADS logins of users with no failures
#: (look up, then clear after the password check) while the test holds the lock, reported as
#: "ok <logins that passed> <slowest seconds>"; 2) after "go" on stdin, THREADS failed logins
#: from one address, each with its own user name, at once.
BURST = r"""
import sys, threading, time
from ril_dash.project.login_throttle import LoginThrottle, login_keys

folder, process, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
throttle = LoginThrottle(folder)
passed, slowest, lock = [], [0.0], threading.Lock()

def login(i):
    t0 = time.perf_counter()
    keys = login_keys(f"user{process}-{i}", "198.51.100.7")
    ok = throttle.retry_at(keys) is None
    throttle.clear(keys[0])
    with lock:
        passed.append(ok)
        slowest[0] = max(slowest[0], time.perf_counter() - t0)

def fail(i):
    throttle.failed(login_keys(f"guess{process}-{i}", "203.0.113.9"))

def burst(target):
    workers = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

burst(login)
print("ok", sum(passed), round(slowest[0], 3), flush=True)
sys.stdin.readline()
burst(fail)
print("counted", flush=True)
"""


def _start(folder: Path, process: int, threads: int) -> subprocess.Popen:
    """One process of :data:`BURST`; its errors go to ``errors-<process>.txt`` beside
    ``folder`` (a pipe could fill up and stop it)."""
    errors = open(folder.parent / f"errors-{process}.txt", "w")  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, "-c", BURST, str(folder), str(process),
                                 str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=errors, text=True, env=dict(os.environ))
    finally:
        errors.close()


def _errors(folder: Path, process: int) -> str:
    return (folder.parent / f"errors-{process}.txt").read_text()[-3000:]


def test_a_burst_of_logins_needs_no_lock_and_failures_still_add_up(tmp_path):
    folder = tmp_path / ".sessions"
    throttle = LoginThrottle(folder)
    throttle.failed(login_keys("someone-else", "192.0.2.1"))  # the file exists and is read
    procs = []
    lock = FileLock(str(throttle.path) + ".lock")
    with lock:  # as if a process were writing a failure all along
        try:
            procs = [_start(folder, p, 50) for p in range(2)]
            for p, proc in enumerate(procs):  # 2 × 50 logins, answered while the lock is held
                line = proc.stdout.readline().split()
                assert line[:2] == ["ok", "50"], (line, _errors(folder, p))
                assert float(line[2]) < 5.0
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
    # 2 processes × 10 threads fail at once from one address: all 20 are counted, the
    # address's limit (20), so the address is refused for any user name
    assert throttle.retry_at(login_keys("anyone", "203.0.113.9")) is None
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for p, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, _errors(folder, p)
        assert out.strip() == "counted"
    assert throttle.retry_at(login_keys("anyone", "203.0.113.9")) is not None
    assert throttle.retry_at(login_keys("anyone", "198.51.100.7")) is None


def test_the_burst_script_counts_with_fewer_threads(tmp_path):
    """The same processes with 9 failures each (18 < 20): the address is not refused, so the
    check above depends on every failure being counted."""
    folder = tmp_path / ".sessions"
    throttle = LoginThrottle(folder)
    procs = [_start(folder, p, 9) for p in range(2)]
    for proc in procs:
        assert proc.stdout.readline().split()[:2] == ["ok", "9"]
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        proc.communicate(timeout=60)
    assert throttle.retry_at(login_keys("anyone", "203.0.113.9")) is None
    throttle.failed(login_keys("one-more", "203.0.113.9"))
    throttle.failed(login_keys("and-another", "203.0.113.9"))
    assert throttle.retry_at(login_keys("anyone", "203.0.113.9")) is not None


def test_clear_takes_the_lock_only_for_a_key_with_failures(tmp_path):
    throttle = LoginThrottle(tmp_path)
    keys = login_keys("carol", "10.0.0.1")
    for _ in range(5):
        throttle.failed(keys)
    assert throttle.retry_at(keys) is not None
    with FileLock(str(throttle.path) + ".lock"):
        throttle.clear(login_keys("dave", "10.0.0.1")[0])  # nothing on record: no wait
        before = throttle.path.stat().st_mtime_ns
    assert throttle.path.stat().st_mtime_ns == before  # and nothing written
    throttle.clear(keys[0])
    assert throttle.retry_at(keys) is None
    # the address's own count (5 of 20) is kept: a success clears only its pair key
    for n in range(15):
        throttle.failed(login_keys(f"guess{n}", "10.0.0.1"))
    assert throttle.retry_at(login_keys("carol", "10.0.0.1")) is not None


def test_an_unreadable_count_file_is_an_error_not_zero_failures(tmp_path):
    throttle = LoginThrottle(tmp_path)
    throttle.path.mkdir()  # not a file: reading it fails
    with pytest.raises(StorageError, match="cannot read the login-failure counts"):
        throttle.retry_at(login_keys("carol", "10.0.0.1"))


def test_no_lock_file_appears_when_nobody_fails(tmp_path):
    throttle = LoginThrottle(tmp_path)
    t0 = time.perf_counter()
    for n in range(20):
        keys = login_keys(f"user{n}", "10.0.0.1")
        assert throttle.retry_at(keys) is None
        throttle.clear(keys[0])
    assert time.perf_counter() - t0 < 2.0
    assert list(tmp_path.iterdir()) == []
