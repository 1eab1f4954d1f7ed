"""Series locks (leases): who is editing which series, shared by every server on one project.

A lease is a small JSON file ``<root>/.locks/<series id>.lock.json`` written atomically. Every
read-modify-write of it happens under a :class:`filelock.FileLock` on a per-series lock file
(``<series id>.lock.json.flock`` beside it), so two server processes, or two servers on one share,
never both believe they hold a series. A lease lasts ``lease_seconds`` unless renewed; a crashed
holder is therefore simply forgotten once its lease expires (the OS drops its file lock at once).

An administrator may break a lease; the file then records who broke it and whose lease it was.

Examples
--------
>>> import tempfile, pathlib
>>> t = [1000.0]
>>> locks = SeriesLocks(pathlib.Path(tempfile.mkdtemp()), lease_seconds=60, clock=lambda: t[0])
>>> lease = locks.acquire("P1/ST1/ct.nii.gz", "alice", "ws1", 42)
>>> locks.holder("P1/ST1/ct.nii.gz").user
'alice'
>>> try:
...     locks.acquire("P1/ST1/ct.nii.gz", "bob", "ws2", 7)
... except LockHeld as exc:
...     "being edited by alice" in str(exc)
True
>>> t[0] += 61                      # alice's lease expired: the series is free again
>>> locks.holder("P1/ST1/ct.nii.gz") is None
True
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import atomic_write_text
from ril_dash.errors import LockHeld, SeriesNotFound, StorageError

LOCK_DIR = ".locks"
SUFFIX = ".lock.json"
FLOCK_SUFFIX = ".flock"
FORMAT = 1


@dataclass(frozen=True)
class Lease:
    """One user's claim on one series, valid until ``expires_at`` (seconds since the epoch)."""

    series_id: str
    user: str
    host: str
    pid: int
    acquired_at: float
    renewed_at: float
    expires_at: float
    token: str

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def same_owner(self, user: str, host: str, pid: int) -> bool:
        return self.user == user and self.host == host and int(self.pid) == int(pid)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lease:
        return cls(series_id=str(data["series_id"]), user=str(data["user"]),
                   host=str(data["host"]), pid=int(data["pid"]),
                   acquired_at=float(data["acquired_at"]), renewed_at=float(data["renewed_at"]),
                   expires_at=float(data["expires_at"]), token=str(data["token"]))


