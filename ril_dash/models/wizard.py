"""The model wizard's logic, free of any UI: a bare ``.keras``/``.h5`` file → a bundle manifest.

The wizard page (:mod:`ril_dash.ui.pages.model_wizard`) collects plain values in steps; this
module turns them into what a person could have written by hand:

1. :func:`~ril_dash.models.wizard_files.save_upload` keeps the uploaded file in a private
   folder of the project (``PROJECT/.models/uploads/<token>/``), refusing wrong suffixes, empty
   or too large files and anything the safety scan refuses;
2. :func:`model_summary` reads the shapes the model worker reports (``inspect``) and says what
   the wizard can make of them (2D models only: ``dimension: 3`` is written by hand);
   :func:`suggested_form` prefills the steps from them (size from the input shape, 2.5D slices
   from the input channels, softmax or sigmoid from the output channels, a CT window for CT);
3. :func:`build_manifest` turns the form (a flat dict, :data:`FORM_KEYS`) into a
   :class:`~ril_dash.models.manifest.Manifest` by writing the manifest's YAML data and reading
   it back with the strict parser, so the wizard accepts exactly what ``plugin.yaml`` accepts and
   its messages name the manifest field (``input.size: ...``);
4. :func:`preview_slice` runs the manifest on one slice through the same path as a model run
   (:func:`~ril_dash.models.pipeline.predict_series`) and keeps the normalised model input.

Writing the bundle version (:func:`~ril_dash.models.wizard_files.write_bundle_version`) is the
audited command :func:`ril_dash.application.model_wizard.create_bundle_version`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import yaml

from ril_dash.core.overlay import hex_to_rgb, render_overlay
from ril_dash.core.window import CT_PRESETS, apply_window, auto_window, is_ct_like
from ril_dash.errors import PluginError
from ril_dash.models import preprocess
from ril_dash.models.manifest import SEMVER_RE, Manifest, parse_manifest, version_key
from ril_dash.models.pipeline import predict_series
from ril_dash.models.postprocess import Classification

__all__ = ["FORM_KEYS", "ModelSummary", "Preview", "build_manifest", "estimate_memory_mb",
           "model_summary", "next_free_version", "preview_images", "preview_slice",
           "suggested_form"]

CT_WINDOW = (-160.0, 240.0)

#: the wizard's form: every key :func:`build_manifest` reads, with its meaning
FORM_KEYS = {
    "id": "bundle id", "version": "semantic version", "name": "display name",
    "description": "", "author": "", "license": "", "changelog": "",
    "task": "segmentation | classification", "plane": "axial | coronal | sagittal",
    "rows": "model input rows", "cols": "model input cols",
    "resample": "size | spacing | none", "spacing_rows": "mm", "spacing_cols": "mm",
    "transpose": "bool", "flip": "list of rows, cols", "slices": "odd channel count (2.5D)",
    "norm_method": "window | zscore | percentile | scale | none",
    "window_low": "", "window_high": "", "range_low": "", "range_high": "",
    "percentile_low": "", "percentile_high": "", "scope": "slice | volume",
    "scale": "", "offset": "", "clip_low": "", "clip_high": "",
    "activation": "softmax | sigmoid", "threshold": "sigmoid only",
    "channels": "{output channel: ROI name or None}", "largest_component": "bool",
    "min_size": "voxels", "text_field": "choice text field", "classes": "list of values",
    "aggregate": "mean | max", "class_slices": "all | middle",
    "cpu_seconds_per_slice": "", "memory_mb": "",
}


# ---- what the model takes and gives ---------------------------------------------------------
@dataclass(frozen=True)
class ModelSummary:
    """The shapes of a 2D model as the worker reports them (``None``: any size)."""

    input_shape: tuple
    output_shape: tuple
    params: int

    @property
    def task(self) -> str:
        return "classification" if len(self.output_shape) == 2 else "segmentation"

    @property
    def outputs(self) -> int | None:
        """Output channels (segmentation) or classes (classification)."""
        return self.output_shape[-1]

    @property
    def channels(self) -> int | None:
        return self.input_shape[-1]

    def describe(self) -> str:
        def shape(s):
            return "(" + ", ".join("any" if v is None else str(v) for v in s[1:]) + ")"
        what = ("class probabilities" if self.task == "classification" else "output channels")
        return (f"takes {shape(self.input_shape)} (rows, cols, channels), gives "
                f"{shape(self.output_shape)}: {self.outputs or 'any number of'} {what}; "
                f"{self.params:,} parameters")


def model_summary(info: dict, label: str) -> ModelSummary:
    """:class:`ModelSummary` of the worker's ``inspect`` answer; PluginError when the wizard
    cannot describe the model (not one input and one output, not 2D)."""
    inputs, outputs = list(info.get("inputs", [])), list(info.get("outputs", []))
    if len(inputs) != 1 or len(outputs) != 1:
        raise PluginError(f"{label} has {len(inputs)} input(s) and {len(outputs)} output(s); a "
                          f"bundle's model must have exactly one of each")
    shape_in = tuple(None if v is None else int(v) for v in inputs[0])
    shape_out = tuple(None if v is None else int(v) for v in outputs[0])
    if len(shape_in) != 4:
        raise PluginError(f"{label} takes inputs of shape {shape_in}; the wizard makes 2D "
                          f"(slice-wise) bundles, whose model takes (batch, rows, cols, "
                          f"channels). For a 3D (patch-wise) model write plugin.yaml by hand "
                          f"(see plugins/README.md) and import the bundle")
    if len(shape_out) not in (2, 4):
        raise PluginError(f"{label} gives outputs of shape {shape_out}; a 2D model gives "
                          f"(batch, rows, cols, channels) for a segmentation or (batch, "
                          f"classes) for a classification")
    return ModelSummary(shape_in, shape_out, int(info.get("params", 0)))


def next_free_version(entries, model_id: str) -> str:
    """The version to propose for ``model_id``: 1.0.0 for a new bundle, else the newest
    version with its minor number raised.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> next_free_version([NS(id="a", version="1.2.3"), NS(id="a", version="1.10.0")], "a")
    '1.11.0'
    >>> next_free_version([], "a")
    '1.0.0'
    """
    taken = {e.version for e in entries if e.id == model_id and SEMVER_RE.match(e.version)}
    if not taken:
        return "1.0.0"
    major, minor, _ = (int(v) for v in SEMVER_RE.match(
        max(taken, key=version_key)).groups()[:3])
    candidate = f"{major}.{minor + 1}.0"
    while candidate in taken:
        minor += 1
        candidate = f"{major}.{minor + 1}.0"
    return candidate


def estimate_memory_mb(params: int) -> int:
    """A rough memory figure for a run: weights and activations (4 bytes per parameter, four
    times over) plus 50 MB of runtime, rounded up to 10 MB."""
    return int(math.ceil((50 + 16 * params / 2**20) / 10) * 10)


def suggested_form(summary: ModelSummary, *, is_ct: bool) -> dict:
    """Form values prefilled from the model (see :data:`FORM_KEYS`)."""
    rows, cols = summary.input_shape[1:3]
    channels = summary.channels or 1
    outputs = summary.outputs
    form = {"task": summary.task, "rows": rows or 128, "cols": cols or 128,
            "slices": channels if channels % 2 else 1,
            "norm_method": "window" if is_ct else "zscore",
            "window_low": CT_WINDOW[0], "window_high": CT_WINDOW[1],
            "memory_mb": estimate_memory_mb(summary.params)}
    if summary.task == "segmentation":
        form["activation"] = "sigmoid" if outputs == 1 else "softmax"
    else:
        form["activation"] = "softmax"
    return form


# ---- form → manifest ------------------------------------------------------------------------
def _number(value):
    """Numbers as YAML numbers; text that is a number too; anything else as given (the
    parser then says what is wrong)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return value.strip() or None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _pair(form: dict, low: str, high: str):
    lo, hi = form.get(low), form.get(high)
    if lo in (None, "") and hi in (None, ""):
        return None
    return [_number(lo), _number(hi)]


