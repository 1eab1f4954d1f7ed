"""Append-only audit log of a project (``<project>/audit.log.jsonl``), one JSON object a line.

Every append happens under a :class:`filelock.FileLock` (``audit.log.jsonl.lock``) and is flushed
and fsynced, so several server processes can log at once. A file is never rewritten; a line
torn by a crash is skipped when reading (and the next append starts on a fresh line). Fields are
stored as data: HTML or script in a user name or detail is never interpreted here.

When an append would make the file larger than ``rotate_bytes`` (project.yaml's
``settings.audit_rotate_mb``, 64 MB by default), the file is first closed, under the same lock,
by renaming it ``audit.log.<number>-<date>.jsonl`` (see :mod:`.audit_files`); closed files stay
next to it (mode 0600) and are read like the rest. Reading goes newest first from the end of the
files and stops at the limit, so the newest page of a long history comes back at once
(:meth:`AuditLog.page`, the audit page's query).

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
from ril_dash.core.atomic_io import fsync_dir
from ril_dash.errors import RilDashError, StorageError
from ril_dash.project import audit_trouble
from ril_dash.project.audit_files import Filters, LogFile, Position, closed_name, files_of, scan
from ril_dash.project.schema import DEFAULT_AUDIT_ROTATE_MB, load_project_config

FILENAME = "audit.log.jsonl"

#: Usual actions; any other non-empty text is accepted too.
ACTIONS = ("login", "logout", "lock", "unlock", "break_lock", "transition", "save", "export",
           "import", "roi_change", "text_change", "undo", "redo", "rollback",
           "repair")


def _to_epoch(value: Any) -> float:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return value.timestamp()
    return float(value)


class AuditLog:
    """Append-only JSON Lines log: ``record`` audits a committed change (``write`` appends),
    ``read`` and ``page`` filter, newest first, across the rotated files."""

    def __init__(self, path: str | os.PathLike, *, clock: Callable[[], float] = time.time,
                 lock_timeout: float = 30.0,
                 rotate_bytes: int | None = DEFAULT_AUDIT_ROTATE_MB * 1024**2) -> None:
        self.path = Path(path)
        self.clock = clock
        self.lock_timeout = lock_timeout
        #: the size past which the file is closed and a new one started (None: never)
        self.rotate_bytes = rotate_bytes
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @classmethod
    def for_project(cls, project_folder: str | os.PathLike, rotate_mb: float | None = None,
                    **kw: Any) -> AuditLog:
        """The log of a project; ``rotate_mb`` default: project.yaml's
        ``settings.audit_rotate_mb`` (64 MB when it cannot be read)."""
        if rotate_mb is None:
            try:
                rotate_mb = load_project_config(project_folder).audit_rotate_mb
            except (RilDashError, OSError):
                rotate_mb = DEFAULT_AUDIT_ROTATE_MB
        return cls(Path(project_folder) / FILENAME, rotate_bytes=int(rotate_mb * 1024**2), **kw)

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
        fh = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self._lock_path), timeout=self.lock_timeout):
                self._rotate_if_full(len(data), now)
                fh = open(open_private(self.path, os.O_WRONLY | os.O_APPEND), "ab")
                size = fh.seek(0, os.SEEK_END)
                if size and not self._ends_with_newline(size):
                    data = b"\n" + data  # a crash tore the last line: start a fresh one
                fh.write(data)
                fh.flush()
            # The lock (one for every user and process) only orders the lines: the sync waits
            # outside it, so writers' syncs overlap (the journal commits them together) instead
            # of queueing one after another. The line is on disk when this returns, even if the
            # file was rotated meanwhile (the descriptor still names it).
            os.fsync(fh.fileno())
        except Timeout as exc:
            raise StorageError(f"the audit log {self.path} is locked for more than "
                               f"{self.lock_timeout} s") from exc
        except OSError as exc:
            raise StorageError(f"could not write the audit log {self.path}: {exc}") from exc
        finally:
            if fh is not None:
                fh.close()

    def _rotate_if_full(self, adding: int, now: float) -> None:
        """Close the file (rename it to its numbered name) if ``adding`` bytes would take it
        past :attr:`rotate_bytes`. Called under the lock."""
        if self.rotate_bytes is None:
            return
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return
        if size == 0 or size + adding <= self.rotate_bytes:
            return
        number = files_of(self.path)[-1].number
        os.rename(self.path, closed_name(self.path, number, now))
        fsync_dir(self.path.parent)

    def _ends_with_newline(self, size: int) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) == b"\n"

    def files(self) -> list[Path]:
        """The files of the log, oldest first (closed ones, then the one being written)."""
        return [f.path for f in files_of(self.path)]

    def _listing(self) -> list[LogFile]:
        """The files as of now: listed under the lock (briefly), so that a rotation happening
        at the same time is not half seen; without it if the lock is busy."""
        try:
            with FileLock(str(self._lock_path), timeout=min(self.lock_timeout, 2.0)):
                return files_of(self.path)
        except (Timeout, OSError):
            return files_of(self.path)

    def page(self, filters: Filters, limit: int, before: Position | None = None
             ) -> tuple[list[dict[str, Any]], Position | None]:
        """Up to ``limit`` entries matching ``filters``, newest first, older than ``before``
        (a position returned by the previous page); returns them and the position to ask for
        the next (older) page: None when the history was read to its start. The scan stops at
        the ``limit``-th match, so a full page may be followed by an empty one."""
        out: list[dict[str, Any]] = []
        if limit <= 0:
            return out, before
        try:
            for entry, position in scan(self.path, filters, before, self._listing()):
                out.append(entry)
                if len(out) == limit:
                    return out, position
        except OSError as exc:
            raise StorageError(f"could not read the audit log {self.path}: {exc}") from exc
        return out, None

    def read(self, user: str | None = None, action: str | None = None,
             series: str | None = None, since: Any = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """Entries matching every given filter, newest first (``since``: epoch or datetime),
        from every file of the log."""
        filters = Filters(user=user, action=action, series=series,
                          since=None if since is None else _to_epoch(since))
        if limit is not None:
            return self.page(filters, limit)[0]
        try:
            return [entry for entry, _ in scan(self.path, filters, None, self._listing())]
        except OSError as exc:
            raise StorageError(f"could not read the audit log {self.path}: {exc}") from exc
