"""Audit page benchmark: the page's query on a log of 1,000,000 lines (with a baseline).

Writes 1,000,000 audit lines (about 200 users, the usual actions, 5,000 series, a detail each)
through the log's own format into ``BENCH_DIR/audit``, rotated at the default 64 MB, then times
the audit page's query (:func:`ril_dash.project.audit.AuditLog.page`, one page of
:data:`ril_dash.ui.pages.audit_page.PAGE_ROWS` rows) for the filters a user types, and compares it
with two baselines measured in the same run:

- the old page's query: the whole log read, split and parsed on every filter change
  (``read()`` of the commit before rotation: one file, ``json.loads`` of every line);
- a bare read of every file, counting its lines (``wc -l`` in Python): the least any query that
  reads the whole history costs.

Medians of :data:`RUNS`. Run: ``python tests/benchmarks/bench_audit.py``.
"""

from __future__ import annotations

import json
import time

from common import BENCH_DIR, median, timer, write_results

from ril_dash.project.audit import AuditLog
from ril_dash.project.audit_files import Filters
from ril_dash.ui.pages.audit_page import PAGE_ROWS

N_LINES = 1_000_000
RUNS = 5
FOLDER = BENCH_DIR / "audit"
ACTIONS = ("save", "save", "save", "text_change", "lock", "unlock", "transition", "login",
           "logout", "undo", "export")


def make_log() -> AuditLog:
    """The million-line log, written once in the log's format (kept between runs)."""
    log = AuditLog(FOLDER / "audit.log.jsonl")
    if (FOLDER / "done").exists():
        return log
    FOLDER.mkdir(parents=True, exist_ok=True)
    for old in FOLDER.glob("audit.log*"):
        old.unlink()
    start = time.time() - N_LINES * 2.0  # a line every two seconds: the last ~23 days
    t0 = timer()
    batch = []

    def flush():
        # one append per batch, rotated like the log does (same names and threshold)
        data = b"".join(batch)
        log._rotate_if_full(len(data), start)
        with open(log.path, "ab") as fh:
            fh.write(data)
        batch.clear()

    for i in range(N_LINES):
        ts = start + 2.0 * i
        action = ACTIONS[i % len(ACTIONS)]
        entry = {"ts": ts, "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts)),
                 "user": f"user{i * 7 % 200:03d}", "action": action,
                 "series": None if action in ("login", "logout", "export") else
                 f"P{i % 5000:05d}/ST1/ct.nii.gz",
                 "detail": {"version": i % 97, "tool": "brush"} if action == "save" else None}
        batch.append(json.dumps(entry, sort_keys=True).encode() + b"\n")
        if len(batch) == 20_000:
            flush()
    flush()
    (FOLDER / "done").write_text("")
    print(f"wrote {N_LINES} lines in {timer() - t0:.1f} s: "
          f"{sum(f.stat().st_size for f in log.files()) / 1e6:.0f} MB in {len(log.files())} files")
    return log


def old_query(log: AuditLog, user=None, action=None, series=None, limit=PAGE_ROWS):
    """The page's query before this change: the whole history read and parsed each time."""
    raw = b"".join(f.read_bytes() for f in log.files())
    out = []
    for chunk in reversed(raw.split(b"\n")):
        if not chunk.strip():
            continue
        entry = json.loads(chunk)
        if user is not None and entry.get("user") != user:
            continue
        if action is not None and entry.get("action") != action:
            continue
        if series is not None and series not in (entry.get("series") or ""):
            continue
        out.append(entry)
        if len(out) >= limit and series is None:
            break
    return out[:limit]


def count_lines(log: AuditLog) -> int:
    n = 0
    for f in log.files():
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                n += block.count(b"\n")
    return n


def timed(fn, runs=RUNS):
    times, result = [], None
    for _ in range(runs):
        t0 = timer()
        result = fn()
        times.append(timer() - t0)
    return median(times), result


def main() -> None:
    log = make_log()
    lines = count_lines(log)
    assert lines == N_LINES, lines
    since_week = time.time() - 7 * 86400
    cases = {
        "newest page, no filter": Filters(),
        "user filter (user123)": Filters(user="user123"),
        "action filter (export)": Filters(action="export"),
        "series contains 'P04242/'": Filters(series_contains="P04242/"),
        "user + series (user035, P00005/)": Filters(user="user035",
                                                          series_contains="P00005/"),
        "no match at all (user 'nobody')": Filters(user="nobody"),
        "last 7 days, action lock": Filters(action="lock", since=since_week),
    }
    figures = {"lines": lines, "files": len(log.files()),
               "megabytes": round(sum(f.stat().st_size for f in log.files()) / 1e6, 1)}
    wc, _ = timed(lambda: count_lines(log))
    figures["baseline: read every file, count lines (wc -l) [ms]"] = round(wc * 1000, 1)
    old, _ = timed(lambda: old_query(log), runs=3)
    figures["baseline: old page query, whole log parsed (no filter) [ms]"] = round(old * 1000)
    old_series, _ = timed(lambda: old_query(log, series="P04242/"), runs=3)
    figures["baseline: old page query, series filter [ms]"] = round(old_series * 1000)
    for name, filters in cases.items():
        seconds, (rows, _older) = timed(lambda f=filters: log.page(f, PAGE_ROWS))
        figures[f"page query: {name} [ms] ({len(rows)} rows)"] = round(seconds * 1000, 1)
    newest, _ = timed(lambda: log.page(Filters(), PAGE_ROWS))
    figures["speed-up, newest page vs old query"] = round(old / newest, 1)
    write_results("audit", figures)


if __name__ == "__main__":
    main()
