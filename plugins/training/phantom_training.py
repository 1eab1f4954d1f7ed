"""What the two example training scripts share: phantom data, the manifest, Keras set-up.

The example bundles in ``plugins/`` are trained on synthetic patients of the demo phantom
(:func:`ril_dash.demo.phantom.make_phantom`). Training patients use seeds ``1..N``, validation
patients the seeds in :data:`VALIDATION_SEEDS`; neither overlaps the demo project's patients
(:data:`DEMO_SEEDS`), which are scored separately.

Each script builds its bundle's :class:`~ril_dash.models.manifest.Manifest` first
(:func:`example_manifest`) and lets the app's own code do everything the app does with it, so
training and validation see exactly what a run in the app sees:

- model input: :func:`ril_dash.models.preprocess.prepare_slices` of the CT
  :class:`~ril_dash.core.volume.Volume`; training targets go through the same geometry
  (:func:`prepare_targets`);
- validation: :func:`ril_dash.models.pipeline.predict_series` with a :class:`KerasAdapter` in
  place of the model worker (restore, argmax, 3D clean-up, or the middle-third classification);
- ``plugin.yaml``: :func:`ril_dash.models.manifest.manifest_yaml` (:func:`write_manifest`).

Re-training (``--out plugins``) overwrites ``<id>/1.0.0/model.keras`` and ``plugin.yaml``, whose
sha256, timing and validation figures come from that run. A retrained model is a new model: give
it a new ``version`` folder (and changelog) before sharing it, since versions are immutable.
Results are deterministic for a given ``--seed`` and thread count as far as TensorFlow allows.
``--validate-only BUNDLE`` scores a saved bundle (its own ``plugin.yaml`` and model) instead.

Only :func:`configure_tensorflow` imports TensorFlow; the rest needs numpy only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ril_dash.core.planes import display_stack
from ril_dash.core.volume import Volume
from ril_dash.demo.phantom import PROJECT_ROI_LABELS, make_phantom
from ril_dash.models.manifest import InputSpec, Manifest, NormSpec, Runtime, load_manifest
from ril_dash.models.manifest import manifest_yaml
from ril_dash.models.preprocess import prepare_slices
from ril_dash.models.safety import file_sha256, require_sha256

#: the demo project's phantom patients (ril_dash.demo.demo_project.DEMO_PATIENTS)
DEMO_SEEDS = (101, 202, 303)
#: held-out phantom patients used for the validation figures
VALIDATION_SEEDS = (901, 902, 903)
#: the sha256 of a manifest whose model is not saved yet (:func:`write_manifest` fills it in)
UNSAVED = "0" * 64


@dataclass(frozen=True)
class Series:
    """One phase of one phantom patient: the CT and its label map, as the app loads them."""

    seed: int
    phase: str
    volume: Volume
    labels: Volume

    def label_display(self, plane: str) -> np.ndarray:
        """The label map's display slices of ``plane`` ``(n, rows, cols)``."""
        return display_stack(self.labels.data[..., 0], plane)


def load_series(seed: int, phase: str) -> Series:
    """The demo-sized phantom of ``seed`` in ``phase`` (default shape and spacing)."""
    phantom = make_phantom(seed, phase)
    return Series(seed, phase, Volume(phantom.hu, phantom.affine),
                  Volume(phantom.labels, phantom.affine))


def training_seeds(n_patients: int) -> list[int]:
    """Seeds ``1..n_patients`` of the training patients (at most 100, below the demo's).

    >>> training_seeds(3)
    [1, 2, 3]
    >>> training_seeds(0)
    Traceback (most recent call last):
    ...
    SystemExit: --patients must be between 1 and 100, got 0
    """
    if not 1 <= n_patients <= 100:
        raise SystemExit(f"--patients must be between 1 and 100, got {n_patients}")
    return list(range(1, n_patients + 1))


def example_manifest(bundle_id: str, *, name: str, description: str, task: str, size,
                     window, output, version: str = "1.0.0") -> Manifest:
    """The manifest of an example bundle: one axial slice zoomed to ``size``, HU windowed to
    ``window`` → [0, 1]; the changelog, sha256, runtime and validation come from the training
    run (:func:`write_manifest`).

    >>> from ril_dash.models.manifest import ChannelMap, SegmentationOutput
    >>> m = example_manifest("k", name="K", description="", task="segmentation", size=(8, 8),
    ...                      window=(-160, 240),
    ...                      output=SegmentationOutput((ChannelMap(1, "Right kidney"),)))
    >>> m.ref, m.input.size, m.input.slices, m.normalization.window, m.sha256 == UNSAVED
    ('k@1.0.0', (8, 8), 1, (-160.0, 240.0), True)
    """
    return Manifest(
        id=bundle_id, version=version, name=name, task=task, dimension=2,
        model_file="model.keras", sha256=UNSAVED, description=description,
        author="ril_dash examples", license="CC0-1.0",
        input=InputSpec(plane="axial", size=(int(size[0]), int(size[1]))),
        normalization=NormSpec(method="window", window=(float(window[0]), float(window[1]))),
        output=output)


def roi_class_map(labels: np.ndarray, rois) -> np.ndarray:
    """Class index per voxel: 0 background, ``i + 1`` for the phantom labels of ``rois[i]``.

    >>> roi_class_map(np.array([[[0, 8, 12]]]), ["Right kidney", "Left kidney"]).tolist()
    [[[0, 1, 2]]]
    """
    classes = np.zeros(np.shape(labels), np.uint8)
    for index, roi in enumerate(rois, start=1):
        classes[np.isin(labels, PROJECT_ROI_LABELS[roi])] = index
    return classes


