"""The training's pure helpers (no TensorFlow): the augmentation of a batch and the rule that
picks the best epoch."""

from __future__ import annotations

import numpy as np

from ril_dash.models.train import augment, better, score_of


def _batch(n=6, side=32):
    y_fg = np.zeros((n, side, side), np.float32)
    for i in range(n):
        y_fg[i, 8 + i:20 + i, 6:14 + i] = 1.0  # a block, a little different per slice
    y = np.stack([1.0 - y_fg, y_fg], axis=-1)
    return y_fg[..., None].copy(), y


def test_image_and_targets_move_together_and_targets_stay_one_hot_sums():
    x, y = _batch()
    ax, ay = augment(x, y, np.random.default_rng(1), segmentation=True)
    assert ax.shape == x.shape and ay.shape == y.shape
    assert np.allclose(ay.sum(-1), 1.0, atol=1e-5)
    assert not np.array_equal(ay, y)  # it moved
    for i in range(len(x)):  # the image is the target's foreground up to contrast/brightness
        r = np.corrcoef(ax[i, ..., 0].ravel(), ay[i, ..., 1].ravel())[0, 1]
        assert r > 0.9999
        shrink = ay[i, ..., 1].sum() / y[i, ..., 1].sum()
        assert 0.75 < shrink < 1.3  # scaled by at most 10 % per side
    again = augment(x, y, np.random.default_rng(1), segmentation=True)
    assert np.array_equal(again[0], ax) and np.array_equal(again[1], ay)  # seeded


def test_a_classification_keeps_its_labels_and_contrast():
    x, _ = _batch()
    labels = np.arange(len(x))
    ax, ay = augment(x, labels, np.random.default_rng(2), segmentation=False)
    assert ay is labels
    assert ax.min() >= 0.0 and ax.max() <= 1.0  # no contrast jitter: the phase is contrast


def test_the_best_epoch_is_the_highest_score_then_the_lowest_loss():
    assert score_of({"val_dice": [0.5, 0.9]}) == 0.7
    assert score_of({"val_accuracy": 0.25}) == 0.25
    a = {"val_dice": [0.8], "val_loss": 0.4}
    assert better(a, None)
    assert better({"val_dice": [0.81], "val_loss": 0.9}, a)
    assert not better({"val_dice": [0.79], "val_loss": 0.1}, a)
    assert better({"val_dice": [0.8], "val_loss": 0.3}, a)
    assert not better(dict(a), a)  # as good is not better: patience counts it