def _fmt(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def validate_series_id(series_id: str) -> str:
    """Return ``series_id`` if it is a safe relative id, else raise :class:`SeriesNotFound`.

    >>> validate_series_id("P1/ST1/ct.nii.gz")
    'P1/ST1/ct.nii.gz'
    >>> validate_series_id("../etc/passwd")
    Traceback (most recent call last):
    ...
    ril_dash.errors.SeriesNotFound: '../etc/passwd' is not a valid series id
    """
    if not isinstance(series_id, str):
        raise SeriesNotFound(f"{series_id!r} is not a valid series id")
    parts = series_id.split("/")
    if (not series_id or "\\" in series_id or "\0" in series_id or series_id.startswith("/")
            or os.path.isabs(series_id) or ".." in series_id
            or any(p in ("", ".") for p in parts)):
        raise SeriesNotFound(f"{series_id!r} is not a valid series id")
    return series_id


class SeriesLocks:
    """Leases on series, stored under ``<root>/.locks/``; safe across processes and hosts."""

    def __init__(self, root: str | os.PathLike, lease_seconds: float = 120,
                 clock: Callable[[], float] = time.time, *, lock_timeout: float = 10.0) -> None:
        self.root = Path(root)
        self.dir = self.root / LOCK_DIR
        self.lease_seconds = float(lease_seconds)
        self.clock = clock
        self.lock_timeout = lock_timeout

    # ------------------------------------------------------------------ public API
    def acquire(self, series_id: str, user: str, host: str, pid: int) -> Lease:
        """Take (or, for the same user/host/pid, renew) the lease on ``series_id``.

        Raises :class:`LockHeld` when another live lease exists.
        """
        if not user:
            raise ValueError("a lease needs a user name")
        with self._locked(series_id) as path:
            now = float(self.clock())
            cur = self._read_lease(path)
            if cur is not None and not cur.expired(now):
                if cur.same_owner(user, host, pid):
                    return self._write(path, replace(cur, renewed_at=now,
                                                     expires_at=now + self.lease_seconds))
                raise LockHeld(self.held_message(cur))
            lease = Lease(series_id=series_id, user=str(user), host=str(host), pid=int(pid),
                          acquired_at=now, renewed_at=now, expires_at=now + self.lease_seconds,
                          token=uuid.uuid4().hex)
            return self._write(path, lease)

    def renew(self, lease: Lease) -> Lease:
        """Extend ``lease``; raises :class:`LockHeld` if it was broken, released or taken over."""
        with self._locked(lease.series_id) as path:
            now = float(self.clock())
            data = self._read(path)
            cur = self._lease_of(data)
            if cur is not None and cur.token == lease.token:
                # Still ours (even if it lapsed, nobody has taken it since).
                return self._write(path, replace(cur, renewed_at=now,
                                                 expires_at=now + self.lease_seconds))
            if cur is not None and not cur.expired(now):
                raise LockHeld(self.held_message(cur))
            broken = (data or {}).get("broken")
            if broken and (broken.get("previous") or {}).get("token") == lease.token:
                raise LockHeld(f"your lock on {lease.series_id} was broken by "
                               f"{broken.get('by')} at {_fmt(float(broken.get('at', now)))}; "
                               "reopen the series to edit it again")
            raise LockHeld(f"your lock on {lease.series_id} is no longer held; "
                           "reopen the series to edit it again")

    def release(self, lease: Lease) -> None:
        """Give ``lease`` up; does nothing if it is no longer the current lease."""
        with self._locked(lease.series_id) as path:
            cur = self._read_lease(path)
            if cur is not None and cur.token == lease.token:
                try:
                    path.unlink()
                except FileNotFoundError:  # pragma: no cover - we hold the file lock
                    pass

    def holder(self, series_id: str) -> Lease | None:
        """The live lease on ``series_id``, or ``None`` (expired leases count as free)."""
        path = self._path(series_id)
        cur = self._read_lease(path)
        if cur is None or cur.expired(float(self.clock())):
            return None
        return cur

    def break_lock(self, series_id: str, admin_user: str) -> Lease | None:
        """Remove any lease on ``series_id``, recording who broke it; returns the broken lease."""
        if not admin_user:
            raise ValueError("break_lock needs the administrator's user name")
        with self._locked(series_id) as path:
            now = float(self.clock())
            cur = self._read_lease(path)
            record = {"format": FORMAT, "series_id": series_id, "lease": None,
                      "broken": {"by": str(admin_user), "at": now,
                                 "previous": cur.to_json() if cur is not None else None}}
            self._dump(path, record)
            return cur

    def broken_info(self, series_id: str) -> dict[str, Any] | None:
        """``{"by", "at", "previous"}`` if the last event on ``series_id`` was a broken lock."""
        data = self._read(self._path(series_id))
        return (data or {}).get("broken") if data and data.get("lease") is None else None

    def all(self) -> list[Lease]:
        """Every live lease, sorted by series id."""
        if not self.dir.is_dir():
            return []
        now = float(self.clock())
        out = []
        for p in self.dir.rglob("*" + SUFFIX):
            lease = self._read_lease(p)
            if lease is not None and not lease.expired(now):
                out.append(lease)
        return sorted(out, key=lambda l: l.series_id)

    # ------------------------------------------------------------------ internals
    def _path(self, series_id: str) -> Path:
        validate_series_id(series_id)
        path = self.dir / (series_id + SUFFIX)
        if not path.resolve().is_relative_to(self.dir.resolve()):
            raise SeriesNotFound(f"series {series_id!r} resolves outside the lock folder")
        return path

    @contextmanager
    def _locked(self, series_id: str) -> Iterator[Path]:
        path = self._path(series_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the lock folder {path.parent}: {exc}") from exc
        try:
            with FileLock(str(path) + FLOCK_SUFFIX, timeout=self.lock_timeout):
                yield path
        except Timeout as exc:
            raise StorageError(f"the lock of {series_id} is busy for more than "
                               f"{self.lock_timeout} s; try again") from exc

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable lease: treat as free (it is rewritten atomically)
        return data if isinstance(data, dict) else None

    @staticmethod
    def _lease_of(data: dict[str, Any] | None) -> Lease | None:
        if not data or not isinstance(data.get("lease"), dict):
            return None
        try:
            return Lease.from_json(data["lease"])
        except (KeyError, TypeError, ValueError):
            return None

    def _read_lease(self, path: Path) -> Lease | None:
        return self._lease_of(self._read(path))

    def _write(self, path: Path, lease: Lease) -> Lease:
        self._dump(path, {"format": FORMAT, "series_id": lease.series_id,
                          "lease": lease.to_json()})
        return lease

    @staticmethod
    def _dump(path: Path, record: dict[str, Any]) -> None:
        try:
            atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True))
        except OSError as exc:
            raise StorageError(f"could not write the lock file {path}: {exc}") from exc

    @staticmethod
    def held_message(cur: Lease) -> str:
        return (f"{cur.series_id} is being edited by {cur.user} since {_fmt(cur.acquired_at)} "
                f"(until {_fmt(cur.expires_at)}) on host {cur.host}")


