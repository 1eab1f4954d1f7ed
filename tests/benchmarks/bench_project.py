"""Project-viewer benchmark: a project of 10,000 series (the issue's figures, with a baseline).

Measures, in headless Chromium, the time from navigating to ``/`` until the grid shows its
first rows and the count reads "10000 series", and the server's resident memory afterwards.
Baseline in the same run: a bare Dash app with one AG Grid holding the same 10,000 rows.

Run: ``python tests/benchmarks/bench_project.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from common import BENCH_DIR as COMMON_BENCH_DIR
from common import HERE, RunningServer, launch_browser, median, timer, write_results

BENCH_DIR = COMMON_BENCH_DIR / "p10k"
N_PATIENTS, N_STUDIES, N_SERIES = 1000, 2, 5
RUNS = 3


def make_project() -> tuple[Path, Path]:
    """10,000 tiny NIfTI files in Patient/Study/Series folders, a metadata CSV, project.yaml."""
    from ril_dash.project.project import init_project

    images, project = BENCH_DIR / "images", BENCH_DIR / "project"
    rows_file = BENCH_DIR / "rows.json"
    if (project / "project.yaml").exists() and rows_file.exists():
        return project, rows_file
    buf = io.BytesIO()
    image = nib.Nifti1Image(np.zeros((4, 4, 2), np.int16), np.eye(4))
    payload = gzip.compress(image.to_bytes())
    lines = ["series,patient,age,sex,phase"]
    rows = []
    for p in range(N_PATIENTS):
        for s in range(N_STUDIES):
            folder = images / f"P{p:04d}" / f"ST{s}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(N_SERIES):
                rel = f"P{p:04d}/ST{s}/series{k}.nii.gz"
                (folder / f"series{k}.nii.gz").write_bytes(payload)
                age, sex, phase = 20 + p % 60, "FM"[p % 2], ["native", "arterial", "venous"][k % 3]
                lines.append(f"{rel},P{p:04d},{age},{sex},{phase}")
                rows.append({"Patient": f"P{p:04d}", "Study": f"ST{s}", "Series": f"series{k}",
                             "patient": f"P{p:04d}", "age": str(age), "sex": sex,
                             "phase": phase, "size_mb": 0.0, "id": rel})
    (BENCH_DIR / "metadata.csv").write_text("\n".join(lines) + "\n")
    init_project(project, images)
    text = (project / "project.yaml").read_text()
    text = text.replace("# hierarchy: [Patient, Study, Series]", "hierarchy: [Patient, Study, Series]")
    text = text.replace("# metadata:\n#   file: metadata.csv", f"metadata:\n  file: {BENCH_DIR / 'metadata.csv'}")
    text = text.replace("#   path_column: series", "  path_column: series")
    (project / "project.yaml").write_text(text)
    rows_file.write_text(json.dumps(rows))
    del buf
    return project, rows_file


def time_to_grid(browser, url: str, count_selector: str) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        start = timer()
        page.goto(url + "/")
        page.wait_for_function(
            f"""() => document.querySelectorAll('.ag-row').length > 10 &&
                  ((document.querySelector('{count_selector}') || {{}}).textContent || '').startsWith('10000 series')""",
            polling="raf", timeout=60_000)
        return timer() - start
    finally:
        page.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    project, rows_file = make_project()
    figures: dict = {}
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        ril = RunningServer(["serve", str(project)])
        base = RunningServer(["grid", str(rows_file)],
                             command=[sys.executable, str(HERE / "baseline_app.py")])
        try:
            figures["server memory after start: ril_dash (MB)"] = round(ril.rss_mb(), 1)
            figures["server memory after start: bare Dash + AG Grid (MB)"] = round(base.rss_mb(), 1)
            ril_t, base_t = [], []
            for _ in range(RUNS):
                ril_t.append(time_to_grid(browser, ril.url, "#series-count"))
                base_t.append(time_to_grid(browser, base.url, "#count"))
            figures["project viewer ready, 10,000 series: ril_dash (s, median)"] = round(median(ril_t), 3)
            figures["project viewer ready: runs (s)"] = [round(t, 3) for t in ril_t]
            figures["baseline bare Dash AG Grid, same rows (s, median)"] = round(median(base_t), 3)
            figures["ratio ril/bare"] = round(median(ril_t) / median(base_t), 2)
            figures["server memory after page loads: ril_dash (MB)"] = round(ril.rss_mb(), 1)
            figures["server memory after page loads: bare Dash + AG Grid (MB)"] = round(base.rss_mb(), 1)
        finally:
            ril.stop()
            base.stop()
        browser.close()
    write_results("project_10k", figures)


if __name__ == "__main__":
    main()