def _text(form: dict, key: str) -> str:
    return str(form.get(key) or "").strip()


def manifest_data(form: dict, *, model_file: str, sha256: str, codes: dict) -> dict:
    """The manifest's YAML data for the wizard ``form``; ``codes``: ROI name → RadLex code."""
    resample = form.get("resample") or "size"
    data = {key: _text(form, key) for key in ("id", "version", "name", "description", "author",
                                               "license", "changelog")}
    data = {k: v for k, v in data.items() if v or k in ("id", "version", "name")}
    data.update(task=form.get("task"), dimension=2,
                model={"file": model_file, "sha256": sha256})
    data["input"] = {
        "plane": form.get("plane") or "axial",
        "size": [_number(form.get("rows")), _number(form.get("cols"))],
        "resample": resample,
        "spacing": (_pair(form, "spacing_rows", "spacing_cols") if resample == "spacing"
                    else None),
        "transpose": bool(form.get("transpose")),
        "flip": [f for f in ("rows", "cols") if f in (form.get("flip") or ())],
        "slices": _number(form.get("slices") or 1)}
    method = form.get("norm_method") or "none"
    norm = {"method": method}
    if method == "window":
        norm.update(window=_pair(form, "window_low", "window_high"))
    if method in ("window", "percentile") and _pair(form, "range_low", "range_high"):
        norm.update(range=_pair(form, "range_low", "range_high"))
    if method == "percentile":
        norm.update(percentiles=_pair(form, "percentile_low", "percentile_high"))
    if method in ("zscore", "percentile"):
        norm.update(scope=form.get("scope") or "slice")
    if method == "scale":
        norm.update(scale=_number(form.get("scale")), offset=_number(form.get("offset") or 0))
    norm["clip"] = _pair(form, "clip_low", "clip_high")
    data["normalization"] = {k: v for k, v in norm.items() if v is not None or k == "clip"}
    activation = form.get("activation") or "softmax"
    if form.get("task") == "classification":
        data["output"] = {"activation": activation, "text_field": _text(form, "text_field"),
                          "classes": [str(c or "").strip() for c in form.get("classes") or ()],
                          "aggregate": form.get("aggregate") or "mean",
                          "slices": form.get("class_slices") or "all"}
    else:
        channels = sorted((int(k), roi) for k, roi in (form.get("channels") or {}).items()
                          if roi)
        data["output"] = {
            "activation": activation,
            "threshold": _number(form.get("threshold") if activation == "sigmoid" else 0.5),
            "channels": [{"channel": k, "roi": roi, "code": codes.get(roi)}
                         for k, roi in channels],
            "largest_component": bool(form.get("largest_component")),
            "min_size": _number(form.get("min_size") or 0)}
    data["runtime"] = {"cpu_seconds_per_slice": _number(form.get("cpu_seconds_per_slice")
                                                        or 0.02),
                       "memory_mb": _number(form.get("memory_mb") or 150)}
    return data


