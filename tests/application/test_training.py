"""Training a development model through the application layer, with a stand-in model worker.

The stand-in plays the worker's training session (no TensorFlow): it keeps the batches it was
given, answers scripted epochs (validation loss, Dice, a NaN at a chosen epoch) and "saves" a
model file whose bytes name the epoch count, so every test sees exactly what the job sent and
what it wrote. The real training (TensorFlow in the worker) is tested in
``tests/models/test_training_worker.py``.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from ril_dash.application import jobs
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.application.training import TRAIN_JOB, curve_of, start_training
from ril_dash.core.paint import Delta
from ril_dash.errors import PermissionDenied, PluginError
from ril_dash.jobs import CANCELLED, DONE, FAILED, INTERRUPTED, run_job
from ril_dash.models import catalog, worker_client
from ril_dash.project.project import Project

SHAPE = (16, 16, 4)
SERIES = tuple(f"P{i}/ct.nii.gz" for i in range(1, 7))
WORKFLOW = """\
workflow:
  start_pool: analysts
  pools:
    analysts: {users: [ana], rights: [annotate], assign_to: [approved]}
    approved: {users: [sam], rights: [read, train]}
  admins: [root]
"""
YAML = """\
name: Training
images: images
rois:
  - {name: Liver, color: "#c8763c", value: 1}
  - {name: Spleen, color: "#00ff00", value: 2}
text_fields:
  - {name: Phase, type: choice, values: [arterial, venous]}
"""
ROOT = Actor("root", True, "test")


@pytest.fixture
def services(tmp_path):
    """Six 16 x 16 x 4 series; P1-P5 have a Liver block (P6 none), moved to 'approved'."""
    root = tmp_path / "proj"
    for sid in SERIES:
        path = root / "images" / sid
        path.parent.mkdir(parents=True)
        data = (np.arange(np.prod(SHAPE)) % 200).astype(np.int16).reshape(SHAPE)
        nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    (root / "project.yaml").write_text(YAML + WORKFLOW)
    services = Services(Project.open(root), background_checkpoints=False)
    for number, sid in enumerate(SERIES[:5], start=1):
        paint(services, sid, block(number))
    return services


def block(number: int) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[2:2 + number, 3:9, 1:3] = True
    return mask


def paint(services, series, mask, value=1):
    state = services.state(series)
    before = np.array(state.bits)
    bit = before.dtype.type(1 << (value - 1))
    after = np.where(mask, before | bit, before & ~bit)
    services.annotations(series).commit(
        state.version, Delta(tuple((0, n) for n in mask.shape), before,
                             after.astype(before.dtype)), {"user": "root", "op": "paint"},
        slots={value: value - 1})


def kidney_phantom_project(root, n_slices: int, spacing_z: float) -> Services:
    """Three tiny phantom CTs (64 x 64 x ``n_slices``) whose right kidney is drawn from the
    phantom's labels (for the tests that train for real)."""
    from ril_dash.demo.phantom import PROJECT_ROI_LABELS, make_phantom

    masks = {}
    for seed in (1, 2, 3):
        phantom = make_phantom(seed, "portal-venous", shape=(64, 64, n_slices),
                               spacing=(5.6, 5.6, spacing_z))
        sid = f"P{seed}/ct.nii.gz"
        (root / "images" / f"P{seed}").mkdir(parents=True)
        nib.save(nib.Nifti1Image(phantom.hu, phantom.affine), root / "images" / sid)
        masks[sid] = np.isin(phantom.labels, PROJECT_ROI_LABELS["Right kidney"])
    (root / "project.yaml").write_text(
        "name: Tiny\nimages: images\nrois:\n  - {name: Right kidney, color: '#ff0000', "
        "value: 1}\n")
    services = Services(Project.open(root), background_checkpoints=False)
    for sid, mask in masks.items():
        paint(services, sid, services.volume(sid).to_canonical(mask))
    return services


def approve(services, *series):
    from ril_dash.application import moves

    for sid in series:
        moves.move_series(services, ROOT, sid, "assign", "approved")


