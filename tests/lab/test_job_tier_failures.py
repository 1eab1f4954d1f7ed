"""Lab mode when things go wrong, with a real Redis and real ``ril-dash worker`` processes: a
worker process killed mid-job, Redis stopped and started again, a worker started on the wrong
folder. Jobs are sent as a server sends them (:class:`~ril_dash.application.job_tier.Brokered`)
from the test process; the page's side of a broker that is down is checked in the browser."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from filelock import FileLock
from lab_support import Worker
from support import RunningServer

from ril_dash.application import jobs as app_jobs
from ril_dash.application.celery_jobs import (RUN_TASK, project_queues, register_project,
                                              send_job)
from ril_dash.application.job_tier import Brokered
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import PermissionDenied
from ril_dash.jobs import DONE, FAILED, INTERRUPTED, JobStore
from ril_dash.jobs.identity import project_identity
from ril_dash.project.export import is_partial
from ril_dash.project.project import Project

pytestmark = pytest.mark.slow

N = 30
SHAPE = (32, 32, 8)
SERIES = [f"P{i:02d}/ct.nii.gz" for i in range(1, N + 1)]
YAML = """\
name: Tier failures
images: {images}
annotations: annotations
rois:
  - {{name: Liver, color: "#c8763c", value: 1}}
"""
ADMIN = Actor("ana", True, "test")


def make_project(root: Path) -> Path:
    """``N`` series, each with a Liver square (so an export writes every one)."""
    from ril_dash.project.import_masks import import_masks
    from ril_dash.project.project import init_project

    masks = np.zeros(SHAPE, np.uint8)
    masks[2:6, 2:6, 1] = 1
    for folder, data in (("images", np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)),
                         ("masks", masks)):
        for sid in SERIES:
            (root / folder / sid).parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data, np.eye(4)), root / folder / sid)
    init_project(root / "project", root / "images")
    (root / "project" / "project.yaml").write_text(YAML.format(images=root / "images"))
    assert len(import_masks(Project.open(root / "project"), root / "masks").imported) == N
    return root / "project"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("failures"))


@pytest.fixture(scope="module")
def services(project) -> Services:
    return Services(Project.open(project))


@pytest.fixture(scope="module")
def registered(project, redis_server) -> str:
    """The broker URL, with the project registered as a server does at its start."""
    register_project(redis_server.url, project_identity(project), "Tier failures", str(project))
    return redis_server.url


@pytest.fixture(scope="module")
def worker(project, registered, tmp_path_factory):
    worker = Worker(project, registered, "--queues", "io",
                    log=tmp_path_factory.mktemp("worker") / "worker.log")
    yield worker
    worker.stop()


def wait_for(test, what: str, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = test()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_process_killed_mid_job_leaves_an_interrupted_job_and_complete_files(
        services, registered, worker, tmp_path):
    store = app_jobs.job_store(services)
    out = tmp_path / "out"
    job = app_jobs.start_export(services, ADMIN, out, "all", ["per_roi"])
    send_job(Brokered(registered).app, registered, services.project.dir,
             project_identity(services.project.dir), job.id, job.kind)
    running = wait_for(lambda: (lambda j: j if j.state == "running" and (j.steps or [0])[0] >= 1
                                else None)(store.get(job.id)), "the export to run", every=0.002)
    assert running.pid in worker.children()  # a pool process of the worker runs it
    with FileLock(str(store.folder / ".lock")):  # never kill it while it holds the store
        os.kill(running.pid, signal.SIGSTOP)
    done_before = store.get(job.id).steps[0]
    # what admins see: the worker, its queue of this project, the job it runs
    rows = Brokered(registered).workers(services, ADMIN)
    name = f"ril-dash-{worker.process.pid}@{socket.gethostname()}"
    mine = [row for row in rows if row["name"] == name]
    assert mine == [{"name": name, "queues": ["io"],
                     "running": [(job.id, "export", "ana")]}]
    with pytest.raises(PermissionDenied):
        Brokered(registered).workers(services, Actor("bob", False, "test"))
    os.kill(running.pid, signal.SIGKILL)
    # the worker's sweep (not this test, not a server) records how the job ended
    ended = wait_for(lambda: (lambda j: j if not j.active else None)(store.get(job.id)),
                     "the sweep of the worker", timeout=15)
    assert ended.state == INTERRUPTED
    assert ended.error == (f"Its worker process stopped while this job was running (at "
                           f"{round(100 * done_before / N)}%): nothing after the last complete "
                           f"series was written; start it again.")
    assert not [p for p in out.rglob("*") if is_partial(p.name)]
    written = list(out.rglob("Liver.nii.gz"))  # progress is recorded ≤ 4 / s: it lags
    assert done_before <= len(written) < N
    for path in written:  # each one complete
        assert nib.load(path).get_fdata().sum() == 16
    # the worker carries on with a new pool process, and the message is not run twice
    again = app_jobs.start_export(services, ADMIN, tmp_path / "again", "all", ["per_roi"])
    ended = Brokered(registered).run(services, again)
    assert (ended.state, ended.result["series"]) == (DONE, N)
    assert store.get(job.id).state == INTERRUPTED
    assert worker.process.poll() is None


def test_a_message_of_another_project_is_refused(services, registered, worker):
    job = app_jobs.start_export(services, ADMIN, "/nonexistent/out", "all", [])
    queue = project_queues(project_identity(services.project.dir), ("io",))[0]
    Brokered(registered).app.send_task(RUN_TASK, args=[job.id, str(services.project.dir),
                                                       "f" * 32], queue=queue)
    wait_for(lambda: f"refused job {job.id}" in worker.text(), "the refusal in the log")
    assert app_jobs.job_store(services).get(job.id).state == "queued"  # nothing ran
    app_jobs.job_store(services).request_cancel(job.id)


@pytest.mark.browser
def test_redis_down_then_back(page, project, services, redis_server, registered, worker,
                              tmp_path):
    server = RunningServer(["serve", str(project), "--broker", registered])
    try:
        redis_server.stop()
        # jobs fail at once saying why; everything else answers as usual
        job = app_jobs.start_export(services, ADMIN, tmp_path / "down", "all", [])
        started = time.monotonic()
        ended = Brokered(registered).run(services, job)
        assert time.monotonic() - started < 15
        assert ended.state == FAILED
        assert ended.error.startswith(f"the job broker at {registered} cannot be reached (")
        assert "no job can start until it answers again" in ended.error
        page.goto(server.url + "/export")
        page.click("#export-start")
        page.wait_for_selector("#export-result .ril-alert-error", timeout=30_000)
        assert page.inner_text("#export-result").startswith(
            f"the job broker at {registered} cannot be reached (")
        page.goto(server.url + "/jobs")
        page.wait_for_selector("tr[data-state='failed']")
        assert page.js_errors == []
        # back again: the worker and the server reconnect by themselves
        redis_server.start()
        job = app_jobs.start_export(services, ADMIN, tmp_path / "back", "all", [])
        ended = Brokered(registered).run(services, job)
        assert (ended.state, ended.result["series"]) == (DONE, N)
        page.goto(server.url + "/export")
        page.click("#export-start")
        page.wait_for_selector("#export-done", timeout=60_000)
        assert page.inner_text("#export-done").startswith(f"Exported {N} series")
    finally:
        server.stop()
        if redis_server.process is None:
            redis_server.start()


def test_a_worker_started_on_the_wrong_folder_refuses_to_start(project, registered, tmp_path):
    # as the server does at its start and with each job (Redis may have restarted empty)
    register_project(registered, project_identity(project), "Tier failures", str(project))
    not_project = Worker(tmp_path, registered, log=tmp_path / "a.log", wait=False)
    other = make_project(tmp_path / "copy")  # another project (a copy has another id)
    wrong = Worker(other, registered, log=tmp_path / "b.log", wait=False)
    try:
        assert not_project.wait_exit() == 2
        assert wrong.wait_exit() == 2
    finally:  # never leave a worker behind
        not_project.stop()
        wrong.stop()
    assert f"{tmp_path} is not a ril_dash project folder" in not_project.text()
    text = wrong.text()
    assert f"the project in {other} ('Tier failures', id {project_identity(other)[:12]}) is " \
           f"not the one any server on {registered} serves: 'Tier failures' in {project}" in text
    assert "Start the worker with the folder of that project as this machine mounts it" in text
    assert JobStore.for_project(other).list() == []
