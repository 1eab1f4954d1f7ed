"""Which version is active after a training round published a new one.

Without a pin the catalog makes the newest valid version active, so a new round would go live by
itself. :func:`settle_activation` decides instead:

- the first version of a bundle is its only one: it is active;
- otherwise, when project.yaml says ``settings: {auto_activate_models: true}``, the version
  active before is run on the new round's validation slices (in the model worker; only when
  it takes the same input, so that the slices are the same) and the new version is made active
  when its mean validation Dice (or accuracy) is higher;
- in every other case the version active before stays active (it is pinned), and an admin can
  activate the new one on the Models page.

Each pin is a ``models`` audit line (``"change": "activate"`` with ``"by": "training"``).
"""

from __future__ import annotations

import numpy as np

from ril_dash.application.model_access import model_ref
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import RilDashError
from ril_dash.models.catalog import BundleEntry
from ril_dash.models.registry import active_version
from ril_dash.models.train import dice_per_class

__all__ = ["settle_activation", "validation_score"]


def validation_score(manifest, probs: np.ndarray, y_val: np.ndarray) -> float:
    """Mean Dice over the ROIs (segmentation) or slice accuracy of ``probs`` on ``y_val``.

    >>> y = np.eye(2)[np.array([[[0, 1]]])]   # one 1 x 2 slice, one-hot
    >>> validation_score(type("M", (), {"task": "segmentation"}), y, y)
    1.0
    """
    if manifest.task == "segmentation":
        return float(np.mean(dice_per_class(np.argmax(y_val, -1), np.argmax(probs, -1),
                                            y_val.shape[-1])))
    return float(np.mean(np.argmax(probs, -1) == y_val))


def _mean_metric(entry: BundleEntry) -> float:
    metrics = (entry.manifest.validation or {}).get("metrics", {})
    return float(np.mean([float(v) for v in metrics.values()]))


def _pin(services: Services, actor: Actor, model_id: str, version: str) -> None:
    services.models.set_active(model_id, version)
    services.audit.record(actor.user, "models", None, {"change": "activate", "model": model_id,
                                                       "version": version, "by": "training"})


def settle_activation(services: Services, actor: Actor, entry: BundleEntry, data: dict,
                      worker) -> dict:
    """Pin the right version (see the module docstring); what happened, for the job result."""
    new = entry.manifest
    state = services.models.state()
    others = [e for e in services.models.entries() if e.id == new.id and e.version != new.version]
    before = active_version(state, new.id, others)
    if before is None:
        return {"active": new.version, "why": "the first usable version of the bundle"}
    if not services.project.config.auto_activate_models:
        if state.pinned(new.id) is None:
            _pin(services, actor, new.id, before)
        return {"active": before, "why": f"{before} stays active until an administrator "
                                         f"activates {new.version}"}
    old = next(e for e in others if e.version == before)
    if (old.manifest.input, old.manifest.normalization, old.manifest.output) != \
            (new.input, new.normalization, new.output):
        _pin(services, actor, new.id, before)
        return {"active": before, "why": f"{before} takes another input or output, so it "
                                         f"cannot be compared on the same slices"}
    try:
        probs = worker.predict(model_ref(services, old), data["x_val"])
        old_score = validation_score(new, probs, data["y_val"])
    except RilDashError as exc:
        _pin(services, actor, new.id, before)
        return {"active": before, "why": f"{before} could not be scored ({exc})"}
    new_score = _mean_metric(entry)
    compared = {"new_score": round(new_score, 3), "old_score": round(old_score, 3)}
    if new_score > old_score:
        _pin(services, actor, new.id, new.version)
        return {"active": new.version, **compared,
                "why": f"{new.version} beats {before} on the validation series "
                       f"({new_score:.3f} against {old_score:.3f})"}
    _pin(services, actor, new.id, before)
    return {"active": before, **compared,
            "why": f"{new.version} does not beat {before} on the validation series "
                   f"({new_score:.3f} against {old_score:.3f})"}
