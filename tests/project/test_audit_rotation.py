"""Audit log rotation and the paged, newest-first reading across its files."""

from __future__ import annotations

import json
import re

from ril_dash.project import audit_files
from ril_dash.project.audit import AuditLog
from ril_dash.project.audit_files import Filters
from ril_dash.project.project import init_project
from tests.project.test_audit import write_in_processes

DAY = 86400.0


class Clock:
    def __init__(self, t: float = 1_780_000_000.0, step: float = 1.0) -> None:
        self.t, self.step = t, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def _line_bytes(log: AuditLog, i: int) -> int:
    return len(log.path.read_bytes().splitlines()[i]) + 1


def test_the_file_is_closed_when_the_next_line_would_pass_the_threshold(tmp_path):
    log = AuditLog(tmp_path / "audit.log.jsonl", clock=Clock(), rotate_bytes=1000)
    sizes = []
    for i in range(40):
        log.record("alice", "save", "P1/a.nii.gz", {"i": i})
        sizes.append(log.path.stat().st_size)
    files = log.files()
    assert files[-1] == log.path and len(files) > 3
    names = [f.name for f in files[:-1]]
    assert all(re.fullmatch(r"audit\.log\.\d{6}-\d{4}-\d{2}-\d{2}\.jsonl", n) for n in names)
    assert [int(n[10:16]) for n in names] == list(range(1, len(names) + 1))
    for f in files:
        size = f.stat().st_size
        assert 0 < size <= 1000
        assert oct(f.stat().st_mode & 0o777) == "0o600"
    line = _line_bytes(log, 0)
    # a closed file could not take one more line of its size
    assert all(f.stat().st_size + line > 1000 for f in files[:-1])
    # nothing lost, every file whole lines, in order
    seen = [json.loads(x)["detail"]["i"] for f in files for x in f.read_bytes().splitlines()]
    assert seen == list(range(40))


def test_rotation_at_the_exact_threshold(tmp_path):
    log = AuditLog(tmp_path / "audit.log.jsonl", clock=Clock(step=0), rotate_bytes=None)
    log.record("u", "save", None, {"i": 0})
    line = log.path.stat().st_size
    log.rotate_bytes = 2 * line
    log.record("u", "save", None, {"i": 1})  # exactly at the threshold: still one file
    assert log.files() == [log.path] and log.path.stat().st_size == 2 * line
    log.record("u", "save", None, {"i": 2})  # would pass it: the file is closed first
    assert len(log.files()) == 2 and log.path.stat().st_size == line


def test_old_lines_are_found_newest_first_across_files(tmp_path):
    log = AuditLog(tmp_path / "audit.log.jsonl", clock=Clock(), rotate_bytes=2000)
    for i in range(120):
        log.record(f"user{i % 3}", "save" if i % 2 else "login", f"P{i % 5}/ct.nii.gz",
                   {"i": i})
    assert len(log.files()) > 5
    assert [e["detail"]["i"] for e in log.read()] == list(range(119, -1, -1))
    assert [e["detail"]["i"] for e in log.read(user="user1", action="save")] == [
        i for i in range(119, -1, -1) if i % 3 == 1 and i % 2]
    assert log.read(user="user0", limit=1)[0]["detail"]["i"] == 117
    # the first entry, in the oldest file, is still found
    assert [e["detail"]["i"] for e in log.read(series="P0/ct.nii.gz")][-1] == 0
    # paging: pages join up into the whole history, with no entry twice
    got, before, pages = [], None, 0
    while True:
        page, before = log.page(Filters(series_contains="P2/"), 7, before)
        got += [e["detail"]["i"] for e in page]
        pages += 1
        if before is None:
            break
    assert got == [i for i in range(119, -1, -1) if i % 5 == 2] and pages == 4


def test_a_position_stays_valid_when_the_file_is_closed(tmp_path):
    log = AuditLog(tmp_path / "audit.log.jsonl", clock=Clock(), rotate_bytes=10_000)
    for i in range(10):
        log.record("u", "save", None, {"i": i})
    page, before = log.page(Filters(), 4)
    assert [e["detail"]["i"] for e in page] == [9, 8, 7, 6]
    log.rotate_bytes = 1  # the next line closes the file holding the position
    log.record("u", "save", None, {"i": 10})
    assert len(log.files()) == 2
    page, before = log.page(Filters(), 4, before)
    assert [e["detail"]["i"] for e in page] == [5, 4, 3, 2]


def test_since_stops_the_read_early(tmp_path, monkeypatch):
    clock = Clock(step=DAY)
    log = AuditLog(tmp_path / "audit.log.jsonl", clock=clock, rotate_bytes=1500)
    for i in range(60):
        log.record("u", "save", None, {"i": i})
    monkeypatch.setattr(audit_files, "BLOCK_BYTES", 512)
    opened = []
    real_open = open

    def spy(path, *a, **kw):
        opened.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(audit_files, "open", spy, raising=False)
    newest = log.read(limit=1)[0]["ts"]
    opened.clear()
    assert [e["detail"]["i"] for e in log.read(since=newest - 2.5 * DAY)] == [59, 58, 57]
    files = [str(f) for f in log.files()]
    assert len(files) > 4
    assert opened == files[-len(opened):] and len(opened) <= 2  # older files are not opened


def test_project_setting_sets_the_threshold(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    project = init_project(tmp_path / "proj", images)
    yaml = project.dir / "project.yaml"
    yaml.write_text(f"name: t\nimages: {images}\nsettings: {{audit_rotate_mb: 0.5}}\n")
    assert AuditLog.for_project(project.dir).rotate_bytes == 512 * 1024
    assert AuditLog.for_project(project.dir, rotate_mb=2).rotate_bytes == 2 * 1024**2
    assert AuditLog.for_project(tmp_path / "nowhere").rotate_bytes == 64 * 1024**2


def test_two_processes_writing_across_rotations_lose_no_line(tmp_path):
    path = tmp_path / "audit.log.jsonl"
    write_in_processes(path, ["w0", "w1"], 300, rotate_bytes=4096)
    log = AuditLog(path)
    files = log.files()
    assert len(files) > 10
    parsed = [json.loads(x) for f in files for x in f.read_bytes().splitlines()]
    assert len(parsed) == 600
    for u in ("w0", "w1"):
        assert [e["detail"]["i"] for e in parsed if e["user"] == u] == list(range(300))
        assert [e["detail"]["i"] for e in log.read(user=u)] == list(range(299, -1, -1))
    assert all(f.stat().st_size <= 4096 for f in files)