class StandInTrainer:
    """The worker's training requests; ``val_losses`` scripts the epochs, ``nan_at`` a NaN."""

    def __init__(self):
        self.val_losses = [0.9, 0.5, 0.6, 0.7, 0.8]
        self.nan_at = None
        self.out_of_time_at = None
        self.on_epoch = None  # called with the epoch number before it answers
        self.sessions = []
        self.old_probs = None

    def train_begin(self, spec, data, parent=None):
        self.sessions.append({"spec": spec, "data": data, "parent": parent})
        self.epoch_no = 0
        self.ended = False
        self.deadlines = []
        return {"params": 123, "train_slices": len(data["x_train"]),
                "validation_slices": len(data["x_val"])}

    def train_epoch(self, deadline_s=None):
        self.epoch_no += 1
        self.deadlines.append(deadline_s)
        if self.on_epoch:
            self.on_epoch(self.epoch_no)
        if self.nan_at == self.epoch_no:
            return {"epoch": self.epoch_no, "loss": None, "stopped": "nan"}
        val = self.val_losses[self.epoch_no - 1]
        score = ({"val_dice": [round(1 - val, 3)]}
                 if self.sessions[-1]["spec"]["task"] == "segmentation"
                 else {"val_accuracy": round(1 - val, 3)})
        stopped = "time" if self.out_of_time_at == self.epoch_no else None
        return {"epoch": self.epoch_no, "loss": val + 0.1, "val_loss": val, **score,
                "stopped": stopped, "seconds": 0.1}

    def train_save(self, path):
        with open(path, "wb") as handle:
            handle.write(f"stand-in model after {self.epoch_no} epochs".encode())
        return {"params": 123}

    def train_end(self):
        self.ended = True

    def predict(self, ref, batch, batch_size=8):
        return self.old_probs


@pytest.fixture
def trainer(monkeypatch):
    stand_in = StandInTrainer()
    monkeypatch.setattr(worker_client.ModelWorker, "shared", classmethod(lambda cls: stand_in))
    monkeypatch.setattr(catalog, "examples_root", lambda: None)
    return stand_in


def run(services, job):
    return run_job(jobs.job_store(services), job.id, jobs.work_for(TRAIN_JOB, services))


def train(services, actor=ROOT, **options):
    options = {"bundle_id": "liver-dev", "architecture": "unet", "rois": ["Liver"],
               "series": list(SERIES[:4]), "size": 16, "epochs": 5, **options}
    return run(services, start_training(services, actor, **options))


def provenance(services, version):
    folder = services.project.dir / "plugins" / "liver-dev" / version
    return json.loads((folder / "training.json").read_text())


def test_only_admins_and_pools_with_the_train_right_may_train(services, trainer):
    with pytest.raises(PermissionDenied, match="Only an administrator or a member of a workflow "
                       "pool with the 'train' right may train a development model; ana is not"):
        start_training(services, Actor("ana"), bundle_id="x", architecture="unet",
                       rois=["Liver"])
    with pytest.raises(PluginError, match="none of the chosen series has Liver"):
        start_training(services, Actor("sam"), bundle_id="x", architecture="unet",
                       rois=["Liver"], pool="approved")  # sam may train, but nothing approved
    approve(services, *SERIES[:3])
    ended = train(services, Actor("sam"), series=None, pool="approved")
    assert ended.state == DONE, ended.error
    found = provenance(services, "1.0.0")
    assert sorted([*found["train_series"], *found["validation_series"]]) == list(SERIES[:3])
    assert found["user"] == "sam"
    # series sam may not read (still with the analysts) are left out, with the reason
    job = start_training(services, Actor("sam"), bundle_id="x", architecture="unet",
                         rois=["Liver"], series=list(SERIES[:4]), size=16)
    assert list(job.params["versions"]) == list(SERIES[:3])
    assert job.params["skipped"] == [[SERIES[3], f"sam may not open {SERIES[3]}: it is in the "
                                      f"pool 'analysts', and you are not a member of it (your "
                                      f"pools: approved)."]]


