"""Writes the tiny Keras models the worker tests run: ``python make_test_models.py OUT_DIR``.

Run in a subprocess so the test process itself never imports tensorflow. Every model takes
channels-last float32 batches:

- ``conv.keras`` / ``conv.h5``: (16, 16, 1) → Conv2D relu → Conv2D softmax, 2 channels; fixed
  seeds, and ``conv_expected.npy`` holds its output on ``conv_input.npy``;
- ``lambda.keras``: the same with a Lambda layer; ``custom.keras``: a Dense model ending in a
  custom registered layer (``ril_test>Doubler``) whose code lives in ``custom_layers.py``;
- ``nan.keras``: a 1x1 convolution whose kernel is NaN;
- ``unet_odd.keras``: a skip connection that only fits even sizes (any input size is accepted by
  its input layer; an odd one makes predict raise inside Keras);
- ``slow.keras``: four 32-filter convolutions on (128, 128, 1): seconds for a large batch.
"""

from __future__ import annotations

import sys
from pathlib import Path

CUSTOM_LAYERS = '''"""Custom objects of the test bundle (runs only when trusted)."""
import keras


@keras.saving.register_keras_serializable(package="ril_test")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


CUSTOM_OBJECTS = {"ril_test>Doubler": Doubler}
'''


def main(out: Path) -> None:
    import keras
    import numpy as np

    keras.utils.set_random_seed(7)
    out.mkdir(parents=True, exist_ok=True)
    layers = keras.layers

    def conv_net(extra=None):
        inp = keras.Input((16, 16, 1))
        x = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
        if extra is not None:
            x = extra(x)
        return keras.Model(inp, layers.Conv2D(2, 1, activation="softmax")(x))

    conv = conv_net()
    conv.save(out / "conv.keras")
    conv.save(out / "conv.h5")
    sample = np.random.default_rng(1).normal(size=(5, 16, 16, 1)).astype("float32")
    np.save(out / "conv_input.npy", sample)
    np.save(out / "conv_expected.npy", conv.predict(sample, verbose=0))

    conv_net(layers.Lambda(lambda t: t * 2.0)).save(out / "lambda.keras")

    (out / "custom_layers.py").write_text(CUSTOM_LAYERS, encoding="utf-8")
    namespace: dict = {}
    exec(compile(CUSTOM_LAYERS, "custom_layers.py", "exec"), namespace)
    custom = keras.Sequential([keras.Input((3,)), layers.Dense(3, use_bias=False),
                               namespace["Doubler"]()])
    custom.layers[0].set_weights([np.eye(3, dtype="float32")])
    custom.save(out / "custom.keras")

    nan = keras.Sequential([keras.Input((4, 4, 1)), layers.Conv2D(1, 1)])
    nan.layers[0].set_weights([np.full((1, 1, 1, 1), np.nan, "float32"), np.zeros(1, "float32")])
    nan.save(out / "nan.keras")

    inp = keras.Input((None, None, 1))
    skip = layers.Conv2D(2, 3, padding="same")(inp)
    down = layers.UpSampling2D()(layers.MaxPooling2D()(skip))
    keras.Model(inp, layers.Concatenate()([skip, down])).save(out / "unet_odd.keras")

    slow = keras.Sequential([keras.Input((128, 128, 1))]
                            + [layers.Conv2D(32, 3, padding="same") for _ in range(4)])
    slow.save(out / "slow.keras")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
