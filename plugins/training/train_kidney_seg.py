"""Train the example kidney segmentation bundle ``kidney-seg/1.0.0`` on phantom patients.

A small 2D U-Net (about 30 k parameters) reads one axial display slice, zoomed to 128 × 128 and
windowed to [-160, 240] HU → [0, 1], and gives softmax probabilities of three classes:
background, right kidney, left kidney (the demo project's ROIs "Right kidney" RID29663 and
"Left kidney" RID29662). It trains on the four contrast phases of ``--patients`` synthetic
patients (seeds 1..N) and is validated on held-out patients (seeds 901-903) and on the demo
project's three patients (seeds 101, 202, 303): volume Dice per kidney on the original voxel grid,
after zooming the probabilities back, argmax, and keeping the largest 3D component (as the app
does with ``largest_component: true``).

Re-train (a few minutes on two CPU cores), from the repository root::

    PYTHONPATH=$PWD python plugins/training/train_kidney_seg.py --out plugins

It writes ``plugins/kidney-seg/1.0.0/`` (see :mod:`phantom_training` for what re-training
changes).
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage

import phantom_training as pt
from ril_dash.demo.phantom import PHASES

BUNDLE_ID = "kidney-seg"
VERSION = "1.0.0"
BATCH = 16
SIZE = (128, 128)
WINDOW = (-160, 240)
ROIS = ["Right kidney", "Left kidney"]
FILTERS = (8, 16, 24, 32)
MIN_SIZE = 20

OUTPUT = """\
  activation: softmax
  threshold: 0.5
  channels:
    - {channel: 1, roi: Right kidney, code: RID29663}
    - {channel: 2, roi: Left kidney, code: RID29662}
  largest_component: true
  min_size: %d
