"""Project-viewer benchmark: a project of N series (default 10,000; the issue's 100,000 with
``--series 100000``), against a baseline in the same run.

Measures, in headless Chromium, the time from navigating to ``/`` until the grid shows its
first rows and the count reads "N series", a search-box filter and a folder click until the
grid shows their rows, the server's resident memory, and the server's start (``ril-dash serve``
launched → first page ready). Baseline in the same run: a bare Dash app with one AG Grid
holding the same N rows (client-side).

The project (N/10 patients × 2 studies × 5 series; every file a hard link of one tiny NIfTI, a
metadata CSV with a Modality column) is generated once under ``$RIL_DASH_BENCH_DIR`` and reused.

Run: ``nice -n -10 python tests/benchmarks/bench_project.py [--series N] [--runs R]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from common import BENCH_DIR as COMMON_BENCH_DIR
from common import HERE, RunningServer, launch_browser, median, timer, write_results

N_STUDIES, N_SERIES = 2, 5
PHASES = ["native", "arterial", "venous"]


def make_project(n_series: int) -> tuple[Path, Path]:
    """``n_series`` tiny NIfTI files (hard links of one) in Patient/Study/Series folders, a
    metadata CSV, project.yaml; the rows a bare grid shows. Made once, reused by later runs."""
    from ril_dash.project.project import init_project

    folder = COMMON_BENCH_DIR / f"project-{n_series}"
    images, project = folder / "images", folder / "project"
    rows_file = folder / "rows.json"
    if (project / "project.yaml").exists() and rows_file.exists():
        return project, rows_file
    folder.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.zeros((4, 4, 2), np.int16), np.eye(4))
    payload = gzip.compress(image.to_bytes())
    links = 0
    lines = ["series,patient,age,sex,phase,Modality"]
    rows = []
    for p in range(n_series // (N_STUDIES * N_SERIES)):
        patient = f"P{p:05d}"
        for s in range(N_STUDIES):
            (images / patient / f"ST{s}").mkdir(parents=True, exist_ok=True)
            for k in range(N_SERIES):
                rel = f"{patient}/ST{s}/series{k}.nii.gz"
                target = images / rel
                if not target.exists():
                    if links % 50_000 == 0:  # a file system allows ~65,000 links to a file
                        source = folder / f"one-{links // 50_000}.nii.gz"
                        source.write_bytes(payload)
                    os.link(source, target)
                    links += 1
                age, sex, phase = 20 + p % 60, "FM"[p % 2], PHASES[k % 3]
                modality = "CT" if k < 3 else "MR"
                lines.append(f"{rel},{patient},{age},{sex},{phase},{modality}")
                rows.append({"Patient": patient, "Study": f"ST{s}", "Series": f"series{k}",
                             "patient": patient, "age": str(age), "sex": sex, "phase": phase,
                             "Modality": modality, "size_mb": 0.0, "id": rel})
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    if not (project / "project.yaml").exists():
        init_project(project, images)
    text = (project / "project.yaml").read_text()
    text = text.replace("# hierarchy: [Patient, Study, Series]", "hierarchy: [Patient, Study, Series]")
    text = text.replace("# metadata:\n#   file: metadata.csv", f"metadata:\n  file: {folder / 'metadata.csv'}")
    text = text.replace("#   path_column: series", "  path_column: series")
    (project / "project.yaml").write_text(text)
    rows_file.write_text(json.dumps(rows))
    return project, rows_file


def _wait_count(page, count_selector: str, prefix: str, min_rows: int = 10) -> None:
    page.wait_for_function(
        """([sel, prefix, minRows]) =>
             document.querySelectorAll('.ag-center-cols-container .ag-row[row-id], '
                                       + '.ag-center-cols-container .ag-row').length >= minRows &&
             ((document.querySelector(sel) || {}).textContent || '').startsWith(prefix)""",
        arg=[count_selector, prefix, min_rows], polling="raf", timeout=120_000)


def time_to_grid(browser, url: str, count_selector: str, n_series: int) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        start = timer()
        page.goto(url + "/")
        _wait_count(page, count_selector, f"{n_series} series")
        return timer() - start
    finally:
        page.close()


def first_rows(page) -> list[str]:
    return page.eval_on_selector_all(
        ".ag-center-cols-container .ag-row[row-id]",
        "els => els.map(e => [Number(e.getAttribute('row-index')), e.getAttribute('row-id')])"
        ".sort((a, b) => a[0] - b[0]).map(x => x[1])")


def time_interactions(browser, url: str, n_series: int) -> dict:
    """On ril_dash's page, once loaded (the shell preloads plotly for the viewer meanwhile): a
    search typed → its rows shown; the folder filter typed → the matching folder button; a
    patient folder clicked → its 10 rows and count."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    out = {}
    try:
        page.goto(url + "/")
        _wait_count(page, "#series-count", f"{n_series} series")
        # the shell preloads plotly 1.5 s after the first page (for the viewer): let it finish
        page.wait_for_selector("#plotly-preload .js-plotly-plot", state="attached",
                               timeout=60_000)
        page.wait_for_load_state("networkidle")
        patient = f"P{n_series // 10 - 1:05d}"
        start = timer()
        page.fill("#series-search", patient)
        page.wait_for_function(
            """(p) => { const ids = Array.from(document.querySelectorAll(
                  '#series-grid .ag-center-cols-container .ag-row[row-id]'))
                  .map(e => e.getAttribute('row-id'));
                return ids.length === 10 && ids.every(i => i.startsWith(p + '/')); }""",
            arg=patient, polling="raf", timeout=60_000)
        out["search"] = timer() - start
        page.fill("#series-search", "")
        _wait_count(page, "#series-count", f"{n_series} series")
        start = timer()
        page.fill("#folder-filter", patient)
        page.wait_for_selector(f".ril-folder:has(.ril-folder-name:text-is('{patient}'))",
                               timeout=60_000)
        out["folder filter"] = timer() - start
        start = timer()
        page.click(f".ril-folder:has(.ril-folder-name:text-is('{patient}'))")
        page.wait_for_function(
            """(p) => { const ids = Array.from(document.querySelectorAll(
                  '#series-grid .ag-center-cols-container .ag-row[row-id]'))
                  .map(e => e.getAttribute('row-id'));
                return ids.length === 10 && ids.every(i => i.startsWith(p + '/')) &&
                  document.querySelector('#series-count').textContent.startsWith(
                      '10 series in ' + p); }""",
            arg=patient, polling="raf", timeout=60_000)
        out["folder click"] = timer() - start
    finally:
        page.close()
    return out


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=10_000, help="series in the project")
    parser.add_argument("--runs", type=int, default=3, help="page loads measured per app")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare AG Grid app")
    args = parser.parse_args()
    n = args.series
    start = timer()
    project, rows_file = make_project(n)
    print(f"project of {n} series ready in {timer() - start:.1f} s", flush=True)
    label = f"{n:,}"
    figures: dict = {"series": n, "load (uptime) at start": os.getloadavg()}
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        (project / ".series-index.json").unlink(missing_ok=True)
        for when in ("first start, no series index", "next start, with the index"):
            start = timer()
            ril = RunningServer(["serve", str(project)], timeout=600)
            figures[f"ril_dash serve ({when}): process start → / answers (s)"] = round(
                timer() - start, 2)
            figures[f"ril_dash serve ({when}): process start → first page ready (s)"] = round(
                timer() - start + time_to_grid(browser, ril.url, "#series-count", n), 2)
            if when.startswith("first"):
                ril.stop()
        base = None if args.no_baseline else RunningServer(
            ["grid", str(rows_file)], command=[sys.executable, str(HERE / "baseline_app.py")],
            timeout=600)
        try:
            figures["server memory after start: ril_dash (MB)"] = round(ril.rss_mb(), 1)
            if base:
                figures["server memory after start: bare Dash + AG Grid (MB)"] = round(
                    base.rss_mb(), 1)
            ril_t, base_t = [], []
            for _ in range(args.runs):
                ril_t.append(time_to_grid(browser, ril.url, "#series-count", n))
                if base:
                    base_t.append(time_to_grid(browser, base.url, "#count", n))
            figures[f"project viewer ready, {label} series: ril_dash (s, median)"] = round(
                median(ril_t), 3)
            figures["project viewer ready: runs (s)"] = [round(t, 3) for t in ril_t]
            if base:
                figures["baseline bare Dash AG Grid, same rows (s, median)"] = round(
                    median(base_t), 3)
                figures["baseline runs (s)"] = [round(t, 3) for t in base_t]
                figures["ratio ril/bare"] = round(median(ril_t) / median(base_t), 2)
            inter = [time_interactions(browser, ril.url, n) for _ in range(args.runs)]
            for key in inter[0]:
                figures[f"{key} → rows on screen (s, median)"] = round(
                    median([i[key] for i in inter]), 3)
            figures["server memory after page loads: ril_dash (MB)"] = round(ril.rss_mb(), 1)
            if base:
                figures["server memory after page loads: bare Dash + AG Grid (MB)"] = round(
                    base.rss_mb(), 1)
        finally:
            ril.stop()
            if base:
                base.stop()
        browser.close()
    figures["load (uptime) at end"] = os.getloadavg()
    write_results(f"project_{n}", figures)


if __name__ == "__main__":
    main()
