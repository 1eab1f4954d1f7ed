"""One training round of a development model on the demo CT phantom, timed.

The demo project's twelve phantom series (3 patients × 4 contrast phases, 256 × 256 × 40) get
their right and left kidneys from the ground truth as annotations; then one training job
(:func:`ril_dash.application.training.start_training`, the default 2D U-Net at 128 × 128, the
tool's default split: 3 of the 12 series validate) runs in a model worker of its own, as the
Models page would run it. Printed: the time to read the series, the time per epoch, the whole
round, the validation Dice per kidney of the kept epoch, and the baseline of the same run: one
bare ``model.predict`` pass of the trained model over as many slices as an epoch trains on (a
training step costs about three forward passes).

Caveat: the split is by series, so the other phases of a validation patient may be training
series (the phases differ in contrast only); the figure is optimistic for unseen patients.

Run: ``python tests/benchmarks/bench_training.py [--epochs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from common import write_results

from ril_dash.application import jobs
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.application.training import TRAIN_JOB, start_training
from ril_dash.core.paint import Delta
from ril_dash.demo.demo_project import ensure_demo_project, phantom_series
from ril_dash.demo.phantom import PROJECT_ROI_LABELS
from ril_dash.jobs import run_job
from ril_dash.models.worker_client import ModelRef, ModelWorker
from ril_dash.project.project import Project

KIDNEYS = {"Right kidney": 3, "Left kidney": 4}  # the demo project's mask values


def annotate_from_ground_truth(services: Services, root: Path) -> None:
    for sid in phantom_series():
        labels = np.asarray(nib.load(root / "ground_truth" / sid).dataobj)
        canonical = services.volume(sid).to_canonical(labels)
        state = services.state(sid)
        before = np.array(state.bits)
        after = before.copy()
        for bit, (name, _value) in enumerate(KIDNEYS.items()):
            after[np.isin(canonical, PROJECT_ROI_LABELS[name])] |= before.dtype.type(1 << bit)
        services.annotations(sid).commit(
            state.version, Delta(tuple((0, n) for n in after.shape), before, after),
            {"user": "bench", "op": "paint"}, slots={v: b for b, v in enumerate(KIDNEYS.values())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ril-train-bench-") as folder:
        root = ensure_demo_project(Path(folder) / "demo", progress=None)
        services = Services(Project.open(root), background_checkpoints=False)
        annotate_from_ground_truth(services, root)
        os.environ["RIL_DASH_WORKER_DIR"] = str(Path(folder) / "worker")
        worker = ModelWorker()
        ModelWorker._shared, ModelWorker._shared_pid = worker, os.getpid()
        worker.status()  # a warm worker: its start-up is not part of the round
        try:
            started = time.perf_counter()
            job = start_training(services, Actor("bench", True), bundle_id="kidney-dev",
                                 architecture="unet", rois=list(KIDNEYS), series="all",
                                 epochs=args.epochs, time_budget_s=3600)
            ended = run_job(jobs.job_store(services), job.id, jobs.work_for(TRAIN_JOB, services))
            total = time.perf_counter() - started
            assert ended.state == "done", ended.error
            result = ended.result
            folder_v = root / "plugins" / "kidney-dev" / result["version"]
            provenance = json.loads((folder_v / "training.json").read_text())
            entry = services.models.find("kidney-dev", result["version"])
            ref = ModelRef(str(entry.model_path), entry.manifest.sha256, entry.ref)
            batch = np.random.default_rng(0).random((result["train_slices"], 128, 128, 1),
                                                    dtype=np.float32)
            bare_s = worker.time_bare_predict(ref, batch, batch_size=8)
        finally:
            worker.shutdown()
    epochs = [h["seconds"] for h in result["history"]]
    figures = {
        "round_s": round(total, 1), "training_s": result["seconds"],
        "epochs_run": len(epochs), "first_epoch_s": epochs[0],
        "median_epoch_s": round(float(np.median(epochs[1:] or epochs)), 1),
        "train_slices": result["train_slices"], "validation_slices": result["validation_slices"],
        "validation": provenance["validation"], "kept_epoch": provenance["kept_epoch"],
        "stopped": result["stopped"], "train_series": len(provenance["train_series"]),
        "validation_series": len(provenance["validation_series"]),
        "bare_predict_epoch_slices_s": round(bare_s, 1), "load": os.getloadavg()[0],
    }
    for key, value in figures.items():
        print(f"{key}: {value}")
    write_results("training", figures)


if __name__ == "__main__":
    main()
