"""Model plugin benchmark: whole-series inference through the job system vs a bare Keras call.

Data: a phantom CT of 256 × 256 × 160 voxels (1.4 × 1.4 × 1 mm), the shipped ``kidney-seg``
example (2D U-Net, 128 × 128 input), the real model worker (its own process).

Figures, each beside its baseline measured in the same run:

- **whole series through the job system** — ``start_model_run`` + ``run_job`` with a warm model:
  reading the series, preparing every slice, sending the chunks to the worker, the model, the
  inverse geometry, masks, 3D clean-up, the merge and the new annotation version. Baseline: one
  bare ``model.predict`` on the same, already prepared batch in the same worker
  (``ModelWorker.time_bare_predict``). Target ≤ 1.15×.
- **first progress of a warm job** — in Chromium, from the click on the viewer's Run button to
  the first "slice N / M" on the page (trusted mouse input, the model already loaded); beside it
  the same job started from Python, to its first progress record in the job store (what the
  page polls). Target ≤ 2 s.
- **cold start** — a new worker process: importing TensorFlow and loading the model, until the
  first prediction returns; beside it the warm call of the same prediction.
- **memory** — resident memory of the web server (``ril-dash serve``) before and after the
  browser runs, with no TensorFlow in it; beside it the model worker's (TensorFlow and the
  model) and a bare process that imported TensorFlow and loaded the model.

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
            done.wait(0.05)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return seen


def bare_keras_memory_mb(model_path: Path) -> float:
    """RSS of a bare process that imported TensorFlow/Keras and loaded the model."""
    code = ("import keras, psutil, sys\n"
            f"keras.saving.load_model({str(model_path)!r}, compile=False)\n"
            "print(psutil.Process().memory_info().rss / 1024**2)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1024**2


def browser_runs(project: Path, series: list[str]) -> dict:
    """Click Run in the viewer's Models panel on each series (the first run warms the worker);
    seconds from the click to the first "slice N / M" on the page, and the server's memory."""
    from common import RunningServer, launch_browser
    from playwright.sync_api import sync_playwright

    server = RunningServer(["serve", str(project)])
    before = rss_mb(server.proc.pid)
    seconds = []
    try:
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            for sid in series:
                page.goto(f"{server.url}/view?series={sid}")
                page.wait_for_function("() => window.rilAnnotate && "
                                       "window.rilAnnotate.state().summary")
                page.click(".ril-models-panel > summary")
                page.click("#run-model")
                page.get_by_role("option", name="Kidney segmentation 1.0.0 (segmentation)").click()
                page.wait_for_function("() => document.querySelector('#run-estimate')"
                                       ".textContent.includes('slices')")
                box = page.locator("#run-start").bounding_box()
                page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                started = timer()
                page.mouse.down()
                page.mouse.up()
                page.wait_for_function("() => /slice \\d+ \\/ \\d+/.test("
                                       "document.querySelector('#run-status').textContent)",
                                       timeout=120_000, polling=10)
                seconds.append(timer() - started)
                page.wait_for_selector("#run-done", timeout=120_000)
            browser.close()
        after = rss_mb(server.proc.pid)
        tf_mapped = tensorflow_mapped(server.proc.pid)
    finally:
        server.stop()
    return {"first": seconds, "rss_before": before, "rss_after": after, "tf": tf_mapped}


def tensorflow_mapped(pid: int) -> bool:
    """Whether the process or any of its children (background-callback processes) has a
    TensorFlow library mapped into its memory."""
    import psutil

    server = psutil.Process(pid)
    for proc in [server, *server.children(recursive=True)]:
        try:
            if any("tensorflow" in m.path for m in proc.memory_maps()):
                return True
        except psutil.Error:
            continue
    return False


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

    worker.shutdown()  # the page's first run starts a new worker: "loading model"
    page = browser_runs(services.project.dir, [f"S{i:02d}/ct.nii.gz" for i in (0, 0)])
    status = worker.status()
    figures = {
        "series": f"{SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} phantom CT, kidney-seg@1.0.0, {RUNS} runs",
        "job_whole_series_s (median)": round(median(ours), 3),
        "bare_model_predict_s (median)": round(median(bare), 3),
        "ratio job / bare predict (target <= 1.15)": round(median(ours) / median(bare), 3),
        "page_first_progress_cold_s (click -> 'slice N / M')": round(page["first"][0], 2),
        "page_first_progress_warm_s (target <= 2)": round(page["first"][1], 2),
        "job_first_progress_warm_s (median, job store)": round(median(first), 3),
        "cold_start_s (new worker: TF import + model load + 8 slices)": round(cold, 2),
        "warm_call_s (the same 8 slices)": round(warm_call, 3),
        "web_server_rss_mb before / after the browser runs": (round(page["rss_before"], 1),
                                                               round(page["rss_after"], 1)),
        "tensorflow mapped in the web server or its children": page["tf"],
        "model_worker_rss_mb (TensorFlow + model)": status["rss_mb"],
        "bare_keras_process_rss_mb (import + load)": round(bare_keras_memory_mb(
            entry.model_path), 1),
    }
    worker.shutdown()
    write_results("models", figures)


if __name__ == "__main__":
    main()
