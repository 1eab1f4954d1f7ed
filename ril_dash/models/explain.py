"""Activation and saliency maps of a loaded Keras model (runs in the model worker only).

Imported by :mod:`ril_dash.models.worker` alone; tensorflow and keras are imported inside the
functions. Every map is computed for a batch of preprocessed model inputs ``x`` (n, H, W, C) and
one **target score** per item, always on **logits**: when the model's last layer applies softmax
or sigmoid (its own ``activation`` or a separate ``Activation``/``Softmax`` layer), the score is
taken before that activation (a copy of the last layer with a linear activation and the same
weights), so saturated probabilities do not flatten the gradients.

Target score ``S`` of one item:

- classifier (output ``(n, K)``): the logit of class ``index``;
- segmentation (output ``(n, H, W, K)``): the sum of channel ``index``'s logits over the region the
  model assigns to that channel (argmax over channels, or logit > 0 for a sigmoid or one-channel
  head) when ``region="predicted"`` and that region is not empty; otherwise over the whole slice.
  The region used for each item is returned.

Methods (``A_k``: channel k of the chosen layer's output, ``g_k = dS/dA_k``; sums over a, b run
over the layer's rows and columns):

- ``saliency``: ``max_c |dS/dx_c|`` (input resolution);
- ``smoothgrad``: the same on the mean gradient over ``samples`` noisy copies
  ``x + N(0, sigma)``, ``sigma = noise * (max(x) - min(x))`` per item, noise drawn from
  ``numpy.random.default_rng(seed)``, one ``(n, H, W, C)`` draw per sample in order;
- ``cam``: ``sum_k w_kc A_k`` for a model whose logits are one Dense layer on a
  GlobalAveragePooling2D of ``A`` (no bias; refused for any other head);
- ``gradcam``: ``relu(sum_k alpha_k A_k)``, ``alpha_k = mean_ab g_k``;
- ``gradcam++``: ``relu(sum_k w_k A_k)``, ``w_k = sum_ab a_kab relu(g_kab)``,
  ``a_kab = g_kab^2 / (2 g_kab^2 + sum_ab(A_k) g_kab^3)`` (0 where the denominator is 0): the
  usual closed form with first-derivative powers;
- ``sam``: ``max_c |dM/dx_c|`` with ``M = sum_ab relu(sum_k alpha_k A_k)``, the Grad-CAM map of
  the layer summed with its weights ``alpha`` held fixed: an input-resolution gradient map of the
  chosen layer's target-weighted activation. This is the closest documented construction to the
  saliency activation map of Philbrick et al. (AJR 2018), not a verified copy of it.

The layer methods read a convolution or a non-linear activation with a spatial output
(:func:`spatial_layers`; default: the last convolution). Maps of ``cam``, ``gradcam`` and
``gradcam++`` are at the layer's resolution; the caller resizes
them to the model input (:func:`ril_dash.models.preprocess.zoom_to`).
"""

from __future__ import annotations

import time

import numpy as np

from ril_dash.errors import ModelRunError
from ril_dash.models.explain_slices import LAYER_METHODS, METHODS

__all__ = ["explain", "spatial_layers"]

SQUASHING = ("softmax", "sigmoid")
MAX_SAMPLES = 200


def _producer(tensor):
    """The layer that made a symbolic tensor of a functional model."""
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history.operation


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return type(layer).__name__.lower() if type(layer).__name__ == "Softmax" else None
    return getattr(activation, "__name__", None)


#: layers Grad-CAM and SAM may read besides convolutions: non-linear activations
ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax")


def _readable(layer) -> bool:
    """A convolution, an activation layer, or a layer with its own non-linear activation."""
    kind = type(layer).__name__
    if "Conv" in kind or kind in ACTIVATION_LAYERS:
        return kind != "Activation" or _activation_name(layer) not in (None, "linear")
    return _activation_name(layer) not in (None, "linear")


def _spatial_shape(layer) -> tuple | None:
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):  # used several times: no single output
        return None
    return shape if len(shape) == 4 else None


def spatial_layers(model) -> list[dict]:
    """The layers Grad-CAM and SAM can read: a spatial output (batch, rows, cols, channels) from
    a convolution or a non-linear activation; ``{"name", "kind", "shape", "conv"}`` in model
    order."""
    found = []
    for layer in model.layers:
        shape = _spatial_shape(layer)
        if shape is not None and _readable(layer):
            found.append({"name": layer.name, "kind": type(layer).__name__,
                          "shape": [None if v is None else int(v) for v in shape[1:]],
                          "conv": "Conv" in type(layer).__name__})
    return found


def default_layer(model) -> str | None:
    """The last convolutional layer (else the last spatial one)."""
    found = spatial_layers(model)
    convs = [item["name"] for item in found if item["conv"]]
    return (convs or [item["name"] for item in found] or [None])[-1]