def test_a_round_publishes_an_immutable_version_with_its_provenance(services, trainer):
    ended = train(services)
    assert ended.state == DONE, ended.error
    # validation loss 0.9, 0.5 (best), 0.6, 0.7, 0.8: 3 epochs without improvement (patience)
    assert [h["val_loss"] for h in ended.result["history"]] == [0.9, 0.5, 0.6, 0.7, 0.8]
    assert ended.result["stopped"] == "early stopping"
    entry = services.models.find("liver-dev", "1.0.0")
    assert entry.ok and entry.manifest.task == "segmentation"
    assert [(c.channel, c.roi) for c in entry.manifest.output.channels] == [(1, "Liver")]
    assert entry.manifest.input.size == (16, 16)
    assert entry.manifest.validation["metrics"] == {"dice Liver": 0.5}
    assert entry.model_path.read_bytes() == b"stand-in model after 5 epochs"
    found = provenance(services, "1.0.0")
    assert found["split"] == {SERIES[0]: "train", SERIES[1]: "train", SERIES[2]: "train",
                              SERIES[3]: "validation"}  # seeded order, round(4 / 4) = 1
    assert found["train_series"] == {s: services.state(s).version for s in SERIES[:3]}
    assert found["validation_series"] == {SERIES[3]: services.state(SERIES[3]).version}
    assert (found["parent"], found["architecture"], found["user"], found["kept_epoch"]) == (
        None, "unet", "root", 2)
    assert found["validation"] == {"dice Liver": 0.5}
    assert found["parameters"]["epochs"] == 5 and found["parameters"]["size"] == 16
    assert [h["epoch"] for h in found["history"]] == [1, 2, 3, 4, 5]
    assert curve_of(services, ended) == ended.result["history"]
    session = trainer.sessions[0]
    assert session["spec"] == {"task": "segmentation", "architecture": "unet", "n_classes": 2,
                               "learning_rate": 3e-3, "batch_size": 8, "seed": 0, "epochs": 5,
                               "epoch_slices": 256, "augment": True}
    # every slice with Liver (1, 2) and every third slice (0, 3) of 3 training series
    assert session["data"]["x_train"].shape == (12, 16, 16, 1)
    assert session["data"]["y_train"].shape == (12, 16, 16, 2)
    assert trainer.ended
    lines = [r["detail"] for r in services.audit.read(action="models")]
    assert lines[0]["change"] == "train" and lines[0]["version"] == "1.0.0"
    assert not (services.project.dir / ".models" / "training" / ended.id).exists()


def test_early_stopping_and_patience(services, trainer):
    ended = train(services, patience=2)
    assert ended.result["stopped"] == "early stopping"
    assert len(ended.result["history"]) == 4  # best at 2, then 2 epochs without improvement
    trainer.val_losses = [0.9, 0.8, 0.7]
    ended = train(services, epochs=3)
    assert ended.result["stopped"] == "epochs done"
    assert provenance(services, "1.1.0")["kept_epoch"] == 3
    # the first half of the schedule (high learning rate) does not use up the patience
    trainer.val_losses = [0.5] + [0.6 + i / 100 for i in range(9)]
    ended = train(services, epochs=10, patience=3)
    assert ended.result["stopped"] == "early stopping"
    assert len(ended.result["history"]) == 8  # epochs 6, 7 and 8 without a better score
    assert provenance(services, "1.2.0")["kept_epoch"] == 1


def test_the_kept_epoch_is_the_one_with_the_best_validation_dice(services, trainer):
    scores = iter([[0.6], [0.8], [0.8], [0.7]])
    trainer.on_epoch = lambda number: None
    original = trainer.train_epoch

    def epoch(deadline_s=None):
        answer = original(deadline_s)
        return {**answer, "val_dice": next(scores)}

    trainer.train_epoch = epoch
    trainer.val_losses = [0.9, 0.7, 0.6, 0.5]  # the loss keeps falling, the Dice does not
    ended = train(services, epochs=4)
    assert ended.state == DONE, ended.error
    # epoch 3 ties epoch 2's Dice with a lower loss; epoch 4's lower loss has a worse Dice
    assert provenance(services, "1.0.0")["kept_epoch"] == 3
    assert services.models.find("liver-dev", "1.0.0").manifest.validation["metrics"] == {
        "dice Liver": 0.8}