""" % MIN_SIZE


def build_unet(keras):
    """The U-Net: two 3×3 conv + batch-norm + ReLU per level, max-pool down, upsample + concat."""
    layers = keras.layers

    def block(x, filters):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        return x

    inputs = keras.Input((*SIZE, 1), name="ct")
    skips, x = [], inputs
    for filters in FILTERS[:-1]:
        x = block(x, filters)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = block(x, FILTERS[-1])
    for filters, skip in zip(reversed(FILTERS[:-1]), reversed(skips)):
        x = layers.UpSampling2D()(x)
        x = layers.Concatenate()([x, skip])
        x = block(x, filters)
    outputs = layers.Conv2D(len(ROIS) + 1, 1, activation="softmax", name="kidneys")(x)
    return keras.Model(inputs, outputs, name="kidney_seg")


def series_arrays(series: pt.Series) -> tuple[np.ndarray, np.ndarray]:
    """Training input ``(n, H, W, 1)`` and soft one-hot targets ``(n, H, W, 3)`` of one series.

    Targets: the one-hot class map on the display grid, zoomed like the image (order 1). Every
    slice that shows a kidney is kept, and every third of the others (to save training time).
    """
    classes = pt.roi_class_map(series.labels, ROIS)
    kidney = classes.any(axis=(1, 2))
    keep = kidney | (np.arange(len(classes)) % 3 == 0)
    one_hot = np.eye(len(ROIS) + 1, dtype=np.float32)[classes[keep]]
    return (pt.prepare_slices(series.hu[keep], SIZE, WINDOW),
            pt.zoom_slices(one_hot, SIZE, order=1))


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
    ops = keras.ops
    cross_entropy = keras.losses.CategoricalCrossentropy()

    def loss(y_true, y_pred):
        kidney_true, kidney_pred = y_true[..., 1:], y_pred[..., 1:]
        overlap = ops.sum(kidney_true * kidney_pred, axis=(0, 1, 2))
        total = ops.sum(kidney_true + kidney_pred, axis=(0, 1, 2))
        dice = (2.0 * overlap + 1.0) / (total + 1.0)
        return cross_entropy(y_true, y_pred) + 1.0 - ops.mean(dice)

    return loss


def keep_largest(mask: np.ndarray, min_size: int) -> np.ndarray:
    """The largest 3D connected component of ``mask`` if it has at least ``min_size`` voxels."""
    components, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(components.ravel())[1:]
    biggest = int(np.argmax(sizes))
    if sizes[biggest] < min_size:
        return np.zeros_like(mask)
    return components == biggest + 1


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Volume Dice of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def series_dice(model, seed: int, phase: str) -> list[float]:
    """Dice per kidney of one series, on the file's voxel grid, after the app's post-processing."""
    series = pt.load_series(seed, phase)
    probs = model.predict(pt.prepare_slices(series.hu, SIZE, WINDOW), batch_size=8, verbose=0)
    rows, cols = series.hu.shape[1:]
    predicted = np.argmax(pt.restore_probabilities(probs, rows, cols), axis=-1)
    truth = pt.roi_class_map(pt.display_to_file_order(series.labels, series.volume), ROIS)
    scores = []
    for channel in range(1, len(ROIS) + 1):
        mask = keep_largest(predicted == channel, MIN_SIZE)
        scores.append(dice(pt.display_to_file_order(mask, series.volume), truth == channel))
    return scores


def evaluate(model, seeds, label: str) -> tuple[float, float]:
    """Mean Dice per kidney over every phase of every patient in ``seeds``; prints each series."""
    scores = []
    for seed in seeds:
        for phase in PHASES:
            right, left = series_dice(model, seed, phase)
            scores.append((right, left))
            print(f"  {label} seed {seed} {phase:>13}: Dice right {right:.3f}, left {left:.3f}")
    right, left = np.mean(scores, axis=0)
    print(f"{label}: mean Dice right kidney {right:.3f}, left kidney {left:.3f} "
          f"({len(scores)} series)")
    return round(float(right), 3), round(float(left), 3)


def main(argv=None) -> None:
    args = pt.parse_arguments(__doc__, BUNDLE_ID, VERSION, patients=8, epochs=10, argv=argv)
    keras = pt.configure_tensorflow(args.seed, args.threads)
    seeds = pt.training_seeds(args.patients)
    started = time.perf_counter()
    x, y = dataset(seeds)
    print(f"training data: {len(x)} slices of {len(seeds)} patients × {len(PHASES)} phases "
          f"({time.perf_counter() - started:.0f} s)")

    model = build_unet(keras)
    print(f"U-Net: {model.count_params()} parameters")
    steps = args.epochs * -(-len(x) // BATCH)
    model.compile(optimizer=pt.adam_cosine(keras, 3e-3, steps), loss=make_loss(keras))
    started = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=args.epochs, shuffle=True, verbose=2)
    train_seconds = time.perf_counter() - started
    print(f"training took {train_seconds:.0f} s")

    right, left = evaluate(model, pt.VALIDATION_SEEDS, "held-out")
    demo_right, demo_left = evaluate(model, pt.DEMO_SEEDS, "demo")

    bundle = args.out / BUNDLE_ID / VERSION
    _, per_slice = pt.save_bundle_model(keras, model, lambda: build_unet(keras),
                                        bundle, x[:40])
    n_val = len(pt.VALIDATION_SEEDS)
    metrics = {"dice_right_kidney": right, "dice_left_kidney": left,
               "dice_right_kidney_demo": demo_right, "dice_left_kidney_demo": demo_left,
               "training_patients": len(seeds), "validation_patients": n_val,
               "training_seconds": round(train_seconds)}
    summary = (f"Dice {right:.2f} (right), {left:.2f} (left) on {n_val} held-out phantom "
               f"patients x 4 phases; {demo_right:.2f} / {demo_left:.2f} on the demo's 3 patients")
    pt.write_manifest(
        bundle, id=BUNDLE_ID, version=VERSION, name="Kidney segmentation",
        description="Small 2D U-Net that drafts the right and left kidney on axial CT slices "
                    "(trained on the synthetic phantom).",
        task="segmentation", n_train=len(seeds), size=SIZE, window=WINDOW, output=OUTPUT,
        seconds_per_slice=per_slice, memory_mb=pt.memory_mb(model), summary=summary,
        metrics=metrics)


if __name__ == "__main__":
    main()
