"""Browser tests of jobs: an export and an import started on the export page show up on the Jobs
page with their progress and then their result; Cancel on the Jobs page stops an export with
complete files only; a job left running by a dead process shows as interrupted after a restart.

To look at a job while it runs, the tests hold it still: an export's process is paused with
SIGSTOP (taken while the job store's lock is held, so it never holds that lock paused) and
resumed with SIGCONT; an import waits on the lock of a series' annotations that the test holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from filelock import FileLock
from support import RunningServer  # tests/support.py

from ril_dash.jobs import JobStore
from ril_dash.project.annotation_store import AnnotationStore

pytestmark = pytest.mark.browser

N = 40
SERIES = [f"P{i:02d}/ct.nii.gz" for i in range(1, N + 1)]
SHAPE = (32, 32, 8)
AFFINE = np.diag([-1.0, 1.0, 2.0, 1.0])
PROJECT_YAML = """\
name: Jobs
images: {images}
annotations: annotations
rois:
  - {{name: Liver, radlex: RID58, color: "#c8763c", value: 1}}
"""


def write_masks(folder: Path, size: int) -> Path:
    """Label maps (a size × size square of Liver on slice 3) for every series."""
    data = np.zeros(SHAPE, np.uint8)
    data[4:4 + size, 4:4 + size, 3] = 1
    for sid in SERIES:
        (folder / sid).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data, AFFINE), folder / sid)
    return folder


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory) -> Path:
    from ril_dash.project.import_masks import import_masks
    from ril_dash.project.project import Project, init_project

    root = tmp_path_factory.mktemp("jobs")
    images = root / "images"
    rng = np.random.default_rng(5)
    for sid in SERIES:
        (images / sid).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(rng.integers(0, 100, SHAPE).astype(np.int16), AFFINE),
                 images / sid)
    init_project(root / "project", images)
    (root / "project" / "project.yaml").write_text(PROJECT_YAML.format(images=images))
    report = import_masks(Project.open(root / "project"), write_masks(root / "masks-4", 4))
    assert len(report.imported) == N
    return root / "project"


@pytest.fixture(scope="module")
def server(project_dir):
    srv = RunningServer(["serve", str(project_dir)])
    yield srv
    srv.stop()


@pytest.fixture
def store(project_dir) -> JobStore:
    return JobStore.for_project(project_dir)


def wait_running(store: JobStore, kind: str, done: int = 1, timeout: float = 60):
    """The newest job of ``kind`` once it runs and has finished ``done`` series."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [j for j in store.list() if j.kind == kind and j.state == "running"]
        if jobs and (jobs[0].steps or [0])[0] >= done:
            return jobs[0]
        time.sleep(0.005)
    raise AssertionError(f"no running {kind} job with {done} series done: {store.list()}")


@contextmanager
def paused(store: JobStore, job):
    """Hold the job's process still (never while it holds the job store's lock)."""
    with FileLock(str(store.folder / ".lock")):
        os.kill(job.pid, signal.SIGSTOP)
    try:
        yield store.get(job.id)
    finally:
        os.kill(job.pid, signal.SIGCONT)


def row(page, job_id: str, state: str | None = None):
    selector = f"tr[data-job='{job_id}']" + (f"[data-state='{state}']" if state else "")
    page.wait_for_selector(selector, timeout=60_000)
    return page.locator(selector)


def cell(row_, name: str) -> str:
    """The text of a cell (textContent: whitespace kept as the server wrote it)."""
    return row_.locator(f".ril-job-{name}").text_content()


def test_an_export_shows_on_the_jobs_page_with_its_progress_then_its_result(page, server, store):
    page.goto(server.url + "/export")
    out = Path(page.input_value("#export-out"))
    page.click("#export-start")
    job = wait_running(store, "export")
    with paused(store, job) as now:
        page.click(".ril-nav-link:text-is('Jobs')")
        running = row(page, job.id, "running")
        assert cell(running, "kind") == "Export"
        assert cell(running, "state") == "running"
        assert now.message == f"{now.steps[0]} / {N}  {SERIES[now.steps[0] - 1]}"
        assert cell(running, "message") == now.message
        assert 0 < now.progress < 1
        assert float(running.locator("progress").get_attribute("value")) == \
            pytest.approx(now.progress)
        assert running.locator(".ril-job-cancel").is_visible()
        assert cell(running, "started") == time.strftime("%Y-%m-%d %H:%M:%S",
                                                         time.localtime(now.started))
        assert page.locator("th").all_inner_texts()[:2] == ["Kind", "Owner"]  # local: admin
        assert cell(running, "owner") == "local"
    done = row(page, job.id, "done")
    assert cell(done, "result").startswith(
        f"Exported {N} series ({2 * N} mask files) to {out}.")
    assert cell(done, "duration").endswith(" s")
    assert done.locator(".ril-job-cancel").count() == 0
    assert float(done.locator("progress").get_attribute("value")) == 1.0
    assert len(list((out / "masks").rglob("Liver.nii.gz"))) == N
    assert page.js_errors == []