def test_a_series_edited_during_the_job_is_read_at_its_version_at_start(services, trainer):
    job = start_training(services, ROOT, bundle_id="liver-dev", architecture="unet",
                         rois=["Liver"], series=list(SERIES[:4]), size=16, epochs=1)
    recorded = {s: services.state(s).version for s in SERIES[:4]}
    paint(services, SERIES[0], block(5))  # a bigger block, after the job started
    assert services.state(SERIES[0]).version == recorded[SERIES[0]] + 1
    ended = run(services, job)
    assert ended.state == DONE, ended.error
    found = provenance(services, "1.0.0")
    assert {**found["train_series"], **found["validation_series"]} == recorded
    # P1 (a training series) trained on its 1-row block (version at start), not the 5-row one
    first = trainer.sessions[0]["data"]["y_train"][:4, ..., 1]  # P1's slices 0, 1, 2, 3
    assert first.sum() == pytest.approx(block(1).sum(), abs=1e-3)


def test_the_split_is_kept_across_rounds_and_new_series_are_assigned(services, trainer):
    assert train(services).state == DONE
    first = provenance(services, "1.0.0")["split"]
    ended = train(services, series=list(SERIES[:5]))
    assert ended.state == DONE, ended.error
    assert ended.result["version"] == "1.1.0"
    second = provenance(services, "1.1.0")
    assert {s: second["split"][s] for s in first} == first
    assert second["split"][SERIES[4]] == "train"  # 1 of 5 already validates (round(5 / 4))
    assert second["split_from"] == "liver-dev@1.0.0"
    # a third round on P1 only: P1 keeps its side even if the fraction changes
    third = train(services, series=list(SERIES[:5]), validation_fraction=0.5)
    split = provenance(services, "1.2.0")["split"]
    assert {s: split[s] for s in second["split"]} == second["split"]
    assert third.state == DONE
    # the version active before stays active: a new round waits for an admin
    assert services.models.state().pinned("liver-dev") == "1.0.0"
    assert services.models.resolve("liver-dev").version == "1.0.0"


def test_fine_tuning_trains_from_the_parent_and_records_it(services, trainer):
    assert train(services).state == DONE
    ended = run(services, start_training(services, ROOT, parent="liver-dev@1.0.0",
                                         series=list(SERIES[:5]), epochs=2))
    assert ended.state == DONE, ended.error
    assert trainer.sessions[1]["parent"].label == "liver-dev@1.0.0"
    assert trainer.sessions[1]["spec"]["learning_rate"] == 1e-3  # fine-tuning starts lower
    found = provenance(services, "1.1.0")
    assert (found["parent"], found["architecture"]) == ("liver-dev@1.0.0", None)
    with pytest.raises(PluginError, match="fine-tuning keeps its ROIs"):
        start_training(services, ROOT, parent="liver-dev@1.0.0", rois=["Spleen"])


def test_series_without_the_roi_are_skipped_and_none_left_is_refused(services, trainer):
    job = start_training(services, ROOT, bundle_id="liver-dev", architecture="unet",
                         rois=["Liver"], series=list(SERIES), size=16, epochs=1)
    assert job.params["skipped"] == [[SERIES[5], "Liver is not drawn in version 0"]]
    ended = run(services, job)
    assert ended.result["skipped"] == [[SERIES[5], "Liver is not drawn in version 0"]]
    with pytest.raises(PluginError, match=r"none of the chosen series has Spleen to learn from "
                                          r"\(6 skipped\)"):
        start_training(services, ROOT, bundle_id="spleen-dev", architecture="unet",
                       rois=["Spleen"], series="all")


def test_an_empty_validation_split_is_refused(services, trainer):
    with pytest.raises(PluginError, match="the validation split is empty: of the 1 usable "
                                          "series none is on the validation side"):
        start_training(services, ROOT, bundle_id="liver-dev", architecture="unet",
                       rois=["Liver"], series=[SERIES[0]], size=16)


@pytest.mark.parametrize("options, message", [
    ({"architecture": None}, "choose either an example architecture"),
    ({"size": 20}, "multiple of 8"),
    ({"epochs": 0}, "epochs must be between 1 and 200"),
    ({"bundle_id": "Bad Id"}, "the bundle id 'Bad Id' is not valid"),
    ({"rois": ["Nope"]}, "Nope is not an area ROI of this project"),
    ({"architecture": "cnn", "text_field": "Nope"}, "choose a choice text field"),
])
def test_bad_parameters_are_refused_with_what_to_do(services, trainer, options, message):
    options = {"bundle_id": "liver-dev", "architecture": "unet", "rois": ["Liver"],
               "size": 16, **options}
    with pytest.raises(PluginError, match=message):
        start_training(services, ROOT, **options)


