"""Training in a real model worker (TensorFlow runs only in its subprocess), on tiny data.

One worker serves the module. The first test drives the worker's training requests directly on a
tiny batch (a U-Net that must learn a threshold, a NaN that must stop the epoch, the saved file
passing the safety scan); the second trains a development model of a tiny phantom project
through the application layer and lets the new bundle version draft a series through the
ordinary model-run path.
"""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.application import jobs
from ril_dash.application.model_runs import start_model_run
from ril_dash.application.policy import Actor
from ril_dash.application.training import TRAIN_JOB, start_training
from ril_dash.jobs import DONE, run_job
from ril_dash.models import catalog
from ril_dash.models.safety import file_sha256, scan_model_file
from ril_dash.models.worker_client import ModelRef, ModelWorker
from tests.application.test_training import kidney_phantom_project

pytestmark = pytest.mark.slow

ROOT = Actor("root", True, "test")


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    folder = tmp_path_factory.mktemp("worker")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RIL_DASH_WORKER_DIR", str(folder))
        client = ModelWorker()
        patch.setattr(ModelWorker, "shared", classmethod(lambda cls: client))
        yield client
        client.shutdown()


def tiny_data(seed=0, n=12):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 16, 16, 1), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[(x[..., 0] > 0.6).astype(int)]
    return x, y


def test_the_worker_trains_stops_on_nan_and_saves_a_clean_model(worker, tmp_path):
    x, y = tiny_data()
    spec = {"task": "segmentation", "architecture": "unet", "n_classes": 2,
            "learning_rate": 1e-2, "batch_size": 4, "seed": 0}
    info = worker.train_begin(spec, {"x_train": x[:8], "y_train": y[:8], "x_val": x[8:],
                                     "y_val": y[8:]})
    assert info == {"params": 57562, "train_slices": 8, "validation_slices": 4}
    first, second = worker.train_epoch(), worker.train_epoch()
    assert (first["epoch"], second["epoch"], first["stopped"], first["batches"]) == (1, 2, None, 2)
    assert second["loss"] < first["loss"]
    assert len(second["val_dice"]) == 1 and 0.0 <= second["val_dice"][0] <= 1.0
    path = tmp_path / "model.keras"
    worker.train_save(str(path))
    scan_model_file(path, "trained")  # standard layers only: the worker will load it
    ref = ModelRef(str(path), file_sha256(path), "trained@1.0.0")
    out = worker.predict(ref, x[8:])
    assert out.shape == (4, 16, 16, 2) and np.allclose(out.sum(-1), 1.0, atol=1e-4)
    worker.train_end()
    x[0, 0, 0, 0] = np.nan
    worker.train_begin(spec, {"x_train": x[:8], "y_train": y[:8], "x_val": x[8:],
                              "y_val": y[8:]})
    epoch = worker.train_epoch()
    assert epoch["stopped"] == "nan" and epoch["batches"] < 2 and "val_loss" not in epoch
    # the example classifier: one class per slice (bright or dark)
    labels = (x[..., 0].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    x[0, 0, 0, 0] = 0.0
    classes = {**spec, "task": "classification", "architecture": "cnn"}
    worker.train_begin(classes, {"x_train": x[:8], "y_train": labels[:8], "x_val": x[8:],
                                 "y_val": labels[8:]})
    epoch = worker.train_epoch()
    assert epoch["stopped"] is None and 0.0 <= epoch["val_accuracy"] <= 1.0
    worker.train_save(str(tmp_path / "classifier.keras"))
    scan_model_file(tmp_path / "classifier.keras", "classifier")
    worker.train_end()


def test_a_small_training_set_is_drawn_again_augmented_with_a_decaying_rate(worker, tmp_path):
    x, y = tiny_data()
    spec = {"task": "segmentation", "architecture": "unet", "n_classes": 2,
            "learning_rate": 1e-2, "batch_size": 4, "seed": 0, "epochs": 2,
            "epoch_slices": 20, "augment": True}
    worker.train_begin(spec, {"x_train": x[:8], "y_train": y[:8], "x_val": x[8:],
                              "y_val": y[8:]})
    first, second = worker.train_epoch(), worker.train_epoch()
    assert (first["batches"], second["batches"]) == (5, 5)  # 20 slices drawn from 8, by 4
    assert first["best"] or second["best"]
    saved = worker.train_save(str(tmp_path / "model.keras"))
    best = max((first, second), key=lambda e: (np.mean(e["val_dice"]), -e["val_loss"]))
    assert saved["kept_epoch"] == best["epoch"]
    worker.train_end()


@pytest.fixture
def phantom_project(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "examples_root", lambda: None)
    return kidney_phantom_project(tmp_path / "proj", 8, 20.0)


def test_a_trained_version_drafts_a_series_through_the_model_run(worker, phantom_project):
    services = phantom_project
    job = start_training(services, ROOT, bundle_id="kidney-dev", architecture="unet",
                         rois=["Right kidney"], series="all", size=16, epochs=2,
                         learning_rate=1e-2)
    ended = run_job(jobs.job_store(services), job.id, jobs.work_for(TRAIN_JOB, services))
    assert ended.state == DONE, ended.error
    assert [h["epoch"] for h in ended.result["history"]] == [1, 2]
    entry = services.models.find("kidney-dev", "1.0.0")
    assert entry.ok and services.models.resolve("kidney-dev").version == "1.0.0"
    draft = start_model_run(services, ROOT, "kidney-dev", ["P1/ct.nii.gz"], mode="replace")
    done = run_job(jobs.job_store(services), draft.id, jobs.work_for(draft.kind, services))
    assert done.state == DONE, done.error
    assert done.result["model"] == "kidney-dev@1.0.0"
    assert len(done.result["drafted"]) + len(done.result["unchanged"]) == 1
