"""Model outputs → masks and classifications, and the checks that outputs fit the manifest.

Segmentation (``output.activation``):

- ``softmax``: the argmax over every output channel; channel 0 is background, a mapped channel
  ``c`` gets the voxels whose argmax is ``c`` (ties go to the lower channel);
- ``sigmoid``: channel ``c`` gets the voxels whose probability is strictly above
  ``output.threshold``. Under one ROI per voxel a voxel claimed by several mapped channels goes
  to the highest probability (ties: the channel listed first in ``output.channels``).

:func:`clean_up` then works on each ROI's 3D mask: connected components use face connectivity
(6 neighbours in 3D, ``scipy.ndimage.generate_binary_structure(3, 1)``); components smaller than
``min_size`` voxels are dropped, and with ``largest_component`` only the largest one is kept
(ties: the first in array order). :func:`clean_masks` does this for masks of some slices by
placing them in the full display stack first, so that connectivity is that of the series.

Classification: :func:`classify` aggregates the per-slice class probabilities (``mean`` or
``max`` per class, the latter not renormalised) over all given slices or over those in the
middle third of the series, and picks the class with the highest aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ril_dash.errors import ModelRunError, PluginError
from ril_dash.models.preprocess import expected_input_shape

__all__ = ["Classification", "check_model_shapes", "check_outputs", "classify", "clean_masks",
           "clean_up", "middle_third", "output_shape_problem", "segmentation_masks"]


@dataclass(frozen=True)
class Classification:
    """The chosen text value, its aggregated probability, and every class's probability."""

    value: str
    probability: float
    probabilities: dict[str, float]


def output_shape_problem(shape, manifest) -> str | None:
    """What is wrong with a model output shape for this manifest, or ``None`` when it fits.

    ``shape`` includes the batch axis; ``None`` entries (unknown sizes, as a model's declared
    output shape has) are not checked. Segmentation needs ``(n, H, W, K)`` (2D) or
    ``(n, D, H, W, K)`` (3D) with ``K`` above every mapped channel (and at least 2 for softmax);
    classification needs ``(n, number of classes)``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> out = NS(activation="softmax", classes=["a", "b"])
    >>> m = NS(task="classification", dimension=2, output=out, ref="phase@1.0.0")
    >>> output_shape_problem((None, 2), m) is None
    True
    >>> output_shape_problem((None, 3), m)
    'phase@1.0.0 returns 3 class probabilities, but its manifest lists 2 classes (a, b)'
    """
    shape = tuple(shape)
    out = manifest.output
    if manifest.task == "classification":
        k = len(out.classes)
        if len(shape) != 2:
            return (f"{manifest.ref} returns outputs of shape {shape}, but a classifier must "
                    f"return (batch, {k}): one probability per class")
        if shape[1] is not None and shape[1] != k:
            return (f"{manifest.ref} returns {shape[1]} class probabilities, but its manifest "
                    f"lists {k} classes ({', '.join(out.classes)})")
        return None
    inp = manifest.input
    spatial = tuple(inp.patch) if int(manifest.dimension) == 3 else tuple(inp.size)
    expected = ("batch", *spatial, "channels")
    if len(shape) != len(expected) or any(
            got is not None and got != want for got, want in zip(shape[1:-1], spatial)):
        return (f"{manifest.ref} returns outputs of shape {shape}, but its manifest expects "
                f"({', '.join(map(str, expected))})")
    k = shape[-1]
    highest = max((int(c.channel) for c in out.channels), default=0)
    need = max(highest + 1, 2 if out.activation == "softmax" else 1)
    if k is not None and k < need:
        return (f"{manifest.ref} returns {k} output channel(s), but its manifest maps channel "
                f"{highest} ({_roi_of(out, highest)}) with {out.activation}, so the model must "
                f"return at least {need}")
    return None


def _roi_of(out, channel: int) -> str:
    return next((c.roi for c in out.channels if int(c.channel) == channel), "?")


