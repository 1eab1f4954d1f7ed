"""The strict reader of ``plugin.yaml``: each section checked field by field, then together.

:class:`ManifestParser` is a :class:`~ril_dash.strict_yaml.StrictParser` raising
:class:`~ril_dash.errors.PluginError`; :func:`ril_dash.models.manifest.parse_manifest` is its
public face. Besides types and allowed values it checks what a person most often gets wrong:
a semantic version, a model file name without folders and with ``.keras`` or ``.h5``, 64 hex
digits of sha256, a patch for ``dimension: 3`` only, an odd number of adjacent slices, ordered
pairs (window, range, percentiles, clip), output channels and classes listed once.
"""

from __future__ import annotations

import datetime as _dt

import yaml

from ril_dash.errors import PluginError
from ril_dash.models.manifest import (
    ID_RE,
    SEMVER_RE,
    ChannelMap,
    ClassificationOutput,
    InputSpec,
    Manifest,
    NormSpec,
    Runtime,
    SegmentationOutput,
)
from ril_dash.strict_yaml import NULL_NODE, StrictParser, describe, is_null

_TOP = ("id", "version", "name", "description", "author", "license", "changelog", "task",
        "dimension", "model", "input", "normalization", "output", "runtime", "validation")
_MODEL = ("file", "sha256", "custom_objects")
_INPUT = ("plane", "size", "resample", "spacing", "transpose", "flip", "slices", "frames",
          "patch", "overlap", "blend")
_NORM = ("method", "window", "range", "percentiles", "scope", "scale", "offset", "clip")
_SEG = ("activation", "threshold", "channels", "largest_component", "min_size")
_CLS = ("activation", "text_field", "classes", "aggregate", "slices")
_CHANNEL = ("channel", "roi", "code")
_RUNTIME = ("cpu_seconds_per_slice", "memory_mb")
_VALIDATION = ("date", "summary", "metrics")
MODEL_SUFFIXES = (".keras", ".h5")
_HEX = set("0123456789abcdef")


