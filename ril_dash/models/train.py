"""Training a development model inside the model worker (imports keras; only the worker runs it).

A training round is a :class:`TrainingSession` held by the worker between requests, so the job
that drives it (:mod:`ril_dash.application.training`, which never imports TensorFlow) can report
progress, honour a cancel and stop early between epochs:

- ``train_begin``: the data (model-ready batches made by the application layer with the same
  geometry as a model run) and the spec: an example architecture (:func:`build_unet`: a small
  2D U-Net, :func:`build_classifier`: a small CNN) or the parent bundle's model to fine-tune;
- ``train_epoch``: one pass over the training slices (shuffled, seeded), then the loss and the
  Dice per ROI (or the accuracy) on the validation slices; it stops within the epoch when a batch
  loss is not finite (``"nan": true``) or the time budget runs out. The weights of the epoch with
  the lowest validation loss are kept;
- ``train_save``: those weights in a fresh, uncompiled copy of the model (standard Keras layers
  only, so the saved file passes the worker's safety scan) saved to a path;
- ``train_end``: forget the session.

The validation Dice is measured on the validation slices at the model's input size (argmax of
the softmax against the target's argmax, all validation slices pooled per ROI; 1.0 when both are
empty), which is what early stopping and auto-activation compare.
"""

from __future__ import annotations

import time

import numpy as np

from ril_dash.errors import ModelRunError

ARCHITECTURES = ("unet", "cnn")
#: filters per level of the example U-Net (three poolings: input sides must divide by 8)
UNET_FILTERS = (8, 16, 24, 32)
CNN_FILTERS = (8, 16, 32)


