"""Uncertainty scores (what to annotate next) and the slices where model and humans disagree,
through the application layer with a stand-in model worker (no TensorFlow).

The series hold ``np.arange`` (voxel value ``32 x + 4 y + z``, 0..255). The stand-in
segmentation calls Liver every voxel above 64 for sure (p = 1), is unsure (1/3 for each of its
three channels: normalised entropy 1) on the eight voxels of values 57..64, and sure background
elsewhere (entropy 0). The foreground grown by 2 voxels in-plane covers every voxel, so the
score is exactly 8 / 256. The stand-in classifier answers (0.2, 0.8): entropy 0.721928 bits.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ril_dash.application import disagreements
from ril_dash.application.uncertainty import model_uncertainty, score_series, start_uncertainty
from ril_dash.core.paint import Delta
from ril_dash.errors import PermissionDenied, PluginError
from ril_dash.jobs import DONE, FAILED
from ril_dash.models.uncertainty_store import read_scores, scores_path, write_scores
from tests.application.conftest import SERIES, SHAPE, actor
from ril_dash.models.manifest import parse_manifest
from tests.application.test_model_runs import SEG, run, use_worker, write_bundles

ROOT = actor("root", admin=True)


class StandInWorker:
    """Answers like the model worker (see the module docstring); ``sure`` makes the
    segmentation sure everywhere (background below 57 too)."""

    def __init__(self):
        self.nan = False

    def warm(self, ref):
        self.ref = ref

    def predict(self, ref, batch):
        n = batch.shape[0]
        if ref.label.startswith("phase"):
            return np.tile(np.float32([0.2, 0.8]), (n, 1))
        value = batch[..., 0]
        liver = (value > 64).astype(np.float32)
        out = np.stack([1 - liver, liver, np.zeros_like(liver)], axis=-1)
        out[(value > 56) & (value <= 64)] = 1 / 3
        if self.nan:
            out[0, 0, 0, 0] = np.nan
        return out


@pytest.fixture
def worker(monkeypatch, services):
    """The stand-in worker, with the two bundles in the project."""
    write_bundles(services)
    return use_worker(monkeypatch, StandInWorker())


def test_segmentation_scores_are_the_mean_entropy_of_the_region_and_kept_per_version(
        services, worker):
    ended = run(services, start_uncertainty(services, ROOT, "liver-seg", "all"))
    assert ended.state == DONE, ended.error
    assert ended.result["scored"] == [[SERIES[0], 0.03125], [SERIES[1], 0.03125]]
    path = scores_path(services.project.dir, "liver-seg@1.0.0")
    assert path.relative_to(services.project.dir).as_posix() == \
        ".models/uncertainty/liver-seg@1.0.0.json"
    stored = json.loads(path.read_text())
    assert stored["series"][SERIES[0]]["voxels"] == 256
    assert stored["series"][SERIES[0]]["job"] == ended.id
    assert read_scores(services.project.dir, "liver-seg@1.0.0") == {s: 0.03125 for s in SERIES}
    assert [services.state(s).version for s in SERIES] == [0, 0]  # nothing drafted
    manifests = [e.manifest for e in services.models.entries()]
    assert model_uncertainty(services, manifests) == {"liver-seg@1.0.0": {
        s: 0.03125 for s in SERIES}}


def test_a_classifier_scores_the_entropy_of_its_class_probabilities(services, worker):
    ended = run(services, start_uncertainty(services, ROOT, "phase", [SERIES[1]]))
    expected = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8)) / math.log(2)
    assert ended.result["scored"][0][0] == SERIES[1]
    assert ended.result["scored"][0][1] == pytest.approx(expected, abs=1e-6)
    assert read_scores(services.project.dir, "phase@2.0.0") == {
        SERIES[1]: ended.result["scored"][0][1]}


def test_rights_are_those_of_a_model_run_and_refusals_say_why(services, worker):
    with pytest.raises(PermissionDenied, match="sam may annotate none of the chosen series"):
        start_uncertainty(services, actor("sam"), "liver-seg", "all")
    with pytest.raises(PluginError, match="no series matches 'P9/\\*'"):
        start_uncertainty(services, ROOT, "liver-seg", "P9/*")
    from ril_dash.application import moves
    moves.move_series(services, actor("ana"), SERIES[0], "acquire")
    ended = run(services, start_uncertainty(services, actor("ana"), "liver-seg", "all"))
    assert ended.result["scored"] == [[SERIES[0], 0.03125]]
    assert ended.result["skipped"][0][0] == SERIES[1]
    assert ended.result["skipped"][0][1].startswith(f"ana may not annotate {SERIES[1]}")


def test_a_failing_model_fails_the_job_and_keeps_the_scores_made_before(services, worker):
    run(services, start_uncertainty(services, ROOT, "liver-seg", [SERIES[0]]))
    worker.nan = True
    ended = run(services, start_uncertainty(services, ROOT, "liver-seg", [SERIES[1]]))
    assert ended.state == FAILED and "liver-seg@1.0.0 returned NaN" in ended.error
    assert read_scores(services.project.dir, "liver-seg@1.0.0") == {SERIES[0]: 0.03125}


def test_a_resampled_input_is_scored_on_the_series_grid(services):
    """The model sees 4 x 4 slices (resampled); its outputs come back on the 8 x 8 grid: a model
    unsure everywhere (0.5, 0.5, 0: entropy ln 2 / ln 3) scores that over all 256 voxels."""

    class Unsure:
        def predict(self, ref, batch):
            assert batch.shape[1:3] == (4, 4)
            return np.tile(np.float32([0.5, 0.5, 0.0]), (*batch.shape[:3], 1))

    manifest = parse_manifest((SEG % ("0" * 64)).replace("size: [8, 8], resample: none",
                                                         "size: [4, 4], resample: size"))
    scored = score_series(services.volume(SERIES[0]), manifest, None, Unsure())
    assert scored == {"score": round(math.log(2) / math.log(3), 6), "voxels": 256}


def test_scores_of_another_model_file_are_not_read_and_are_replaced(tmp_path):
    write_scores(tmp_path, "m@1", "aaa", "method", {"a": {"score": 0.5, "voxels": 3}})
    write_scores(tmp_path, "m@1", "aaa", "method", {"b": {"score": 0.25, "voxels": 1}})
    assert read_scores(tmp_path, "m@1", "aaa") == {"a": 0.5, "b": 0.25}
    assert read_scores(tmp_path, "m@1", "bbb") == {}
    write_scores(tmp_path, "m@1", "bbb", "method", {"c": {"score": 0.125, "voxels": 1}})
    assert read_scores(tmp_path, "m@1") == {"c": 0.125}
    scores_path(tmp_path, "m@1").write_text("{broken")
    with pytest.raises(Exception, match="delete the file and score the series again"):
        read_scores(tmp_path, "m@1")


# ---- the slices where model and humans disagree -------------------------------------------------
DRAFTED = {"user": "ana", "op": "model",
           "provenance": {"kind": "model", "model": "liver-seg@1.0.0"}}


def _commit(services, series, mask, meta):
    state = services.state(series)
    old = ((state.bits >> 0) & 1).astype(np.uint8)
    return services.annotations(series).commit(
        state.version, Delta(((0, 8), (0, 8), (0, 4)), old, mask.astype(np.uint8)),
        meta, slots={1: 0})


def test_worst_slices_list_the_draft_against_the_humans_worst_first(services):
    series = SERIES[0]
    draft = np.zeros(SHAPE, bool)
    draft[0:4, 0:4, :] = True          # 16 voxels on each of the 4 slices
    human = draft.copy()
    human[0:4, 0:2, 1] = False         # slice 1: 8 of 16 kept → Dice 2*8/24 = 0.667
    human[4:8, 4:8, 2] = True          # slice 2: 16 added → Dice 2*16/48 = 0.667, 16 differ
    human[:, :, 3] = False             # slice 3: all removed → Dice 0
    _commit(services, series, draft, DRAFTED)
    _commit(services, series, human, {"user": "ana", "op": "paint"})
    found = disagreements.worst_slices(services, actor("ana"), series)
    assert (found.draft, found.model, found.roi, found.note) == (1, "liver-seg@1.0.0", "Liver",
                                                                  "")
    assert [(s.index, round(s.dice, 3), s.voxels_draft, s.voxels_human, s.differing)
            for s in found.slices] == [(3, 0.0, 16, 0, 16), (2, 0.667, 16, 32, 16),
                                       (1, 0.667, 16, 8, 8)]
    assert [s.index for s in disagreements.worst_slices(services, actor("ana"), series,
                                                        limit=1).slices] == [3]


def test_worst_slices_say_why_the_list_is_empty(services):
    series = SERIES[0]
    assert disagreements.worst_slices(services, actor("ana"), series).note == \
        "No model has drafted this series."
    draft = np.zeros(SHAPE, bool)
    draft[0:2, 0:2, 0] = True
    _commit(services, series, draft, DRAFTED)
    found = disagreements.worst_slices(services, actor("ana"), series)
    assert found.slices == [] and found.note.startswith("The humans kept the model's draft")
    with pytest.raises(PermissionDenied):
        disagreements.worst_slices(services, actor("nobody"), series)
