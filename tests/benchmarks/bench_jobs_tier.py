"""Job tier benchmark: 8 series drafted by the example kidney model on the embedded tier, on one
Celery worker and on two, with 10 viewers reading slices from the web server meanwhile.

Data: 8 phantom CT series of 192 × 192 × 48 voxels per round and mode (fresh ones each time,
so every run drafts), the shipped ``kidney-seg`` example, the real model worker (one per
machine and user: the Celery workers of one machine share it, as the embedded tier does).
The 8 series are two jobs of 4 (two users drafting at once):

- **embedded**: each job runs in a process forked from the process that made it, as Dash's
  background callbacks do (:class:`~ril_dash.application.job_tier.Embedded`);
- **1 worker** / **2 workers**: the jobs are sent through a private ``redis-server`` to
  ``ril-dash worker`` processes of concurrency 1 (:class:`~ril_dash.application.job_tier.Brokered`).

Figures: the wall time of the 8 series and the time per series (median over the rounds;
modes interleaved in each round), and the p95 of a slice request of 10 viewers (threads, each
reading the slices of its own series of a ``ril-dash serve`` with 0.1 s between requests)
while the drafts run, beside the same viewers with no job running (measured in the same run).

Run: ``python tests/benchmarks/bench_jobs_tier.py`` (``RIL_DASH_BENCH_TIER_ROUNDS=2``).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import nibabel as nib
import requests
from common import BENCH_DIR as COMMON_BENCH_DIR
from common import median, percentile, timer, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from lab_support import RedisServer, Worker  # noqa: E402  (tests/lab/lab_support.py)
from support import RunningServer  # noqa: E402

ROUNDS = int(os.environ.get("RIL_DASH_BENCH_TIER_ROUNDS", "2"))
SHAPE, SPACING = (192, 192, 48), (1.8, 1.8, 4.0)
MODES = ("embedded", "1 worker", "2 workers")
VIEWERS, THINK_S = 10, 0.1
BENCH_DIR = COMMON_BENCH_DIR / "jobs-tier"
os.environ["RIL_DASH_WORKER_DIR"] = str(BENCH_DIR / "model-worker")


def tag(mode: str) -> str:
    return {"embedded": "emb", "1 worker": "w1", "2 workers": "w2"}[mode]


def make_project() -> Path:
    """8 series per round and mode, plus one series per viewer and a warm-up series."""
    from ril_dash.demo.demo_project import PROJECT_YAML
    from ril_dash.demo.phantom import make_phantom

    root = BENCH_DIR / "project"
    shutil.rmtree(root, ignore_errors=True)
    ph = make_phantom(101, "portal-venous", shape=SHAPE, spacing=SPACING)
    first = root / "images" / "warm" / "ct.nii.gz"
    first.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(ph.hu, ph.affine), first)
    names = [f"r{r}{tag(m)}/s{k}" for r in range(ROUNDS) for m in MODES for k in range(1, 9)]
    for name in names + [f"view/v{i}" for i in range(VIEWERS)]:
        (root / "images" / name).mkdir(parents=True)
        os.link(first, root / "images" / name / "ct.nii.gz")
    (root / "project.yaml").write_text(PROJECT_YAML.replace(
        "metadata:\n  file: metadata.csv\n  path_column: series      # series path relative to "
        "images, posix, with extension\n", ""))
    return root


def viewer(url: str, index: int, stop: threading.Event, out: list) -> None:
    """One viewer: read the slices of its series one after the other until ``stop``."""
    http, series, z = requests.Session(), f"view/v{index}/ct.nii.gz", 0
    for z in range(4):  # warm-up (not measured): the server decodes the volume once
        http.get(url + "/ril/api/slice", params={"series": series, "plane": "axial",
                                                 "index": z, "frame": 0, "wc": 40, "ww": 400})
    while not stop.is_set():
        z = (z + 1) % SHAPE[2]
        started = timer()
        reply = http.get(url + "/ril/api/slice", params={"series": series, "plane": "axial",
                                                         "index": z, "frame": 0, "wc": 40,
                                                         "ww": 400})
        out.append(timer() - started)
        assert reply.status_code == 200, reply.text
        time.sleep(THINK_S)


class Viewers:
    """10 viewers reading slices while the block runs; ``latencies`` their slice times."""

    def __init__(self, url: str) -> None:
        self.url, self.latencies, self.stop = url, [], threading.Event()

    def __enter__(self):
        self.threads = [threading.Thread(target=viewer, args=(self.url, i, self.stop,
                                                              self.latencies))
                        for i in range(VIEWERS)]
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)  # past the warm-up
        self.latencies.clear()
        return self

    def __exit__(self, *_exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()


def _forked_job(services, job) -> None:
    from ril_dash.application.job_tier import EMBEDDED

    EMBEDDED.run(services, job)


def draft(services, actor, mode: str, round_: int, tier) -> float:
    """Draft the 8 series of ``mode`` in this round as two jobs of 4; return the wall time."""
    from ril_dash.application.model_runs import start_model_run
    from ril_dash.jobs import DONE, JobStore

    series = [f"r{round_}{tag(mode)}/s{k}/ct.nii.gz" for k in range(1, 9)]
    jobs = [start_model_run(services, actor, "kidney-seg", part)
            for part in (series[:4], series[4:])]
    started = timer()
    if mode == "embedded":
        fork = multiprocessing.get_context("fork")
        procs = [fork.Process(target=_forked_job, args=(services, job)) for job in jobs]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    else:
        threads = [threading.Thread(target=tier.run, args=(services, job)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = timer() - started
    store = JobStore.for_project(services.project.dir)
    for job in jobs:
        ended = store.get(job.id)
        assert ended.state == DONE and ended.result["drafted_total"] == 4, ended
    return wall


def main() -> None:
    from ril_dash.application.job_tier import Brokered
    from ril_dash.application.policy import Actor
    from ril_dash.application.services import Services
    from ril_dash.models.worker_client import ModelWorker
    from ril_dash.project.project import Project

    load_before = os.getloadavg()[0]
    project = make_project()
    services = Services(Project.open(project), background_checkpoints=False)
    actor = Actor("bench", True, "bench")
    redis = RedisServer(BENCH_DIR / "redis")
    server = RunningServer(["serve", str(project)])
    logs = BENCH_DIR / "logs"
    logs.mkdir(exist_ok=True)
    workers = []
    walls = {mode: [] for mode in MODES}
    during = {mode: [] for mode in MODES}
    idle = []
    try:
        tier = Brokered(redis.url)
        from ril_dash.application.model_runs import start_model_run

        warm = start_model_run(services, actor, "kidney-seg", ["warm/ct.nii.gz"])
        _forked_job(services, warm)  # the model worker starts and loads the model once
        for round_ in range(ROUNDS):
            with Viewers(server.url) as quiet:
                time.sleep(8.0)
            idle.extend(quiet.latencies)
            for mode in MODES:
                wanted = {"embedded": 0, "1 worker": 1, "2 workers": 2}[mode]
                while len(workers) > wanted:
                    workers.pop().stop()
                while len(workers) < wanted:
                    workers.append(Worker(project, redis.url, "--concurrency", "1",
                                          log=logs / f"worker{len(workers)}.log"))
                with Viewers(server.url) as busy:
                    walls[mode].append(draft(services, actor, mode, round_, tier))
                during[mode].extend(busy.latencies)
                print(f"round {round_} {mode}: {walls[mode][-1]:.2f} s", flush=True)
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
        redis.stop()
        ModelWorker.shared().shutdown()
    figures = {"series": f"8 x {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} phantom CT, kidney-seg@1.0.0, "
                         f"two jobs of 4 series, {ROUNDS} rounds",
               "load average (1 min) before / after": f"{load_before:.1f} / "
                                                      f"{os.getloadavg()[0]:.1f} on "
                                                      f"{os.cpu_count()} cores"}
    for mode in MODES:
        wall = median(walls[mode])
        figures[f"{mode}: wall_s (median)"] = round(wall, 2)
        figures[f"{mode}: per_series_s"] = round(wall / 8, 2)
        figures[f"{mode}: viewer slice p95_ms during the drafts"] = \
            round(1000 * percentile(during[mode], 95), 1)
    figures["no job: viewer slice p95_ms (baseline)"] = round(1000 * percentile(idle, 95), 1)
    figures["viewer requests measured (no job / during)"] = \
        f"{len(idle)} / {sum(len(v) for v in during.values())}"
    write_results("jobs_tier", figures)


if __name__ == "__main__":
    main()
