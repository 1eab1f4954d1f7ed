"""Series leases: acquire/renew/release, expiry, break_lock, races between processes."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from ril_dash.errors import LockHeld, SeriesNotFound
from ril_dash.project.series_locks import Lease, SeriesLocks, check_locking_works

SID = "P1/ST1/arterial.nii.gz"


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_acquire_renew_release(tmp_path):
    clock = Clock()
    locks = SeriesLocks(tmp_path, lease_seconds=120, clock=clock)
    assert locks.holder(SID) is None
    lease = locks.acquire(SID, "alice", "ws1", 11)
    assert isinstance(lease, Lease)
    assert (tmp_path / ".locks" / (SID + ".lock.json")).is_file()
    assert lease.expires_at == clock.t + 120
    assert locks.holder(SID) == lease
    assert locks.all() == [lease]

    clock.t += 100
    renewed = locks.renew(lease)
    assert renewed.token == lease.token and renewed.expires_at == clock.t + 120
    assert renewed.acquired_at == lease.acquired_at

    # acquiring again from the same user/host/process renews instead of failing
    clock.t += 10
    again = locks.acquire(SID, "alice", "ws1", 11)
    assert again.token == lease.token and again.expires_at == clock.t + 120

    locks.release(again)
    assert locks.holder(SID) is None
    assert locks.all() == []
    # releasing twice, or a stale lease, does nothing
    locks.release(again)
    bob = locks.acquire(SID, "bob", "ws2", 22)
    locks.release(lease)
    assert locks.holder(SID) == bob


def test_other_user_refused_with_message(tmp_path):
    clock = Clock()
    locks = SeriesLocks(tmp_path, clock=clock)
    locks.acquire(SID, "alice", "ws1", 11)
    with pytest.raises(LockHeld, match=r"being edited by alice since .* \(until .*\)"):
        locks.acquire(SID, "bob", "ws2", 22)
    # same user from another server process is also refused (two tabs on two servers)
    with pytest.raises(LockHeld, match="being edited by alice"):
        locks.acquire(SID, "alice", "ws2", 33)
    assert locks.holder(SID).user == "alice"
    # another series is independent
    assert locks.acquire("P2/ST1/ct.nii.gz", "bob", "ws2", 22).user == "bob"
    assert [l.series_id for l in locks.all()] == ["P1/ST1/arterial.nii.gz", "P2/ST1/ct.nii.gz"]


def test_expiry_with_injected_clock(tmp_path):
    clock = Clock()
    locks = SeriesLocks(tmp_path, lease_seconds=30, clock=clock)
    lease = locks.acquire(SID, "alice", "ws1", 11)
    clock.t += 29.9
    assert locks.holder(SID) is not None
    with pytest.raises(LockHeld):
        locks.acquire(SID, "bob", "ws2", 22)
    clock.t += 0.2
    assert locks.holder(SID) is None
    assert locks.all() == []
    # an expired lease nobody took can still be renewed by its owner
    renewed = locks.renew(lease)
    assert locks.holder(SID) == renewed
    clock.t += 31
    bob = locks.acquire(SID, "bob", "ws2", 22)
    assert bob.user == "bob"
    # ... but not once someone else took it
    with pytest.raises(LockHeld, match="being edited by bob"):
        locks.renew(renewed)


def test_break_lock(tmp_path):
    clock = Clock()
    locks = SeriesLocks(tmp_path, clock=clock)
    lease = locks.acquire(SID, "alice", "ws1", 11)
    broken = locks.break_lock(SID, "admin")
    assert broken == lease
    assert locks.holder(SID) is None
    info = locks.broken_info(SID)
    assert info["by"] == "admin" and info["previous"]["user"] == "alice"
    data = json.loads((tmp_path / ".locks" / (SID + ".lock.json")).read_text())
    assert data["broken"]["by"] == "admin"
    with pytest.raises(LockHeld, match="broken by admin"):
        locks.renew(lease)
    bob = locks.acquire(SID, "bob", "ws2", 22)
    assert locks.holder(SID) == bob
    assert locks.broken_info(SID) is None
    assert locks.break_lock("P9/none.nii.gz", "admin") is None


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "a\\b", "a\0b", "",
                                 "a//b", "./a", "a/.."])
def test_path_traversal_refused(tmp_path, bad):
    locks = SeriesLocks(tmp_path / "root")
    with pytest.raises(SeriesNotFound):
        locks.acquire(bad, "alice", "ws1", 1)
    with pytest.raises(SeriesNotFound):
        locks.holder(bad)
    with pytest.raises(SeriesNotFound):
        locks.break_lock(bad, "admin")
    assert not (tmp_path / "x").exists() and not (tmp_path / "root" / "x").exists()


def test_corrupt_lease_file_counts_as_free(tmp_path):
    locks = SeriesLocks(tmp_path)
    path = tmp_path / ".locks" / "s.nii.gz.lock.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert locks.holder("s.nii.gz") is None
    assert locks.acquire("s.nii.gz", "alice", "h", 1).user == "alice"


def test_check_locking_works(tmp_path):
    assert check_locking_works(tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # leaves nothing behind


# ------------------------------------------------------------------ multiple processes
def _racer(root: str, user: str, rounds: int, record: str, start) -> None:
    locks = SeriesLocks(Path(root), lease_seconds=120)
    start.wait()
    got = 0
    while got < rounds:
        try:
            lease = locks.acquire(SID, user, "host", os.getpid())
        except LockHeld:
            time.sleep(0.0005)
            continue
        t_in = time.time()
        assert locks.holder(SID).user == user
        time.sleep(0.002)
        t_out = time.time()
        locks.release(lease)
        # O_APPEND writes of one short line are atomic
        with open(record, "a") as fh:
            fh.write(f"{user} {t_in!r} {t_out!r}\n")
        got += 1


@pytest.mark.slow
def test_two_processes_never_hold_at_once(tmp_path):
    ctx = mp.get_context("fork")
    record = tmp_path / "holders.txt"
    start = ctx.Event()
    procs = [ctx.Process(target=_racer, args=(str(tmp_path), u, 40, str(record), start))
             for u in ("alice", "bob")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = [line.split() for line in record.read_text().splitlines()]
    assert len(rows) == 80
    assert {r[0] for r in rows} == {"alice", "bob"}
    spans = sorted((float(a), float(b), u) for u, a, b in rows)
    for (a0, b0, u0), (a1, b1, u1) in itertools.pairwise(spans):
        assert b0 <= a1, f"{u0} held until {b0} but {u1} got it at {a1}"


def _holder_then_sleep(root: str, ready) -> None:
    locks = SeriesLocks(Path(root), lease_seconds=1.5)
    locks.acquire(SID, "alice", "crashing-host", os.getpid())
    ready.set()
    time.sleep(600)


@pytest.mark.slow
def test_killed_holder_lease_expires(tmp_path):
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_holder_then_sleep, args=(str(tmp_path), ready))
    proc.start()
    try:
        assert ready.wait(30)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        locks = SeriesLocks(tmp_path, lease_seconds=60, lock_timeout=5)
        with pytest.raises(LockHeld, match="being edited by alice"):
            locks.acquire(SID, "bob", "ws2", 22)
        lease = locks.holder(SID)
        assert lease is not None and (lease.user, lease.pid) == ("alice", proc.pid)
        # bob keeps trying: refused while the dead holder's lease runs, granted once it expired
        refusals, deadline = 1, time.time() + 30
        while True:
            tried_at = time.time()
            try:
                bob = locks.acquire(SID, "bob", "ws2", 22)
                break
            except LockHeld as exc:  # an expired lease of a dead process must not block
                assert "being edited by alice" in str(exc) and tried_at < lease.expires_at
                assert time.time() < deadline
                refusals += 1
                time.sleep(0.05)
        assert time.time() >= lease.expires_at and bob.acquired_at >= lease.expires_at
        assert refusals >= 2 and locks.holder(SID) == bob
    finally:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(10)
