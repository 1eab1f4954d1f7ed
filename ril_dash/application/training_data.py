"""What a development model learns from: the training series, their split, their slices.

- :func:`choose_series`: the series of a workflow pool (e.g. ``approved``) or of an explicit
  list, glob or ``"all"``, minus those the trainer may not read (skipped, with the reason);
- :func:`assign_split`: the fixed train/validation split by series. Series already in an earlier
  round's split keep their side; new ones are assigned in a seeded order so that the validation
  share stays near ``fraction``. A series never moves between train and validation;
- :func:`series_examples`: one series' model-ready batch and targets at the annotation version
  recorded when the job started, through the same geometry as a model run
  (:func:`~ril_dash.models.preprocess.prepare_slices`): the targets of a segmentation are the
  one-hot class maps taken as frames of a label volume without normalisation, so they are zoomed
  exactly as the image is. A series without the ROIs to learn (or without a value of the text
  field) raises :class:`SkipSeries` with the reason.

Examples
--------
>>> assign_split(["a", "b", "c", "d"], {}, 0.25, 0)
{'a': 'train', 'b': 'train', 'c': 'train', 'd': 'validation'}
>>> assign_split(["a", "b", "c", "d", "e"], {"a": "validation", "b": "train"}, 0.25, 0)["a"]
'validation'
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from ril_dash.application import rights
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import display_stack
from ril_dash.core.volume import Volume
from ril_dash.errors import PluginError, RilDashError
from ril_dash.models.manifest import Manifest, NormSpec
from ril_dash.models.preprocess import prepare_slices
from ril_dash.project.export import select_series

__all__ = ["SkipSeries", "TRAIN", "VALIDATION", "assign_split", "choose_series",
           "learn_problem", "series_examples"]

TRAIN, VALIDATION = "train", "validation"
#: of the slices without any ROI, every this-many-th is kept (background examples, cheaper)
BACKGROUND_EVERY = 3


class SkipSeries(RilDashError):
    """A series that cannot be trained on; the message says why (shown beside its id)."""


def choose_series(services: Services, actor: Actor, *, pool: str | None,
                  series) -> tuple[list[str], list[list[str]]]:
    """The series to train on and ``[series, reason]`` of those left out (not readable)."""
    if pool:
        workflow = services.workflow
        if workflow is None:
            raise PluginError(f"there is no workflow, so there is no pool {pool!r}; choose the "
                              f"series by id, a glob or 'all'")
        if workflow.pool(pool) is None:
            raise PluginError(f"the workflow has no pool {pool!r}; its pools are "
                              f"{', '.join(workflow.pools)}")
        ids = [s for s in select_series(services.project, "all")[0]
               if rights.series_state(services, s).pool == pool]
    else:
        ids, unknown = select_series(services.project, series if series else "all")
        if unknown:
            raise PluginError(f"{unknown[0][0]} is not a series of the project")
    chosen, skipped = [], []
    for series_id in ids:
        decision = rights.decision(services, actor, series_id, "read")
        if decision.allowed:
            chosen.append(series_id)
        else:
            skipped.append([series_id, decision.reason])
    return chosen, skipped


def _rank(seed: int, series_id: str) -> str:
    return hashlib.sha256(f"{seed}:{series_id}".encode()).hexdigest()


def assign_split(series_ids, previous: dict[str, str], fraction: float,
                 seed: int) -> dict[str, str]:
    """The side of every series (see the module docstring); ``previous`` is kept as it is."""
    split = {s: previous[s] for s in series_ids if s in previous}
    new = sorted((s for s in series_ids if s not in previous), key=lambda s: _rank(seed, s))
    total = len(split) + len(new)
    wanted = max(1, int(round(total * fraction))) if total >= 2 else 0
    n_val = sum(1 for side in split.values() if side == VALIDATION)
    for series_id in new:
        if n_val < wanted:
            split[series_id] = VALIDATION
            n_val += 1
        else:
            split[series_id] = TRAIN
    return {s: split[s] for s in series_ids}


def _one_hot_targets(volume: Volume, classes: np.ndarray, manifest: Manifest, indices,
                     n_classes: int) -> np.ndarray:
    one_hot = Volume(np.eye(n_classes, dtype=np.float32)[classes], volume.canonical_affine)
    geometry = dataclasses.replace(
        manifest, input=dataclasses.replace(manifest.input, frames=tuple(range(n_classes)),
                                            slices=1),
        normalization=NormSpec(method="none"))
    return prepare_slices(one_hot, geometry, indices)[0]


def _classes(state, target: dict) -> tuple[np.ndarray, list[str]]:
    """Class index per voxel (0 background, i + 1 for ROI i) and the ROIs not drawn."""
    classes = np.zeros(state.bits.shape, np.uint8)
    missing = []
    for index, (value, name) in enumerate(zip(target["rois"], target["names"]), start=1):
        mask = roi_mask(state.bits, state.slots[value]) if value in state.slots else None
        if mask is None or not mask.any():
            missing.append(name)
            continue
        classes[mask] = index
    return classes, missing


def learn_problem(state, target: dict) -> str | None:
    """Why a series at ``state`` has nothing to learn for ``target``, or None."""
    if "text_field" in target:
        value = state.texts.get(target["text_field"])
        if value in (None, ""):
            return f"no value of {target['text_field']} in version {state.version}"
        if value not in target["classes"]:
            return (f"its {target['text_field']} is {value!r}, not one of the classes "
                    f"{', '.join(target['classes'])}")
        return None
    missing = _classes(state, target)[1]
    if missing:
        return (f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not drawn in "
                f"version {state.version}")
    return None


def series_examples(services: Services, series: str, version: int, manifest: Manifest,
                    target: dict) -> tuple[np.ndarray, np.ndarray]:
    """Model input ``(n, H, W, C)`` and targets of ``series`` at annotation ``version``:
    one-hot ``(n, H, W, K)`` for ``target = {"rois": [mask values]}``, class indices ``(n,)``
    for ``{"text_field": name, "classes": [...]}``. SkipSeries when it has nothing to learn."""
    state = services.state(series, version)
    problem = learn_problem(state, target)
    if problem is not None:
        raise SkipSeries(problem)
    volume = services.volume(series)
    plane = manifest.input.plane
    n_slices = volume.n_slices(plane)
    if "text_field" in target:
        x, _ = prepare_slices(volume, manifest, range(n_slices))
        return x, np.full(len(x), target["classes"].index(state.texts[target["text_field"]]),
                          np.int64)
    classes = _classes(state, target)[0]
    shown = display_stack(classes, plane).reshape(n_slices, -1).any(axis=1)
    indices = np.flatnonzero(shown | (np.arange(n_slices) % BACKGROUND_EVERY == 0))
    x, _ = prepare_slices(volume, manifest, indices)
    return x, _one_hot_targets(volume, classes, manifest, indices, len(target["rois"]) + 1)