class ManifestParser(StrictParser):
    """Reads one ``plugin.yaml`` (``source`` names it in messages)."""

    def __init__(self, source: str) -> None:
        super().__init__(source, PluginError)

    # ---- helpers ----------------------------------------------------------------------------
    def optional(self, keys: dict, key: str, path: str, read, default):
        node = keys.get(key, NULL_NODE)
        return default if is_null(node) else read(node, f"{path}{key}")

    def numbers(self, node: yaml.Node, path: str, count: int, *, whole: bool = False,
                positive: bool = False) -> tuple:
        items = self.sequence(node, path)
        if len(items) != count:
            self.fail(node, path, f"expected a list of {count} numbers, got {describe(node)}"
                                  f" with {len(items)}")
        read = self.integer if whole else self.number
        values = tuple(read(item, f"{path}[{i}]") for i, item in enumerate(items))
        if positive and any(v <= 0 for v in values):
            self.fail(node, path, f"every value must be above 0, got {list(values)}")
        return values

    def ordered(self, node: yaml.Node, path: str, what: str) -> tuple[float, float]:
        low, high = self.numbers(node, path, 2)
        if not low < high:
            self.fail(node, path, f"{what}: the first value must be below the second, got "
                                  f"[{low:g}, {high:g}]")
        return low, high

    def text(self, node: yaml.Node, path: str) -> str:
        return self.string(node, path, max_len=2000)

    def file_name(self, node: yaml.Node, path: str, suffixes: tuple[str, ...]) -> str:
        name = self.string(node, path, max_len=255)
        if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
            self.fail(node, path, f"{name!r} must be a file name in the bundle folder, without "
                                  f"folders; put the file beside plugin.yaml")
        if not name.lower().endswith(suffixes):
            self.fail(node, path, f"{name!r} must end with {' or '.join(suffixes)}")
        return name

    # ---- sections ---------------------------------------------------------------------------
    def identity(self, keys: dict) -> dict:
        ident = self.string(keys["id"], "id")
        if not ID_RE.match(ident):
            self.fail(keys["id"], "id", f"{ident!r} is not a bundle id; use 1-64 lower-case "
                                        f"letters, digits, '.', '_' or '-', starting with a "
                                        f"letter or digit (e.g. kidney-seg)")
        version = self.string(keys["version"], "version")
        if not SEMVER_RE.match(version):
            self.fail(keys["version"], "version", f"{version!r} is not a semantic version; "
                      f"use MAJOR.MINOR.PATCH, e.g. 1.0.0 (a pre-release tag such as "
                      f"1.1.0-rc.1 is allowed)")
        out = {"id": ident, "version": version, "name": self.string(keys["name"], "name",
                                                                     max_len=128)}
        for key in ("description", "author", "license", "changelog"):
            out[key] = self.optional(keys, key, "", self.text, "")
        return out

    def model(self, node: yaml.Node) -> dict:
        keys = self.mapping(node, "model", _MODEL, ("file", "sha256"))
        sha = self.string(keys["sha256"], "model.sha256").lower()
        if len(sha) != 64 or not set(sha) <= _HEX:
            self.fail(keys["sha256"], "model.sha256",
                      f"{sha[:20]!r}… is not a sha256; give the 64 hex digits of the model "
                      f"file (`sha256sum FILE`, or `ril-dash plugins PROJECT check BUNDLE` "
                      f"shows it)")
        custom = self.optional(keys, "custom_objects", "model.",
                               lambda n, p: self.file_name(n, p, (".py",)), None)
        return {"model_file": self.file_name(keys["file"], "model.file", MODEL_SUFFIXES),
                "sha256": sha, "custom_objects": custom}

    def geometry(self, node: yaml.Node, dimension: int) -> InputSpec:
        p = "input."
        keys = self.mapping(node, "input", _INPUT, ("plane", "size"))
        plane = self.choice(keys["plane"], p + "plane", ("axial", "coronal", "sagittal"))
        size = self.numbers(keys["size"], p + "size", 2, whole=True, positive=True)
        resample = self.optional(keys, "resample", p,
                                 lambda n, q: self.choice(n, q, ("size", "spacing", "none")),
                                 "size")
        spacing = self.optional(keys, "spacing", p, lambda n, q: self.numbers(
            n, q, 2, positive=True), None)
        if (spacing is None) != (resample != "spacing"):
            where = keys.get("spacing", keys.get("resample", node))
            self.fail(where, p + "spacing", "give `spacing: [row_mm, col_mm]` with "
                      "`resample: spacing`, and only then")
        flips = []
        for i, item in enumerate(self.sequence(keys.get("flip", NULL_NODE), p + "flip")):
            flip = self.choice(item, f"{p}flip[{i}]", ("rows", "cols"))
            if flip in flips:
                self.fail(item, f"{p}flip[{i}]", f"{flip!r} is listed twice; list it once")
            flips.append(flip)
        slices = self.optional(keys, "slices", p, self.integer, 1)
        if slices < 1 or slices % 2 == 0:
            self.fail(keys["slices"], p + "slices", f"{slices} adjacent slices: use an odd "
                      f"number (1, 3, 5...) so that the slice drafted is in the middle")
        frames = None
        if not is_null(keys.get("frames", NULL_NODE)):
            items = self.sequence(keys["frames"], p + "frames")
            frames = tuple(self.integer(n, f"{p}frames[{i}]") for i, n in enumerate(items))
            if not frames or min(frames) < 0 or len(set(frames)) != len(frames):
                self.fail(keys["frames"], p + "frames", "list frame indices (0 = first), each "
                          "once, or leave frames out to use frame 0")
        patch = self.optional(keys, "patch", p, lambda n, q: self.numbers(
            n, q, 3, whole=True, positive=True), None)
        if dimension == 3:
            if patch is None:
                self.fail(node, "input", "a dimension 3 bundle needs `patch: [depth, rows, "
                                         "cols]`")
            if slices != 1:
                self.fail(keys["slices"], p + "slices", "a dimension 3 bundle takes depth from "
                          "its patch; leave slices at 1")
        else:
            for key in ("patch", "overlap", "blend"):
                if key in keys:
                    self.fail(keys[key], p + key, f"only dimension 3 (patch-wise) bundles use "
                              f"{key}; remove it or set `dimension: 3`")
        overlap = self.optional(keys, "overlap", p, self.number, 0.5)
        if not 0 <= overlap < 1:
            self.fail(keys["overlap"], p + "overlap", f"{overlap:g} is not a fraction of the "
                      f"patch; use 0 <= overlap < 1 (e.g. 0.5)")
        blend = self.optional(keys, "blend", p,
                              lambda n, q: self.choice(n, q, ("gaussian", "mean")), "gaussian")
        return InputSpec(plane, size, resample, spacing,
                         self.optional(keys, "transpose", p, self.boolean, False),
                         tuple(flips), slices, frames, patch, overlap, blend)

    def normalization(self, node: yaml.Node) -> NormSpec:
        p = "normalization."
        if is_null(node):
            return NormSpec()
        keys = self.mapping(node, "normalization", _NORM)
        d = NormSpec()
        method = self.optional(keys, "method", p, lambda n, q: self.choice(
            n, q, ("window", "zscore", "percentile", "scale", "none")), d.method)
        window = self.optional(keys, "window", p,
                               lambda n, q: self.ordered(n, q, "window [lower, upper]"),
                               d.window)
        out_range = self.optional(keys, "range", p,
                                  lambda n, q: self.ordered(n, q, "range [low, high]"), d.range)
        pct = self.optional(keys, "percentiles", p,
                            lambda n, q: self.ordered(n, q, "percentiles [low, high]"),
                            d.percentiles)
        if not (0 <= pct[0] and pct[1] <= 100):
            self.fail(keys["percentiles"], p + "percentiles",
                      "percentiles are between 0 and 100")
        scope = self.optional(keys, "scope", p,
                              lambda n, q: self.choice(n, q, ("slice", "volume")), d.scope)
        scale = self.optional(keys, "scale", p, self.number, d.scale)
        if scale == 0:
            self.fail(keys["scale"], p + "scale", "a scale of 0 erases the image; use another")
        return NormSpec(method, window, out_range, pct, scope, scale,
                        self.optional(keys, "offset", p, self.number, d.offset),
                        self.optional(keys, "clip", p,
                                      lambda n, q: self.ordered(n, q, "clip [low, high]"), None))

    def activation(self, keys: dict, path: str) -> str:
        return self.optional(keys, "activation", path,
                             lambda n, q: self.choice(n, q, ("softmax", "sigmoid")), "softmax")

    def segmentation(self, node: yaml.Node) -> SegmentationOutput:
        p = "output."
        keys = self.mapping(node, "output", _SEG, ("channels",))
        activation = self.activation(keys, p)
        threshold = self.optional(keys, "threshold", p, self.number, 0.5)
        if not 0 < threshold < 1:
            self.fail(keys["threshold"], p + "threshold",
                      f"{threshold:g}: use a probability between 0 and 1 (e.g. 0.5)")
        items = self.sequence(keys["channels"], p + "channels")
        if not items:
            self.fail(keys["channels"], p + "channels", "map at least one output channel to "
                      "an ROI: - {channel: 1, roi: Liver}")
        channels, seen, rois = [], {}, {}
        for i, item in enumerate(items):
            q = f"{p}channels[{i}]"
            ck = self.mapping(item, q, _CHANNEL, ("channel", "roi"))
            channel = self.integer(ck["channel"], q + ".channel")
            low = 1 if activation == "softmax" else 0
            if channel < low:
                self.fail(ck["channel"], q + ".channel", f"{channel} is not a drafted channel"
                          + ("; with softmax, channel 0 is the background: map channels 1, 2, "
                             "..." if activation == "softmax" else "; channels start at 0"))
            roi = self.string(ck["roi"], q + ".roi", max_len=64)
            if channel in seen:
                self.fail(ck["channel"], q + ".channel",
                          f"channel {channel} is already mapped in channels[{seen[channel]}]")
            if roi in rois:
                self.fail(ck["roi"], q + ".roi",
                          f"ROI {roi!r} is already drafted by channels[{rois[roi]}]")
            seen[channel], rois[roi] = i, i
            code = self.optional(ck, "code", q + ".", lambda n, r: self.string(n, r, max_len=64),
                                 None)
            channels.append(ChannelMap(channel, roi, code))
        min_size = self.optional(keys, "min_size", p, self.integer, 20)
        if min_size < 0:
            self.fail(keys["min_size"], p + "min_size", "use 0 (keep all) or more voxels")
        return SegmentationOutput(tuple(channels), activation, threshold,
                                  self.optional(keys, "largest_component", p, self.boolean,
                                                True), min_size)

    def classification(self, node: yaml.Node) -> ClassificationOutput:
        p = "output."
        keys = self.mapping(node, "output", _CLS, ("text_field", "classes"))
        activation = self.activation(keys, p)
        field_name = self.string(keys["text_field"], p + "text_field", max_len=64)
        items = self.sequence(keys["classes"], p + "classes")
        if not items:
            self.fail(keys["classes"], p + "classes", "list the text value of each class, in "
                      "the order of the model's outputs")
        classes: list[str] = []
        for i, item in enumerate(items):
            value = self.string(item, f"{p}classes[{i}]")
            if value in classes:
                self.fail(item, f"{p}classes[{i}]", f"{value!r} is listed twice; each class "
                          f"index needs its own value")
            classes.append(value)
        aggregate = self.optional(keys, "aggregate", p,
                                  lambda n, q: self.choice(n, q, ("mean", "max")), "mean")
        slices = self.optional(keys, "slices", p,
                               lambda n, q: self.choice(n, q, ("all", "middle")), "all")
        return ClassificationOutput(field_name, tuple(classes), activation, aggregate, slices)

    def runtime(self, node: yaml.Node) -> Runtime:
        if is_null(node):
            return Runtime()
        keys = self.mapping(node, "runtime", _RUNTIME)
        values = []
        for key, default in (("cpu_seconds_per_slice", 0.02), ("memory_mb", 150.0)):
            value = self.optional(keys, key, "runtime.", self.number, default)
            if value < 0:
                self.fail(keys[key], f"runtime.{key}", "must not be negative")
            values.append(value)
        return Runtime(*values)

    def validation(self, node: yaml.Node) -> dict | None:
        if is_null(node):
            return None
        keys = self.mapping(node, "validation", _VALIDATION)
        out: dict = {}
        if "date" in keys and not is_null(keys["date"]):
            date = self.scalar(keys["date"], "validation.date", "a date")
            if isinstance(date, str):
                try:
                    date = _dt.date.fromisoformat(date)
                except ValueError:
                    pass
            if not isinstance(date, _dt.date):
                self.fail(keys["date"], "validation.date", "write the date as YYYY-MM-DD")
            out["date"] = date.isoformat()
        if "summary" in keys:
            out["summary"] = self.text(keys["summary"], "validation.summary")
        if "metrics" in keys:
            metrics = self.mapping(keys["metrics"], "validation.metrics",
                                   tuple(str(k.value) for k, _ in keys["metrics"].value)
                                   if isinstance(keys["metrics"], yaml.MappingNode) else ())
            out["metrics"] = {k: self.number(v, f"validation.metrics.{k}")
                              for k, v in metrics.items()}
        return out

    # ---- the whole file ---------------------------------------------------------------------
    def manifest(self, text: str) -> Manifest:
        root = self.compose(text)
        if root is None:
            raise PluginError(f"{self.source}: the manifest is empty; see plugins/README.md "
                              f"for a commented example")
        keys = self.mapping(root, "", _TOP, ("id", "version", "name", "task", "dimension",
                                             "model", "input", "output"))
        ident = self.identity(keys)
        task = self.choice(keys["task"], "task", ("segmentation", "classification"))
        dimension = self.integer(keys["dimension"], "dimension")
        if dimension not in (2, 3):
            self.fail(keys["dimension"], "dimension", f"{dimension}: use 2 (slice-wise) or 3 "
                                                      f"(patch-wise)")
        spec = self.geometry(keys["input"], dimension)
        output = (self.segmentation(keys["output"]) if task == "segmentation"
                  else self.classification(keys["output"]))
        return Manifest(**ident, task=task, dimension=dimension, **self.model(keys["model"]),
                        input=spec, output=output,
                        normalization=self.normalization(keys.get("normalization", NULL_NODE)),
                        runtime=self.runtime(keys.get("runtime", NULL_NODE)),
                        validation=self.validation(keys.get("validation", NULL_NODE)),
                        source=self.source)
