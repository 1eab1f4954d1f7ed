"""Append-only audit log of a project (``<project>/audit.log.jsonl``), one JSON object a line.

Every append happens under a :class:`filelock.FileLock` (``audit.log.jsonl.lock``) and is flushed
and fsynced, so several server processes can log at once. The file is never rewritten; a line
torn by a crash is skipped when reading (and the next append starts on a fresh line). Fields are
stored as data: HTML or script in a user name or detail is never interpreted here.

Examples
--------
>>> import tempfile, pathlib
>>> log = AuditLog(pathlib.Path(tempfile.mkdtemp()) / "audit.log.jsonl")
>>> log.record("alice", "login")
>>> log.record("alice", "save", series="P1/ct.nii.gz", detail={"version": 3})
>>> [e["action"] for e in log.read()]
['save', 'login']
>>> log.read(action="save")[0]["detail"]
{'version': 3}
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import open_private
from ril_dash.errors import StorageError
from ril_dash.project import audit_trouble

FILENAME = "audit.log.jsonl"

#: Usual actions; any other non-empty text is accepted too.
ACTIONS = ("login", "logout", "lock", "unlock", "break_lock", "transition", "save", "export",
           "import", "roi_change", "text_change", "undo", "redo", "rollback")


def _to_epoch(value: Any) -> float:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return value.timestamp()
    return float(value)


class AuditLog:
    """Append-only JSON Lines log; ``record`` appends, ``read`` filters (newest first)."""

    def __init__(self, path: str | os.PathLike, *, clock: Callable[[], float] = time.time,
                 lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.clock = clock
        self.lock_timeout = lock_timeout
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @classmethod
    def for_project(cls, project_folder: str | os.PathLike, **kw: Any) -> AuditLog:
        return cls(Path(project_folder) / FILENAME, **kw)

    def record(self, user: str, action: str, series: str | None = None,
               detail: Any = None) -> str | None:
        """Audit a change that is already committed: :meth:`write` the entry; if the log cannot
        be written, the change is not undone and not reported as failed: the failure is logged
        and shown to admins, and the warning "saved; the audit log could not be written" is
        returned and added to the current request's warnings (see :mod:`.audit_trouble`).
        Returns None when the line was written."""
        try:
            self.write(user, action, series, detail)
        except StorageError as exc:
            return audit_trouble.report_failure(self.path, exc)
        audit_trouble.clear(self.path)
        return None

    def trouble(self) -> str | None:
        """The administrators' notice when audit lines could not be written, else None."""
        return audit_trouble.notice_text(self.path)

    def write(self, user: str, action: str, series: str | None = None,
              detail: Any = None) -> None:
        """Append one entry ``{"ts", "time", "user", "action", "series", "detail"}``; raises
        StorageError when the log cannot be written."""
        if not isinstance(action, str) or not action.strip():
            raise ValueError("an audit entry needs an action")
        now = float(self.clock())
        entry = {"ts": now,
                 "time": _dt.datetime.fromtimestamp(now).astimezone().isoformat(
                     timespec="seconds"),
                 "user": None if user is None else str(user),
                 "action": action,
                 "series": None if series is None else str(series),
                 "detail": detail}
        line = json.dumps(entry, ensure_ascii=False, default=str, sort_keys=True)
        data = line.encode("utf-8") + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self._lock_path), timeout=self.lock_timeout), \
                    open(open_private(self.path, os.O_WRONLY | os.O_APPEND), "ab") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size and not self._ends_with_newline(size):
                    data = b"\n" + data  # a crash tore the last line: start a fresh one
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except Timeout as exc:
            raise StorageError(f"the audit log {self.path} is locked for more than "
                               f"{self.lock_timeout} s") from exc
        except OSError as exc:
            raise StorageError(f"could not write the audit log {self.path}: {exc}") from exc

    def _ends_with_newline(self, size: int) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) == b"\n"

    def read(self, user: str | None = None, action: str | None = None,
             series: str | None = None, since: Any = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """Entries matching every given filter, newest first (``since``: epoch or datetime)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"could not read the audit log {self.path}: {exc}") from exc
        t0 = None if since is None else _to_epoch(since)
        out: list[dict[str, Any]] = []
        if limit is not None and limit <= 0:
            return out
        for chunk in reversed(raw.split(b"\n")):
            if not chunk.strip():
                continue
            try:
                entry = json.loads(chunk.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue  # torn or damaged line
            if not isinstance(entry, dict):
                continue
            if user is not None and entry.get("user") != user:
                continue
            if action is not None and entry.get("action") != action:
                continue
            if series is not None and entry.get("series") != series:
                continue
            if t0 is not None:
                try:
                    if float(entry.get("ts")) < t0:
                        continue
                except (TypeError, ValueError):
                    continue
            out.append(entry)
            if limit is not None and len(out) >= limit:
                break
        return out