def _logits(model):
    """``(logits tensor, head activation name)``: the model output before softmax/sigmoid."""
    out = model.outputs[0]
    last = _producer(out)
    name = _activation_name(last) if last is not None else None
    if name not in SQUASHING:
        return out, name or "linear"
    if type(last).__name__ in ("Activation", "Softmax"):
        return last.input, name
    config = dict(last.get_config(), activation="linear", name=f"{last.name}_logits")
    clone = type(last).from_config(config)
    logits = clone(last.input)
    clone.set_weights(last.get_weights())
    return logits, name


def _cam_features(model, logits, label: str):
    """``(feature tensor A, dense kernel (K, classes))`` when the logits are a Dense layer on a
    GlobalAveragePooling2D (Dropout between them allowed); else ModelRunError."""
    dense = _producer(logits)
    chain = [type(dense).__name__ if dense is not None else "?"]
    if type(dense).__name__ == "Dense":
        below = _producer(dense.input)
        while below is not None and type(below).__name__ == "Dropout":
            below = _producer(below.input)
        chain.append(type(below).__name__ if below is not None else "?")
        if type(below).__name__ == "GlobalAveragePooling2D" and len(below.input.shape) == 4:
            return below.input, np.asarray(dense.get_weights()[0])
    raise ModelRunError(
        f"CAM needs a model whose output is one Dense layer on a GlobalAveragePooling2D; "
        f"{label} ends in {' ← '.join(chain)}. Use Grad-CAM instead: it works on any layer "
        f"with a spatial output.")


def _layer_tensor(model, layer: str | None, label: str):
    names = [item["name"] for item in spatial_layers(model)]
    name = layer or default_layer(model)
    if name is None:
        raise ModelRunError(f"{label} has no layer with a spatial (rows × cols) output, so "
                            f"Grad-CAM and SAM cannot run on it; use saliency or SmoothGrad.")
    try:
        found = model.get_layer(name)
    except ValueError:
        raise ModelRunError(f"{label} has no layer named {name!r}; choose one of: "
                            f"{', '.join(names)}") from None
    if name not in names:
        if _spatial_shape(found) is not None:
            raise ModelRunError(f"layer {name!r} of {label} is a {type(found).__name__}, neither "
                                f"a convolution nor a non-linear activation; choose one of: "
                                f"{', '.join(names)}")
        shape = getattr(found, "output", None)
        shape = tuple(shape.shape) if shape is not None else "?"
        raise ModelRunError(f"layer {name!r} of {label} has output shape {shape}, not a spatial "
                            f"(rows × cols × channels) map; choose one of: {', '.join(names)}")
    return name, found.output


def _explainer(loaded, key: tuple, build):
    """A cached helper model of ``loaded`` (built once per layer and method family)."""
    cache = loaded.explainers
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _score(logits, head: str, target: int, region: str):
    """Per-item target score and the region each item used (see the module docstring)."""
    import tensorflow as tf

    k = int(logits.shape[-1])
    if len(logits.shape) == 2:
        return logits[:, target], ["class"] * int(logits.shape[0])
    if head == "sigmoid" or k == 1:
        mask = tf.cast(logits[..., target] > 0, logits.dtype)
    else:
        mask = tf.cast(tf.argmax(logits, axis=-1) == target, logits.dtype)
    if region == "slice":
        mask = tf.ones_like(mask)
    else:
        empty = tf.reduce_sum(mask, axis=[1, 2], keepdims=True) == 0
        regions = ["slice" if e else "predicted" for e in empty.numpy().reshape(-1)]
        mask = tf.where(empty, tf.ones_like(mask), tf.stop_gradient(mask))
    score = tf.reduce_sum(logits[..., target] * mask, axis=[1, 2])
    return score, (regions if region != "slice" else ["slice"] * int(logits.shape[0]))


def _grad(tape, score, wrt, label: str, what: str):
    grads = tape.gradient(score, wrt)
    if grads is None:
        raise ModelRunError(f"{label} has no gradient path from its output to {what} (integer "
                            f"or non-differentiable operations in between), so this map cannot "
                            f"be computed; choose another layer or method.")
    return grads


def _check_target(logits_shape, target: int, label: str) -> None:
    k = int(logits_shape[-1])
    if not isinstance(target, (int, np.integer)) or isinstance(target, bool) or \
            not 0 <= int(target) < k:
        kind = "classes" if len(logits_shape) == 2 else "output channels"
        raise ModelRunError(f"{label} has {k} {kind} (0 to {k - 1}); target {target!r} is out "
                            f"of range: choose one of them.")


