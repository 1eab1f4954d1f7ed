"""The bundle a training round makes: its manifest, its version number, its provenance.

- :func:`example_manifest`: the manifest of a model trained from an example architecture
  (one axial slice zoomed to ``size``; a CT window for CT, percentiles otherwise);
- :func:`next_version`: the first version of a new bundle id is ``1.0.0``; a later round takes
  the next minor version after the newest one in any plugins root (``1.2.0`` → ``1.3.0``);
- :func:`lineage_split`: the split kept with the model: that of the newest version of the bundle
  id with a ``training.json``, else that of the parent bundle;
- :func:`publish`: the new version ``PROJECT/plugins/<id>/<version>/`` (``plugin.yaml``, the
  model file and ``training.json``), written whole through
  :func:`~ril_dash.models.wizard_files.write_bundle_version` (a temp folder renamed into place:
  a job killed before that leaves no version, never a half-written one).

``training.json`` holds the provenance: the training and validation series with the annotation
versions they were read at, the whole split (series of earlier rounds too), the parameters,
the validation Dice per ROI (or accuracy) of the kept epoch (the best one:
:func:`~ril_dash.models.train.better`), the history of every epoch, the
parent version, the job, the user and the time.
"""

from __future__ import annotations

import dataclasses
import datetime
import json

from ril_dash.application.services import Services
from ril_dash.application.training_data import TRAIN, VALIDATION
from ril_dash.models.catalog import PLUGINS_DIR
from ril_dash.models.manifest import (SEMVER_RE, ChannelMap, ClassificationOutput, InputSpec,
                                      Manifest, NormSpec, SegmentationOutput, version_key)
from ril_dash.models.safety import file_sha256
from ril_dash.models.train import better
from ril_dash.models.wizard_files import write_bundle_version

__all__ = ["PROVENANCE_FILE", "example_manifest", "lineage_split", "next_version", "publish",
           "publish_round", "read_provenance", "segmentation_output", "classification_output"]

PROVENANCE_FILE = "training.json"
#: a CT window that shows soft tissue (what the example models use)
CT_WINDOW = (-160.0, 240.0)


def next_version(versions) -> str:
    """The version a new round gets after ``versions`` (any order).

    >>> next_version([]), next_version(["1.0.0", "1.2.0", "1.10.0-rc.1"])
    ('1.0.0', '1.11.0')
    """
    known = [v for v in versions if SEMVER_RE.match(v)]
    if not known:
        return "1.0.0"
    major, minor = SEMVER_RE.match(max(known, key=version_key)).groups()[:2]
    return f"{major}.{int(minor) + 1}.0"


def segmentation_output(rois, codes: dict[str, str]) -> SegmentationOutput:
    """Softmax channels 1.. → ``rois`` (channel 0 is the background), cleaned up in 3D."""
    return SegmentationOutput(
        channels=tuple(ChannelMap(i, name, codes.get(name)) for i, name in enumerate(rois, 1)),
        activation="softmax", largest_component=True, min_size=20)


def classification_output(field: str, classes) -> ClassificationOutput:
    return ClassificationOutput(text_field=field, classes=tuple(classes), activation="softmax",
                                aggregate="mean", slices="middle")


def example_manifest(bundle_id: str, version: str, *, architecture: str, output, size: int,
                     ct: bool, description: str) -> Manifest:
    """The manifest of a round trained from ``architecture`` (sha256 filled in on publish)."""
    norm = (NormSpec(method="window", window=CT_WINDOW) if ct
            else NormSpec(method="percentile", percentiles=(1.0, 99.0)))
    task = "segmentation" if architecture == "unet" else "classification"
    return Manifest(id=bundle_id, version=version, name=f"{bundle_id} (development model)",
                    task=task, dimension=2, model_file="model.keras", sha256="0" * 64,
                    description=description, author="ril_dash training",
                    input=InputSpec(plane="axial", size=(int(size), int(size))),
                    normalization=norm, output=output)


