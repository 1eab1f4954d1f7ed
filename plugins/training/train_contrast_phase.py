"""Train the example contrast-phase classifier bundle ``contrast-phase/1.0.0`` on phantom patients.

A small 2D CNN (a few thousand parameters) reads one axial display slice, zoomed to 64 × 64 and
windowed to [-160, 640] HU → [0, 1], and gives softmax probabilities of the four contrast phases
(non-contrast, arterial, portal-venous, delayed: the allowed values of the demo's "Contrast phase"
text field, in that order). A series is classified by the mean of its slice probabilities over the
middle third of its axial slices (``aggregate: mean``, ``slices: middle``). It trains on every
slice of the four phases of ``--patients`` synthetic patients (seeds 1..N); the accuracy is
counted per series on held-out patients (seeds 901-903) and on the demo project's three patients
(seeds 101, 202, 303), as the app classifies them
(:func:`ril_dash.models.pipeline.predict_series`).

Re-train (a minute or two on two CPU cores), from the repository root::

    PYTHONPATH=$PWD python plugins/training/train_contrast_phase.py --out plugins

It writes ``plugins/contrast-phase/1.0.0/`` (see :mod:`phantom_training` for what re-training
changes); ``--validate-only plugins/contrast-phase/1.0.0`` scores the shipped bundle instead.
"""

from __future__ import annotations

import numpy as np

import phantom_training as pt
from ril_dash.demo.phantom import PHASES
from ril_dash.models.manifest import ClassificationOutput
from ril_dash.models.pipeline import predict_series
from ril_dash.models.preprocess import prepare_slices

BATCH = 32
FILTERS = (8, 16, 32)

MANIFEST = pt.example_manifest(
    "contrast-phase", name="Contrast phase",
    description="Small 2D CNN that tells the contrast phase of an abdominal CT (non-contrast, "
                "arterial, portal-venous, delayed; trained on the synthetic phantom).",
    task="classification", size=(64, 64), window=(-160, 640),
    output=ClassificationOutput(text_field="Contrast phase", classes=tuple(PHASES),
                                activation="softmax", aggregate="mean", slices="middle"))


def build_classifier(keras):
    """Conv + batch-norm + ReLU + max-pool per level, global average and max pooling, softmax."""
    layers = keras.layers
    inputs = keras.Input((*MANIFEST.input.size, 1), name="ct")
    x = inputs
    for filters in FILTERS:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    pooled = layers.Concatenate()([layers.GlobalAveragePooling2D()(x),
                                   layers.GlobalMaxPooling2D()(x)])
    outputs = layers.Dense(len(PHASES), activation="softmax", name="phase")(pooled)
    return keras.Model(inputs, outputs, name="contrast_phase")


def dataset(seeds) -> tuple[np.ndarray, np.ndarray]:
    """Every slice of every phase of every patient in ``seeds``, with its phase index."""
    xs, ys = [], []
    for seed in seeds:
        for index, phase in enumerate(PHASES):
            volume = pt.load_series(seed, phase).volume
            x, _ = prepare_slices(volume, MANIFEST, range(volume.n_slices(MANIFEST.input.plane)))
            xs.append(x)
            ys.append(np.full(len(x), index))
    return np.concatenate(xs), np.concatenate(ys)


def evaluate(manifest, model, seeds, label: str) -> tuple[float, float]:
    """Series accuracy (the app's classification: mean over the middle third) and slice
    accuracy (those same slices)."""
    adapter = pt.KerasAdapter(model)
    classes = list(manifest.output.classes)
    series_hits, slice_hits, n_slices = 0, 0, 0
    for seed in seeds:
        for phase in PHASES:
            found = predict_series(pt.load_series(seed, phase).volume, manifest, None,
                                   adapter).classification
            probs = adapter.taken()
            series_hits += found.value == phase
            slice_hits += int((np.argmax(probs, axis=1) == classes.index(phase)).sum())
            n_slices += len(probs)
            print(f"  {label} seed {seed} {phase:>13}: {found.value} "
                  f"(p = {found.probability:.2f})")
    n_series = len(seeds) * len(PHASES)
    accuracy, slice_accuracy = series_hits / n_series, slice_hits / n_slices
    print(f"{label}: series accuracy {series_hits}/{n_series} = {accuracy:.3f}, "
          f"slice accuracy {slice_accuracy:.3f} ({n_slices} middle slices)")
    return round(accuracy, 3), round(slice_accuracy, 3)


def validate(manifest, model) -> dict:
    """Held-out and demo accuracies of ``model`` run under ``manifest``, as manifest metrics."""
    accuracy, slice_accuracy = evaluate(manifest, model, pt.VALIDATION_SEEDS, "held-out")
    demo_accuracy, demo_slice_accuracy = evaluate(manifest, model, pt.DEMO_SEEDS, "demo")
    return {"accuracy": accuracy, "slice_accuracy": slice_accuracy,
            "accuracy_demo": demo_accuracy, "slice_accuracy_demo": demo_slice_accuracy}


def main(argv=None) -> None:
    started = pt.start(__doc__, MANIFEST, patients=8, epochs=8, validate=validate,
                       argv=argv)
    if started is None:
        return
    args, keras, seeds = started
    x, y = dataset(seeds)
    print(f"training data: {len(x)} slices of {len(seeds)} patients × {len(PHASES)} phases")

    model = build_classifier(keras)
    print(f"classifier: {model.count_params()} parameters")
    steps = args.epochs * -(-len(x) // BATCH)
    model.compile(optimizer=pt.adam_cosine(keras, 3e-3, steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    pt.train_and_publish(
        keras, model, lambda: build_classifier(keras), (x, y), args, seeds, MANIFEST,
        batch=BATCH, validate=validate,
        summary=lambda m, n_val: (f"series accuracy {m['accuracy']:.2f} on {n_val} held-out "
                                  f"phantom patients x 4 phases (mean of the middle third of "
                                  f"the slices); {m['accuracy_demo']:.2f} on the demo's 3 "
                                  f"patients"))

if __name__ == "__main__":
    main()
