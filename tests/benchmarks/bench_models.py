"""Model plugin benchmark: whole-series inference through the job system vs a bare Keras call.

Data: a phantom CT of 256 × 256 × 160 voxels (1.4 × 1.4 × 1 mm), the shipped ``kidney-seg``
example (2D U-Net, 128 × 128 input), the real model worker (its own process).

Figures, each beside its baseline measured in the same run:

- **whole series through the job system** — ``start_model_run`` + ``run_job`` with a warm model:
  reading the series, preparing every slice, sending the chunks to the worker, the model, the
  inverse geometry, masks, 3D clean-up, the merge and the new annotation version. Baseline: one
  bare ``model.predict`` on the same, already prepared batch in the same worker
  (``ModelWorker.time_bare_predict``). Target ≤ 1.15×.
- **first progress of a warm job** — from the start of the job to its first progress record in
  the job store (what the page polls). Target ≤ 2 s.
- **cold start** — a new worker process: importing TensorFlow and loading the model, until the
  first prediction returns; beside it the warm call of the same prediction.
- **memory** — resident memory of a process that imported ``ril_dash`` and created the app
  (what a web server holds), against the model worker's (TensorFlow plus the loaded model).

Run: ``python tests/benchmarks/bench_models.py`` (``RIL_DASH_BENCH_MODEL_RUNS=5`` by default).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nibabel as nib
from common import BENCH_DIR as COMMON_BENCH_DIR
from common import median, timer, write_results

RUNS = int(os.environ.get("RIL_DASH_BENCH_MODEL_RUNS", "5"))
SHAPE, SPACING = (256, 256, 160), (1.4, 1.4, 1.0)
BENCH_DIR = COMMON_BENCH_DIR / "models"
os.environ.setdefault("RIL_DASH_WORKER_DIR", str(BENCH_DIR / "worker"))


def make_project() -> Path:
    """A project of ``RUNS + 1`` copies of one phantom series (each run drafts a fresh one)."""
    from ril_dash.demo.demo_project import PROJECT_YAML
    from ril_dash.demo.phantom import make_phantom

    root = BENCH_DIR / "project"
    shutil.rmtree(root, ignore_errors=True)
    ph = make_phantom(101, "portal-venous", shape=SHAPE, spacing=SPACING)
    first = root / "images" / "S00" / "ct.nii.gz"
    first.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(ph.hu, ph.affine), first)
    for i in range(1, RUNS + 1):
        (root / "images" / f"S{i:02d}").mkdir()
        shutil.copyfile(first, root / "images" / f"S{i:02d}" / "ct.nii.gz")
    (root / "project.yaml").write_text(PROJECT_YAML.replace("metadata:\n  file: metadata.csv\n"
                                                            "  path_column: series      # series "
                                                            "path relative to images, posix, "
                                                            "with extension\n", ""))
    return root


def first_progress_seconds(store, job_id: str, started: float, done: threading.Event) -> list:
    """Poll the job store (as the page does) until the job has a progress fraction > 0."""
    seen = []

    def poll():
        while not done.is_set():
            job = store.get(job_id)
            if job.progress and job.progress > 0:
                seen.append(timer() - started)
                return
            done.wait(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return seen


def server_memory_mb() -> float:
    """RSS of a fresh process that builds the app the way ``ril-dash serve`` does."""
    code = ("import psutil, sys\n"
            "from ril_dash.demo.demo_project import ensure_demo_project\n"
            "from ril_dash.project.project import Project\n"
            "from ril_dash.ui.app import create_app\n"
            "create_app(Project.open(ensure_demo_project(progress=None)))\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "print(psutil.Process().memory_info().rss / 1024**2)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from ril_dash.application.jobs import job_store, start_model_run, work_for
    from ril_dash.application.model_access import model_ref, resolve_bundle
    from ril_dash.application.policy import Actor
    from ril_dash.application.services import Services
    from ril_dash.jobs import DONE, run_job
    from ril_dash.models import preprocess
    from ril_dash.models.worker_client import ModelWorker
    from ril_dash.project.project import Project

    services = Services(Project.open(make_project()), background_checkpoints=False)
    actor = Actor("bench", True, "bench")
    entry = resolve_bundle(services, "kidney-seg")
    ref = model_ref(services, entry)
    worker = ModelWorker.shared()
    worker.shutdown()

    volume = services.volume("S00/ct.nii.gz")
    indices = list(range(volume.n_slices(entry.manifest.input.plane)))
    batch, _ = preprocess.prepare_slices(volume, entry.manifest, indices)
    started = timer()
    worker.predict(ref, batch[:8])
    cold = timer() - started
    started = timer()
    worker.predict(ref, batch[:8])
    warm_call = timer() - started

    store = job_store(services)
    ours, bare, first = [], [], []
    for i in range(1, RUNS + 1):
        bare.append(worker.time_bare_predict(ref, batch))
        job = start_model_run(services, actor, "kidney-seg", [f"S{i:02d}/ct.nii.gz"])
        done = threading.Event()
        started = timer()
        seen = first_progress_seconds(store, job.id, started, done)
        ended = run_job(store, job.id, work_for(job.kind, services))
        ours.append(timer() - started)
        done.set()
        assert ended.state == DONE and ended.result["drafted_total"] == 1, ended
        first.extend(seen[:1])

    status = worker.status()
    figures = {
        "series": f"{SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} phantom CT, kidney-seg@1.0.0, {RUNS} runs",
        "job_whole_series_s (median)": round(median(ours), 3),
        "bare_model_predict_s (median)": round(median(bare), 3),
        "ratio job / bare predict (target <= 1.15)": round(median(ours) / median(bare), 3),
        "first_progress_warm_s (median; target <= 2)": round(median(first), 3),
        "cold_start_s (new worker: TF import + model load + 8 slices)": round(cold, 2),
        "warm_call_s (the same 8 slices)": round(warm_call, 3),
        "web_process_rss_mb (create_app, no TensorFlow)": round(server_memory_mb(), 1),
        "model_worker_rss_mb (TensorFlow + model)": status["rss_mb"],
    }
    worker.shutdown()
    write_results("models", figures)


if __name__ == "__main__":
    main()
