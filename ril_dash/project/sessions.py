"""Login sessions shared by every server process of one project (``<project>/.sessions/``).

One small JSON file per session, ``<sha256 of the token>.json`` (``{"format", "user",
"created", "stamp"}``), in a folder of mode 0700; files are written atomically with mode 0600.
The raw token lives only in the browser's cookie, so reading the folder does not let anyone
log in. A session's *last use* is the file's modification time: :meth:`SessionStore.lookup`
moves it forward with ``os.utime`` (at most once a minute), which needs no lock and can never
bring back a session that another process has just deleted (``utime`` of a missing file fails).

A session ends after an absolute lifetime (default 12 h) or when unused for the idle time
(default 2 h). Malformed, foreign or unreadable files count as no session. ``stamp`` is free
text chosen by the caller (the web layer stores a fingerprint of the user's password hash, so
changing a password ends that user's sessions everywhere).

Examples
--------
>>> import tempfile, pathlib
>>> t = [1000.0]
>>> store = SessionStore(pathlib.Path(tempfile.mkdtemp()) / ".sessions", clock=lambda: t[0])
>>> token = store.create("alice")
>>> store.lookup(token).user
'alice'
>>> t[0] += 3 * 3600               # unused for 3 hours: expired
>>> store.lookup(token) is None
True
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ril_dash.core.atomic_io import commit_temp, private_dir, temp_path_for
from ril_dash.errors import StorageError

SESSIONS_DIR = ".sessions"
FORMAT = 1
DEFAULT_LIFETIME = 12 * 3600.0
DEFAULT_IDLE = 2 * 3600.0
#: last use is written at most this often (seconds)
TOUCH_INTERVAL = 60.0
#: temp files of interrupted writes older than this are removed by ``purge_expired``
STALE_TEMP_SECONDS = 3600.0
MAX_TOKEN_LENGTH = 256
MAX_FILE_BYTES = 4096

_FILE_RE = re.compile(r"[0-9a-f]{64}\.json")


@dataclass(frozen=True)
class Session:
    """A logged-in user's session (times in seconds since the epoch)."""

    user: str
    created: float
    last_seen: float
    stamp: str = ""


def token_id(token: str) -> str:
    """The file name stem of ``token``'s session: its sha256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore:
    """Server-side sessions in one folder, safe to share between processes."""

    def __init__(self, folder: str | os.PathLike, *, lifetime: float = DEFAULT_LIFETIME,
                 idle: float = DEFAULT_IDLE, touch_interval: float = TOUCH_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self.lifetime = float(lifetime)
        self.idle = float(idle)
        self.touch_interval = float(touch_interval)
        self.clock = clock

    @classmethod
    def for_project(cls, project_dir: str | os.PathLike, **kw) -> SessionStore:
        return cls(Path(project_dir) / SESSIONS_DIR, **kw)

    # -- public ------------------------------------------------------------------------------
    def create(self, user: str, stamp: str = "") -> str:
        """Start a session for ``user``; return its new random token (for the cookie only)."""
        if not isinstance(user, str) or not user:
            raise ValueError("a session needs a user name")
        token = secrets.token_urlsafe(32)
        now = float(self.clock())
        record = {"format": FORMAT, "user": user, "created": now, "stamp": str(stamp)}
        self._ensure_folder()
        path = self._path(token)
        try:
            temp = temp_path_for(path)  # mkstemp: mode 0600
        except OSError as exc:
            raise StorageError(f"cannot write a session in {self.folder}: "
                               f"{exc.strerror or exc}") from None
        try:
            os.chmod(temp, 0o600)
            with open(temp, "w", encoding="utf-8") as fh:
                json.dump(record, fh)
            os.utime(temp, (now, now))  # last use = creation
            commit_temp(temp, path)
        except OSError as exc:
            Path(temp).unlink(missing_ok=True)
            raise StorageError(f"cannot write a session in {self.folder}: "
                               f"{exc.strerror or exc}") from None
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return token

    def lookup(self, token: object) -> Session | None:
        """The live session of ``token``, or None (unknown, expired, malformed)."""
        if not _token_ok(token):
            return None
        path = self._path(token)  # type: ignore[arg-type]
        session = self._read(path)
        if session is None:
            return None
        now = float(self.clock())
        if self._expired(session, now):
            _unlink(path)
            return None
        if now - session.last_seen >= self.touch_interval:
            try:
                os.utime(path, (now, now))
            except OSError:
                return None  # deleted meanwhile (logout in another process)
            session = Session(session.user, session.created, now, session.stamp)
        return session

    def delete(self, token: object) -> None:
        """End ``token``'s session (nothing happens for an unknown token)."""
        if _token_ok(token):
            _unlink(self._path(token))  # type: ignore[arg-type]

    def delete_user(self, user: str) -> int:
        """End every session of ``user`` (a removed user, a changed password); return how many."""
        count = 0
        for path, session in self._sessions():
            if session is not None and session.user == user:
                count += _unlink(path)
        return count

    def purge_expired(self) -> int:
        """Delete expired and malformed session files (and stale temp files); return how many."""
        now = float(self.clock())
        count = 0
        for path, session in self._sessions():
            if session is None or self._expired(session, now):
                count += _unlink(path)
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return count
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".json"):
                try:
                    if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
                        count += _unlink(Path(entry.path))
                except OSError:
                    pass
        return count

    def users(self) -> dict[str, int]:
        """Live sessions per user."""
        now = float(self.clock())
        out: dict[str, int] = {}
        for _, session in self._sessions():
            if session is not None and not self._expired(session, now):
                out[session.user] = out.get(session.user, 0) + 1
        return out

    # -- internals ---------------------------------------------------------------------------
    def _path(self, token: str) -> Path:
        return self.folder / (token_id(token) + ".json")

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.created >= self.lifetime or now - session.last_seen >= self.idle

    def _ensure_folder(self) -> None:
        try:
            private_dir(self.folder)
        except OSError as exc:
            raise StorageError(f"cannot create the sessions folder {self.folder}: "
                               f"{exc.strerror or exc}") from None

    def _sessions(self) -> Iterator[tuple[Path, Session | None]]:
        try:
            names = [e.name for e in os.scandir(self.folder)]
        except OSError:
            return
        for name in names:
            if _FILE_RE.fullmatch(name):
                path = self.folder / name
                yield path, self._read(path)

    @staticmethod
    def _read(path: Path) -> Session | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as fh:
                st = os.fstat(fh.fileno())
                if st.st_size > MAX_FILE_BYTES or not stat.S_ISREG(st.st_mode):
                    return None
                data = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        user, created, stamp = data.get("user"), data.get("created"), data.get("stamp", "")
        if not isinstance(user, str) or not user or not isinstance(stamp, str):
            return None
        if isinstance(created, bool) or not isinstance(created, (int, float)) \
                or not math.isfinite(created):
            return None
        return Session(user, float(created), float(st.st_mtime), stamp)


def _token_ok(token: object) -> bool:
    return isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_LENGTH


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except OSError:
        return 0
