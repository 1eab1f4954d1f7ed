"""How unsure a model is about a series: normalised entropy of its output (numpy only).

What is measured
----------------
* **Segmentation, softmax** with ``K`` channels: per voxel ``H = -Σ p_k ln p_k / ln K`` (0 = one
  channel has all the probability, 1 = every channel equally likely).
* **Segmentation, sigmoid**: per voxel, the binary entropy ``-(p ln p + (1-p) ln(1-p)) / ln 2``
  of each channel the manifest maps to an ROI, averaged over those channels.
* **Classification**: the entropy of the series' aggregated class probabilities, divided by
  ``ln K`` (:func:`class_entropy`).

Where a segmentation is scored
------------------------------
The whole volume would mostly measure the size of the background (where every model is sure),
so a small organ would always look certain. The score of a series is the mean ``H`` over the
*region of interest of the model*: the voxels it calls foreground (any mapped channel) or is
unsure about (``H ≥`` :data:`UNSURE`), grown by :data:`MARGIN` voxels in the slice plane (a
5 × 5 square around each), where the boundary errors are. A series where the model is sure
there is nothing scores 0. The score lies in [0, 1]; higher = annotate it sooner.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.special import xlogy

__all__ = ["EntropyAccumulator", "MARGIN", "METHOD", "UNSURE", "class_entropy", "voxel_entropy"]

#: a voxel whose normalised entropy reaches this counts as "unsure" (in the region scored)
UNSURE = 0.5
#: the region scored is grown by this many voxels in the slice plane
MARGIN = 2
#: how a score was made, stored with the scores (so a change of method is visible)
METHOD = f"mean normalised entropy over foreground|H>={UNSURE}, +{MARGIN} px in-plane"


def voxel_entropy(probs, activation: str, channels) -> np.ndarray:
    """Normalised entropy per voxel of model outputs ``probs`` ``(..., K)``: float64 ``(...)``.

    Examples
    --------
    >>> p = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])
    >>> voxel_entropy(p, "softmax", [1]).round(4).tolist()
    [1.0, 0.0, 0.8113]
    >>> voxel_entropy(np.array([[0.9, 0.5, 0.0]]), "sigmoid", [1, 2]).tolist()
    [0.5]
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    if activation == "softmax":
        k = p.shape[-1]
        return (0.0 - xlogy(p, p).sum(axis=-1)) / math.log(k) if k > 1 else np.zeros(p.shape[:-1])
    q = p[..., [int(c) for c in channels]]
    binary = (0.0 - xlogy(q, q) - xlogy(1 - q, 1 - q)) / math.log(2)
    return binary.mean(axis=-1)


class EntropyAccumulator:
    """Adds up the entropy of a segmentation chunk by chunk (see the module docstring).

    ``add(probs, masks)`` takes one chunk of slices: probabilities ``(n, rows, cols, K)`` and the
    foreground masks ``{channel: bool (n, rows, cols)}`` the model made of them.

    Examples
    --------
    >>> acc = EntropyAccumulator("softmax", [1])
    >>> probs = np.zeros((1, 9, 9, 2)); probs[..., 0] = 1; probs[0, 4, 4] = [0.5, 0.5]
    >>> acc.add(probs, {1: np.zeros((1, 9, 9), bool)})
    >>> acc.voxels, acc.score                 # one unsure voxel, grown to 5 x 5
    (25, 0.04)
    """

    def __init__(self, activation: str, channels):
        self.activation = activation
        self.channels = [int(c) for c in channels]
        self.total = 0.0
        self.voxels = 0

    def add(self, probs, masks: dict) -> None:
        entropy = voxel_entropy(probs, self.activation, self.channels)
        region = entropy >= UNSURE
        for mask in masks.values():
            region |= np.asarray(mask, dtype=bool)
        if MARGIN > 0 and region.any():
            square = np.ones((1, 2 * MARGIN + 1, 2 * MARGIN + 1), bool)
            region = ndimage.binary_dilation(region, structure=square)
        self.total += float(entropy[region].sum())
        self.voxels += int(region.sum())

    @property
    def score(self) -> float:
        """The mean entropy over the region (0.0 when the region is empty)."""
        return self.total / self.voxels if self.voxels else 0.0


def class_entropy(probabilities: dict[str, float]) -> float:
    """Normalised entropy of a classification's class probabilities.

    Examples
    --------
    >>> class_entropy({"a": 0.5, "b": 0.5}), class_entropy({"a": 1.0, "b": 0.0})
    (1.0, 0.0)
    """
    p = np.clip(np.array(list(probabilities.values()), dtype=np.float64), 0.0, 1.0)
    if p.size < 2:
        return 0.0
    return float((0.0 - xlogy(p, p).sum()) / math.log(p.size))