def check_model_shapes(info, manifest) -> None:
    """Compare a loaded model's declared shapes with the manifest (``ril-dash plugins check``).

    ``info`` is what the model worker's ``inspect`` returns: ``{"inputs": [shape, ...],
    "outputs": [shape, ...]}`` with the batch axis first and ``None`` for unknown sizes.

    Raises
    ------
    PluginError
        Not one input and one output, or a shape that does not fit; says what is expected.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> m = NS(ref="phase@1.0.0", task="classification", dimension=2,
    ...        input=NS(size=[64, 64], slices=1, frames=None),
    ...        output=NS(activation="softmax", classes=["a", "b"]))
    >>> check_model_shapes({"inputs": [[None, 64, 64, 1]], "outputs": [[None, 2]]}, m)
    >>> check_model_shapes({"inputs": [[None, 64, 64, 3]], "outputs": [[None, 2]]}, m)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ril_dash.errors.PluginError: phase@1.0.0 takes inputs of shape (None, 64, 64, 3), but its ...
    """
    inputs, outputs = list(info.get("inputs", [])), list(info.get("outputs", []))
    if len(inputs) != 1 or len(outputs) != 1:
        raise PluginError(f"{manifest.ref} has {len(inputs)} input(s) and {len(outputs)} "
                          "output(s); a bundle's model must have exactly one of each.")
    got = tuple(None if v is None else int(v) for v in inputs[0])
    want = expected_input_shape(manifest)
    if len(got) != len(want) + 1 or any(
            g is not None and g != w for g, w in zip(got[1:], want)):
        keys = ("input.patch depth, rows, cols and the channels of input.frames"
                if int(manifest.dimension) == 3 else
                "input.size rows, cols and the channels of input.slices and input.frames")
        raise PluginError(f"{manifest.ref} takes inputs of shape {got}, but its manifest gives "
                          f"it (batch, {', '.join(map(str, want))}) ({keys}); fix its "
                          "plugin.yaml.")
    problem = output_shape_problem(outputs[0], manifest)
    if problem is not None:
        raise PluginError(problem + "; fix its plugin.yaml.")


def check_outputs(outputs, manifest, n: int) -> np.ndarray:
    """``outputs`` as an array after checking its shape (batch of ``n``) and finiteness.

    Raises
    ------
    ModelRunError
        Wrong shape for the manifest, or NaN/inf values; the message names the bundle.
    """
    outputs = np.asarray(outputs)
    problem = output_shape_problem(outputs.shape, manifest)
    if problem is None and outputs.shape[0] != n:
        problem = f"{manifest.ref} returned {outputs.shape[0]} results for a batch of {n}"
    if problem is not None:
        raise ModelRunError(problem + "; fix its plugin.yaml or the model file. Nothing was "
                                      "written.")
    if not np.isfinite(outputs).all():
        raise ModelRunError(f"{manifest.ref} returned NaN or infinite values; the model or its "
                            "normalisation is broken. Nothing was written.")
    return outputs


def segmentation_masks(probs, output, one_roi_per_voxel: bool) -> dict[int, np.ndarray]:
    """``{channel: bool (n, rows, cols)}`` for every mapped channel of ``output``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> probs = np.array([[[[0.2, 0.9, 0.7]]]])          # one voxel, three channels
    >>> out = NS(activation="sigmoid", threshold=0.5,
    ...          channels=[NS(channel=1, roi="A"), NS(channel=2, roi="B")])
    >>> {c: m.ravel().tolist() for c, m in segmentation_masks(probs, out, True).items()}
    {1: [True], 2: [False]}
    >>> {c: m.ravel().tolist() for c, m in segmentation_masks(probs, out, False).items()}
    {1: [True], 2: [True]}
    """
    probs = np.asarray(probs)
    channels = [int(c.channel) for c in output.channels]
    if output.activation == "softmax":
        label = probs.argmax(axis=-1)
        return {c: label == c for c in channels}
    if output.activation != "sigmoid":
        raise ValueError(f"output.activation must be softmax or sigmoid, got "
                         f"{output.activation!r}")
    claimed = probs[..., channels] > float(output.threshold)
    if not one_roi_per_voxel:
        return {c: claimed[..., i] for i, c in enumerate(channels)}
    scores = np.where(claimed, probs[..., channels], -np.inf)
    winner = scores.argmax(axis=-1)
    any_claim = claimed.any(axis=-1)
    return {c: any_claim & (winner == i) for i, c in enumerate(channels)}


