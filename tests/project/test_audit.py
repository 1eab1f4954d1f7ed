"""Audit log: concurrent appends, filters, torn lines, append-only."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest

from ril_dash.project.audit import AuditLog


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        self.t += 1
        return self.t


def _writer(path: str, user: str, n: int, start, rotate_bytes) -> None:
    log = AuditLog(path, rotate_bytes=rotate_bytes)
    start.wait()
    for i in range(n):
        log.record(user, "save", series=f"S{i % 3}", detail={"i": i, "pad": "x" * (i * 37 % 500)})


def write_in_processes(path, users, n: int, rotate_bytes=None) -> None:
    """``n`` lines by each of ``users``, each writing from its own process, all at once."""
    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(path), u, n, start, rotate_bytes))
             for u in users]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0


def test_concurrent_appends_all_present(tmp_path):
    path = tmp_path / "audit.log.jsonl"
    users = ["u0", "u1", "u2", "u3"]
    write_in_processes(path, users, 50)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    parsed = [json.loads(line) for line in lines[:-1]]  # every line parses
    assert len(parsed) == 200
    for u in users:
        mine = [e["detail"]["i"] for e in parsed if e["user"] == u]
        assert mine == list(range(50))  # in order per writer
    assert len(AuditLog(path).read()) == 200


def test_filters_and_order(tmp_path):
    log = AuditLog(tmp_path / "audit.log.jsonl", clock=Clock())
    log.record("alice", "login")
    log.record("alice", "lock", series="P1/a.nii.gz")
    log.record("bob", "login")
    log.record("alice", "save", series="P1/a.nii.gz", detail={"version": 2})
    log.record("bob", "break_lock", series="P1/a.nii.gz", detail="alice left")
    log.record("bob", "custom action with spaces")
    all_ = log.read()
    assert [e["action"] for e in all_] == ["custom action with spaces", "break_lock", "save",
                                          "login", "lock", "login"]
    assert [e["action"] for e in log.read(user="alice")] == ["save", "lock", "login"]
    assert [e["user"] for e in log.read(action="login")] == ["bob", "alice"]
    assert len(log.read(series="P1/a.nii.gz")) == 3
    assert [e["action"] for e in log.read(since=all_[2]["ts"])] == [
        "custom action with spaces", "break_lock", "save"]
    assert [e["action"] for e in log.read(limit=2)] == ["custom action with spaces",
                                                       "break_lock"]
    assert log.read(user="alice", action="save")[0]["detail"] == {"version": 2}
    assert log.read(limit=0) == []
    assert AuditLog(tmp_path / "missing.jsonl").read() == []
    with pytest.raises(ValueError):
        log.record("alice", "")


def test_html_is_stored_as_data(tmp_path):
    log = AuditLog(tmp_path / "audit.log.jsonl")
    evil = "<script>alert('x')</script>\n\u2028<b>"
    log.record(evil, evil, series=evil, detail={"html": evil})
    e = log.read()[0]
    assert e["user"] == e["action"] == e["series"] == e["detail"]["html"] == evil
    assert len(log.path.read_bytes().split(b"\n")) == 2  # still one line


def test_torn_last_line_skipped(tmp_path):
    log = AuditLog(tmp_path / "audit.log.jsonl")
    log.record("alice", "login")
    log.record("alice", "save")
    with open(log.path, "ab") as fh:
        fh.write(b'{"user": "alice", "action": "sa')  # crash mid-write
    assert [e["action"] for e in log.read()] == ["save", "login"]
    log.record("bob", "login")  # next append starts a fresh line
    assert [(e["user"], e["action"]) for e in log.read()] == [
        ("bob", "login"), ("alice", "save"), ("alice", "login")]
    assert b'"sa\n' in log.path.read_bytes()  # torn bytes kept, never rewritten


def test_file_only_grows(tmp_path):
    log = AuditLog(tmp_path / "audit.log.jsonl")
    sizes, prefix = [], b""
    for i in range(20):
        log.record("u", "save", detail={"i": i})
        data = log.path.read_bytes()
        assert data.startswith(prefix)
        prefix = data
        sizes.append(len(data))
        log.read(user="u")
    assert sizes == sorted(sizes) and len(set(sizes)) == 20
    ino = os.stat(log.path).st_ino
    log.record("u", "logout")
    assert os.stat(log.path).st_ino == ino  # appended in place, not replaced


def test_a_full_disk_after_a_committed_change_warns_and_tells_the_admins(tmp_path, monkeypatch,
                                                                          caplog):
    import errno

    from ril_dash.project import audit_trouble

    log = AuditLog(tmp_path / "audit.log.jsonl", clock=Clock())
    real_fsync = os.fsync

    def full(fd):  # the audit log's disk is full (the notice's is not)
        if os.readlink(f"/proc/self/fd/{fd}").endswith("audit.log.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    with audit_trouble.collecting() as warnings, caplog.at_level("ERROR"):
        assert log.record("alice", "save", "P1/a.nii.gz", {"version": 4}) == \
            "saved; the audit log could not be written"
        assert log.record("alice", "save", "P1/a.nii.gz", {"version": 5}) == \
            audit_trouble.WARNING
    assert warnings == [audit_trouble.WARNING]  # once per request
    assert "could not write the audit log" in caplog.text and "No space left" in caplog.text
    notice = json.loads((tmp_path / audit_trouble.NOTICE_FILE).read_text())
    assert notice["error"].endswith("[Errno 28] No space left on device")
    text = log.trouble()
    assert text.startswith("The audit log (audit.log.jsonl in the project folder) could not be "
                           "written since ") and "No space left on device" in text
    # outside a request the warning is only returned
    assert audit_trouble.collected() == []

    monkeypatch.setattr(os, "fsync", real_fsync)
    assert log.record("alice", "save", "P1/a.nii.gz", {"version": 6}) is None
    assert log.trouble() is None and not (tmp_path / audit_trouble.NOTICE_FILE).exists()
    with pytest.raises(ValueError):  # a programming error is not a disk problem
        log.record("alice", " ")


def test_the_notice_is_kept_in_memory_when_even_it_cannot_be_written(tmp_path, monkeypatch):
    from ril_dash.project import audit_trouble

    folder = tmp_path / "project"
    folder.mkdir()
    log = AuditLog(folder / "audit.log.jsonl")
    (folder / "audit.log.jsonl").mkdir()
    monkeypatch.setattr(audit_trouble, "atomic_write_text",
                        lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    assert log.record("bob", "login") == audit_trouble.WARNING
    assert not (folder / audit_trouble.NOTICE_FILE).exists()
    assert "Is a directory" in log.trouble()
    (folder / "audit.log.jsonl").rmdir()
    assert log.record("bob", "logout") is None and log.trouble() is None


def test_the_sync_waits_outside_the_lock_shared_by_every_writer(tmp_path, monkeypatch):
    """Writers of other series and processes queue on the log's lock: it is free while a line
    is synced to disk, and the line is synced before ``write`` returns."""
    import threading

    from filelock import FileLock, Timeout

    log = AuditLog(tmp_path / "audit.log.jsonl", clock=Clock())
    real_fsync = os.fsync
    seen = []

    def fsync(fd):
        def try_lock():  # another thread: its own descriptor, as another writer would have
            try:
                with FileLock(str(log._lock_path), timeout=0):
                    seen.append(("lock free", os.path.getsize(log.path)))
            except Timeout:
                seen.append(("lock held", None))
        other = threading.Thread(target=try_lock)
        other.start()
        other.join()
        real_fsync(fd)
        seen.append("synced")

    monkeypatch.setattr(os, "fsync", fsync)
    log.write("alice", "save", "P1/a.nii.gz", {"version": 1})
    size = os.path.getsize(log.path)
    assert seen == [("lock free", size), "synced"]  # the whole line was written before
    assert json.loads(log.path.read_text())["detail"] == {"version": 1}
