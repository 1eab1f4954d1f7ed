"""Model runs through the application layer, with a stand-in model worker (no TensorFlow).

The stand-in computes a known function of its input batch, so the voxels each run must write
are known exactly: a segmentation "model" that calls Liver every voxel brighter than 128 (the
series hold 0..255) and Spleen nothing, and a classifier that answers "venous" with p = 0.8.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ril_dash.application import jobs, leases, moves
from ril_dash.application.drafts import MERGE_MODES
from ril_dash.application.model_runs import start_model_run
from ril_dash.core.paint import Delta
from ril_dash.errors import ModelRunError, PermissionDenied, PluginError
from ril_dash.jobs import DONE, FAILED, run_job
from ril_dash.models import catalog, worker_client
from tests.application.conftest import SERIES, SHAPE, actor

MODEL = b"stand-in model bytes"
SEG = """\
id: liver-seg
version: 1.0.0
name: Liver threshold
task: segmentation
dimension: 2
model: {file: model.keras, sha256: %s}
input: {plane: axial, size: [8, 8], resample: none}
normalization: {method: none}
output:
  activation: softmax
  channels:
    - {channel: 1, roi: Liver}
    - {channel: 2, roi: Spleen}
  largest_component: false
  min_size: 0
"""
CLS = """\
id: phase
version: 2.0.0
name: Phase
task: classification
dimension: 2
model: {file: model.keras, sha256: %s}
input: {plane: axial, size: [8, 8], resample: none}
normalization: {method: none}
output: {activation: softmax, text_field: Phase, classes: [arterial, venous]}
"""
#: voxel values are 0..255 (``np.arange``); the stand-in segments those above this
THRESHOLD = 128


class StandInWorker:
    """Answers like the model worker; ``fail`` makes it return NaN, a wrong shape or die."""

    def __init__(self):
        self.fail = None
        self.calls = 0

    def warm(self, ref):
        self.ref = ref

    def predict(self, ref, batch):
        self.calls += 1
        if self.fail == "died":
            raise ModelRunError(f"the model worker stopped while running {ref.label} "
                                "(exit code -9, killed by SIGKILL); it restarts for the next run")
        n = batch.shape[0]
        if ref.label.startswith("phase"):
            return np.tile(np.float32([0.2, 0.8]), (n, 1))
        liver = (batch[..., 0] > THRESHOLD).astype(np.float32)
        out = np.stack([1 - liver, liver, np.zeros_like(liver)], axis=-1)
        if self.fail == "nan":
            out[0, 0, 0, 0] = np.nan
        if self.fail == "shape":
            out = out[..., :2]
        return out


def use_worker(monkeypatch, stand_in):
    """Make ``stand_in`` the model worker (and hide the example bundles); returns it."""
    monkeypatch.setattr(worker_client.ModelWorker, "shared", classmethod(lambda cls: stand_in))
    monkeypatch.setattr(catalog, "examples_root", lambda: None)
    return stand_in


def write_bundles(services):
    """The two bundles (liver-seg@1.0.0, phase@2.0.0) in the project's plugins folder."""
    sha = hashlib.sha256(MODEL).hexdigest()
    for text, (model_id, version) in ((SEG, ("liver-seg", "1.0.0")),
                                      (CLS, ("phase", "2.0.0"))):
        folder = services.project.dir / "plugins" / model_id / version
        folder.mkdir(parents=True)
        (folder / "plugin.yaml").write_text(text % sha)
        (folder / "model.keras").write_bytes(MODEL)
    return services


@pytest.fixture
def worker(monkeypatch):
    return use_worker(monkeypatch, StandInWorker())


@pytest.fixture
def bundles(services):
    return write_bundles(services)


def run(services, job):
    return run_job(jobs.job_store(services), job.id, jobs.work_for(job.kind, services))


def expected_liver() -> np.ndarray:
    return np.arange(np.prod(SHAPE)).reshape(SHAPE) > THRESHOLD


def liver_bits(services, series):
    state = services.state(series)
    return (state.bits >> state.slots[1]) & 1 == 1


def acquire(services, user, *series):
    for s in series:
        moves.move_series(services, actor(user), s, "acquire")
    return services.state(series[0]).version  # the versions the transitions made


def test_a_segmentation_run_writes_one_version_per_series_with_model_provenance(bundles, worker):
    services = bundles
    before = acquire(services, "ana", *SERIES)
    job = start_model_run(services, actor("ana"), "liver-seg", "all")
    ended = run(services, job)
    assert ended.state == DONE, ended.error
    assert ended.result["drafted"] == [[SERIES[0], before + 1], [SERIES[1], before + 1]]
    assert ended.result["notes"] == [f"{s}: Spleen is locked: left as it was" for s in SERIES]
    for series in SERIES:
        assert np.array_equal(liver_bits(services, series), expected_liver())
        info = services.annotations(series).versions()[0]
        assert (info.user, info.op, info.kind, info.model) == ("ana", "model", "model",
                                                               "liver-seg@1.0.0")
        state = services.state(series)
        drafted = {i for (plane, i), p in state.provenance.items() if p["kind"] == "model"}
        assert drafted == {k for k in range(SHAPE[2]) if expected_liver()[:, :, k].any()}
        assert services.locks.holder(series) is None  # the run's own lease was released
    lines = [r for r in services.audit.read() if r["action"] == "model_draft"]
    assert sorted((r["user"], r["series"], r["detail"]["model"]) for r in lines) == [
        ("ana", s, "liver-seg@1.0.0") for s in SERIES]


