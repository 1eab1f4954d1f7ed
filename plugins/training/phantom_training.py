"""What the two example training scripts share: phantom data, model input, timing, manifests.

The example bundles in ``plugins/`` are trained on synthetic patients of the demo phantom
(:func:`ril_dash.demo.phantom.make_phantom`). Training patients use seeds ``1..N``, validation
patients the seeds in :data:`VALIDATION_SEEDS`; neither overlaps the demo project's patients
(:data:`DEMO_SEEDS`), which are scored separately.

The model input is built exactly as the app builds it for a ``plugin.yaml`` with ``plane:
axial``, ``resample: size``, ``slices: 1``, ``frames: null``, no transpose/flip and
``normalization: window`` (:func:`prepare_slices` below; the app's own code is
``ril_dash.models.preprocess.prepare_slices``):

1. the display slices of frame 0: ``display_stack(Volume(hu, affine).data[..., 0], "axial")``
   (canonical RAS+, then the viewer's radiological display), as float32;
2. clipped to ``window`` and scaled linearly onto ``range`` (normalisation comes before the
   zoom, as in the app);
3. each slice zoomed to ``size`` with ``scipy.ndimage.zoom(img, (H/rows, W/cols), order=1,
   mode="nearest", grid_mode=True)``;
4. one channel appended: ``(n, H, W, 1)`` float32.

Re-training (``--out plugins``) overwrites ``<id>/1.0.0/model.keras`` and ``plugin.yaml``, whose
sha256, timing and validation figures come from that run. A retrained model is a new model: give
it a new ``version`` folder (and changelog) before sharing it, since versions are immutable.
Results are deterministic for a given ``--seed`` and thread count as far as TensorFlow allows.

Only the training scripts import TensorFlow (through :func:`configure_tensorflow`); this module
itself needs numpy and scipy only, so its helpers are usable without TensorFlow.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ril_dash.core.planes import display_stack, plane_axes
from ril_dash.core.volume import Volume
from ril_dash.demo.phantom import PROJECT_ROI_LABELS, make_phantom

#: the demo project's phantom patients (ril_dash.demo.demo_project.DEMO_PATIENTS)
DEMO_SEEDS = (101, 202, 303)
#: held-out phantom patients used for the validation figures
VALIDATION_SEEDS = (901, 902, 903)
PLANE = "axial"

#: ``plugin.yaml`` of the example bundles; the ``output`` block comes from each script
MANIFEST = """\
id: {id}
version: {version}
name: {name}
description: {description}
author: ril_dash examples
license: CC0-1.0
changelog: First version, trained on {n_train} synthetic phantom patients (4 contrast phases each).
task: {task}
dimension: 2
model:
  file: model.keras
  sha256: {sha256}
  custom_objects: null
input:
  plane: axial
  size: [{size[0]}, {size[1]}]
  resample: size
  spacing: null
  transpose: false
  flip: []
  slices: 1
  frames: null
normalization:
  method: window
  window: [{window[0]}, {window[1]}]
  range: [0.0, 1.0]
  percentiles: [1, 99]
  scope: slice
  scale: 1.0
  offset: 0.0
  clip: null
output:
{output}runtime:
  cpu_seconds_per_slice: {seconds_per_slice:.3f}
  memory_mb: {memory_mb}
validation:
  date: {date}
  summary: {summary}
  metrics: {metrics}
