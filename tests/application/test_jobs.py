"""Export and import as jobs (ril_dash.application.jobs): results, audit lines, progress,
cancel between series, and a killed export that leaves no half-written file behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ril_dash.jobs import CANCELLED, DONE, FAILED, INTERRUPTED, RUNNING, JobStore, run_job
from ril_dash.application.jobs import (
    EXPORT,
    IMPORT,
    clean_up_interrupted,
    export_params,
    import_params,
    open_services,
    work_for,
)
from ril_dash.application.policy import Actor
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.audit import AuditLog
from ril_dash.project.export import STALE_PARTIAL, remove_partial_files
from ril_dash.project.import_masks import import_masks
from ril_dash.project.project import Project, init_project

SPAWN = multiprocessing.get_context("spawn")
ANA, ROOT = Actor("ana"), Actor("root", admin=True)
export_work, import_work = work_for(EXPORT), work_for(IMPORT)  # as a worker: opens the project


def services(project):
    return open_services({"project_dir": str(project.dir)})
AFFINE = np.diag([-1.0, 1.0, 2.0, 1.0])
SHAPE = (6, 5, 4)
SERIES = ["P1/a.nii.gz", "P2/b.nii.gz", "P3/c.nii.gz", "P4/d.nii.gz"]
ALL_OPTIONS = ["per_roi", "combined", "points", "mapping", "tables", "excel"]


def labels(i: int) -> np.ndarray:
    data = np.zeros(SHAPE, np.uint8)
    data[1:3, 1:1 + i, 2] = 1
    return data


def write_masks(folder: Path, offset: int = 1) -> Path:
    for i, sid in enumerate(SERIES[:3], start=offset):  # P4 gets no masks
        (folder / sid).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(labels(i), AFFINE), folder / sid)
    return folder


@pytest.fixture
def project(tmp_path) -> Project:
    images = tmp_path / "images"
    for sid in SERIES:
        (images / sid).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE),
                                 AFFINE), images / sid)
    init_project(tmp_path / "proj", images)
    (tmp_path / "proj" / "project.yaml").write_text(
        f"name: jobs\nimages: {images}\nrois:\n  - {{name: Liver, color: \"#ff0000\", value: 1}}\n")
    project = Project.open(tmp_path / "proj")
    report = import_masks(project, write_masks(tmp_path / "first"), user="setup")
    assert len(report.imported) == 3
    return project


def test_an_export_job_writes_the_export_and_an_audit_line(project, tmp_path):
    store = JobStore.for_project(project.dir)
    out = tmp_path / "out"
    job = store.create("ana", EXPORT, export_params(services(project), ANA, out, "all", ALL_OPTIONS))
    seen = []
    ended = run_job(store, job.id, export_work, on_progress=seen.append)
    assert ended.state == DONE, ended.error
    # 6 masks, mapping.json/.csv, points.csv, roi_statistics.csv, the workbook
    assert ended.result == {"folder": str(out), "series": 3, "masks": 6, "points": 0,
                            "files": 11, "empty": 1, "skipped": [], "skipped_total": 0,
                            "cancelled": False}
    assert len([p for p in out.rglob("*") if p.is_file()]) == 11
    assert [s[2] for s in seen] == [[1, 3], [2, 3], [3, 3]]
    assert seen[-1][1] == "3 / 3  P3/c.nii.gz" and ended.steps == [3, 3]
    mask = nib.load(out / "masks" / "P2" / "b" / "Liver.nii.gz")
    assert int(np.asarray(mask.dataobj).sum()) == labels(2).sum()
    [entry] = AuditLog.for_project(project.dir).read(action="export")
    assert entry["user"] == "ana"
    assert entry["detail"] == {"folder": str(out), "series": 3, "masks": 6, "cancelled": False}


def test_an_export_job_into_the_images_folder_fails_with_the_reason(project):
    store = JobStore.for_project(project.dir)
    job = store.create("ana", EXPORT, export_params(services(project), ANA, project.config.images / "x",
                                                    "all", ["per_roi"]))
    ended = run_job(store, job.id, export_work)
    assert ended.state == FAILED and ended.error.startswith("refusing to export into")
    assert "images folder" in ended.error
    assert AuditLog.for_project(project.dir).read(action="export") == []


def test_an_import_job_reports_progress_and_stops_between_series_when_cancelled(project,
                                                                                tmp_path):
    store = JobStore.for_project(project.dir)
    masks = write_masks(tmp_path / "second", offset=2)  # different masks: new versions
    job = store.create("root", IMPORT, import_params(services(project), ROOT, str(masks), None))

    def cancel_after_the_second(progress):
        if progress[2][0] == 2:
            JobStore.for_project(project.dir).request_cancel(job.id)

    ended = run_job(store, job.id, import_work, on_progress=cancel_after_the_second,
                    cancel_interval=0)
    assert ended.state == CANCELLED
    result = ended.result
    assert (result["cancelled"], result["looked_at"], result["total"]) == (True, 2, 4)
    assert (result["imported"], result["refused_total"], result["missing"]) == (2, 0, 0)
    assert [ok for _, ok in result["series"]] == [True, True]
    assert result["series"][0][0].startswith("P1/a.nii.gz: imported Liver")
    assert (ended.message, ended.steps) == ("2 / 4  P2/b.nii.gz", [2, 4])
    annotations = AnnotationStore(project.config.annotations)
    for sid, expected_version, owner in (("P1/a.nii.gz", 2, "root"), ("P2/b.nii.gz", 2, "root"),
                                         ("P3/c.nii.gz", 1, "setup")):
        series = annotations.series(sid, SHAPE)
        assert series.version == expected_version, sid
        assert series.versions(limit=1)[0].user == owner
    [entry] = AuditLog.for_project(project.dir).read(action="import")
    assert entry["user"] == "root" and entry["detail"] == {"folder": str(masks), "series": 2,
                                                      "cancelled": True}


def test_an_import_job_with_a_bad_folder_fails_with_the_reason(project, tmp_path):
    store = JobStore.for_project(project.dir)
    job = store.create("root", IMPORT, import_params(services(project), ROOT, str(tmp_path / "none"), None))
    ended = run_job(store, job.id, import_work)
    assert ended.state == FAILED and "does not exist" in ended.error


# ---- a killed export ---------------------------------------------------------------------------
def _export_until_the_second_series_then_hang(project_dir: str, job_id: str) -> None:
    """Run the export job; the third NIfTI write (the second series' first mask) writes half a
    file and hangs, so the test can kill the process in the middle of a write."""
    real_save = nib.save
    calls = []

    def save(img, path):
        calls.append(path)
        if len(calls) <= 2:  # the first series: Liver + combined
            return real_save(img, path)
        Path(path).write_bytes(b"\x1f\x8b\x08\x00 half a mask")
        marker = Path(project_dir, "hanging")
        marker.with_suffix(".tmp").write_text(str(path))
        marker.with_suffix(".tmp").replace(marker)  # never seen empty by the test
        threading.Event().wait()

    nib.save = save
    run_job(JobStore.for_project(project_dir), job_id, export_work)


@pytest.mark.slow  # starts a process and kills it
def test_a_killed_export_leaves_no_half_written_file(project, tmp_path):
    store = JobStore.for_project(project.dir)
    out = tmp_path / "out"
    job = store.create("ana", EXPORT, export_params(services(project), ANA, out, "all", ALL_OPTIONS))
    proc = SPAWN.Process(target=_export_until_the_second_series_then_hang,
                         args=(str(project.dir), job.id))
    proc.start()
    marker = project.dir / "hanging"
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    half = Path(marker.read_text())
    assert half.exists() and half.parent == out / "masks" / "P2" / "b"
    assert half.name.startswith(".Liver.ril-partial-") and half.name.endswith(".nii.gz")
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert store.get(job.id).state == RUNNING  # as the killed process left it

    [interrupted] = store.mark_interrupted(cleanup=clean_up_interrupted)  # the next start
    assert interrupted.state == INTERRUPTED
    assert interrupted.error.startswith("The server stopped while this job was running (at ")
    assert not half.exists()
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["masks/P1/a/Liver.nii.gz", "masks/P1/a/combined.nii.gz"]
    for name in files:  # complete files only
        assert np.asarray(nib.load(out / name).dataobj).sum() == labels(1).sum()


def test_the_next_export_removes_stale_leftovers_and_nothing_else(project, tmp_path):
    out = tmp_path / "out"
    folder = out / "masks" / "P1" / "a"
    folder.mkdir(parents=True)
    stale = folder / ".Liver.ril-partial-k2j4x0qa.nii.gz"
    fresh = folder / ".combined.ril-partial-q9w8e7r6.nii.gz"  # maybe another export, writing
    stale_dir = out / "annotations" / "P1" / ".a.nii.gz.ril.ril-partial-0a1b2c3d.tmp"
    stale_table = out / ".roi_statistics.ril-partial-abcdefgh.csv"
    mine = out / ".my-notes.txt"
    deep = out / "elsewhere" / ".x.ril-partial-abcdefgh.csv"  # not where an export writes
    for path in (stale, fresh, stale_table, mine, deep):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    stale_dir.mkdir(parents=True)
    (stale_dir / "history.json").write_text("{")
    old = time.time() - STALE_PARTIAL - 60
    for path in (stale, stale_dir, stale_table, deep):
        os.utime(path, (old, old))
    store = JobStore.for_project(project.dir)
    job = store.create("ana", EXPORT, export_params(services(project), ANA, out, "P2/*", ["per_roi"]))
    assert run_job(store, job.id, export_work).state == DONE
    assert not stale.exists() and not stale_dir.exists() and not stale_table.exists()
    assert fresh.exists() and mine.exists() and deep.exists()
    assert remove_partial_files(out) == [fresh]  # no age limit: a dead export's leftovers
    assert mine.exists() and deep.exists()


def test_import_masks_reports_progress_and_can_stop(project, tmp_path):
    masks = write_masks(tmp_path / "third", offset=3)
    seen = []
    report = import_masks(project, masks, user="root",
                          progress=lambda *args: seen.append(args),
                          cancel=lambda: len(seen) >= 3)
    assert seen == [(1, 4, "P1/a.nii.gz"), (2, 4, "P2/b.nii.gz"), (3, 4, "P3/c.nii.gz")]
    assert report.cancelled and report.total == 4 and len(report.series) == 3
    assert [s.version for s in report.series] == [2, 2, 2]
    report = import_masks(project, masks, user="root")
    assert not report.cancelled and len(report.series) == 4 and report.total == 4
