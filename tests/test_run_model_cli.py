"""``ril-dash run-model`` end to end: the shipped example bundles on a small demo project, with
the real model worker (TensorFlow in its own process, never in this one).

The kidney model must find both kidneys of a phantom patient (volume Dice against the
phantom's exact label map), and the contrast-phase classifier must name each phase of a patient.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ril_dash.application.services import Services
from ril_dash.core.volume import load_volume
from ril_dash.demo.demo_project import ensure_demo_project
from ril_dash.demo.phantom import PHASES, PROJECT_ROI_LABELS
from ril_dash.project.project import Project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return ensure_demo_project(root / "demo", progress=None, shape=(128, 128, 20))


@pytest.fixture(scope="module")
def worker_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("worker")
    env = {"RIL_DASH_WORKER_DIR": str(folder), "RIL_DASH_WORKER_IDLE_S": "60"}
    yield env
    subprocess.run([sys.executable, "-c", "from ril_dash.models.worker_client import "
                    "ModelWorker; ModelWorker.shared().shutdown()"],
                   env={**os.environ, **env}, check=False, timeout=60)


def run_model(demo, env, *args):
    return subprocess.run([sys.executable, "-m", "ril_dash", "run-model", str(demo), *args,
                           "--user", "ana"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_the_kidney_example_drafts_both_kidneys(demo, worker_env):
    series = "PHANTOM-001/CT-2026-01-14/portal-venous.nii.gz"
    done = run_model(demo, worker_env, "--model", "kidney-seg", "--series", series)
    assert done.returncode == 0, done.stderr
    assert "1 series drafted, 0 unchanged, 0 skipped" in done.stdout
    services = Services(Project.open(demo))
    state = services.state(series)
    truth = load_volume(demo / "ground_truth" / series).data[..., 0]
    rois = {r.name: r.value for r in services.project.config.rois}
    for name in ("Right kidney", "Left kidney"):
        drafted = (state.bits >> state.slots[rois[name]]) & 1 == 1
        assert dice(drafted, np.isin(truth, PROJECT_ROI_LABELS[name])) > 0.8, name
    info = services.annotations(series).versions()[0]
    assert (info.user, info.kind, info.model) == ("ana", "model", "kidney-seg@1.0.0")
    assert set(state.slots) == {rois["Right kidney"], rois["Left kidney"]}


def test_the_contrast_phase_example_names_every_phase(demo, worker_env):
    done = run_model(demo, worker_env, "--model", "contrast-phase@1.0.0", "--series",
                     "PHANTOM-003/*")
    assert done.returncode == 0, done.stderr
    services = Services(Project.open(demo))
    found = {phase: services.state(f"PHANTOM-003/CT-2026-01-14/{phase}.nii.gz").texts
             for phase in PHASES}
    assert found == {phase: {"Contrast phase": phase} for phase in PHASES}


def test_a_refused_run_says_why_and_writes_nothing(demo, worker_env):
    done = run_model(demo, worker_env, "--model", "kidney-seg@9.0.0", "--series", "all")
    assert done.returncode == 2
    assert "kidney-seg has no version 9.0.0; it has 1.0.0" in done.stderr