def build_manifest(form: dict, *, model_file: str, sha256: str, codes: dict | None = None
                   ) -> Manifest:
    """The :class:`Manifest` the wizard ``form`` describes, checked by the manifest parser;
    PluginError names the manifest field (``input.size: ...``) and what to do."""
    data = manifest_data(form, model_file=model_file, sha256=sha256, codes=codes or {})
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    try:
        return parse_manifest(text, "plugin.yaml")
    except PluginError as exc:
        raise PluginError(re.sub(r"^plugin\.yaml line \d+: ", "", str(exc))) from None


# ---- the live preview -----------------------------------------------------------------------
@dataclass
class Preview:
    """The wizard's manifest on one display slice: what a run would write there."""

    index: int
    slice_image: np.ndarray  # (rows, cols) the display slice (frame 0), raw values
    model_input: np.ndarray  # (H, W) the centre channel of the normalised model input
    input_range: tuple[float, float]
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # channel → bool (rows, cols)
    classification: Classification | None = None
    seconds_per_slice: float = 0.0


def preview_slice(volume, manifest: Manifest, ref, worker, index: int, *,
                  one_roi_per_voxel: bool = True) -> Preview:
    """Run ``manifest`` (its model ``ref``) on display slice ``index`` of its plane through the
    path of a model run; ModelRunError/PluginError say what does not fit."""
    n = volume.n_slices(manifest.input.plane)
    if not 0 <= int(index) < n:
        raise PluginError(f"slice {index} is outside 0..{n - 1} of the "
                          f"{manifest.input.plane} plane of this series")
    index = int(index)
    batch, _ = preprocess.prepare_slices(volume, manifest, [index])
    centre = batch[0, ..., manifest.input.slices // 2]
    result = predict_series(volume, manifest, ref, worker, slices=(index, index),
                            one_roi_per_voxel=one_roi_per_voxel)
    return Preview(index, volume.get_slice(manifest.input.plane, index, 0), centre,
                   (float(centre.min()), float(centre.max())),
                   {c: m[0] for c, m in result.masks.items()}, result.classification,
                   max(result.seconds_in_model, 1e-4))


def preview_images(preview: Preview, colors: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images of a preview: the model input (grey, stretched to its own range) and the
    display slice (windowed) with the masks in their ROI colours (``colors``: channel →
    ``#rrggbb``), RGB."""
    lo, hi = preview.input_range
    grey = apply_window(preview.model_input, (lo + hi) / 2, max(hi - lo, 1e-6))
    raw = preview.slice_image
    centre, width = CT_PRESETS["soft tissue"] if is_ct_like(raw) else auto_window(raw)
    rgb = np.repeat(apply_window(raw, centre, width)[..., None], 3, axis=-1).astype(np.float32)
    channels = [c for c in sorted(preview.masks) if c in colors]
    bits = np.zeros(raw.shape, np.uint32)
    for bit, channel in enumerate(channels):
        bits |= preview.masks[channel].astype(np.uint32) << bit
    overlay = render_overlay(bits, {bit: hex_to_rgb(colors[c]) for bit, c in enumerate(channels)},
                             opacity=0.45)
    alpha = overlay[..., 3:4].astype(np.float32) / 255.0
    rgb = rgb * (1 - alpha) + overlay[..., :3] * alpha
    return grey, np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