_CHILD = """
import sys
from filelock import FileLock, Timeout
try:
    FileLock(sys.argv[1], timeout=0).acquire()
except Timeout:
    sys.exit(3)
sys.exit(0)
"""


def check_locking_works(folder: str | os.PathLike) -> str | None:
    """Check that ``folder`` honours file locks, hard links and ``O_EXCL``.

    Returns ``None`` when it does, else a sentence explaining what does not work (to show at
    startup: without working locks two servers could overwrite each other's annotations).
    Only processes on this host are tested; a share must also honour locks between hosts.

    >>> import tempfile
    >>> check_locking_works(tempfile.mkdtemp()) is None
    True
    """
    folder = Path(folder)
    tag = f".ril-lockcheck-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    lock_path = folder / (tag + ".lock")
    a, b, c = folder / (tag + ".a"), folder / (tag + ".b"), folder / (tag + ".c")
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create {folder}: {exc}"
        # 1. file locks are seen by another process
        try:
            with FileLock(str(lock_path), timeout=5):
                try:
                    rc = subprocess.run([sys.executable, "-c", _CHILD, str(lock_path)],
                                        timeout=60, capture_output=True, check=False).returncode
                except (OSError, subprocess.SubprocessError) as exc:
                    return f"could not start a process to test file locks in {folder}: {exc}"
                if rc == 0:
                    return (f"file locks do not work in {folder}: another process took a lock "
                            "that this process holds; use a local disk or a share that supports "
                            "locking (e.g. NFSv4 with locking enabled)")
                if rc != 3:
                    return f"testing file locks in {folder} failed (child exit status {rc})"
        except Timeout:
            return f"cannot take a file lock in {folder}"
        except OSError as exc:
            return f"file locks do not work in {folder}: {exc}"
        # 2. hard links
        try:
            a.write_bytes(b"x")
            os.link(a, b)
            if b.read_bytes() != b"x" or os.stat(a).st_nlink < 2:
                return f"hard links do not work properly in {folder}"
        except OSError as exc:
            return f"hard links (os.link) do not work in {folder}: {exc}"
        # 3. exclusive create
        try:
            fd = os.open(c, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
        except OSError as exc:
            return f"exclusive file creation (O_EXCL) does not work in {folder}: {exc}"
        try:
            fd = os.open(c, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pass
        except OSError as exc:
            return f"exclusive file creation (O_EXCL) does not work in {folder}: {exc}"
        else:
            os.close(fd)
            return f"exclusive file creation (O_EXCL) is not honoured in {folder}"
        return None
    finally:
        for p in (lock_path, a, b, c):
            try:
                p.unlink()
            except OSError:
                pass