def test_a_nan_loss_fails_the_job_and_writes_nothing(services, trainer):
    trainer.nan_at = 2
    ended = train(services, learning_rate=5.0)
    assert ended.state == FAILED
    assert ended.error == ("the training loss became NaN at epoch 2 (learning rate 5); training "
                           "stopped and nothing was written. Lower the learning rate or check "
                           "the series' annotations")
    assert not (services.project.dir / "plugins" / "liver-dev").exists()
    assert trainer.ended


def test_cancel_writes_nothing(services, trainer):
    job = start_training(services, ROOT, bundle_id="liver-dev", architecture="unet",
                         rois=["Liver"], series=list(SERIES[:4]), size=16)
    jobs.job_store(services).request_cancel(job.id)
    ended = run(services, job)
    assert ended.state == CANCELLED
    assert not (services.project.dir / "plugins" / "liver-dev").exists()


def test_cancel_between_epochs_writes_nothing(services, trainer):
    job = start_training(services, ROOT, bundle_id="liver-dev", architecture="unet",
                         rois=["Liver"], series=list(SERIES[:4]), size=16)
    store = jobs.job_store(services)
    trainer.on_epoch = lambda n: store.request_cancel(job.id) if n == 2 else None
    ended = run_job(store, job.id, jobs.work_for(TRAIN_JOB, services), cancel_interval=0)
    assert ended.state == CANCELLED
    assert [h["epoch"] for h in ended.result["history"]] == [1, 2]
    assert not (services.project.dir / "plugins" / "liver-dev").exists()
    assert trainer.ended


def test_the_time_budget_ends_training_and_keeps_the_best_epoch(services, trainer):
    trainer.out_of_time_at = 2
    ended = train(services, time_budget_s=60)
    assert ended.state == DONE, ended.error
    assert ended.result["stopped"] == "time budget"
    assert len(trainer.deadlines) == 2 and 0 < trainer.deadlines[0] <= 60
    assert provenance(services, "1.0.0")["kept_epoch"] == 2


def test_a_job_killed_while_publishing_leaves_no_version(services, trainer, monkeypatch):
    from ril_dash.models import wizard_files

    def killed(*_args):
        raise SystemExit("killed")

    monkeypatch.setattr(wizard_files.os, "rename", killed)
    job = start_training(services, ROOT, bundle_id="liver-dev", architecture="unet",
                         rois=["Liver"], series=list(SERIES[:4]), size=16, epochs=2)
    with pytest.raises(SystemExit):
        run(services, job)
    ended = jobs.job_store(services).get(job.id)
    assert ended.state == INTERRUPTED
    plugins = services.project.dir / "plugins"
    assert not (plugins / "liver-dev" / "1.0.0").exists()
    assert [p.name for p in plugins.iterdir() if p.name.startswith(".wizard")] == []
    assert not any(e.id == "liver-dev" for e in services.models.entries())
    jobs.clean_up_interrupted(jobs.job_store(services).get(ended.id))
    assert not (services.project.dir / ".models" / "training" / ended.id).exists()


@pytest.mark.parametrize("old_dice, active", [(0.2, "1.1.0"), (0.9, "1.0.0")])
def test_auto_activation_when_the_new_version_beats_the_active_one(services, trainer, old_dice,
                                                                   active):
    text = (services.project.dir / "project.yaml").read_text()
    (services.project.dir / "project.yaml").write_text(
        text.replace("images: images\n", "images: images\nsettings: {auto_activate_models: true}\n"))
    services.reload_config()
    assert train(services).state == DONE
    y_val = trainer.sessions[0]["data"]["y_val"]
    # the active version's answer on the validation slices: Dice old_dice against the target
    probs = np.array(y_val)
    liver = probs[..., 1] > 0.5
    keep = int(round(liver.sum() * old_dice))
    flat = np.flatnonzero(liver)
    probs[..., 1].flat[flat[keep:]] = 0.0
    probs[..., 0].flat[flat[keep:]] = 1.0
    trainer.old_probs = probs
    ended = train(services)
    assert ended.state == DONE, ended.error
    assert ended.result["activation"]["active"] == active
    assert services.models.resolve("liver-dev").version == active