def prepare_targets(series: Series, manifest: Manifest, indices, rois) -> np.ndarray:
    """One-hot targets ``(n, H, W, len(rois) + 1)`` of display slices ``indices``, through the
    geometry of :func:`prepare_slices`: the one-hot channels are the frames of a label volume,
    taken without normalisation (so they are zoomed exactly as the image is)."""
    classes = roi_class_map(series.labels.data[..., 0], rois)  # canonical (X, Y, Z)
    one_hot = Volume(np.eye(len(rois) + 1, dtype=np.float32)[classes],
                     series.labels.canonical_affine)
    targets = dataclasses.replace(
        manifest, input=dataclasses.replace(manifest.input, frames=tuple(range(len(rois) + 1))),
        normalization=NormSpec(method="none"))
    return prepare_slices(one_hot, targets, indices)[0]


class KerasAdapter:
    """Stands in for the model worker of :func:`ril_dash.models.pipeline.predict_series`: runs
    a Keras model in this process and keeps what it returned in ``outputs``."""

    def __init__(self, model):
        self.model = model
        self.outputs: list[np.ndarray] = []

    def predict(self, ref, batch, *, batch_size: int = 8) -> np.ndarray:
        out = self.model.predict(np.asarray(batch, np.float32), batch_size=batch_size, verbose=0)
        self.outputs.append(out)
        return out

    def taken(self) -> np.ndarray:
        """Everything returned since the last call, concatenated; forgets it."""
        out, self.outputs = np.concatenate(self.outputs), []
        return out


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


def load_bundle(keras, bundle: Path):
    """The manifest and model of a saved bundle, checked and loaded as the app loads them."""
    manifest = load_manifest(Path(bundle) / "plugin.yaml")
    path = Path(bundle) / manifest.model_file
    require_sha256(path, manifest.sha256, manifest.ref)
    return manifest, keras.saving.load_model(path, compile=False, safe_mode=True)


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
    """The options both training scripts take (``--out --patients --epochs --seed --threads
    --validate-only``).

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
    parser.add_argument("--validate-only", type=Path, metavar="BUNDLE",
                        help="train nothing: score the saved bundle folder BUNDLE (its "
                             "plugin.yaml and model) on the held-out and demo patients")
    args = parser.parse_args(argv)
    if args.validate_only is not None and not (args.validate_only / "plugin.yaml").is_file():
        parser.error(f"--validate-only {args.validate_only}: no plugin.yaml there; give a "
                     f"bundle folder such as plugins/{bundle_id}/{version}")
    return args


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


def write_manifest(bundle: Path, manifest: Manifest, *, n_train: int, seconds_per_slice: float,
                   memory_mb: int, summary: str, metrics: dict) -> Path:
    """Write ``bundle/plugin.yaml``: ``manifest`` with the changelog of a first version trained
    on ``n_train`` patients, the sha256 of its model file, the runtime and today's validation,
    as :func:`manifest_yaml` writes it; checks that :func:`load_manifest` reads it back equal."""
    path = bundle / "plugin.yaml"
    final = dataclasses.replace(
        manifest, sha256=file_sha256(bundle / manifest.model_file),
        changelog=f"First version, trained on {n_train} synthetic phantom patients "
                  "(4 contrast phases each).",
        runtime=Runtime(cpu_seconds_per_slice=round(max(seconds_per_slice, 0.001), 3),
                        memory_mb=memory_mb),
        validation={"date": datetime.date.today().isoformat(), "summary": summary,
                    "metrics": metrics})
    path.write_text(manifest_yaml(final), encoding="utf-8")
    if load_manifest(path) != final:
        raise SystemExit(f"{path} does not read back as the manifest that was written")
    return path


def train_and_publish(keras, model, build, data, args, seeds, manifest: Manifest, *,
                      batch: int, validate, summary) -> None:
    """Fit the compiled ``model`` on ``data`` = (x, y), validate it (``validate(manifest,
    model) -> metrics``), save it as ``args.out/<id>/<version>/`` (``build`` makes an untrained
    twin for the clean copy) and write its manifest; ``summary(metrics, n_validation)`` words
    the validation figures for the manifest."""
    x, y = data
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=args.epochs, shuffle=True, verbose=2)
    train_seconds = time.perf_counter() - started
    print(f"training took {train_seconds:.0f} s")
    metrics = validate(manifest, model)
    bundle = args.out / manifest.id / manifest.version
    _, per_slice = save_bundle_model(keras, model, build, bundle, x[:40])
    n_val = len(VALIDATION_SEEDS)
    metrics.update(training_patients=len(seeds), validation_patients=n_val,
                   training_seconds=round(train_seconds))
    write_manifest(bundle, manifest, n_train=len(seeds), seconds_per_slice=per_slice,
                   memory_mb=memory_mb(model), summary=summary(metrics, n_val), metrics=metrics)


def start(doc: str, manifest: Manifest, *, patients: int, epochs: int, validate, argv=None):
    """Parse a training script's arguments and set TensorFlow up: ``(args, keras, seeds)``; with
    ``--validate-only BUNDLE`` validate that bundle instead and return None."""
    args = parse_arguments(doc, manifest.id, manifest.version, patients=patients, epochs=epochs,
                           argv=argv)
    keras = configure_tensorflow(args.seed, args.threads)
    if args.validate_only is not None:
        validate(*load_bundle(keras, args.validate_only))
        return None
    return args, keras, training_seeds(args.patients)
