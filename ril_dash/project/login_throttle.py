"""Failed-login counts shared by every server process of one project.

The counts live in ``<project>/.sessions/login_failures.json`` (the sessions folder, mode 0700;
the file is written atomically with mode 0600) and every read-modify-write holds the file lock
``login_failures.json.lock``, so N server processes count together instead of giving N times
the tries. Only writes take the lock: the file is always replaced whole (never written in
place), so :meth:`LoginThrottle.retry_at` reads it without one, and :meth:`LoginThrottle.clear`
takes the lock only when the key has failures on record. A successful login of a user with no
recent failures, the common case, therefore never waits on other logins (a burst of a hundred
logins on several processes used to queue on that lock).

Two kinds of keys are counted (the web layer builds them with :func:`login_keys`):

- ``pair:<user>|<address>``: a user name tried from one address, refused after ``max_failures``
  (5) within ``window`` (5 minutes). Someone guessing from another address therefore cannot
  lock a user out of their own address.
- ``addr:<address>``: every user name tried from one address, refused after
  ``max_address_failures`` (20) within the window, so one address cannot spray many names.

A successful login clears only its ``pair`` key. Keys are stored as sha256 digests (user names
and addresses do not end up in the file) and at most ``max_keys`` are kept, oldest dropped.

Examples
--------
>>> import tempfile
>>> t = [1000.0]
>>> throttle = LoginThrottle(tempfile.mkdtemp(), clock=lambda: t[0])
>>> keys = login_keys("root", "10.0.0.9")
>>> for _ in range(5):
...     throttle.failed(keys)
>>> throttle.retry_at(keys)
1300.0
>>> throttle.retry_at(login_keys("root", "10.0.0.7")) is None
True
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import atomic_write_text
from ril_dash.errors import StorageError

FILE_NAME = "login_failures.json"
FORMAT = 1
MAX_FAILURES = 5
MAX_ADDRESS_FAILURES = 20
FAILURE_WINDOW = 300.0
MAX_KEYS = 10_000
LOCK_TIMEOUT = 10.0
#: a larger file is treated as empty (it holds at most ``MAX_KEYS`` short lists)
MAX_FILE_BYTES = 8 * 1024 * 1024


def login_keys(user: str, address: str) -> tuple[str, str]:
    """The keys counted for a login of ``user`` from ``address``: (pair key, address key)."""
    return f"pair:{user.casefold()}|{address}", f"addr:{address}"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class LoginThrottle:
    """Failed logins per key, kept in ``folder`` and shared between processes."""

    def __init__(self, folder: str | os.PathLike, *, max_failures: int = MAX_FAILURES,
                 max_address_failures: int = MAX_ADDRESS_FAILURES,
                 window: float = FAILURE_WINDOW, clock: Callable[[], float] = time.time,
                 max_keys: int = MAX_KEYS) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self.max_failures, self.max_address_failures = max_failures, max_address_failures
        self.window, self.clock, self.max_keys = float(window), clock, max_keys

    def limit_of(self, key: str) -> int:
        return self.max_address_failures if key.startswith("addr:") else self.max_failures

    def retry_at(self, keys: Iterable[str]) -> float | None:
        """When the most restricted of ``keys`` may try again, or None if none is refused."""
        failures = self._read_unlocked()
        latest = None
        for key in keys:
            times = failures.get(_digest(key), [])
            limit = self.limit_of(key)
            if len(times) >= limit:
                at = times[-limit] + self.window
                latest = at if latest is None else max(latest, at)
        return latest

    def failed(self, keys: Iterable[str]) -> None:
        """Count one failed login for each of ``keys``."""
        keys = list(keys)
        with self._state(write=True) as (failures, now):
            for key in keys:
                digest = _digest(key)
                times = failures.pop(digest, [])  # re-inserted last: the newest key
                failures[digest] = (times + [now])[-self.limit_of(key):]
            while len(failures) > self.max_keys:
                failures.pop(next(iter(failures)))

    def clear(self, key: str) -> None:
        """Forget the failures of ``key`` (after a successful login).

        Nothing is locked or written when ``key`` has no recent failures on record. A failure
        counted by another process just after that look is kept, as it would be had it come
        just after the clearing."""
        digest = _digest(key)
        if digest not in self._read_unlocked():
            return
        with self._state(write=True) as (failures, _):
            failures.pop(digest, None)

    # -- internals ---------------------------------------------------------------------------
    @contextmanager
    def _state(self, write: bool = False) -> Iterator[tuple[dict[str, list[float]], float]]:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT, mode=0o600):
                now = float(self.clock())
                failures = self._read(now)
                yield failures, now
                if write:
                    record = {"format": FORMAT, "failures": failures}
                    atomic_write_text(self.path, json.dumps(record, separators=(",", ":")))
                    os.chmod(self.path, 0o600)
        except Timeout:
            raise StorageError(f"the login-failure counts in {self.path} are locked for more "
                               f"than {LOCK_TIMEOUT:g} s; try again") from None
        except OSError as exc:
            raise StorageError(f"cannot keep the login-failure counts in {self.path}: "
                               f"{exc.strerror or exc}") from None

    def _read_unlocked(self) -> dict[str, list[float]]:
        """The recent failures as :meth:`_read` gives them, read without the lock (the file is
        only ever replaced whole, so this sees one complete version of it)."""
        try:
            return self._read(float(self.clock()))
        except OSError as exc:
            raise StorageError(f"cannot read the login-failure counts in {self.path}: "
                               f"{exc.strerror or exc}") from None

    def _read(self, now: float) -> dict[str, list[float]]:
        """The recent failures (within the window) per key digest; a missing or damaged file
        counts as none; a file that cannot be read raises OSError."""
        try:
            if self.path.stat().st_size > MAX_FILE_BYTES:
                return {}
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):  # missing or damaged
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT \
                or not isinstance(data.get("failures"), dict):
            return {}
        raw = data["failures"]
        out: dict[str, list[float]] = {}
        for digest, times in raw.items():
            if not isinstance(times, list):
                continue
            recent = [float(t) for t in times if isinstance(t, (int, float))
                      and not isinstance(t, bool) and 0 <= now - t < self.window]
            if recent:
                out[digest] = recent
        return out
