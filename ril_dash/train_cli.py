"""``ril-dash train PROJECT --bundle ID ...``: train a development model without a browser.

The round is the same training job as the Models page starts (it appears on the Jobs page):
:func:`~ril_dash.application.training.start_training` checks the right to train, the ROIs or
text field, the series and the split at once and refuses with what to do; then the job runs
here, in this process, printing each epoch (loss, validation loss, Dice per ROI or accuracy),
while the model trains in the model worker. The new version is written under
``PROJECT/plugins/<id>/<version>/`` with its ``training.json`` and audited under ``--user``
(default: the operating-system user, acting as an admin like every command: whoever runs it has
the project's files). A round stopped half-way (Ctrl-C, a crash) writes no version: the version
folder is renamed into place whole at the end.

Examples::

    ril-dash train PROJECT --bundle kidney-dev --architecture unet \\
        --roi "Right kidney" --roi "Left kidney" --pool approved --epochs 15
    ril-dash train PROJECT --parent kidney-dev --series 'PATIENT-0*/*'
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ril_dash.errors import ModelRunError

__all__ = ["add_train_parser", "train_command"]


def add_train_parser(sub, add_user_option) -> None:
    """Add ``train`` to the sub-commands ``sub`` of the ``ril-dash`` parser."""
    p = sub.add_parser(
        "train", help="train a development model on annotated series (a new bundle version)",
        description="Train a development model inside ril_dash, as the Models page does: an "
                    "example architecture (a 2D U-Net for ROIs, a small CNN for a choice text "
                    "field) or an existing bundle to fine-tune, on the series of a workflow "
                    "pool or matching a glob. The result is a new immutable version of the "
                    "bundle with its provenance (training.json).")
    p.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--architecture", choices=("unet", "cnn"),
                      help="train this example from scratch (with --bundle and --roi or "
                           "--text-field)")
    what.add_argument("--parent", metavar="ID[@VERSION]",
                      help="fine-tune this bundle (its ROIs or classes; default version: the "
                           "active one)")
    p.add_argument("--bundle", metavar="ID",
                   help="the bundle id the round writes a version of (default: the parent's)")
    p.add_argument("--roi", action="append", default=[], metavar="NAME",
                   help="an ROI the U-Net learns; repeatable")
    p.add_argument("--text-field", metavar="NAME", help="the choice text field the CNN learns")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pool", metavar="NAME",
                       help="train on the series in this workflow pool, e.g. approved")
    where.add_argument("--series", default=None, metavar="GLOB",
                       help="train on the series whose id matches GLOB (default: all)")
    p.add_argument("--epochs", type=int, default=10, help="at most this many epochs (10)")
    p.add_argument("--time-budget", type=float, default=10.0, metavar="MINUTES",
                   help="stop training after this many minutes (10)")
    p.add_argument("--patience", type=int, default=3,
                   help="stop after this many epochs of the second half without a better "
                        "validation score (3)")
    p.add_argument("--validation-fraction", type=float, default=0.25, metavar="F",
                   help="share of new series that validate (0.25; earlier rounds' split kept)")
    p.add_argument("--learning-rate", type=float, default=None, metavar="RATE",
                   help="Adam's starting rate (default 3e-3 from an example, 1e-3 fine-tuning)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=None,
                   help="the model's input side (U-Net: a multiple of 8, default 128; CNN 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plugins", type=Path, action="append", default=[], metavar="DIR",
                   help="another folder of model bundles (<id>/<version>/plugin.yaml); "
                        "repeatable")
    add_user_option(p, "who trains, as recorded in the provenance and the audit log")


def _options(args: argparse.Namespace) -> dict:
    return {"bundle_id": args.bundle, "architecture": args.architecture, "parent": args.parent,
            "pool": args.pool, "series": args.series if not args.pool else None,
            "rois": args.roi, "text_field": args.text_field, "epochs": args.epochs,
            "time_budget_s": args.time_budget * 60, "patience": args.patience,
            "validation_fraction": args.validation_fraction, "seed": args.seed,
            "learning_rate": args.learning_rate, "batch_size": args.batch_size,
            "size": args.size}


def _summary(result: dict) -> str:
    validation = result.get("validation") or {}
    activation = result.get("activation") or {}
    return (f"{result['model']} written in {result.get('seconds', 0)} s "
            f"({len(result.get('history', []))} epochs, {result.get('stopped')}): "
            f"{validation.get('summary', 'no validation figures')}. Active version: "
            f"{activation.get('active')} ({activation.get('why')}).")


def train_command(args: argparse.Namespace) -> None:
    """``ril-dash train``: a training job, run here with its progress printed."""
    from ril_dash.cli import cli_actor, cli_services
    from ril_dash.run_model_cli import run_here

    services = cli_services(args.project_dir, args.plugins)
    job = start(services, cli_actor(args), _options(args))
    result = run_here(services, job, "the training job", progress_interval=0.5)
    if result.get("cancelled"):
        raise ModelRunError(f"training job {job.id} was cancelled; nothing was written")
    print(_summary(result), flush=True)


def start(services, actor, options: dict):
    """The training job, created with the Models page's checks (they raise with what to do)."""
    from ril_dash.application.training import start_training

    job = start_training(services, actor, **options)
    params = job.params
    sides = [params["split"][s] for s in params["versions"]]
    print(f"job {job.id}: {params['bundle_id']} from {params['parent'] or params['architecture']}"
          f" on {sides.count('train')} training and {sides.count('validation')} validation "
          f"series", flush=True)
    for series_id, reason in params.get("skipped", []):
        print(f"left out {series_id}: {reason}", flush=True)
    return job
