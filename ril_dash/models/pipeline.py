"""One model on one series: volume → model input → the model worker → masks or a class.

:func:`predict_series` is the plugin engine's core, free of rights, jobs and storage: it cuts
the series into the slices (or 3D patches) the manifest describes
(:mod:`ril_dash.models.preprocess`, :mod:`ril_dash.models.patches`), sends them to the model
worker in chunks (reporting progress and honouring a cancel request between chunks), checks what
comes back, and turns it into the series' voxel grid: one boolean mask per output channel for a
segmentation (:func:`~ril_dash.models.postprocess.segmentation_masks`, then the 3D clean-up), or a
class with its probability for a classification (:func:`~ril_dash.models.postprocess.classify`).

Developer notes
---------------
::

    volume ──prepare_slices(chunk)──▶ batch (n,H,W,C) ──worker.predict──▶ (n,H,W,K)
       ▲                                                                   │ restore_slices
       └── next chunk ◀── progress(done, total) ◀── masks (n,rows,cols) ◀──┘ segmentation_masks

A segmentation keeps only boolean masks per chunk (never the probabilities of the whole series),
so memory stays at two chunks of probabilities plus one bool per voxel and channel. One chunk is
always in flight: a helper thread prepares chunk *i + 1* and waits for the worker while this
thread turns chunk *i*'s output into masks, so the model rarely waits for us.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ril_dash.core.planes import display_stack
from ril_dash.core.volume import Volume
from ril_dash.errors import ModelRunError
from ril_dash.models import patches, postprocess, preprocess
from ril_dash.models.manifest import ClassificationOutput, Manifest

__all__ = ["CHUNK_SLICES", "Cancelled", "SeriesPrediction", "covered_slices", "predict_series"]

#: slices sent to the worker per call: small enough that the first progress comes quickly
CHUNK_SLICES = 8


class Cancelled(Exception):
    """The run was cancelled between two chunks; nothing was written."""


@dataclass
class SeriesPrediction:
    """What a model made of one series.

    ``indices`` are the display slices of ``plane`` the model covered; for a segmentation
    ``masks`` maps output channel → bool ``(len(indices), rows, cols)`` in display order; for a
    classification ``classification`` holds the value and probabilities.
    """

    plane: str
    indices: list[int]
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    classification: postprocess.Classification | None = None
    seconds_in_model: float = 0.0


def covered_slices(volume: Volume, manifest: Manifest, slices: tuple[int, int] | None = None
                   ) -> list[int]:
    """The display slices of the manifest's plane a run covers: ``slices = (first, last)``
    (inclusive, clipped to the series) or the whole series; a classification that reads the
    middle of a series (``output.slices: middle``) covers its middle third.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace as NS
    >>> m = NS(input=NS(plane="axial"), output=NS(slices="all"))
    >>> covered_slices(Volume(np.zeros((4, 4, 9))), m, (7, 20))
    [7, 8]
    """
    n = volume.n_slices(manifest.input.plane)
    if slices is not None:
        first, last = max(0, int(slices[0])), min(n - 1, int(slices[1]))
        return list(range(first, last + 1))
    if getattr(manifest.output, "slices", "all") == "middle":
        return list(range(*postprocess.middle_third(n)))
    return list(range(n))


def _chunks(indices: list[int], size: int):
    for start in range(0, len(indices), size):
        yield indices[start:start + size]


def predict_series(volume: Volume, manifest: Manifest, ref, worker, *,
                   slices: tuple[int, int] | None = None, one_roi_per_voxel: bool = True,
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None,
                   chunk: int = CHUNK_SLICES,
                   on_chunk: Callable[[np.ndarray, dict], None] | None = None
                   ) -> SeriesPrediction:
    """Run ``manifest``'s model (``ref``, a :class:`~ril_dash.models.worker_client.ModelRef`)
    on ``volume`` through ``worker`` and return masks (segmentation) or a class.

    ``on_chunk(probs, masks)``, for a segmentation, sees each chunk's probabilities on the
    display grid ``(n, rows, cols, K)`` and its masks before the 3D clean-up (the uncertainty
    scores, :mod:`ril_dash.models.uncertainty`, are made from them).

    Raises
    ------
    ModelRunError
        The model raised, returned NaN or an output that does not fit the manifest.
    Cancelled
        ``cancelled()`` turned true between two chunks.
    """
    if manifest.dimension == 3:
        return _predict_patches(volume, manifest, ref, worker, one_roi_per_voxel, progress,
                                cancelled, on_chunk)
    indices = covered_slices(volume, manifest, slices)
    n_slices = volume.n_slices(manifest.input.plane)
    classifier = isinstance(manifest.output, ClassificationOutput)
    stats = preprocess.frame_stats(volume, manifest)  # once per series: chunks agree
    result = SeriesPrediction(manifest.input.plane, indices)
    collected: list = []
    done, seconds = 0, 0.0

    def ask(part):  # in the helper thread: prepare a chunk and have the worker run it
        batch, geometry = preprocess.prepare_slices(volume, manifest, part, stats=stats)
        started = time.perf_counter()
        outputs = postprocess.check_outputs(worker.predict(ref, batch), manifest, len(part))
        return part, geometry, outputs, time.perf_counter() - started

    parts = list(_chunks(indices, max(1, int(chunk))))
    with ThreadPoolExecutor(1, thread_name_prefix="model-chunk") as ahead:
        pending = ahead.submit(ask, parts[0]) if parts else None
        for number in range(len(parts)):
            part, geometry, outputs, took = pending.result()
            seconds += took
            if cancelled is not None and cancelled():
                raise Cancelled()
            if number + 1 < len(parts):  # the worker runs the next chunk while we go on
                pending = ahead.submit(ask, parts[number + 1])
            if classifier:
                collected.append(outputs.reshape(len(part), -1))
            else:
                probs = preprocess.restore_slices(outputs, geometry,
                                                  fill=_outside(manifest, outputs.shape[-1]))
                masks = postprocess.segmentation_masks(probs, manifest.output,
                                                       one_roi_per_voxel)
                if on_chunk is not None:
                    on_chunk(probs, masks)
                collected.append(masks)
            done += len(part)
            if progress is not None:
                progress(done, len(indices))
    result.seconds_in_model = seconds
    if classifier:
        result.classification = postprocess.classify(
            np.concatenate(collected), manifest.output, indices=indices, n_slices=n_slices,
            label=manifest.ref)
        return result
    joined = {channel: np.concatenate([part[channel] for part in collected])
              for channel in collected[0]} if collected else {}
    result.masks = postprocess.clean_masks(joined, indices, n_slices, manifest.output)
    return result


def _outside(manifest: Manifest, channels: int) -> float | list[float]:
    """The output given to pixels the model never saw (cropped away): background."""
    if manifest.output.activation == "softmax":
        return [1.0] + [0.0] * (channels - 1)
    return 0.0


def _predict_patches(volume, manifest, ref, worker, one_roi_per_voxel, progress, cancelled,
                     on_chunk=None) -> SeriesPrediction:
    """Dimension 3: patches through the worker, blended back into the canonical grid."""
    batch, plan = patches.prepare_patches(volume, manifest, stats=preprocess.frame_stats(
        volume, manifest))
    outputs = []
    for start in range(0, len(batch), CHUNK_SLICES):
        if cancelled is not None and cancelled():
            raise Cancelled()
        part = batch[start:start + CHUNK_SLICES]
        outputs.append(postprocess.check_outputs(worker.predict(ref, part), manifest, len(part)))
        if progress is not None:
            progress(min(start + CHUNK_SLICES, len(batch)), len(batch))
    if isinstance(manifest.output, ClassificationOutput):
        raise ModelRunError(f"{manifest.ref}: a 3D classification is not supported; use "
                            "dimension 2 for classifiers.")
    canonical = patches.blend_patches(np.concatenate(outputs), plan)
    plane = manifest.input.plane
    probs = np.stack([display_stack(canonical[..., k], plane)
                      for k in range(canonical.shape[-1])], axis=-1)
    masks = postprocess.segmentation_masks(probs, manifest.output, one_roi_per_voxel)
    if on_chunk is not None:
        on_chunk(probs, masks)
    out = manifest.output
    return SeriesPrediction(plane, list(range(probs.shape[0])),
                            {c: postprocess.clean_up(m, out.largest_component, out.min_size)
                             for c, m in masks.items()})