"""


@dataclass(frozen=True)
class Series:
    """One phase of one phantom patient, as display slices of the axial plane.

    ``volume`` is the CT (file order and affine kept, so results can be taken back to the file
    grid); ``hu`` its display stack ``(n, rows, cols)`` (int16) and ``labels`` the label map's.
    """

    seed: int
    phase: str
    volume: Volume
    hu: np.ndarray
    labels: np.ndarray


def training_seeds(n_patients: int) -> list[int]:
    """Seeds ``1..n_patients`` of the training patients (at most 100, below the demo's).

    >>> training_seeds(3)
    [1, 2, 3]
    """
    if not 1 <= n_patients <= 100:
        raise SystemExit(f"--patients must be between 1 and 100, got {n_patients}")
    return list(range(1, n_patients + 1))


def load_series(seed: int, phase: str) -> Series:
    """The demo-sized phantom of ``seed`` in ``phase`` (default shape and spacing)."""
    phantom = make_phantom(seed, phase)
    volume = Volume(phantom.hu, phantom.affine)
    labels = Volume(phantom.labels, phantom.affine).data[..., 0]
    return Series(seed, phase, volume, display_stack(volume.data[..., 0], PLANE),
                  display_stack(labels, PLANE))


def zoom_slices(stack: np.ndarray, size, order: int) -> np.ndarray:
    """Zoom every slice of ``stack`` ``(n, rows, cols[, K])`` to ``size`` = (H, W), float32.

    The factors are ``(H/rows, W/cols)`` with ``mode="nearest", grid_mode=True``; trailing
    channels are kept (factor 1). The result is cropped/padded (edge values) to exactly ``size``.

    >>> zoom_slices(np.ones((2, 4, 6), np.float32), (2, 3), 1).shape
    (2, 2, 3)
    """
    stack = np.asarray(stack, np.float32)
    n, rows, cols = stack.shape[:3]
    height, width = (int(s) for s in size)
    factors = (height / rows, width / cols) + (1.0,) * (stack.ndim - 3)
    out = np.stack([ndimage.zoom(img, factors, order=order, mode="nearest", grid_mode=True)
                    for img in stack]) if n else np.zeros((0, height, width) + stack.shape[3:],
                                                          np.float32)
    return _fit(out, height, width)


def _fit(stack: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop or edge-pad axes 1 and 2 of ``stack`` to ``(height, width)``."""
    stack = stack[:, :height, :width]
    pad = [(0, 0), (0, height - stack.shape[1]), (0, width - stack.shape[2])]
    pad += [(0, 0)] * (stack.ndim - 3)
    return np.pad(stack, pad, mode="edge") if any(p[1] for p in pad) else stack


def prepare_slices(hu_display: np.ndarray, size, window, out_range=(0.0, 1.0)) -> np.ndarray:
    """Model input ``(n, H, W, 1)`` float32 from display slices ``(n, rows, cols)``.

    Clip to ``window`` = (lo, hi), scale linearly so that lo → ``out_range[0]`` and hi →
    ``out_range[1]``, then zoom to ``size`` (order 1, see :func:`zoom_slices`).

    >>> x = prepare_slices(np.array([[[-1000, 40], [240, 3000]]], np.int16), (2, 2), (-160, 240))
    >>> x.shape, x[0, :, :, 0].tolist()
    ((1, 2, 2, 1), [[0.0, 0.5], [1.0, 1.0]])
    >>> prepare_slices(np.array([[[-1000, 1000]]], np.int16), (1, 4), (-160, 240))[0, 0, :, 0]
    array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
    """
    lo, hi = (float(v) for v in window)
    r0, r1 = (float(v) for v in out_range)
    img = np.clip(np.asarray(hu_display, np.float32), lo, hi)
    img = (img - lo) / (hi - lo) * (r1 - r0) + r0
    return zoom_slices(img, size, order=1)[..., None]


def restore_probabilities(probs: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Model outputs ``(n, H, W, K)`` zoomed back to the display grid ``(n, rows, cols, K)``.

    Same call as the input zoom with the inverse factors, cropped/padded to the exact shape.
    """
    return zoom_slices(probs, (rows, cols), order=1)


def roi_class_map(label_display: np.ndarray, rois: list[str]) -> np.ndarray:
    """Class index per voxel: 0 background, ``i + 1`` for the phantom labels of ``rois[i]``.

    >>> roi_class_map(np.array([[[0, 8, 12]]]), ["Right kidney", "Left kidney"]).tolist()
    [[[0, 1, 2]]]
    """
    classes = np.zeros(label_display.shape, np.uint8)
    for index, roi in enumerate(rois, start=1):
        classes[np.isin(label_display, PROJECT_ROI_LABELS[roi])] = index
    return classes


def display_to_file_order(stack: np.ndarray, volume: Volume) -> np.ndarray:
    """Undo :func:`display_stack` (axial) and the re-orientation: back to the file's voxel grid.

    >>> v = Volume(np.arange(24).reshape(2, 3, 4), np.diag([-1.0, 1, 1, 1]))
    >>> d = display_stack(v.data[..., 0], "axial")
    >>> bool((display_to_file_order(d, v) == np.arange(24).reshape(2, 3, 4)).all())
    True
    """
    s, r, c = plane_axes(PLANE)
    canonical = np.flip(np.transpose(stack, np.argsort((s, r, c))), (r, c))
    return volume.to_file_order(canonical)


def middle_third(n_slices: int) -> slice:
    """The middle third of a series of ``n_slices`` slices (``slices: middle``).

    >>> middle_third(40), middle_third(2)
    (slice(13, 27, None), slice(0, 2, None))
    """
    start = n_slices // 3
    stop = n_slices - n_slices // 3
    return slice(start, stop) if stop > start else slice(0, n_slices)


def configure_tensorflow(seed: int, threads: int):
    """Import Keras with fixed seeds, deterministic ops and ``threads`` CPU threads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import keras

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras


def adam_cosine(keras, learning_rate: float, steps: int):
    """Adam whose learning rate decays along a cosine to 2 % over ``steps`` steps.

    The small final steps let the batch-norm moving statistics settle on the final weights.
    """
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.02)
    return keras.optimizers.Adam(schedule)


def save_clean(model, build, path: Path) -> None:
    """Save the weights of ``model`` in a fresh, uncompiled copy made by ``build()``.

    The copy has no optimizer state and no compile config (losses), so ``config.json`` holds
    only standard Keras layers.
    """
    clean = build()
    clean.set_weights(model.get_weights())
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    clean.save(path)


def check_saved_model(keras, path: Path, batch: np.ndarray, reference: np.ndarray) -> None:
    """Reload ``path`` as the app does and check it predicts what the trained model did."""
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    again = loaded.predict(batch, verbose=0)
    if not np.allclose(again, reference, atol=1e-5):
        raise SystemExit(f"{path}: the reloaded model predicts differently from the trained one")


def parse_arguments(doc: str, bundle_id: str, version: str, *, patients: int, epochs: int,
                    argv=None) -> argparse.Namespace:
    """The options both training scripts take (``--out --patients --epochs --seed --threads``).

    Also makes standard output line-buffered, so that progress shows when it goes to a file.
    """
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent,
                        help=f"plugins root; the bundle goes to OUT/{bundle_id}/{version} "
                             "(default: the repository's plugins/ folder)")
    parser.add_argument("--patients", type=int, default=patients,
                        help=f"training patients, seeds 1..N (default {patients})")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"default {epochs}")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, default=2,
                        help="TensorFlow CPU threads (default 2)")
    return parser.parse_args(argv)


