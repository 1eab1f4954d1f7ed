"""Tiny models for the map tests, and reference maps computed here by independent code.

``python make_explain_models.py OUT_DIR`` (a subprocess: the test process never imports
tensorflow) writes:

- ``gap.keras``: (12, 12, 2) → Conv2D ``conv1`` relu → Conv2D ``conv2`` relu → GAP → Dense(3,
  softmax): every method applies, CAM included;
- ``seg.keras``: (12, 12, 1) → Conv2D ``c1`` relu → Conv2D 1×1 (3, softmax): segmentation;
- ``concat.keras``: a pooling layer, then GAP and GMP concatenated before the Dense (like the
  example classifier): no CAM, no Grad-CAM on the pooling; ``embed.keras``: an Embedding on the input (an integer cast): no gradient to the input;
- ``explain_reference.npz``: the input batches and, per method, the maps a few lines of plain
  ``GradientTape`` code give on the logits written out by hand from the layers' weights (not
  through ril_dash), with the same SmoothGrad noise draws (``default_rng(seed)``).
"""

from __future__ import annotations

import sys
from pathlib import Path

SEED, SAMPLES, NOISE = 3, 6, 0.2


def build(out: Path):
    import keras

    keras.utils.set_random_seed(11)
    L = keras.layers
    inp = keras.Input((12, 12, 2))
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    a = L.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(a)
    gap = keras.Model(inp, L.Dense(3, activation="softmax", name="head")(
        L.GlobalAveragePooling2D(name="gap")(a)))
    gap.save(out / "gap.keras")

    inp = keras.Input((12, 12, 1))
    c1 = L.Conv2D(5, 3, padding="same", activation="relu", name="c1")(inp)
    seg = keras.Model(inp, L.Conv2D(3, 1, activation="softmax", name="out")(c1))
    seg.save(out / "seg.keras")

    inp = keras.Input((12, 12, 1))
    a = L.MaxPooling2D(name="pool")(L.Conv2D(4, 3, padding="same", activation="relu",
                                             name="conv")(inp))
    both = L.Concatenate()([L.GlobalAveragePooling2D()(a), L.GlobalMaxPooling2D()(a)])
    keras.Model(inp, L.Dense(2, activation="softmax")(both)).save(out / "concat.keras")

    inp = keras.Input((8, 8, 1))
    e = L.Reshape((8, 8, 2))(L.Embedding(4, 2)(inp))
    a = L.Conv2D(3, 3, padding="same", activation="relu", name="conv")(e)
    keras.Model(inp, L.Dense(2)(L.GlobalAveragePooling2D()(a))).save(out / "embed.keras")
    return gap, seg


def references(gap, seg):
    """Reference maps with hand-written logits (weights read from the layers)."""
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=(3, 12, 12, 2)).astype("float32"))
    feats = keras.Model(gap.inputs, gap.get_layer("conv2").output)
    kernel, bias = (tf.constant(w) for w in gap.get_layer("head").get_weights())
    target = 1

    def logit_of_feats(a):
        return tf.reduce_mean(a, axis=[1, 2]) @ kernel + bias

    ref = {"x": x.numpy(), "target": target}
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = logit_of_feats(feats(x))[:, target]
    ref["logits"] = logit_of_feats(feats(x)).numpy()
    ref["saliency"] = np.abs(tape.gradient(score, x).numpy()).max(-1)

    base = x.numpy()
    flat = base.reshape(len(base), -1)
    sigma = (NOISE * (flat.max(1) - flat.min(1))).reshape(-1, 1, 1, 1).astype("float32")
    draws = np.random.default_rng(SEED)
    total = np.zeros_like(base)
    for _ in range(SAMPLES):
        noisy = tf.constant(base + draws.normal(size=base.shape).astype("float32") * sigma)
        with tf.GradientTape() as tape:
            tape.watch(noisy)
            score = logit_of_feats(feats(noisy))[:, target]
        total += tape.gradient(score, noisy).numpy()
    ref["smoothgrad"] = np.abs(total / SAMPLES).max(-1)

    a = feats(x)
    with tf.GradientTape() as tape:
        tape.watch(a)
        score = logit_of_feats(a)[:, target]
    g = tape.gradient(score, a).numpy()
    a = a.numpy()
    alpha = g.mean(axis=(1, 2))
    ref["gradcam"] = np.maximum(0, (a * alpha[:, None, None, :]).sum(-1))
    numer = g ** 2
    denom = 2 * g ** 2 + a.sum(axis=(1, 2), keepdims=True) * g ** 3
    coef = np.where(denom != 0, numer / np.where(denom != 0, denom, 1), 0)
    weights = (coef * np.maximum(g, 0)).sum(axis=(1, 2))
    ref["gradcam_pp"] = np.maximum(0, (a * weights[:, None, None, :]).sum(-1))
    ref["cam"] = np.einsum("nabk,k->nab", a, kernel.numpy()[:, target])
    ref["bias"] = bias.numpy()
    with tf.GradientTape() as tape:
        tape.watch(x)
        mapped = tf.nn.relu(tf.einsum("nabk,nk->nab", feats(x), tf.constant(alpha)))
        total = tf.reduce_sum(mapped, axis=[1, 2])
    ref["sam"] = np.abs(tape.gradient(total, x).numpy()).max(-1)

    # segmentation: channel 2's logits summed over the pixels whose argmax is 2
    xs = tf.constant(rng.normal(size=(2, 12, 12, 1)).astype("float32"))
    c1 = keras.Model(seg.inputs, seg.get_layer("c1").output)
    w, b = seg.get_layer("out").get_weights()
    with tf.GradientTape() as tape:
        tape.watch(xs)
        logits = tf.einsum("nabk,kc->nabc", c1(xs), tf.constant(w[0, 0])) + b
        mask = tf.cast(tf.argmax(logits, axis=-1) == 2, tf.float32)
        score = tf.reduce_sum(logits[..., 2] * mask, axis=[1, 2])
    ref["seg_x"] = xs.numpy()
    ref["seg_saliency"] = np.abs(tape.gradient(score, xs).numpy()).max(-1)
    ref["seg_region_pixels"] = mask.numpy().sum(axis=(1, 2))
    return ref


def main(out: Path) -> None:
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    gap, seg = build(out)
    np.savez(out / "explain_reference.npz", **references(gap, seg))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
