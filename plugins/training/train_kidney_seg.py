"""Train the example kidney segmentation bundle ``kidney-seg/1.0.0`` on phantom patients.

A small 2D U-Net (about 58 k parameters) reads one axial display slice, zoomed to 128 × 128 and
windowed to [-160, 240] HU → [0, 1], and gives softmax probabilities of three classes:
background, right kidney, left kidney (the demo project's ROIs "Right kidney" RID29663 and
"Left kidney" RID29662). It trains on the four contrast phases of ``--patients`` synthetic
patients (seeds 1..N) and is validated on held-out patients (seeds 901-903) and on the demo
project's three patients (seeds 101, 202, 303): volume Dice per kidney of the draft the app
itself would make (:func:`ril_dash.models.pipeline.predict_series`: probabilities zoomed back,
argmax, largest 3D component).

Re-train (a few minutes on two CPU cores), from the repository root::

    PYTHONPATH=$PWD python plugins/training/train_kidney_seg.py --out plugins

It writes ``plugins/kidney-seg/1.0.0/`` (see :mod:`phantom_training` for what re-training
changes). Score the shipped bundle without training (a minute)::

    PYTHONPATH=$PWD python plugins/training/train_kidney_seg.py \
        --validate-only plugins/kidney-seg/1.0.0
"""

from __future__ import annotations

import time

import numpy as np

import phantom_training as pt
from ril_dash.demo.phantom import PHASES
from ril_dash.models.manifest import ChannelMap, SegmentationOutput
from ril_dash.models.pipeline import predict_series
from ril_dash.models.preprocess import prepare_slices
from ril_dash.models.train import build_unet as example_unet
from ril_dash.models.train import segmentation_loss

BATCH = 16
FILTERS = (8, 16, 24, 32)

MANIFEST = pt.example_manifest(
    "kidney-seg", name="Kidney segmentation",
    description="Small 2D U-Net that drafts the right and left kidney on axial CT slices "
                "(trained on the synthetic phantom).",
    task="segmentation", size=(128, 128), window=(-160, 240),
    output=SegmentationOutput(channels=(ChannelMap(1, "Right kidney", "RID29663"),
                                        ChannelMap(2, "Left kidney", "RID29662")),
                              activation="softmax", threshold=0.5, largest_component=True,
                              min_size=20))


def rois(manifest) -> list[str]:
    """The ROI of output channel 1, 2, ... (channel 0 is the background)."""
    return [c.roi for c in sorted(manifest.output.channels, key=lambda c: c.channel)]


def build_unet(keras):
    """The example U-Net of :mod:`ril_dash.models.train` (the one a training round in the app
    starts from): two 3×3 conv + batch-norm + ReLU per level, max-pool down, upsample + concat."""
    return example_unet(keras, (*MANIFEST.input.size, 1), len(rois(MANIFEST)) + 1, FILTERS)


def series_arrays(series: pt.Series) -> tuple[np.ndarray, np.ndarray]:
    """Training input ``(n, H, W, 1)`` and soft one-hot targets ``(n, H, W, 3)`` of one series.

    Every slice that shows a kidney is kept, and every third of the others (to save training
    time); the targets go through the input's geometry (zoomed like the image, order 1).
    """
    names = rois(MANIFEST)
    kidney = pt.roi_class_map(series.label_display(MANIFEST.input.plane), names).any(axis=(1, 2))
    indices = np.flatnonzero(kidney | (np.arange(len(kidney)) % 3 == 0))
    x, _ = prepare_slices(series.volume, MANIFEST, indices)
    return x, pt.prepare_targets(series, MANIFEST, indices, names)


def dataset(seeds) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of every phase of every patient in ``seeds``."""
    xs, ys = [], []
    for seed in seeds:
        for phase in PHASES:
            x, y = series_arrays(pt.load_series(seed, phase))
            xs.append(x)
            ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def make_loss(keras):
    """Cross-entropy plus a soft Dice loss of the two kidney channels (training only)."""
    return segmentation_loss(keras)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Volume Dice of two boolean masks (1.0 when both are empty).

    >>> dice(np.array([1, 1, 0], bool), np.array([1, 0, 0], bool)), dice(np.zeros(2, bool),
    ...                                                                  np.zeros(2, bool))
    (0.6666666666666666, 1.0)
    """
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def series_dice(manifest, model: pt.KerasAdapter, seed: int, phase: str) -> list[float]:
    """Dice per ROI of one series: the app's draft against the phantom's labels (display
    slices; Dice does not depend on the voxel order)."""
    series = pt.load_series(seed, phase)
    masks = predict_series(series.volume, manifest, None, model).masks
    truth = pt.roi_class_map(series.label_display(manifest.input.plane), rois(manifest))
    channels = sorted(c.channel for c in manifest.output.channels)
    return [dice(masks[channel], truth == index)
            for index, channel in enumerate(channels, start=1)]


def evaluate(manifest, model, seeds, label: str) -> tuple[float, float]:
    """Mean Dice per kidney over every phase of every patient in ``seeds``; prints each series."""
    adapter = pt.KerasAdapter(model)
    scores = []
    for seed in seeds:
        for phase in PHASES:
            right, left = series_dice(manifest, adapter, seed, phase)
            adapter.outputs.clear()
            scores.append((right, left))
            print(f"  {label} seed {seed} {phase:>13}: Dice right {right:.3f}, left {left:.3f}")
    right, left = np.mean(scores, axis=0)
    print(f"{label}: mean Dice right kidney {right:.3f}, left kidney {left:.3f} "
          f"({len(scores)} series)")
    return round(float(right), 3), round(float(left), 3)


def validate(manifest, model) -> dict:
    """Held-out and demo Dice of ``model`` run under ``manifest``, as manifest metrics."""
    right, left = evaluate(manifest, model, pt.VALIDATION_SEEDS, "held-out")
    demo_right, demo_left = evaluate(manifest, model, pt.DEMO_SEEDS, "demo")
    return {"dice_right_kidney": right, "dice_left_kidney": left,
            "dice_right_kidney_demo": demo_right, "dice_left_kidney_demo": demo_left}


def main(argv=None) -> None:
    started = pt.start(__doc__, MANIFEST, patients=8, epochs=10, validate=validate,
                       argv=argv)
    if started is None:
        return
    args, keras, seeds = started
    started = time.perf_counter()
    x, y = dataset(seeds)
    print(f"training data: {len(x)} slices of {len(seeds)} patients × {len(PHASES)} phases "
          f"({time.perf_counter() - started:.0f} s)")

    model = build_unet(keras)
    print(f"U-Net: {model.count_params()} parameters")
    steps = args.epochs * -(-len(x) // BATCH)
    model.compile(optimizer=pt.adam_cosine(keras, 3e-3, steps), loss=make_loss(keras))
    pt.train_and_publish(
        keras, model, lambda: build_unet(keras), (x, y), args, seeds, MANIFEST, batch=BATCH,
        validate=validate,
        summary=lambda m, n_val: (f"Dice {m['dice_right_kidney']:.2f} (right), "
                                  f"{m['dice_left_kidney']:.2f} (left) on {n_val} held-out "
                                  f"phantom patients x 4 phases; "
                                  f"{m['dice_right_kidney_demo']:.2f} / "
                                  f"{m['dice_left_kidney_demo']:.2f} on the demo's 3 patients"))

if __name__ == "__main__":
    main()