def clean_up(mask3d, largest_component: bool, min_size: int) -> np.ndarray:
    """``mask3d`` without components under ``min_size`` voxels (face connectivity), and only
    its largest component when ``largest_component``.

    Examples
    --------
    >>> m = np.zeros((1, 1, 7), bool); m[0, 0, [0, 2, 3, 5, 6]] = True
    >>> clean_up(m, False, 2).ravel().astype(int).tolist()
    [0, 0, 1, 1, 0, 1, 1]
    >>> clean_up(m, True, 0).ravel().astype(int).tolist()
    [0, 0, 1, 1, 0, 0, 0]
    """
    mask3d = np.asarray(mask3d, dtype=bool)
    if not largest_component and int(min_size) <= 0:
        return mask3d.copy()
    box = ndimage.find_objects(mask3d.astype(np.uint8))  # label within the mask's bounding box
    if not box:
        return mask3d.copy()
    labels, n = ndimage.label(mask3d[box[0]], ndimage.generate_binary_structure(mask3d.ndim, 1))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    keep = sizes >= max(int(min_size), 1)
    if largest_component:
        best = int(sizes.argmax())
        keep &= np.arange(n + 1) == best
    keep[0] = False
    out = np.zeros_like(mask3d)
    out[box[0]] = keep[labels]
    return out


def clean_masks(masks, indices, n_slices: int, output) -> dict[int, np.ndarray]:
    """:func:`clean_up` of display-slice masks ``{key: bool (n, rows, cols)}`` of slices
    ``indices``, as parts of the whole series (slices not given count as empty)."""
    indices = np.asarray(list(indices), dtype=np.intp)
    cleaned = {}
    for key, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        full = np.zeros((int(n_slices), *mask.shape[1:]), bool)
        full[indices] = mask
        cleaned[key] = clean_up(full, bool(output.largest_component), int(output.min_size))[indices]
    return cleaned


def middle_third(n_slices: int) -> tuple[int, int]:
    """Half-open slice range of the middle third of a series (at least one slice).

    Examples
    --------
    >>> middle_third(9), middle_third(10), middle_third(1), middle_third(2)
    ((3, 6), (3, 7), (0, 1), (0, 2))
    """
    n = int(n_slices)
    return n // 3, n - n // 3


def classify(probs, output, *, indices=None, n_slices=None, label="The classifier"
             ) -> Classification:
    """Aggregate per-slice class probabilities ``(n, K)`` into one :class:`Classification`.

    With ``output.slices == "middle"`` only the slices in the middle third are used: of the
    series when ``indices`` (the display slice of each row) and ``n_slices`` are given, else of
    the rows given. ``label`` (the bundle's ``id@version``) starts the error messages.

    Raises
    ------
    ModelRunError
        ``probs`` is not ``(n, len(classes))``, or no given slice lies in the middle third.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> out = NS(classes=["no", "yes"], aggregate="mean", slices="all")
    >>> c = classify(np.array([[0.75, 0.25], [0.25, 0.75], [0.5, 0.5], [0.25, 0.75]]), out)
    >>> c.value, c.probability, c.probabilities
    ('yes', 0.5625, {'no': 0.4375, 'yes': 0.5625})
    """
    probs = np.asarray(probs, dtype=np.float64)
    classes = list(output.classes)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] != len(classes):
        raise ModelRunError(f"{label} gave class probabilities of shape {probs.shape}, which do "
                            f"not fit the {len(classes)} classes of its manifest "
                            f"({', '.join(classes)}); nothing was written.")
    if output.slices == "middle":
        if indices is None:
            where = np.arange(probs.shape[0])
            start, stop = middle_third(probs.shape[0])
        else:
            where = np.asarray(list(indices))
            start, stop = middle_third(n_slices)
        keep = (where >= start) & (where < stop)
        if not keep.any():
            raise ModelRunError(f"{label} reads the middle third of the series (slices "
                                f"{start}..{stop - 1}), and none of them was run; run it on the "
                                "whole series or on those slices.")
        probs = probs[keep]
    elif output.slices != "all":
        raise ValueError(f"output.slices must be all or middle, got {output.slices!r}")
    if output.aggregate == "mean":
        agg = probs.mean(axis=0)
    elif output.aggregate == "max":
        agg = probs.max(axis=0)
    else:
        raise ValueError(f"output.aggregate must be mean or max, got {output.aggregate!r}")
    best = int(agg.argmax())
    return Classification(classes[best], float(agg[best]),
                          {name: float(p) for name, p in zip(classes, agg)})
