"""A model bundle's manifest (``plugin.yaml``): its dataclasses, strict reading and writing.

A bundle folder ``<id>/<version>/`` holds ``plugin.yaml`` and the model file it names. The
manifest is read with the strict reader of :mod:`ril_dash.strict_yaml`, so every mistake names
the file, the line, the field path and what to do (:class:`~ril_dash.errors.PluginError`), e.g.::

    kidney-seg/1.0.0/plugin.yaml line 12: input.sise: unknown key 'sise' in input (did you mean
    'size'?); allowed keys: plane, size, ...

:func:`parse_manifest` checks each value and the rules that tie values together (a patch for
``dimension: 3`` only, an odd number of slices, softmax channel 0 kept for the background...);
:func:`manifest_yaml` writes a :class:`Manifest` back as YAML that reads back equal (the wizard
and the training scripts write manifests with it). :func:`project_problems` says what does not
fit a given project (unknown ROIs or text field values). Every key is documented in
``plugins/README.md``; the reading itself is in :mod:`ril_dash.models.manifest_parser`.

Examples
--------
>>> m = parse_manifest(EXAMPLE, "plugin.yaml")
>>> m.ref, m.input.size, m.output.channels[0].roi
('kidney-seg@1.0.0', (128, 128), 'Right kidney')
>>> parse_manifest(manifest_yaml(m), "again.yaml") == m
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ril_dash.errors import PluginError

__all__ = ["ChannelMap", "ClassificationOutput", "EXAMPLE", "InputSpec", "MANIFEST_FILE",
           "Manifest", "NormSpec", "Runtime", "SegmentationOutput", "load_manifest",
           "manifest_yaml", "model_shape_problems", "parse_manifest", "project_problems",
           "version_key"]

MANIFEST_FILE = "plugin.yaml"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SEMVER_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                       r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")


@dataclass(frozen=True)
class InputSpec:
    """How display slices become the model's input (see plugins/README.md)."""

    plane: str
    size: tuple[int, int]
    resample: str = "size"
    spacing: tuple[float, float] | None = None
    transpose: bool = False
    flip: tuple[str, ...] = ()
    slices: int = 1
    frames: tuple[int, ...] | None = None
    patch: tuple[int, int, int] | None = None
    overlap: float = 0.5
    blend: str = "gaussian"

    @property
    def channels(self) -> int:
        """The number of input channels: adjacent slices × frames."""
        return self.slices * (len(self.frames) if self.frames else 1)


@dataclass(frozen=True)
class NormSpec:
    """How intensities are normalised before the model sees them."""

    method: str = "window"
    window: tuple[float, float] = (-160.0, 240.0)
    range: tuple[float, float] = (0.0, 1.0)
    percentiles: tuple[float, float] = (1.0, 99.0)
    scope: str = "slice"
    scale: float = 1.0
    offset: float = 0.0
    clip: tuple[float, float] | None = None


@dataclass(frozen=True)
class ChannelMap:
    """One output channel of a segmentation model and the project ROI it drafts."""

    channel: int
    roi: str
    code: str | None = None


@dataclass(frozen=True)
class SegmentationOutput:
    """The outputs of a segmentation model: channels → ROIs, and the clean-up."""

    channels: tuple[ChannelMap, ...]
    activation: str = "softmax"
    threshold: float = 0.5
    largest_component: bool = True
    min_size: int = 20


@dataclass(frozen=True)
class ClassificationOutput:
    """The outputs of a classifier: class index → value of a choice text field."""

    text_field: str
    classes: tuple[str, ...]
    activation: str = "softmax"
    aggregate: str = "mean"
    slices: str = "all"


@dataclass(frozen=True)
class Runtime:
    """What a run costs, shown to users before they start one."""

    cpu_seconds_per_slice: float = 0.02
    memory_mb: float = 150.0


@dataclass(frozen=True)
class Manifest:
    """A validated ``plugin.yaml``; ``source`` (not compared) names the file it came from."""

    id: str
    version: str
    name: str
    task: str
    dimension: int
    model_file: str
    sha256: str
    input: InputSpec
    output: SegmentationOutput | ClassificationOutput
    description: str = ""
    author: str = ""
    license: str = ""
    changelog: str = ""
    custom_objects: str | None = None
    normalization: NormSpec = NormSpec()
    runtime: Runtime = Runtime()
    validation: dict | None = None
    source: str = field(default="", compare=False, repr=False)

    @property
    def ref(self) -> str:
        """``"id@version"``, as drafts record it."""
        return f"{self.id}@{self.version}"