def read_provenance(folder) -> dict | None:
    """The ``training.json`` of a bundle version folder, or None (none, or unreadable)."""
    try:
        data = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def lineage_split(services: Services, bundle_id: str, parent_ref: str | None) -> tuple[dict, str]:
    """The split to keep (series → ``train`` / ``validation``) and where it comes from."""
    entries = [e for e in services.models.entries() if e.id == bundle_id and e.manifest]
    for entry in entries:  # newest version first
        found = read_provenance(entry.folder)
        if found and isinstance(found.get("split"), dict):
            return dict(found["split"]), entry.ref
    if parent_ref:
        for entry in services.models.entries():
            if entry.ref == parent_ref and entry.manifest is not None:
                found = read_provenance(entry.folder)
                if found and isinstance(found.get("split"), dict):
                    return dict(found["split"]), entry.ref
    return {}, ""


def publish(services: Services, manifest: Manifest, model_path, provenance: dict):
    """Write the new version (see the module docstring) and return its catalog entry."""
    taken = {e.ref: e.folder for e in services.models.entries() if e.version}
    text = json.dumps(provenance, indent=1, sort_keys=True)
    write_bundle_version(services.project.dir / PLUGINS_DIR, manifest, model_path, taken=taken,
                         extra_files={PROVENANCE_FILE: text})
    return services.models.find(manifest.id, manifest.version)


def publish_round(services: Services, actor, job, manifest: Manifest, model_path, history,
                  why: str, seconds: float, data: dict):
    """The manifest's validation figures (of the kept epoch: the best validation score), sha256
    and changelog, the provenance, the new version (:func:`publish`) and its audit line."""
    params = job.params
    kept = history[0]
    for epoch in history[1:]:
        if better(epoch, kept):
            kept = epoch
    target = params["target"]
    if "names" in target:
        metrics = {f"dice {n}": round(float(d), 3) for n, d in zip(target["names"],
                                                                     kept["val_dice"])}
        summary = "validation Dice " + ", ".join(f"{v:.2f} ({k[5:]})" for k, v in metrics.items())
    else:
        metrics = {"slice accuracy": round(float(kept["val_accuracy"]), 3)}
        summary = f"validation slice accuracy {metrics['slice accuracy']:.2f}"
    sides = {side: {s: v for s, v in params["versions"].items() if params["split"][s] == side}
             for side in (TRAIN, VALIDATION)}
    summary += f" on {len(sides[VALIDATION])} validation series (epoch {kept['epoch']})"
    manifest = dataclasses.replace(
        manifest, sha256=file_sha256(model_path),
        changelog=(f"Trained in ril_dash on {len(sides[TRAIN])} series "
                   f"({len(sides[VALIDATION])} for validation), from "
                   f"{params.get('parent') or params['architecture']}; {why}."),
        validation={"date": datetime.date.today().isoformat(), "summary": summary,
                    "metrics": metrics})
    provenance = {
        "model": manifest.ref, "parent": params.get("parent"),
        "architecture": params.get("architecture"), "user": actor.user, "job": job.id,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "train_series": sides[TRAIN], "validation_series": sides[VALIDATION],
        "split": params["split"], "split_from": params.get("split_from"),
        "target": target, "validation": metrics, "kept_epoch": kept["epoch"], "stopped": why,
        "seconds": seconds, "history": history,
        "slices": {"train": int(len(data["x_train"])), "validation": int(len(data["x_val"]))},
        "parameters": {k: params[k] for k in ("epochs", "time_budget_s", "patience", "seed",
                                              "validation_fraction", "learning_rate",
                                              "batch_size", "size", "pool", "series")}}
    entry = publish(services, manifest, model_path, provenance)
    services.audit.record(actor.user, "models", None,
                          {"change": "train", "model": manifest.id, "version": manifest.version,
                           "sha256": manifest.sha256, "parent": params.get("parent"),
                           "job": job.id})
    return entry