def save_bundle_model(keras, model, build, bundle: Path, sample: np.ndarray):
    """Save ``bundle/model.keras``, check that it reloads safely, time it.

    Returns the model path and the seconds per slice of ``model.predict`` on ``sample``.
    """
    path = bundle / "model.keras"
    save_clean(model, build, path)
    check_saved_model(keras, path, sample[:4], model.predict(sample[:4], verbose=0))
    per_slice = seconds_per_slice(model, sample)
    print(f"wrote {path}: {path.stat().st_size / 1024:.0f} KiB, "
          f"{model.count_params()} parameters, {per_slice * 1000:.1f} ms per slice")
    return path, per_slice


def memory_mb(model) -> int:
    """Rough memory of one 8-slice batch: float32 weights and every layer's output, twice."""
    activations = sum(int(np.prod(layer.output.shape[1:])) for layer in model.layers)
    return int(np.ceil((model.count_params() + 8 * activations) * 4 * 2 / 2**20))


def seconds_per_slice(model, batch: np.ndarray, repeats: int = 3) -> float:
    """Best-of-``repeats`` wall time of ``model.predict`` on ``batch``, per slice."""
    model.predict(batch[:8], verbose=0)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(batch, batch_size=8, verbose=0)
        best = min(best, time.perf_counter() - start)
    return best / len(batch)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def today() -> str:
    """Today's date, ISO format (the manifest's ``validation.date``)."""
    return datetime.date.today().isoformat()


def flow_mapping(values: dict) -> str:
    """A one-line YAML flow mapping of plain keys and numbers.

    >>> flow_mapping({"dice_right_kidney": 0.931, "n": 3})
    '{dice_right_kidney: 0.931, n: 3}'
    """
    return "{" + ", ".join(f"{key}: {value}" for key, value in values.items()) + "}"


def write_manifest(bundle: Path, *, metrics: dict, seconds_per_slice: float, **fields) -> Path:
    """Write ``bundle/plugin.yaml`` from :data:`MANIFEST`, the sha256 of ``bundle/model.keras``
    and today's date; ``fields`` fill the rest of the template (``output`` is the indented
    block of the output keys, ending with a newline)."""
    path = bundle / "plugin.yaml"
    text = MANIFEST.format(sha256=file_sha256(bundle / "model.keras"), date=today(),
                           metrics=flow_mapping(metrics),
                           seconds_per_slice=max(seconds_per_slice, 0.001), **fields)
    path.write_text(text, encoding="utf-8")
    return path