def build_unet(keras, input_shape, n_classes: int, filters=UNET_FILTERS):
    """Two 3×3 conv + batch-norm + ReLU per level, max-pool down, upsample + concatenate up,
    softmax over ``n_classes`` (background first)."""
    layers = keras.layers

    def block(x, n):
        for _ in range(2):
            x = layers.Conv2D(n, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        return x

    inputs = keras.Input(tuple(input_shape), name="image")
    skips, x = [], inputs
    for n in filters[:-1]:
        x = block(x, n)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = block(x, filters[-1])
    for n, skip in zip(reversed(filters[:-1]), reversed(skips)):
        x = layers.UpSampling2D()(x)
        x = layers.Concatenate()([x, skip])
        x = block(x, n)
    outputs = layers.Conv2D(n_classes, 1, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="dev_unet")


def build_classifier(keras, input_shape, n_classes: int, filters=CNN_FILTERS):
    """Conv + batch-norm + ReLU + max-pool per level, global average pooling, softmax."""
    layers = keras.layers
    inputs = keras.Input(tuple(input_shape), name="image")
    x = inputs
    for n in filters:
        x = layers.Conv2D(n, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="dev_classifier")


def dice_per_class(truth: np.ndarray, found: np.ndarray, n_classes: int) -> list[float]:
    """Dice of every class but the background (0) between two class maps.

    >>> dice_per_class(np.array([0, 1, 1, 2]), np.array([0, 1, 0, 0]), 3)
    [0.6666666666666666, 0.0]
    >>> dice_per_class(np.zeros(3, int), np.zeros(3, int), 2)
    [1.0]
    """
    scores = []
    for k in range(1, n_classes):
        a, b = truth == k, found == k
        total = int(a.sum()) + int(b.sum())
        scores.append(1.0 if total == 0 else 2.0 * int((a & b).sum()) / total)
    return scores


def segmentation_loss(keras):
    """Cross-entropy plus a soft Dice loss of the foreground channels."""
    ops = keras.ops
    cross_entropy = keras.losses.CategoricalCrossentropy()

    def loss(y_true, y_pred):
        fg_true, fg_pred = y_true[..., 1:], y_pred[..., 1:]
        overlap = ops.sum(fg_true * fg_pred, axis=(0, 1, 2))
        total = ops.sum(fg_true + fg_pred, axis=(0, 1, 2))
        dice = (2.0 * overlap + 1.0) / (total + 1.0)
        return cross_entropy(y_true, y_pred) + 1.0 - ops.mean(dice)

    return loss


class TrainingSession:
    """One round of training (see the module docstring); ``model`` is compiled, ``best`` holds
    the weights of the epoch with the lowest validation loss."""

    def __init__(self, keras, spec: dict, data: dict, parent_model=None):
        self.keras = keras
        self.spec = dict(spec)
        self.task = spec["task"]
        self.x = np.asarray(data["x_train"], np.float32)
        self.y = np.asarray(data["y_train"])
        self.x_val = np.asarray(data["x_val"], np.float32)
        self.y_val = np.asarray(data["y_val"])
        if not len(self.x) or not len(self.x_val):
            raise ModelRunError("training needs at least one training and one validation slice")
        seed = int(spec.get("seed", 0))
        keras.utils.set_random_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.n_classes = int(spec["n_classes"])
        if parent_model is not None:
            self.build = lambda: keras.models.clone_model(parent_model)
            self.model = self.build()
            self.model.set_weights(parent_model.get_weights())
        else:
            maker = build_unet if spec["architecture"] == "unet" else build_classifier
            self.build = lambda: maker(keras, self.x.shape[1:], self.n_classes)
            self.model = self.build()
        loss = (segmentation_loss(keras) if self.task == "segmentation"
                else keras.losses.SparseCategoricalCrossentropy())
        self.model.compile(optimizer=keras.optimizers.Adam(float(spec["learning_rate"])),
                           loss=loss)
        self.batch = max(1, int(spec.get("batch_size", 8)))
        self.best: list | None = None
        self.best_val_loss = float("inf")
        self.epochs = 0

    def epoch(self, deadline_s: float | None = None) -> dict:
        """One epoch (see the module docstring); ``deadline_s``: seconds left of the budget."""
        started = time.perf_counter()
        order = self.rng.permutation(len(self.x))
        losses, stopped = [], None
        for start in range(0, len(order), self.batch):
            take = order[start:start + self.batch]
            value = float(np.asarray(self.model.train_on_batch(self.x[take], self.y[take])))
            if not np.isfinite(value):
                stopped = "nan"
                break
            losses.append(value)
            if deadline_s is not None and time.perf_counter() - started > deadline_s:
                stopped = "time"
                break
        self.epochs += 1
        answer = {"epoch": self.epochs, "loss": float(np.mean(losses)) if losses else None,
                  "stopped": stopped, "batches": len(losses)}
        if stopped == "nan":
            answer["seconds"] = round(time.perf_counter() - started, 2)
            return answer
        answer.update(self.validate())
        if not np.isfinite(answer["val_loss"]):
            answer["stopped"] = "nan"
        elif answer["val_loss"] < self.best_val_loss:
            self.best_val_loss = answer["val_loss"]
            self.best = self.model.get_weights()
            answer["best"] = True
        answer["seconds"] = round(time.perf_counter() - started, 2)
        return answer

    def validate(self) -> dict:
        """Validation loss and Dice per ROI (segmentation) or accuracy (classification)."""
        probs = np.concatenate([np.asarray(self.model.predict_on_batch(
            self.x_val[i:i + self.batch])) for i in range(0, len(self.x_val), self.batch)])
        loss_fn = (segmentation_loss(self.keras) if self.task == "segmentation"
                   else self.keras.losses.SparseCategoricalCrossentropy())
        val_loss = float(np.asarray(loss_fn(self.y_val.astype(np.float32), probs)))
        if self.task == "segmentation":
            dice = dice_per_class(np.argmax(self.y_val, -1), np.argmax(probs, -1), self.n_classes)
            return {"val_loss": val_loss, "val_dice": dice}
        accuracy = float(np.mean(np.argmax(probs, -1) == self.y_val))
        return {"val_loss": val_loss, "val_accuracy": accuracy}

    def save(self, path: str) -> dict:
        """Save the best weights (those of the last epoch when none was best) to ``path``."""
        clean = self.build()
        clean.set_weights(self.best if self.best is not None else self.model.get_weights())
        clean.save(path)
        return {"params": int(clean.count_params()), "best_val_loss": self.best_val_loss}


def begin(keras, spec: dict, data: dict, parent_model=None) -> TrainingSession:
    """A new session; ModelRunError naming what is wrong with the spec."""
    if spec.get("task") not in ("segmentation", "classification"):
        raise ModelRunError(f"unknown training task {spec.get('task')!r}")
    if parent_model is None and spec.get("architecture") not in ARCHITECTURES:
        raise ModelRunError(f"unknown architecture {spec.get('architecture')!r}; use one of "
                            f"{', '.join(ARCHITECTURES)} or a bundle to fine-tune")
    return TrainingSession(keras, spec, data, parent_model)
