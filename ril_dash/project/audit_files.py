"""The files of a rotated audit log, and reading them newest first from their ends.

The log being written is ``audit.log.jsonl``; when it would grow past its size limit it is
renamed ``audit.log.<number>-<date>.jsonl`` (``audit.log.000001-2026-12-01.jsonl``: the first
file, closed on 1 December 2026) and a new ``audit.log.jsonl`` is started. Closed files are
never changed again. Each file has a sequence number: a closed one the number in its name, the
file being written the next one, which it keeps once it is closed; so a position (number, byte
offset) in the history stays valid across rotations.

:func:`scan` reads the history backwards from a position, block by block from the end of each
file, and stops as soon as the caller stops (a page of the audit page is found), so the newest
entries come back at once however long the history. With a user, action or series filter the
blocks are searched for the filter's bytes first and only the lines holding them are parsed.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> log = folder / "audit.log.jsonl"
>>> _ = log.write_bytes(b'{"action": "login", "ts": 1, "user": "a"}\\n')
>>> _ = closed_name(log, 1, 0.0)  # the name the file would get when closed
>>> [(f.number, f.path.name) for f in files_of(log)]
[(1, 'audit.log.jsonl')]
>>> [(e["user"], pos) for e, pos in scan(log, Filters(user="a"))]
[('a', (1, 0))]
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: how much of a file is read at a time, from its end
BLOCK_BYTES = 1 << 20
#: entries up to this much older than ``since`` may still follow (clocks of several servers)
CLOCK_SLACK_S = 300.0

#: a position in the history: (file number, byte offset of a line start)
Position = tuple[int, int]


@dataclass(frozen=True)
class LogFile:
    number: int
    path: Path


@dataclass(frozen=True)
class Filters:
    """What an entry must match: user and action exactly, ``series`` (exactly) or
    ``series_contains`` (a part of it), ``since`` (epoch seconds, inclusive)."""

    user: str | None = None
    action: str | None = None
    series: str | None = None
    series_contains: str | None = None
    since: float | None = None

    def needles(self) -> list[bytes]:
        """Byte strings that every matching line holds (as written by the audit log)."""
        out = []
        for key in ("user", "action", "series"):
            value = getattr(self, key)
            if value is not None:
                out.append(f'"{key}": {json.dumps(value, ensure_ascii=False)}'.encode())
        if self.series_contains:
            out.append(json.dumps(self.series_contains, ensure_ascii=False)[1:-1].encode())
        return out

    def match(self, entry: dict[str, Any]) -> bool:
        for key in ("user", "action", "series"):
            value = getattr(self, key)
            if value is not None and entry.get(key) != value:
                return False
        if self.series_contains and self.series_contains not in (entry.get("series") or ""):
            return False
        if self.since is not None and not _ts(entry) >= self.since:
            return False
        return True


def _ts(entry: dict[str, Any]) -> float:
    try:
        return float(entry.get("ts"))
    except (TypeError, ValueError):
        return float("nan")


def _stem(log_path: Path) -> str:
    name = log_path.name
    return name[:-len(".jsonl")] if name.endswith(".jsonl") else name


def closed_name(log_path: Path, number: int, when: float) -> Path:
    """The name file ``number`` gets when it is closed at ``when`` (epoch seconds)."""
    day = _dt.datetime.fromtimestamp(when).strftime("%Y-%m-%d")
    return log_path.with_name(f"{_stem(log_path)}.{number:06d}-{day}.jsonl")


def files_of(log_path: Path) -> list[LogFile]:
    """The files of the log, oldest first; the file being written (if any) last."""
    pattern = re.compile(re.escape(_stem(log_path)) + r"\.(\d{6,})-[0-9-]+\.jsonl")
    closed = []
    try:
        for entry in os.scandir(log_path.parent):
            found = pattern.fullmatch(entry.name)
            if found:
                closed.append(LogFile(int(found.group(1)), Path(entry.path)))
    except FileNotFoundError:
        return []
    closed.sort(key=lambda f: f.number)
    current = LogFile(closed[-1].number + 1 if closed else 1, log_path)
    return closed + ([current] if log_path.exists() else [])


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None  # a line torn by a crash, or damaged
    return entry if isinstance(entry, dict) else None


def _line_starts(buf: bytes, needles: list[bytes]) -> Iterator[int]:
    """Start offsets in ``buf`` (whole lines) of the lines that may match, last first."""
    if not needles:
        end = len(buf)
        while end > 0:
            start = buf.rfind(b"\n", 0, end - 1) + 1
            yield start
            end = start
        return
    first, rest = needles[0], needles[1:]
    end = len(buf)
    while True:
        hit = buf.rfind(first, 0, end)
        if hit < 0:
            return
        start = buf.rfind(b"\n", 0, hit) + 1
        stop = buf.find(b"\n", hit)
        line = buf[start:stop if stop >= 0 else len(buf)]
        if all(n in line for n in rest):
            yield start
        end = start


def _blocks(fh, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of whole lines before ``end``, from the end of the file backwards."""
    carry = b""
    while end > 0:
        start = max(0, end - BLOCK_BYTES)
        fh.seek(start)
        data = fh.read(end - start) + carry
        end = start
        if start > 0:
            cut = data.find(b"\n")
            if cut < 0:
                carry = data
                continue
            carry, data = data[:cut + 1], data[cut + 1:]
            yield start + cut + 1, data
        else:
            yield 0, data


def scan(log_path: Path, filters: Filters, before: Position | None = None,
         listed: list[LogFile] | None = None) -> Iterator[tuple[dict[str, Any], Position]]:
    """Matching entries with their positions, newest first, older than ``before``."""
    needles = filters.needles()
    oldest_wanted = None if filters.since is None else filters.since - CLOCK_SLACK_S
    for log_file in reversed(listed if listed is not None else files_of(log_path)):
        if before is not None and log_file.number > before[0]:
            continue
        try:
            fh = open(log_file.path, "rb")
        except FileNotFoundError:
            continue
        with fh:
            end = fh.seek(0, os.SEEK_END)
            if before is not None and log_file.number == before[0]:
                end = min(end, before[1])
            for offset, buf in _blocks(fh, end):
                for start in _line_starts(buf, needles):
                    stop = buf.find(b"\n", start)
                    entry = _parse(buf[start:stop if stop >= 0 else len(buf)])
                    if entry is not None and filters.match(entry):
                        yield entry, (log_file.number, offset + start)
                if oldest_wanted is not None and _block_older(buf, oldest_wanted):
                    return


def _block_older(buf: bytes, oldest_wanted: float) -> bool:
    """Whether the first readable entry of ``buf`` (its oldest) is older than wanted: the
    earlier blocks and files are older still."""
    start = 0
    while start < len(buf):
        stop = buf.find(b"\n", start)
        stop = len(buf) if stop < 0 else stop
        entry = _parse(buf[start:stop])
        if entry is not None:
            return _ts(entry) < oldest_wanted
        start = stop + 1
    return False