def test_a_classifier_learns_a_choice_text_field(services, trainer):
    from ril_dash.project.text_values import set_text_values

    for number, sid in enumerate(SERIES, start=1):
        if number != 3:  # P3 has no value: skipped
            set_text_values(services.project.config, services.annotations(sid), None,
                            {"Phase": "venous" if number % 2 else "arterial"}, "root")
    ended = train(services, architecture="cnn", rois=[], text_field="Phase", series="all",
                  epochs=2)
    assert ended.state == DONE, ended.error
    assert ended.result["skipped"] == [[SERIES[2], "no value of Phase in version 1"]]
    spec = trainer.sessions[0]["spec"]
    assert (spec["task"], spec["architecture"], spec["n_classes"]) == ("classification", "cnn", 2)
    data = trainer.sessions[0]["data"]
    assert data["x_train"].shape[1:] == (16, 16, 1) and data["y_train"].ndim == 1
    assert set(np.unique(np.concatenate([data["y_train"], data["y_val"]]))) == {0, 1}
    entry = services.models.find("liver-dev", "1.0.0")
    out = entry.manifest.output
    assert (entry.manifest.task, out.text_field, out.classes) == (
        "classification", "Phase", ("arterial", "venous"))
    assert entry.manifest.validation["metrics"] == {"slice accuracy": 0.5}


def test_only_softmax_segmentation_bundles_with_a_background_channel_are_fine_tuned(services,
                                                                                   trainer):
    import hashlib

    model = b"stand-in sigmoid model"
    folder = services.project.dir / "plugins" / "liver-sig" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(model)
    (folder / "plugin.yaml").write_text(
        "id: liver-sig\nversion: 1.0.0\nname: Liver sigmoid\ntask: segmentation\n"
        f"dimension: 2\nmodel: {{file: model.keras, sha256: {hashlib.sha256(model).hexdigest()}}}\n"
        "input: {plane: axial, size: [16, 16]}\n"
        "output: {activation: sigmoid, channels: [{channel: 0, roi: Liver}]}\n")
    with pytest.raises(PluginError, match="liver-sig@1.0.0 is not a softmax model mapping its "
                                          "channels 1..1 to ROIs"):
        start_training(services, ROOT, parent="liver-sig")


def test_the_loop_progress_lists_each_trained_version_as_a_round(services, trainer):
    from ril_dash.application.loop_progress import loop_rounds, loop_series
    from ril_dash.ui.components.loop_plot import loop_figure

    assert loop_rounds(services) == []
    assert "No model version was trained" in loop_figure([]).layout.annotations[-1].text
    assert train(services).state == DONE  # best epoch: validation loss 0.5, Dice 0.5
    trainer.val_losses = [0.3, 0.2, 0.25, 0.4, 0.5]
    ended = run(services, start_training(services, ROOT, parent="liver-dev@1.0.0",
                                         series=list(SERIES[:5]), epochs=5))
    assert ended.state == DONE, ended.error
    rounds = loop_rounds(services)
    assert [(r.model, r.version, r.round, r.parent) for r in rounds] == [
        ("liver-dev", "1.0.0", 1, None), ("liver-dev", "1.1.0", 2, "liver-dev@1.0.0")]
    first, second = (provenance(services, v) for v in ("1.0.0", "1.1.0"))
    assert [(r.train_series, r.validation_series) for r in rounds] == [
        (len(first["train_series"]), len(first["validation_series"])),
        (len(second["train_series"]), len(second["validation_series"]))]
    assert rounds[1].train_series == rounds[0].train_series + 1  # P5 joined the training side
    assert [r.validation for r in rounds] == [{"dice Liver": 0.5}, {"dice Liver": 0.8}]
    [line] = loop_series(rounds)
    assert (line["rounds"], line["values"]) == ([1, 2], [0.5, 0.8])
    figure = loop_figure([line])
    by_round, by_size = figure.data
    assert list(by_round.x) == [1, 2] and list(by_size.x) == line["train_series"]
    assert list(by_round.text) == ["liver-dev@1.0.0", "liver-dev@1.1.0"]
    assert by_round.name == "liver-dev: Liver" and by_size.showlegend is False
    # a version trained elsewhere (no training.json) is no round of the loop
    (services.project.dir / "plugins" / "liver-dev" / "1.1.0" / "training.json").unlink()
    assert [r.version for r in loop_rounds(services)] == ["1.0.0"]
