"""Test support: model bundles written into a project's ``plugins/`` folder.

:func:`write_bundle` writes ``<root>/<id>/<version>/plugin.yaml`` (a segmentation of the two
kidney ROIs, or a classification into the "Contrast phase" text field, as in the demo project)
beside a model file whose sha256 the manifest records. :func:`build_keras_model` makes a real,
tiny Keras model in a **subprocess** (the test process never imports TensorFlow).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

HEAD = """\
id: {id}
version: {version}
name: {name}
description: A tiny test model.
author: {author}
license: CC0-1.0
changelog: {changelog}
task: {task}
dimension: 2
model:
  file: model.keras
  sha256: {sha}
input:
  plane: axial
  size: [32, 32]
  resample: size
normalization:
  method: window
  window: [-160, 240]
  range: [0.0, 1.0]
"""
OUTPUTS = {
    "segmentation": """\
output:
  activation: softmax
  channels:
    - {{channel: 1, roi: Right kidney, code: RID29663}}
    - {{channel: 2, roi: Left kidney, code: RID29662}}
  largest_component: false
  min_size: 0
""",
    "classification": """\
output:
  activation: softmax
  text_field: Contrast phase
  classes: [non-contrast, arterial, portal-venous, delayed]
  aggregate: mean
  slices: all
""",
}
RUNTIME = """\
runtime:
  cpu_seconds_per_slice: {per_slice}
  memory_mb: 20
"""

KERAS_SCRIPT = """
import sys
import numpy as np
import keras
from keras import layers
out, kind = sys.argv[1], sys.argv[2]
inputs = keras.Input((32, 32, 1))
if kind == "segmentation":
    # every pixel brighter than the window's middle is channel 1 (Right kidney), the rest
    # background: softmax of (0, 20 * (x - 0.5), -10)
    head = layers.Conv2D(3, 1, activation="softmax")
    outputs = head(inputs)
    head.set_weights([np.array([0.0, 20.0, 0.0], "float32").reshape(1, 1, 1, 3),
                      np.array([0.0, -10.0, -10.0], "float32")])
elif kind == "conv-classification":
    # "arterial" (class 1) from a convolution that fires on bright pixels only: relu(mean of
    # the 3x3 neighbourhood - 0.5), averaged, weight 1 for class 1: Grad-CAM marks the bright
    conv = layers.Conv2D(4, 3, padding="same", activation="relu", name="bright")
    head = layers.Dense(4, activation="softmax")
    outputs = head(layers.GlobalAveragePooling2D()(conv(inputs)))
    conv.set_weights([np.full((3, 3, 1, 4), 1 / 9, "float32"), np.full(4, -0.5, "float32")])
    head.set_weights([np.tile(np.float32([0, 1, 0, 0]), (4, 1)), np.zeros(4, "float32")])
else:
    # always "arterial" (class 1), probability about 0.9
    x = layers.GlobalAveragePooling2D()(inputs)
    head = layers.Dense(4, activation="softmax")
    outputs = head(x)
    head.set_weights([np.zeros((1, 4), "float32"), np.array([0.0, 3.3, 0.0, 0.0], "float32")])
keras.Model(inputs, outputs).save(out)
"""


def build_keras_model(path: Path, task: str = "segmentation") -> Path:
    """A tiny Keras model for ``task`` with fixed weights, saved at ``path`` by a subprocess:
    the segmentation marks every pixel above the window's middle as channel 1, the
    classifier answers class 1 ("arterial") with probability 0.90; ``conv-classification``
    answers class 1 from a convolution (``bright``) that responds to bright pixels only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", textwrap.dedent(KERAS_SCRIPT), str(path), task],
                   check=True, capture_output=True, timeout=300)
    return path


def write_bundle(root: Path, bundle_id: str, version: str, *, task: str = "segmentation",
                 model: bytes | Path = b"not a real model", name: str | None = None,
                 author: str = "tests", changelog: str = "first version",
                 per_slice: float = 0.02) -> Path:
    """Write one bundle version under ``root`` (a plugins folder); return its folder."""
    folder = root / bundle_id / version
    folder.mkdir(parents=True)
    data = model.read_bytes() if isinstance(model, Path) else model
    (folder / "model.keras").write_bytes(data)
    template = HEAD + OUTPUTS[task] + RUNTIME
    (folder / "plugin.yaml").write_text(template.format(
        id=bundle_id, version=version, name=name or bundle_id, author=author, task=task,
        changelog=changelog, sha=hashlib.sha256(data).hexdigest(), per_slice=per_slice))
    return folder