def test_an_import_shows_its_progress_and_its_result(page, server, store, project_dir,
                                                     tmp_path):
    masks = write_masks(tmp_path / "masks-6", 6)  # other masks than the project's: new versions
    third = AnnotationStore(project_dir / "annotations").folder_for(SERIES[2])
    hold = FileLock(str(third / ".lock"))
    hold.acquire()  # the import waits at the third series until the test lets it go
    try:
        page.goto(server.url + "/export")
        page.fill("#import-dir", str(masks))
        page.click("#import-start")
        page.wait_for_function("document.querySelector('#import-progress').value === 2 && "
                               "document.querySelector('#import-progress').max === " + str(N))
        assert page.text_content("#import-status") == f"2 / {N}  {SERIES[1]}"
        job = wait_running(store, "import", done=2)
        jobs = page.context.new_page()
        jobs.goto(server.url + "/jobs")
        running = row(jobs, job.id, "running")
        assert cell(running, "kind") == "Import"
        jobs.wait_for_function(
            f"document.querySelector(\"tr[data-job='{job.id}'] .ril-job-message\")"
            f".textContent === '2 / {N}  {SERIES[1]}'")
        assert float(running.locator("progress").get_attribute("value")) == \
            pytest.approx(2 / N)
    finally:
        hold.release()
    page.wait_for_selector("#import-done", timeout=60_000)
    expected = f"Imported masks into {N} series; 0 refused; 0 had no masks."
    assert page.inner_text("#import-done") == expected
    done = row(jobs, job.id, "done")
    assert cell(done, "result").startswith(expected)
    assert AnnotationStore(project_dir / "annotations").series(
        SERIES[2], SHAPE).versions(limit=1)[0].op == "import"
    assert page.js_errors == []


def test_cancel_on_the_jobs_page_stops_an_export_with_complete_files(page, server, store,
                                                                     project_dir):
    page.goto(server.url + "/export")
    out = Path(page.input_value("#export-out"))
    page.click("#export-start")
    job = wait_running(store, "export")
    with paused(store, job) as now:
        page.goto(server.url + "/jobs")
        running = row(page, job.id, "running")
        running.locator(".ril-job-cancel").click()
        page.wait_for_selector("#jobs-cancel-done")
        assert page.inner_text("#jobs-cancel-done") == \
            "Cancel requested: the job stops after the series it is working on."
        assert store.get(job.id).cancel_requested
        row(page, job.id)  # redrawn at once: "stopping", no Cancel button
        page.wait_for_function(
            f"document.querySelector(\"tr[data-job='{job.id}'] .ril-job-state\")"
            ".textContent === 'stopping'")
        assert page.locator(f"tr[data-job='{job.id}'] .ril-job-cancel").count() == 0
    ended = row(page, job.id, "cancelled")
    final = store.get(job.id)
    exported = final.result["series"]
    assert now.steps[0] <= exported < N  # it stopped after the series it was writing
    text = cell(ended, "result")
    assert text.startswith(f"Exported {exported} series ({2 * exported} mask files) to {out}.")
    assert "Cancelled: the series exported so far are complete (with their tables)" in text
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in out.rglob("*") if ".ril-partial-" in p.name]
    masks = [p for p in files if p.name.endswith(".nii.gz")]
    assert len(masks) == 2 * exported
    annotations = AnnotationStore(project_dir / "annotations")
    for mask in masks:  # complete files: every one loads, with the series' annotated voxels
        series = mask.parent.relative_to(out / "masks").as_posix() + ".nii.gz"
        voxels = int(np.count_nonzero(annotations.series(series, SHAPE).refresh().bits))
        assert int(np.asarray(nib.load(mask).dataobj).astype(bool).sum()) == voxels > 0
    stats = pd.read_csv(out / "roi_statistics.csv")
    assert list(stats["series"]) == SERIES[:exported]
    assert page.js_errors == []


STUCK_JOB = """
import sys, threading
from pathlib import Path
from ril_dash.jobs import JobStore, run_job
from ril_dash.application.jobs import EXPORT, export_params, open_services
from ril_dash.application.policy import Actor

store = JobStore.for_project(sys.argv[1])
out = Path(sys.argv[2])
services = open_services({"project_dir": sys.argv[1]})
job = store.create("local", EXPORT, export_params(services, Actor("local", True), out, "all",
                                                  ["per_roi"]))

def work(job, report_progress, cancelled):
    (out / "masks" / "P05").mkdir(parents=True)
    (out / "masks" / "P05" / ".ct.ril-partial-x0x0x0x0.nii.gz").write_bytes(b"half")
    report_progress(0.4, "16 / 40  P16/ct.nii.gz", (16, 40))
    print(job.id, flush=True)
    threading.Event().wait()

run_job(store, job.id, work)
"""


def test_a_job_left_running_by_a_dead_process_shows_as_interrupted_after_a_restart(
        page, project_dir, tmp_path, store):
    out = tmp_path / "killed-export"
    proc = subprocess.Popen([sys.executable, "-c", STUCK_JOB, str(project_dir), str(out)],
                            stdout=subprocess.PIPE, text=True)
    job_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 30
    while store.get(job_id).progress < 0.4 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert store.get(job_id).state == "running"  # as the dead process left it
    partial = out / "masks" / "P05" / ".ct.ril-partial-x0x0x0x0.nii.gz"
    assert partial.exists()

    restarted = RunningServer(["serve", str(project_dir)])
    try:
        assert not partial.exists()  # removed at start, with the job marked interrupted
        page.goto(restarted.url + "/jobs")
        interrupted = row(page, job_id, "interrupted")
        assert cell(interrupted, "state") == "interrupted"
        assert cell(interrupted, "result") == (
            "The server stopped while this job was running (at 40%): nothing after the last "
            "complete series was written; start it again.")
        assert cell(interrupted, "message") == "16 / 40  P16/ct.nii.gz"
        assert interrupted.locator(".ril-job-cancel").count() == 0
        assert page.js_errors == []
    finally:
        restarted.stop()
