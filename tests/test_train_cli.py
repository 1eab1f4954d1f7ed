"""``ril-dash train`` in this process, with the stand-in model worker of the training tests: the
same job as the Models page (its checks, its version and provenance), progress printed, and
clear refusals with exit status 2."""

from __future__ import annotations

import json

from ril_dash import cli
from ril_dash.application import jobs
from tests.application import test_training
from tests.application.test_training import SERIES, approve

#: the training tests' project (P1-P5 with a Liver block) and stand-in model worker
services, trainer = test_training.services, test_training.trainer


def train(services, capsys, *args):
    code = cli.main(["train", str(services.project.dir), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_writes_a_version_with_its_provenance_like_the_models_page(services, trainer,
                                                                          capsys):
    code, out, err = train(services, capsys, "--architecture", "unet", "--bundle", "liver-dev",
                           "--roi", "Liver", "--series", "P[1-4]/*", "--size", "16",
                           "--epochs", "5", "--user", "root")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith(": liver-dev from unet on 3 training and 1 validation series")
    assert any("epoch 2: loss 0.6000, validation loss 0.5000, validation Dice 0.500" in line
               for line in lines)
    written, took, rest = lines[-1].partition(" s (")[0].rpartition(" ")[0], \
        lines[-1].partition(" s (")[0].rpartition(" ")[2], lines[-1].partition(" s (")[2]
    assert written == "liver-dev@1.0.0 written in" and float(took) < 30
    assert rest == ("5 epochs, early stopping): validation Dice 0.50 (Liver) on 1 validation "
                    "series (epoch 2). Active version: 1.0.0 (the first usable version of the "
                    "bundle).")
    folder = services.project.dir / "plugins" / "liver-dev" / "1.0.0"
    found = json.loads((folder / "training.json").read_text())
    assert (found["user"], found["architecture"], found["kept_epoch"]) == ("root", "unet", 2)
    assert sorted([*found["train_series"], *found["validation_series"]]) == list(SERIES[:4])
    assert found["parameters"]["time_budget_s"] == 600.0  # --time-budget 10 minutes
    job = jobs.job_store(services).get(found["job"])
    assert (job.kind, job.owner, job.state) == ("train", "root", "done")  # on the Jobs page
    # the next round fine-tunes it on the approved pool; its split is kept
    approve(services, *SERIES[:5])
    code, out, err = train(services, capsys, "--parent", "liver-dev", "--pool", "approved",
                           "--epochs", "2", "--user", "root")
    assert code == 0, err
    assert "liver-dev@1.1.0 written" in out.splitlines()[-1]
    again = json.loads((folder.parent / "1.1.0" / "training.json").read_text())
    assert again["parent"] == "liver-dev@1.0.0" and again["split_from"] == "liver-dev@1.0.0"
    assert trainer.sessions[1]["spec"]["learning_rate"] == 1e-3


def test_train_refuses_with_what_to_do_and_writes_nothing(services, trainer, capsys):
    code, out, err = train(services, capsys, "--architecture", "unet", "--bundle", "liver-dev",
                           "--series", "P[1-4]/*")
    assert code == 2
    assert err == "ril-dash: error: choose the ROIs the U-Net should learn\n"
    code, _, err = train(services, capsys, "--architecture", "unet", "--bundle", "liver-dev",
                         "--roi", "Liver", "--pool", "nowhere")
    assert code == 2
    assert err.startswith("ril-dash: error: the workflow has no pool 'nowhere'; its pools are ")
    code, _, err = train(services, capsys, "--architecture", "unet", "--bundle", "liver-dev",
                         "--roi", "Liver", "--series", "P6/*")
    assert code == 2
    assert "none of the chosen series has Liver to learn from (1 skipped)" in err
    trainer.nan_at = 2
    code, out, err = train(services, capsys, "--architecture", "unet", "--bundle", "liver-dev",
                           "--roi", "Liver", "--series", "P[1-4]/*", "--size", "16")
    assert code == 2
    assert err.startswith("ril-dash: error: the training loss became NaN at epoch 2")
    assert not (services.project.dir / "plugins").exists()
    assert trainer.sessions and not (services.project.dir / "plugins" / "liver-dev").exists()