def explain(loaded, batch: np.ndarray, method: str, target: int, *, layer: str | None = None,
            region: str = "predicted", samples: int = 25, noise: float = 0.15,
            seed: int = 0) -> dict:
    """Maps of ``method`` for ``batch`` (see the module docstring).

    Returns ``{"maps": float32 (n, h, w), "layer": name or None, "regions": [...],
    "scores": float32 (n,), "seconds": s}`` (``seconds``: the computation alone).
    """
    import keras
    import tensorflow as tf

    label, model = loaded.label, loaded.model
    if method not in METHODS:
        raise ModelRunError(f"unknown map method {method!r}; use one of {', '.join(METHODS)}")
    if region not in ("predicted", "slice"):
        raise ModelRunError(f"region must be 'predicted' or 'slice', not {region!r}")
    started = time.perf_counter()
    logits_t, head = _explainer(loaded, ("logits",), lambda: _logits(model))
    _check_target(logits_t.shape, target, label)
    name = None
    if method == "cam":
        feats_t, kernel = _cam_features(model, logits_t, label)
        name = _producer(feats_t).name
        key = ("cam",)
    elif method in LAYER_METHODS:
        name, feats_t = _layer_tensor(model, layer, label)
        key = ("layer", name)
    else:
        feats_t, key = None, ("input",)
    outputs = [logits_t] if feats_t is None else [feats_t, logits_t]
    helper = _explainer(loaded, key, lambda: keras.Model(model.inputs, outputs))
    x = tf.convert_to_tensor(np.asarray(batch, np.float32))

    def forward(inputs, watch_input: bool):
        with tf.GradientTape(persistent=True) as tape:
            if watch_input:
                tape.watch(inputs)
            got = helper(inputs, training=False)
            got = list(got) if isinstance(got, (list, tuple)) else [got]
            score, regions = _score(got[-1], head, int(target), region)
        return tape, got, score, regions

    try:
        if method in ("saliency", "smoothgrad"):
            maps, regions, score = _input_gradients(forward, x, method, samples, noise, seed,
                                                    label)
        elif method == "cam":
            tape, got, score, regions = forward(x, False)
            maps = tf.einsum("nabk,k->nab", got[0], tf.constant(kernel[:, int(target)]))
        else:
            tape, got, score, regions = forward(x, method == "sam")
            feats = got[0]
            grads = _grad(tape, score, feats, label, f"layer {name!r}")
            if method == "gradcam++":
                maps = _gradcam_pp(feats, grads)
            else:
                alpha = tf.reduce_mean(grads, axis=[1, 2])
                maps = tf.nn.relu(tf.einsum("nabk,nk->nab", feats, alpha))
                if method == "sam":
                    with tf.GradientTape() as tape2:
                        tape2.watch(x)
                        feats2 = helper(x, training=False)[0]
                        total = tf.reduce_sum(tf.nn.relu(tf.einsum(
                            "nabk,nk->nab", feats2, tf.stop_gradient(alpha))), axis=[1, 2])
                    maps = tf.reduce_max(tf.abs(_grad(tape2, total, x, label, "the input")),
                                         axis=-1)
    except ModelRunError:
        raise
    except Exception as exc:  # a model that cannot be differentiated or run this way
        from ril_dash.models.worker import short

        raise ModelRunError(f"{label}: the {method} map failed on a batch of shape "
                            f"{tuple(x.shape)} ({type(exc).__name__}: {short(exc)})") from exc
    maps = np.asarray(maps, np.float32)
    if not np.isfinite(maps).all():
        raise ModelRunError(f"{label}: the {method} map has NaN or infinite values; check the "
                            f"model's weights and the manifest's normalization.")
    return {"maps": maps, "layer": name, "regions": list(regions),
            "scores": np.asarray(score, np.float32), "seconds": time.perf_counter() - started}


def _input_gradients(forward, x, method, samples, noise, seed, label):
    import tensorflow as tf

    if method == "saliency":
        tape, _, score, regions = forward(x, True)
        grads = _grad(tape, score, x, label, "the input")
    else:
        samples = int(samples)
        if not 1 <= samples <= MAX_SAMPLES or not 0 <= float(noise) <= 1:
            raise ModelRunError(f"SmoothGrad takes 1 to {MAX_SAMPLES} samples and a noise level "
                                f"from 0 to 1, not {samples} and {noise}")
        rng = np.random.default_rng(int(seed))
        base = x.numpy()
        spread = (base.reshape(len(base), -1).max(1) - base.reshape(len(base), -1).min(1))
        sigma = (float(noise) * spread).reshape(-1, *([1] * (base.ndim - 1)))
        total = np.zeros_like(base)
        score = None
        for _ in range(samples):
            noisy = tf.convert_to_tensor(base + rng.normal(size=base.shape).astype(np.float32)
                                         * sigma.astype(np.float32))
            tape, _, score_s, regions = forward(noisy, True)
            total += _grad(tape, score_s, noisy, label, "the input").numpy()
            score = score_s if score is None else score
        grads = tf.constant(total / samples)
        _, _, score, regions = forward(x, False)
    return tf.reduce_max(tf.abs(grads), axis=-1), regions, score


def _gradcam_pp(feats, grads):
    import tensorflow as tf

    g2, g3 = grads ** 2, grads ** 3
    sums = tf.reduce_sum(feats, axis=[1, 2], keepdims=True)
    denom = 2.0 * g2 + sums * g3
    alpha = tf.where(denom != 0, g2 / tf.where(denom != 0, denom, tf.ones_like(denom)), 0.0)
    weights = tf.reduce_sum(alpha * tf.nn.relu(grads), axis=[1, 2])
    return tf.nn.relu(tf.einsum("nabk,nk->nab", feats, weights))