def version_key(version: str) -> tuple:
    """A sort key for semantic versions: numbers compare as numbers, and a pre-release
    (``1.0.0-rc.1``) comes before its release.

    Examples
    --------
    >>> sorted(["1.10.0", "1.2.0", "1.2.0-rc.1", "1.2.0-beta", "0.9.9"], key=version_key)
    ['0.9.9', '1.2.0-beta', '1.2.0-rc.1', '1.2.0', '1.10.0']
    """
    match = SEMVER_RE.match(version)
    if match is None:
        return (-1, -1, -1, 0, ())
    major, minor, patch, pre = match.groups()
    tags = tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in (pre or "").split(".")
                 if pre)
    return (int(major), int(minor), int(patch), 0 if pre else 1, tags)


def parse_manifest(text: str, source: str = MANIFEST_FILE) -> Manifest:
    """The validated manifest of ``text``; raises :class:`PluginError` naming ``source``, the
    line and the field for the first problem."""
    from ril_dash.models.manifest_parser import ManifestParser

    return ManifestParser(source).manifest(text)


def load_manifest(path: str | Path) -> Manifest:
    """The validated manifest read from ``path`` (a ``plugin.yaml``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PluginError(f"{path}: no such file; a bundle folder needs a {MANIFEST_FILE} "
                          f"(see plugins/README.md)") from None
    except UnicodeDecodeError:
        raise PluginError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise PluginError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_manifest(text, str(path))


# ---- writing ---------------------------------------------------------------------------------
def _pair(values) -> list | None:
    return None if values is None else list(values)


def manifest_data(m: Manifest) -> dict:
    """The manifest as plain data, in the order of plugins/README.md (what
    :func:`manifest_yaml` writes)."""
    spec = m.input
    geometry = {"plane": spec.plane, "size": list(spec.size), "resample": spec.resample,
                "spacing": _pair(spec.spacing), "transpose": spec.transpose,
                "flip": list(spec.flip), "slices": spec.slices, "frames": _pair(spec.frames)}
    if m.dimension == 3:
        geometry.update(patch=list(spec.patch), overlap=spec.overlap, blend=spec.blend)
    n = m.normalization
    out = m.output
    if isinstance(out, SegmentationOutput):
        output = {"activation": out.activation, "threshold": out.threshold,
                  "channels": [{"channel": c.channel, "roi": c.roi, "code": c.code}
                               for c in out.channels],
                  "largest_component": out.largest_component, "min_size": out.min_size}
    else:
        output = {"activation": out.activation, "text_field": out.text_field,
                  "classes": list(out.classes), "aggregate": out.aggregate,
                  "slices": out.slices}
    data = {"id": m.id, "version": m.version, "name": m.name, "description": m.description,
            "author": m.author, "license": m.license, "changelog": m.changelog,
            "task": m.task, "dimension": m.dimension,
            "model": {"file": m.model_file, "sha256": m.sha256,
                      "custom_objects": m.custom_objects},
            "input": geometry,
            "normalization": {"method": n.method, "window": list(n.window),
                              "range": list(n.range), "percentiles": list(n.percentiles),
                              "scope": n.scope, "scale": n.scale, "offset": n.offset,
                              "clip": _pair(n.clip)},
            "output": output,
            "runtime": {"cpu_seconds_per_slice": m.runtime.cpu_seconds_per_slice,
                        "memory_mb": m.runtime.memory_mb}}
    if m.validation is not None:
        data["validation"] = m.validation
    return {k: v for k, v in data.items() if v != ""}  # empty texts are left out


def manifest_yaml(m: Manifest) -> str:
    """``plugin.yaml`` text for ``m``; :func:`parse_manifest` reads it back equal."""
    body = yaml.safe_dump(manifest_data(m), sort_keys=False, default_flow_style=None,
                          allow_unicode=True, width=100)
    return (f"# Model bundle {m.ref}; every key is explained in ril_dash's plugins/README.md.\n"
            f"# Versions are immutable: change nothing here, write a new version folder.\n"
            + body)


# ---- fitting a project and a model -----------------------------------------------------------
def project_problems(m: Manifest, config) -> list[str]:
    """What keeps ``m`` from drafting into the project of ``config`` (a
    :class:`~ril_dash.project.schema.ProjectConfig`): ROIs that are missing or not area ROIs;
    a text field that is missing, not a choice field, or lacks one of the classes."""
    problems = []
    if isinstance(m.output, SegmentationOutput):
        rois = {r.name: r for r in config.rois}
        for c in m.output.channels:
            roi = rois.get(c.roi)
            if roi is None:
                problems.append(f"{m.ref}: output channel {c.channel} drafts the ROI "
                                f"{c.roi!r}, which project '{config.name}' does not define; "
                                f"add that ROI to the project (or map the channel to one of "
                                f"{', '.join(sorted(rois)) or 'its ROIs'})")
            elif roi.type != "area":
                problems.append(f"{m.ref}: output channel {c.channel} drafts the ROI "
                                f"{c.roi!r}, a {roi.type} ROI; a segmentation needs an area "
                                f"ROI")
        return problems
    fields = {f.name: f for f in config.text_fields}
    wanted = m.output.text_field
    tf = fields.get(wanted)
    if tf is None:
        return [f"{m.ref}: the classifier fills the text field {wanted!r}, which project "
                f"'{config.name}' does not define; add it as a choice field with the values "
                f"{', '.join(m.output.classes)}"]
    if tf.type != "choice":
        return [f"{m.ref}: the text field {wanted!r} is a {tf.type} field; a classifier fills "
                f"a choice field (one value per series)"]
    missing = [c for c in m.output.classes if c not in tf.values]
    if missing:
        problems.append(f"{m.ref}: the text field {wanted!r} does not allow "
                        f"{', '.join(repr(c) for c in missing)}; add "
                        f"{'them' if len(missing) > 1 else 'it'} to its values")
    return problems


def _fits(actual, expected) -> bool:
    return (len(actual) == len(expected)
            and all(a is None or e is None or a == e for a, e in zip(actual, expected)))


def model_shape_problems(m: Manifest, inputs: list, outputs: list) -> list[str]:
    """Where the model's input and output shapes (as the worker reports them, batch first,
    ``None`` for free sizes) do not fit the manifest."""
    spec = m.input
    core = tuple(spec.patch) if m.dimension == 3 else tuple(spec.size)
    expected_in = (None, *core, spec.channels)
    problems = []
    if len(inputs) != 1:
        problems.append(f"{m.ref}: the model has {len(inputs)} inputs; a bundle model takes "
                        f"exactly one")
    elif not _fits(tuple(inputs[0]), expected_in):
        problems.append(f"{m.ref}: the model takes {tuple(inputs[0])} but the manifest gives it "
                        f"{expected_in} (input.size/patch, slices × frames channels); fix "
                        f"the input section")
    if len(outputs) != 1:
        return problems + [f"{m.ref}: the model has {len(outputs)} outputs; a bundle model "
                           f"gives exactly one"]
    shape = tuple(outputs[0])
    if isinstance(m.output, ClassificationOutput):
        expected_out = (None, len(m.output.classes))
        what = "one probability per class"
    else:
        expected_out = (None, *core, None)
        what = "the input grid with one channel per class"
    if not _fits(shape, expected_out):
        problems.append(f"{m.ref}: the model outputs {shape}; the manifest expects {what} "
                        f"{expected_out}")
    elif isinstance(m.output, SegmentationOutput) and shape[-1] is not None:
        top = max(c.channel for c in m.output.channels)
        if top >= shape[-1]:
            problems.append(f"{m.ref}: output.channels maps channel {top}, but the model has "
                            f"only {shape[-1]} output channels (0–{shape[-1] - 1})")
    return problems


#: the example of plugins/README.md, used by the doctests and the tests
EXAMPLE = """\
id: kidney-seg
version: 1.0.0
name: Kidney segmentation
description: 2D U-Net that drafts both kidneys on axial CT slices.
author: ril_dash examples
license: CC0-1.0
changelog: First version, trained on 8 phantom patients.
task: segmentation
dimension: 2
model:
  file: model.keras
  sha256: 3f1c5b6e0c2f4a1d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e
input:
  plane: axial
  size: [128, 128]
normalization:
  method: window
  window: [-160, 240]
output:
  activation: softmax
  channels:
    - {channel: 1, roi: Right kidney, code: RID29663}
    - {channel: 2, roi: Left kidney, code: RID29662}
runtime:
  cpu_seconds_per_slice: 0.02
  memory_mb: 150
validation:
  date: 2026-12-01
  summary: Dice 0.93 (right), 0.92 (left) on 2 held-out phantom patients
  metrics: {dice_right_kidney: 0.93, dice_left_kidney: 0.92}
"""
