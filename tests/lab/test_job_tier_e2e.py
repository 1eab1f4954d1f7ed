"""End to end through a real server, on both job tiers: the embedded default (jobs run in the
server's own processes) and lab mode (``serve --broker``: jobs run on a ``ril-dash worker``
through a private Redis). In a real browser: a model draft with the example kidney model from
the viewer's Models panel, and an export from the export page; each ends done, written by the
user who started it, and in lab mode by the worker's process (never the server's)."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil
import pytest
from lab_support import Worker
from support import RunningServer

from ril_dash.jobs import DONE, JobStore
from ril_dash.project.audit import AuditLog

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SERIES = "PHANTOM-001/CT-2026-01-14/portal-venous.nii.gz"
SHAPE = (64, 64, 6)


@pytest.fixture(scope="module", params=["embedded", "broker"])
def tier(request, tmp_path_factory, model_worker_env):
    """(tier name, server, worker or None) of one tier serving a demo project of its own."""
    from ril_dash.demo.demo_project import ensure_demo_project

    demo = ensure_demo_project(tmp_path_factory.mktemp("tier") / "demo", progress=None,
                               shape=SHAPE)
    if request.param == "embedded":
        server = RunningServer(["serve", str(demo)], env=model_worker_env)
        yield request.param, server, None, demo
        server.stop()
        return
    redis = request.getfixturevalue("redis_server")
    server = RunningServer(["serve", str(demo), "--broker", redis.url], env=model_worker_env)
    worker = Worker(demo, redis.url, log=tmp_path_factory.mktemp("w") / "worker.log",
                    env=model_worker_env)
    yield request.param, server, worker, demo
    worker.stop()
    server.stop()


def newest(demo: Path, kind: str):
    return next(j for j in JobStore.for_project(demo).list() if j.kind == kind)


def check_runner(tier, job) -> None:
    """The job ran in the worker's pool (lab mode) or in the server's processes."""
    name, server, worker, _ = tier
    if name == "broker":
        assert job.pid in worker.children()
    else:
        assert job.pid == server.proc.pid or not psutil.pid_exists(job.pid) or \
            psutil.Process(job.pid).ppid() == server.proc.pid  # a background callback's


def test_a_model_draft_from_the_viewer_runs_on_the_tier(page, tier):
    _, server, _, demo = tier
    page.goto(f"{server.url}/view?series={SERIES}")
    page.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().summary")
    version = page.evaluate("() => window.rilAnnotate.state().version")
    page.click(".ril-models-panel > summary")
    page.click("#run-model")
    page.get_by_role("option", name="Kidney segmentation 1.0.0 (segmentation)").click()
    page.click("#run-start")
    page.wait_for_selector("#run-done", timeout=120_000)
    assert page.inner_text("#run-done") == "kidney-seg@1.0.0 drafted 1 of 1 series."
    job = newest(demo, "model")
    assert (job.state, job.owner, job.progress) == (DONE, "local", 1.0)
    check_runner(tier, job)
    drafts = [e for e in AuditLog.for_project(demo).read() if e["action"] == "model_draft"]
    assert (drafts[-1]["user"], drafts[-1]["series"], drafts[-1]["detail"]["version"]) == \
        ("local", SERIES, version + 1)
    page.wait_for_function(f"() => window.rilAnnotate.state().version === {version + 1}")
    assert page.js_errors == []


def test_an_export_from_the_export_page_runs_on_the_tier(page, tier):
    _, server, _, demo = tier
    page.goto(server.url + "/export")
    out = Path(page.input_value("#export-out"))
    page.click("#export-start")
    page.wait_for_selector("#export-done", timeout=120_000)
    assert page.inner_text("#export-done").startswith(f"Exported 1 series (3 mask files) to "
                                                      f"{out}")
    job = newest(demo, "export")
    assert (job.state, job.owner, job.result["series"]) == (DONE, "local", 1)
    check_runner(tier, job)
    masks = sorted(p.name for p in (out / "masks").rglob("*.nii.gz"))
    assert masks == ["Left_kidney.nii.gz", "Right_kidney.nii.gz", "combined.nii.gz"]
    assert page.js_errors == []


def test_admins_see_the_job_workers_in_lab_mode(page, tier):
    name, server, worker, _ = tier
    page.goto(server.url + "/jobs")
    page.wait_for_selector("#jobs-table")
    if name == "embedded":
        assert page.locator("#job-workers").count() == 0
        return
    row = page.locator(f"tr[data-worker='ril-dash-{worker.process.pid}@{socket.gethostname()}']")
    row.wait_for()
    assert row.locator(".ril-worker-queues").inner_text() == "models, io"
    assert row.locator(".ril-worker-running").inner_text() == "idle"
    web = page.locator("tr[data-worker^='ril-dash-web-'] .ril-worker-queues")
    assert web.all_inner_texts() == ["web"]
    assert page.js_errors == []