def test_merge_modes_keep_or_replace_what_humans_drew(bundles, worker):
    services = bundles
    series = SERIES[0]
    human = np.zeros(SHAPE, bool)
    human[0, 0, 3] = True  # a voxel the model does not call Liver, on slice 3
    state = services.state(series)
    services.annotations(series).commit(
        state.version, Delta(((0, 8), (0, 8), (0, 4)), np.zeros(SHAPE, np.uint8),
                             human.astype(np.uint8)), {"user": "bob", "op": "paint"},
        slots={1: 0})
    for mode, slice3 in (("empty_slices", human[:, :, 3]),
                         ("union", human[:, :, 3] | expected_liver()[:, :, 3]),
                         ("replace", expected_liver()[:, :, 3])):
        job = start_model_run(services, actor("root", admin=True), "liver-seg", [series],
                              mode=mode, slices=(2, 3))
        assert run(services, job).state == DONE
        bits = liver_bits(services, series)
        assert np.array_equal(bits[:, :, 3], slice3), mode
        assert np.array_equal(bits[:, :, 2], expected_liver()[:, :, 2]), mode
        assert not bits[:, :, :2].any(), mode  # outside the asked slices: untouched
    assert set(MERGE_MODES) == {"empty_slices", "union", "replace"}


def test_a_batch_skips_series_the_user_may_not_annotate_or_someone_else_edits(bundles, worker):
    services = bundles
    with pytest.raises(PermissionDenied, match="sam may annotate none of the chosen series"):
        start_model_run(services, actor("sam"), "liver-seg", "all")
    before = acquire(services, "ana", SERIES[0])
    ended = run(services, start_model_run(services, actor("ana"), "liver-seg", "all"))
    assert ended.result["drafted"] == [[SERIES[0], before + 1]]
    assert ended.result["skipped"] == [[SERIES[1], f"ana may not annotate {SERIES[1]}: "
                                        + ended.result["skipped"][0][1].split(": ", 1)[1]]]
    assert services.state(SERIES[1]).version == 0
    leases.take_lease(services, actor("ana"), SERIES[0])  # ana is painting it now
    ended = run(services, start_model_run(services, actor("root", admin=True), "liver-seg",
                                          "all", mode="replace"))
    assert ended.result["skipped"] == [[SERIES[0], "being edited by ana"]]
    assert ended.result["drafted"] == [[SERIES[1], 1]]
    assert services.state(SERIES[0]).version == before + 1
    assert services.locks.holder(SERIES[0]).user == "ana"


@pytest.mark.parametrize("fail, message", [
    ("nan", "liver-seg@1.0.0 returned NaN or infinite values"),
    ("shape", "liver-seg@1.0.0"),
    ("died", "the model worker stopped while running liver-seg@1.0.0"),
])
def test_a_failing_model_fails_the_job_naming_the_bundle_and_writes_nothing(
        bundles, worker, fail, message):
    services = bundles
    worker.fail = fail
    ended = run(services, start_model_run(services, actor("root", admin=True), "liver-seg",
                                          "all"))
    assert ended.state == FAILED
    assert message in ended.error
    assert [services.state(s).version for s in SERIES] == [0, 0]


def test_a_model_file_changed_after_the_start_fails_the_job(bundles, worker):
    services = bundles
    job = start_model_run(services, actor("root", admin=True), "liver-seg", "all")
    (services.project.dir / "plugins" / "liver-seg" / "1.0.0" / "model.keras").write_bytes(b"x")
    ended = run(services, job)
    assert ended.state == FAILED and "has changed since the manifest was written" in ended.error
    assert [services.state(s).version for s in SERIES] == [0, 0]


def test_refusals_before_anything_runs(bundles, worker):
    services = bundles
    with pytest.raises(PluginError, match="no model bundle 'nope'"):
        start_model_run(services, actor("ana"), "nope", "all")
    with pytest.raises(PluginError, match="liver-seg has no version 9.9.9"):
        start_model_run(services, actor("ana"), "liver-seg@9.9.9", "all")
    with pytest.raises(PluginError, match="unknown merge mode"):
        start_model_run(services, actor("ana"), "liver-seg", "all", mode="overwrite")
    with pytest.raises(PluginError, match="no series matches"):
        start_model_run(services, actor("ana"), "liver-seg", "P9/*")
    services.models.set_enabled("liver-seg", False)
    with pytest.raises(PluginError, match="liver-seg is disabled for this project"):
        start_model_run(services, actor("ana"), "liver-seg", "all")
    assert worker.calls == 0


def test_a_classification_fills_the_text_field_and_keeps_the_probability(bundles, worker):
    services = bundles
    before = acquire(services, "ana", SERIES[0])
    ended = run(services, start_model_run(services, actor("ana"), "phase@2.0.0", [SERIES[0]]))
    assert ended.state == DONE, ended.error
    assert ended.result["drafted"] == [[SERIES[0], before + 1, "venous", 0.8]]
    assert services.state(SERIES[0]).texts == {"Phase": "venous"}
    annotations = services.annotations(SERIES[0])
    info = annotations.versions()[0]
    assert (info.op, info.kind, info.model) == ("text", "model", "phase@2.0.0")
    run_meta = annotations._metas[before + 1]["model_run"]
    assert run_meta["probability"] == 0.8
    assert run_meta["probabilities"] == {"arterial": 0.2, "venous": 0.8}
    assert run_meta["sha256"] == hashlib.sha256(MODEL).hexdigest()
