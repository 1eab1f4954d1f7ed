"""Training a development model inside the model worker (imports keras; only the worker runs it).

A training round is a :class:`TrainingSession` held by the worker between requests, so the job
that drives it (:mod:`ril_dash.application.training`, which never imports TensorFlow) can report
progress, honour a cancel and stop early between epochs:

- ``train_begin``: the data (model-ready batches made by the application layer with the same
  geometry as a model run) and the spec: an example architecture (:func:`build_unet`: a small
  2D U-Net, :func:`build_classifier`: a small CNN) or the parent bundle's model to fine-tune;
- ``train_epoch``: one pass over the training slices (shuffled, seeded; at least
  ``spec["epoch_slices"]`` slices, so a small training set is drawn again, and with
  ``spec["augment"]`` every slice is randomly rotated, scaled and shifted, and a segmentation's
  contrast jittered: :func:`augment`), then the loss and the Dice per ROI (or the accuracy) on
  the validation slices; it stops within the epoch when a batch loss is not finite
  (``"nan": true``) or the time budget runs out. The weights of the best epoch are kept
  (:func:`better`: the highest mean validation Dice or accuracy, ties to the lower validation
  loss);
- ``train_save``: those weights in a fresh, uncompiled copy of the model (standard Keras layers
  only, so the saved file passes the worker's safety scan) saved to a path;
- ``train_end``: forget the session.

The validation Dice is measured on the validation slices at the model's input size (argmax of
the softmax against the target's argmax, all validation slices pooled per ROI; 1.0 when both are
empty), which is what early stopping and auto-activation compare. Adam's learning rate
follows a cosine from ``spec["learning_rate"]`` down to 2 % of it over ``spec["epochs"]``
epochs (constant when the spec has no epochs): large steps first, then small ones that let the
batch-norm statistics settle on the final weights.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage

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


def score_of(epoch: dict) -> float:
    """The figure an epoch is judged by: mean validation Dice, or the validation accuracy."""
    dice = epoch.get("val_dice")
    return float(np.mean(dice)) if dice else float(epoch.get("val_accuracy") or 0.0)


def better(epoch: dict, best: dict | None) -> bool:
    """Whether ``epoch`` beats ``best``: a higher :func:`score_of`, or as high a score with a
    lower validation loss (early stopping, the kept epoch and the provenance all use this).

    >>> better({"val_dice": [0.8], "val_loss": 0.5}, {"val_dice": [0.7], "val_loss": 0.2})
    True
    >>> better({"val_dice": [0.7], "val_loss": 0.3}, {"val_dice": [0.7], "val_loss": 0.2})
    False
    >>> better({"val_accuracy": 0.5, "val_loss": 0.3}, None)
    True
    """
    if best is None:
        return True
    return (score_of(epoch), -epoch["val_loss"]) > (score_of(best), -best["val_loss"])


#: augmentation: rotation (degrees), scale, shift (share of the side), contrast and brightness
ROTATE, SCALE, SHIFT, CONTRAST, BRIGHTNESS = 10.0, 0.1, 0.06, 0.1, 0.05


def augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *,
            segmentation: bool) -> tuple[np.ndarray, np.ndarray]:
    """A random rotation (±10°), scale (±10 %) and shift (±6 % of the side) of every slice of
    ``x`` ``(n, H, W, C)``, the same for the one-hot targets ``y`` of a segmentation (linear
    interpolation keeps them summing to 1); a segmentation's slices also get their contrast
    and brightness jittered (±10 %, ±0.05). Never a mirror image: left and right differ.

    >>> x = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1)
    >>> y = np.eye(2, dtype=np.float32)[(x[..., 0] > 64).astype(int)]
    >>> ax, ay = augment(x, y, np.random.default_rng(0), segmentation=True)
    >>> ax.shape, ay.shape, bool(np.allclose(ay.sum(-1), 1.0)), bool(np.array_equal(ax, x))
    ((2, 8, 8, 1), (2, 8, 8, 2), True, False)
    """
    out_x = np.empty_like(x, dtype=np.float32)
    out_y = np.empty_like(y, dtype=np.float32) if segmentation else y
    centre = (np.array(x.shape[1:3], float) - 1) / 2
    for i in range(len(x)):
        angle = np.deg2rad(rng.uniform(-ROTATE, ROTATE))
        scale = rng.uniform(1 - SCALE, 1 + SCALE)
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        matrix = np.array([[cos, -sin], [sin, cos]])
        shift = rng.uniform(-SHIFT, SHIFT, 2) * np.array(x.shape[1:3])
        offset = centre - matrix @ centre + shift
        for c in range(x.shape[-1]):
            out_x[i, ..., c] = ndimage.affine_transform(x[i, ..., c], matrix, offset, order=1,
                                                        mode="nearest")
        if segmentation:
            for c in range(y.shape[-1]):
                out_y[i, ..., c] = ndimage.affine_transform(
                    y[i, ..., c].astype(np.float32), matrix, offset, order=1, mode="nearest")
            out_x[i] = out_x[i] * rng.uniform(1 - CONTRAST, 1 + CONTRAST) + \
                rng.uniform(-BRIGHTNESS, BRIGHTNESS)
    return out_x, out_y


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
    the weights of the best epoch so far (:func:`better`)."""

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
        self.batch = max(1, int(spec.get("batch_size", 8)))
        self.per_epoch = max(len(self.x), int(spec.get("epoch_slices") or 0))
        self.augment = bool(spec.get("augment"))
        rate = float(spec["learning_rate"])
        if spec.get("epochs"):
            steps = int(spec["epochs"]) * -(-self.per_epoch // self.batch)
            rate = keras.optimizers.schedules.CosineDecay(rate, steps, alpha=0.02)
        self.model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss)
        self.best: list | None = None
        self.best_epoch: dict | None = None
        self.epochs = 0

    def _order(self) -> np.ndarray:
        """The training slices of one epoch: whole shuffled passes until ``per_epoch``."""
        passes = -(-self.per_epoch // len(self.x))
        return np.concatenate([self.rng.permutation(len(self.x))
                               for _ in range(passes)])[:self.per_epoch]

    def epoch(self, deadline_s: float | None = None) -> dict:
        """One epoch (see the module docstring); ``deadline_s``: seconds left of the budget."""
        started = time.perf_counter()
        order = self._order()
        losses, stopped = [], None
        for start in range(0, len(order), self.batch):
            take = np.sort(order[start:start + self.batch])
            x, y = self.x[take], self.y[take]
            if self.augment:
                x, y = augment(x, y, self.rng, segmentation=self.task == "segmentation")
            value = float(np.asarray(self.model.train_on_batch(x, y)))
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
        elif better(answer, self.best_epoch):
            self.best_epoch = answer
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
        kept = self.best_epoch or {}
        return {"params": int(clean.count_params()), "kept_epoch": kept.get("epoch"),
                "best_val_loss": kept.get("val_loss")}


def begin(keras, spec: dict, data: dict, parent_model=None) -> TrainingSession:
    """A new session; ModelRunError naming what is wrong with the spec."""
    if spec.get("task") not in ("segmentation", "classification"):
        raise ModelRunError(f"unknown training task {spec.get('task')!r}")
    if parent_model is None and spec.get("architecture") not in ARCHITECTURES:
        raise ModelRunError(f"unknown architecture {spec.get('architecture')!r}; use one of "
                            f"{', '.join(ARCHITECTURES)} or a bundle to fine-tune")
    return TrainingSession(keras, spec, data, parent_model)
