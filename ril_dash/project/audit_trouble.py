"""What happens when an audit line cannot be written after a change was committed.

The audit line of a change is written once the change is saved (a new annotation version, a
workflow move, a user added, an export written...). If the log cannot be written then (the
project's disk is full, the file is not writable), the change stays saved and must never be
reported as failed. Instead:

- the caller's answer says :data:`WARNING` ("saved; the audit log could not be written"): the
  warning is added to the warnings collected for the current request or command
  (:func:`collecting`), which the web layer puts into its answer (a ``warning`` field of a JSON
  answer and a response header the browser shows);
- administrators are told until the log is writable again: a notice file
  (:data:`NOTICE_FILE`, next to the log) that the admin pages show, and an error line in the
  server's log. When the disk is so full that even the notice cannot be written, this process
  remembers the trouble and shows it all the same.

The next audit line written successfully removes the notice.

Examples
--------
>>> import tempfile, pathlib
>>> log_path = pathlib.Path(tempfile.mkdtemp()) / "audit.log.jsonl"
>>> with collecting() as warnings:
...     report_failure(log_path, OSError(28, "No space left on device"))
'saved; the audit log could not be written'
>>> warnings
['saved; the audit log could not be written']
>>> notice(log_path)["error"]
'[Errno 28] No space left on device'
>>> clear(log_path)
>>> notice(log_path) is None
True
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ril_dash.core.atomic_io import atomic_write_text

log = logging.getLogger(__name__)

#: what the answer of a saved change says when its audit line could not be written
WARNING = "saved; the audit log could not be written"
#: the notice for administrators, next to the audit log (removed once the log is writable)
NOTICE_FILE = "audit.unwritable.json"

_collected: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "ril_dash_audit_warnings", default=None)
_mutex = threading.Lock()
#: log path → notice, for the processes that could not even write the notice file
_remembered: dict[Path, dict] = {}


def notice_path(log_path: str | os.PathLike) -> Path:
    return Path(log_path).with_name(NOTICE_FILE)


@contextlib.contextmanager
def collecting() -> Iterator[list[str]]:
    """Collect the warnings of the audit lines written inside the block (one request)."""
    token = _collected.set([])
    try:
        yield _collected.get()
    finally:
        _collected.reset(token)


def start_collecting() -> list[str]:
    """Start a fresh collection for the current context (a web request); see
    :func:`collected`. Replaces whatever an earlier request on this thread left."""
    warnings: list[str] = []
    _collected.set(warnings)
    return warnings


def collected() -> list[str]:
    """The warnings collected so far in the current context (empty when none is active)."""
    return list(_collected.get() or [])


def report_failure(log_path: str | os.PathLike, error: BaseException) -> str:
    """Record that the audit log could not be written after a committed change: log it, tell
    the admins (notice file, or this process's memory) and add :data:`WARNING` to the current
    collection. Returns :data:`WARNING`."""
    log_path = Path(log_path)
    log.error("a change was saved but its audit line could not be written to %s: %s",
              log_path, error)
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    with _mutex:
        entry = _remembered.get(log_path) or {"since": now, "failures": 0}
        entry = {**entry, "last": now, "error": str(error), "failures": entry["failures"] + 1}
        _remembered[log_path] = entry
    try:
        if not notice_path(log_path).exists():
            atomic_write_text(notice_path(log_path), json.dumps(entry))
    except OSError as exc:
        log.error("could not write the notice %s either: %s", notice_path(log_path), exc)
    warnings = _collected.get()
    if warnings is not None and WARNING not in warnings:
        warnings.append(WARNING)
    return WARNING


def clear(log_path: str | os.PathLike) -> None:
    """The log was written again: remove the notice (cheap when there is none)."""
    log_path = Path(log_path)
    if _remembered:
        with _mutex:
            _remembered.pop(log_path, None)
    path = notice_path(log_path)
    if path.exists():
        try:
            path.unlink(missing_ok=True)
            log.warning("the audit log %s is writable again", log_path)
        except OSError as exc:
            log.error("could not remove the notice %s: %s", path, exc)


def notice(log_path: str | os.PathLike) -> dict | None:
    """The unresolved trouble with the audit log (``since``, ``error``...) or None."""
    log_path = Path(log_path)
    try:
        found = json.loads(notice_path(log_path).read_text(encoding="utf-8"))
        if not isinstance(found, dict):
            found = {"error": "unknown"}
    except FileNotFoundError:
        found = None
    except (OSError, ValueError) as exc:
        found = {"error": f"unreadable notice: {exc}"}
    return found or _remembered.get(log_path)


def notice_text(log_path: str | os.PathLike) -> str | None:
    """The sentence shown to administrators, or None when the audit log is fine."""
    trouble = notice(log_path)
    if trouble is None:
        return None
    since = trouble.get("since")
    since = f" since {str(since)[:19].replace('T', ' ')}" if since else ""
    return (f"The audit log ({Path(log_path).name} in the project folder) could not be "
            f"written{since}: {trouble.get('error', 'unknown error')}. Changes are saved but "
            f"not audited. Free space on the project's disk or make the file writable by the "
            f"server; this notice goes away with the next audit line written.")
