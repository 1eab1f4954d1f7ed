"""Training a development model inside the tool: started with rights, run as a job, published
as a new immutable bundle version with its provenance.

:func:`start_training` checks the right (admins, or a workflow pool with the ``train`` right),
resolves what to train (an example architecture, ``unet`` for ROIs or ``cnn`` for a choice text
field, or an existing bundle to fine-tune, whose ROIs or classes it keeps), picks the series (a
workflow pool or ids / glob / ``"all"``; those the trainer may not read, or without the ROIs or
text value to learn, are skipped with the reason), **records each series' annotation version
now** (the job reads those versions even if someone edits a series meanwhile) and fixes the
train/validation split (kept from earlier rounds of the bundle: :mod:`training_bundle`). It
refuses at once, saying what to do, when no series or no validation series is left. The job
(:func:`run_training`, kind ``train``) prepares the slices with the bundle's own input geometry
(:mod:`training_data`) and drives the model worker epoch by epoch (:mod:`ril_dash.models.train`):
after each epoch it records the loss, validation loss and Dice per ROI (or accuracy) in the
job's progress and in the curve file the Models page draws, stops on cancel, on the time
budget, or early when the validation score (mean Dice per ROI, or accuracy) has not improved
for ``patience`` epochs of the second half of the schedule (in the first half the learning rate
is still high and the score noisy: those epochs count for the best, not for the patience), and
fails with "the training loss became NaN" (nothing written) when it diverges. The kept epoch
(the best validation score: :func:`ril_dash.models.train.better`) becomes
``PROJECT/plugins/<id>/<next version>/`` with ``training.json``.

A new version of an existing bundle does not become active by itself: the version active
before is pinned (an admin activates the new one on the Models page), unless project.yaml says
``settings: {auto_activate_models: true}`` and the new version beats the active one on the same
validation slices (:mod:`training_activation`).

The robot-annotator benchmark calls it like the Models page does::

    job = start_training(services, actor, bundle_id="kidney-dev", architecture="unet",
                         rois=["Right kidney", "Left kidney"], pool="approved", epochs=10)
    run_job(job_store(services), job.id, work_for(TRAIN_JOB, services))
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ril_dash.application import training_bundle as tb
from ril_dash.application.job_kit import MAX_LISTED, actor_of, base_params, job_store
from ril_dash.application.model_access import model_ref, resolve_bundle
from ril_dash.application.policy import Actor, train_decision
from ril_dash.application.services import Services
from ril_dash.application.training_activation import settle_activation
from ril_dash.application.training_data import (TRAIN, VALIDATION, SkipSeries, assign_split,
                                                choose_series, learn_problem, series_examples)
from ril_dash.core.atomic_io import atomic_write_text
from ril_dash.core.window import is_ct_like
from ril_dash.errors import ModelRunError, PluginError
from ril_dash.jobs import Job
from ril_dash.models.manifest import ID_RE, ClassificationOutput
from ril_dash.models.train import better
from ril_dash.models.worker_client import ModelWorker

__all__ = ["TRAIN_JOB", "clean_up_training", "curve_of", "run_training", "start_training",
           "training_params"]

TRAIN_JOB = "train"
TRAINING_DIR = Path(".models") / "training"
#: an epoch trains on at least this many slices (a small training set is drawn again, each
#: time augmented): a first round on three or four series still gets enough steps
EPOCH_SLICES = 256
#: Adam's default starting rate: training an example architecture from scratch, fine-tuning
LEARNING_RATES = {"example": 3e-3, "fine-tune": 1e-3}
LIMITS = {"epochs": (1, 200), "time_budget_s": (10, 24 * 3600), "size": (16, 512),
          "patience": (1, 50), "batch_size": (1, 256)}


def _bounded(name: str, value, cast=int):
    low, high = LIMITS[name]
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise PluginError(f"{name} must be a number between {low} and {high}") from None
    if not low <= number <= high:
        raise PluginError(f"{name} must be between {low} and {high}, got {value}")
    return number


def _target(services: Services, parent, architecture, rois, text_field) -> dict:
    """What to learn: ``{"task", "rois", "names"}`` or ``{"task", "text_field", "classes"}``."""
    config = services.project.config
    if parent is not None:
        out = parent.output
        if isinstance(out, ClassificationOutput):
            return {"task": "classification", "text_field": out.text_field,
                    "classes": list(out.classes)}
        names = [c.roi for c in sorted(out.channels, key=lambda c: c.channel)]
        if rois and sorted(rois) != sorted(names):
            raise PluginError(f"{parent.ref} learns {', '.join(names)}; fine-tuning keeps its "
                              f"ROIs. Train a new bundle from the U-Net for other ROIs.")
        if out.activation != "softmax" or \
                sorted(c.channel for c in out.channels) != list(range(1, len(names) + 1)):
            raise PluginError(f"{parent.ref} is not a softmax model mapping its channels "
                              f"1..{len(names)} to ROIs (channel 0: background); only such "
                              f"segmentation bundles can be fine-tuned")
    elif architecture == "unet":
        names = list(dict.fromkeys(rois or ()))
        if not names:
            raise PluginError("choose the ROIs the U-Net should learn")
    elif architecture == "cnn":
        field = next((f for f in config.text_fields if f.name == text_field), None)
        if field is None or field.type != "choice" or not field.values:
            raise PluginError(f"choose a choice text field for the classifier (got "
                              f"{text_field!r}); its values become the classes")
        return {"task": "classification", "text_field": field.name,
                "classes": list(field.values)}
    else:
        raise PluginError(f"unknown architecture {architecture!r}: choose unet (ROIs), cnn "
                          f"(a choice text field) or a bundle to fine-tune")
    by_name = {r.name: r for r in config.rois}
    unknown = [n for n in names if n not in by_name or by_name[n].type != "area"]
    if unknown:
        raise PluginError(f"{', '.join(unknown)} is not an area ROI of this project")
    return {"task": "segmentation", "names": names, "rois": [by_name[n].value for n in names]}


def training_params(services: Services, actor: Actor, *, bundle_id: str | None = None,
                    architecture: str | None = None, parent: str | None = None,
                    pool: str | None = None, series=None, rois=(), text_field: str | None = None,
                    epochs: int = 10, time_budget_s: float = 600, patience: int = 3,
                    validation_fraction: float = 0.25, seed: int = 0,
                    learning_rate: float | None = None, batch_size: int = 8,
                    size: int | None = None) -> dict[str, Any]:
    """The parameters of a training job (see :func:`start_training`), checked.

    Parameters
    ----------
    bundle_id : str
        The bundle the round writes a version of (default: the parent's id). Its later rounds
        keep its split.
    architecture : {"unet", "cnn"}, optional
        An example to train from scratch: the U-Net learns ``rois``, the CNN ``text_field``.
    parent : str, optional
        ``id`` or ``id@version`` of a 2D bundle to fine-tune instead (its ROIs or classes).
    pool : str, optional
        Train on the series in this workflow pool; else ``series``: ids, a glob or ``"all"``.
    rois, text_field
        What the example learns (project ROI names; a choice text field).
    epochs, time_budget_s, patience
        At most ``epochs``; stop at the budget (seconds of training), or after ``patience``
        epochs of the second half without a better validation score (mean Dice or accuracy;
        ties: a lower validation loss). An epoch trains on at least ``EPOCH_SLICES``
        augmented slices.
    validation_fraction, seed
        The share of new series that validate, and the seed of their order.
    learning_rate, batch_size, size
        Adam's starting learning rate (default 3e-3 from an example architecture, 1e-3 when
        fine-tuning; it decays along a cosine over the epochs), slices per step, the model's
        input side (the U-Net's: a multiple of 8; default 128, the CNN's 64). Fine-tuning keeps
        the parent's size.
    """
    train_decision(services.workflow, actor).check()
    if bool(architecture) == bool(parent):
        raise PluginError("choose either an example architecture (unet, cnn) or a bundle to "
                          "fine-tune")
    parent_entry = resolve_bundle(services, parent) if parent else None
    parent_manifest = parent_entry.manifest if parent_entry else None
    if parent_manifest is not None and parent_manifest.dimension != 2:
        raise PluginError(f"{parent_manifest.ref} is a 3D bundle; only slice-wise (2D) "
                          f"bundles can be fine-tuned here")
    bundle_id = str(bundle_id or (parent_manifest.id if parent_manifest else "")).strip()
    if not ID_RE.match(bundle_id):
        raise PluginError(f"the bundle id {bundle_id!r} is not valid: 1-64 of a-z 0-9 . _ -, "
                          f"starting with a letter or digit (e.g. kidney-dev)")
    if not 0.05 <= float(validation_fraction) <= 0.5:
        raise PluginError("validation_fraction must be between 0.05 and 0.5")
    if learning_rate is None:
        learning_rate = LEARNING_RATES["fine-tune" if parent else "example"]
    if not 0 < float(learning_rate) <= 10:
        raise PluginError("learning_rate must be above 0 and at most 10")
    target = _target(services, parent_manifest, architecture, list(rois or ()), text_field)
    if architecture == "unet" and target["task"] != "segmentation" or \
            architecture == "cnn" and target["task"] != "classification":
        raise PluginError("the U-Net learns ROIs and the classifier a text field")
    size = _bounded("size", size or (128 if target["task"] == "segmentation" else 64))
    if architecture == "unet" and size % 8:
        raise PluginError(f"the U-Net's input size must be a multiple of 8, got {size}")
    return {**base_params(services, actor), "bundle_id": bundle_id,
            "architecture": architecture, "parent": parent_manifest.ref if parent_manifest
            else None, "parent_sha256": parent_manifest.sha256 if parent_manifest else None,
            "pool": pool, "series": series if isinstance(series, (str, type(None)))
            else list(series), "target": target, "epochs": _bounded("epochs", epochs),
            "time_budget_s": _bounded("time_budget_s", time_budget_s, float),
            "patience": _bounded("patience", patience), "seed": int(seed),
            "validation_fraction": float(validation_fraction),
            "learning_rate": float(learning_rate),
            "batch_size": _bounded("batch_size", batch_size), "size": size}


def start_training(services: Services, actor: Actor, **options) -> Job:
    """Create the training job (keyword ``options``: see :func:`training_params`); PluginError
    or PermissionDenied at once, saying what to do, when it cannot train at all."""
    params = training_params(services, actor, **options)
    chosen, skipped = choose_series(services, actor, pool=params["pool"],
                                    series=params["series"])
    versions = {}
    for series in chosen:
        state = services.state(series)
        problem = learn_problem(state, params["target"])
        if problem is None:
            versions[series] = state.version
        else:
            skipped.append([series, problem])
    if not versions:
        what = params["target"].get("names") or [params["target"].get("text_field")]
        raise PluginError(f"none of the chosen series has {' and '.join(what)} to learn from "
                          f"({len(skipped)} skipped); annotate some series first or choose "
                          f"other series")
    previous, source = tb.lineage_split(services, params["bundle_id"], params["parent"])
    split = assign_split(list(versions), previous, params["validation_fraction"],
                         params["seed"])
    sides = {side: [s for s in versions if split[s] == side] for side in (TRAIN, VALIDATION)}
    if not sides[VALIDATION]:
        raise PluginError(f"the validation split is empty: of the {len(versions)} usable "
                          f"series none is on the validation side "
                          f"{'(kept from ' + source + ')' if source else ''}; add series (at "
                          f"least two are needed) so that one can validate")
    if not sides[TRAIN]:
        raise PluginError("the training split is empty: every usable series is a validation "
                          "series of an earlier round; add new annotated series")
    params.update(versions=versions, split={**previous, **split}, split_from=source or None,
                  skipped=skipped[:MAX_LISTED])
    return job_store(services).create(actor.user, TRAIN_JOB, params)


# -- the job ---------------------------------------------------------------------------------
def curve_path(project_dir, job_id: str) -> Path:
    return Path(project_dir) / TRAINING_DIR / f"{job_id}.json"


def curve_of(services: Services, job: Job) -> list[dict]:
    """The epochs a training job recorded so far (for the live curve)."""
    try:
        data = json.loads(curve_path(services.project.dir, job.id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return (job.result or {}).get("history", [])
    return data if isinstance(data, list) else []


def _examples(services, params, manifest, skipped, cancelled):
    arrays = {TRAIN: ([], []), VALIDATION: ([], [])}
    for series, version in params["versions"].items():
        if cancelled():
            return None
        try:
            x, y = series_examples(services, series, int(version), manifest, params["target"])
        except SkipSeries as exc:
            skipped.append([series, str(exc)])
            continue
        xs, ys = arrays[params["split"][series]]
        xs.append(x)
        ys.append(y)
    for side, (xs, _) in arrays.items():
        if not xs:
            raise PluginError(f"no {side} series could be read for training; see the skipped "
                              f"series")
    return {f"{k}_{'train' if side == TRAIN else 'val'}": np.concatenate(v)
            for side, (xs, ys) in arrays.items() for k, v in (("x", xs), ("y", ys))}


def _manifest(services, params, parent_entry):
    entries = [e.version for e in services.models.entries() if e.id == params["bundle_id"]]
    version = tb.next_version(entries)
    target = params["target"]
    if parent_entry is not None:
        return dataclasses.replace(parent_entry.manifest, id=params["bundle_id"],
                                   version=version, validation=None)
    codes = {r.name: r.radlex for r in services.project.config.rois if r.radlex}
    output = (tb.segmentation_output(target["names"], codes) if target["task"] == "segmentation"
              else tb.classification_output(target["text_field"], target["classes"]))
    first = next(iter(params["versions"]))
    what = ", ".join(target.get("names") or [target.get("text_field", "")])
    return tb.example_manifest(params["bundle_id"], version, architecture=params["architecture"],
                               output=output, size=params["size"],
                               ct=bool(is_ct_like(services.volume(first).data[..., 0])),
                               description=f"Development model of {what}, trained in ril_dash.")


def _epochs(worker, params, report_progress, cancelled, curve_file):
    """Run the epochs; the history and why they stopped."""
    history, best, waited, started = [], None, 0, time.monotonic()
    budget = params["time_budget_s"]
    for _ in range(params["epochs"]):
        if cancelled():
            return history, "cancelled"
        left = budget - (time.monotonic() - started)
        if left <= 0:
            return history, "time budget"
        epoch = worker.train_epoch(deadline_s=left)
        if epoch["stopped"] == "nan":
            raise ModelRunError(
                f"the training loss became NaN at epoch {epoch['epoch']} (learning rate "
                f"{params['learning_rate']:g}); training stopped and nothing was written. "
                f"Lower the learning rate or check the series' annotations")
        history.append({k: epoch.get(k) for k in ("epoch", "loss", "val_loss", "val_dice",
                                                  "val_accuracy", "seconds")})
        atomic_write_text(curve_file, json.dumps(history))
        score = epoch.get("val_dice") or epoch.get("val_accuracy")
        report_progress(len(history) / params["epochs"],
                        f"epoch {len(history)}: loss {epoch['loss']:.4f}, validation loss "
                        f"{epoch['val_loss']:.4f}, {_score_text(score)}",
                        (len(history), params["epochs"]))
        if epoch["stopped"] == "time":
            return history, "time budget"
        if better(epoch, best):
            best, waited = epoch, 0
        elif len(history) > params["epochs"] // 2:  # the rate is still high before
            waited += 1
            if waited >= params["patience"]:
                return history, "early stopping"
    return history, "epochs done"


def _score_text(score) -> str:
    if isinstance(score, list):
        return "validation Dice " + " / ".join(f"{v:.3f}" for v in score)
    return f"validation accuracy {score:.3f}"


def run_training(services: Services, job: Job, report_progress, cancelled) -> dict[str, Any]:
    """The job work of a training round (see the module docstring)."""
    params, actor = job.params, actor_of(job)
    train_decision(services.workflow, actor).check()
    parent_entry = (resolve_bundle(services, params["parent"], sha256=params["parent_sha256"])
                    if params.get("parent") else None)
    manifest = _manifest(services, params, parent_entry)
    skipped = [list(s) for s in params.get("skipped", [])]
    report_progress(0.0, "reading the training series", None)
    data = _examples(services, params, manifest, skipped, cancelled)
    result = {"model": manifest.ref, "parent": params.get("parent"), "cancelled": data is None,
              "skipped": skipped[:MAX_LISTED], "skipped_total": len(skipped), "history": []}
    if data is None:
        return result
    workdir = Path(services.project.dir) / TRAINING_DIR / job.id
    workdir.mkdir(parents=True, exist_ok=True)
    worker = ModelWorker.shared()
    started = time.monotonic()
    try:
        history, why = _train(services, job, manifest, parent_entry, data, worker, workdir,
                              report_progress, cancelled, result)
        if history is None:
            return result
        seconds = round(time.monotonic() - started, 1)
        entry = tb.publish_round(services, actor, job, manifest, workdir / "model.keras",
                                 history, why, seconds, data)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.update(version=entry.version, seconds=seconds, validation=entry.manifest.validation,
                  activation=settle_activation(services, actor, entry, data, worker))
    return result


def _train(services, job, manifest, parent_entry, data, worker, workdir, report_progress,
           cancelled, result):
    """Begin, run the epochs, save the kept weights to ``workdir/model.keras``; the history
    and why it stopped, or ``(None, None)`` when cancelled before anything was kept."""
    params = job.params
    spec = {"task": params["target"]["task"], "architecture": params.get("architecture"),
            "n_classes": (len(params["target"]["rois"]) + 1 if "rois" in params["target"]
                          else len(params["target"]["classes"])),
            "learning_rate": params["learning_rate"], "batch_size": params["batch_size"],
            "seed": params["seed"], "epochs": params["epochs"], "epoch_slices": EPOCH_SLICES,
            "augment": True}
    report_progress(0.0, f"starting {manifest.ref} on {len(data['x_train'])} training and "
                    f"{len(data['x_val'])} validation slices", None)
    try:
        info = worker.train_begin(spec, data, model_ref(services, parent_entry)
                                  if parent_entry else None)
        history, why = _epochs(worker, params, report_progress, cancelled,
                               curve_path(services.project.dir, job.id))
        result.update(history=history, stopped=why, params=info["params"],
                      train_slices=info["train_slices"],
                      validation_slices=info["validation_slices"])
        if why == "cancelled" or not history:
            result["cancelled"] = True
            return None, None
        worker.train_save(str(workdir / "model.keras"))
    finally:
        _end(worker)
    return history, why


def _end(worker) -> None:
    try:
        worker.train_end()
    except ModelRunError:
        pass  # the worker died: its session died with it


def clean_up_training(project_dir, job: Job) -> None:
    """What a killed training job left: its work folder (never a version: that is renamed
    into place whole)."""
    shutil.rmtree(Path(project_dir) / TRAINING_DIR / job.id, ignore_errors=True)
