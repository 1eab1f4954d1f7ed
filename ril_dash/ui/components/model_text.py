"""How a model bundle and a model run read in the UI: plain strings, no Dash.

The Models page, the viewer's Models panel, the project page's run form and the Jobs page all
describe a bundle's input and output, its runtime estimate and validation figures, and a run's
result with these functions, so the wording is the same everywhere (and unit-testable).

Examples
--------
>>> runtime_estimate(0.02, 150)
'about 3 s for 150 slices'
"""

from __future__ import annotations

import math

__all__ = ["MODES", "estimate_slices", "input_summary", "model_label", "model_result_lines",
           "output_summary", "runtime_estimate", "validation_summary"]

MODES = {"empty_slices": "fill empty slices", "replace": "replace on covered slices",
         "union": "union"}


def _pair(values, sep: str = "…") -> str:
    return sep.join(f"{v:g}" for v in values)


def model_label(manifest) -> str:
    """``"Kidney segmentation 1.0.0 (segmentation)"``: what a model picker lists."""
    return f"{manifest.name or manifest.id} {manifest.version} ({manifest.task})"


def _normalisation(norm) -> str:
    method = norm.method
    if method == "window":
        text = f"window {_pair(norm.window)} → {_pair(norm.range)}"
    elif method == "percentile":
        text = f"percentiles {_pair(norm.percentiles)} → {_pair(norm.range)}"
    elif method == "zscore":
        text = f"z-score per {norm.scope}"
    elif method == "scale":
        text = f"x × {norm.scale:g} + {norm.offset:g}"
    else:
        text = "no normalisation"
    return text + (f", clipped to {_pair(norm.clip)}" if norm.clip else "")


def input_summary(manifest) -> str:
    """The model's input in one line: plane, size, how the slice gets there, normalisation.

    e.g. ``"axial · 128×128 (resized) · window -160…240 → 0…1 · 1 slice"``"""
    spec = manifest.input
    rows, cols = spec.size
    how = {"size": "resized", "none": "cropped/padded"}.get(
        spec.resample, f"at {_pair(spec.spacing or (), '×')} mm" if spec.spacing else "resampled")
    parts = [spec.plane, f"{rows}×{cols} ({how})", _normalisation(manifest.normalization)]
    if manifest.dimension == 3 and spec.patch:
        parts.append("3D patches " + "×".join(str(p) for p in spec.patch)
                     + f", overlap {spec.overlap:g}")
    else:
        parts.append(f"{spec.slices} slice" + ("s (2.5D)" if spec.slices > 1 else ""))
    if spec.frames:
        parts.append("frames " + ", ".join(str(f) for f in spec.frames))
    if spec.transpose or spec.flip:
        parts.append(" + ".join((["transposed"] if spec.transpose else [])
                                + [f"flip {f}" for f in spec.flip]))
    return " · ".join(parts)


def output_summary(manifest) -> str:
    """What the model's output becomes: ROIs per channel, or a text field's values."""
    out = manifest.output
    if manifest.task == "classification":
        return (f"{out.text_field} ← {', '.join(out.classes)} ({out.activation}, "
                f"{out.aggregate} over {out.slices} slices)")
    rois = ", ".join(f"{c.roi} (channel {c.channel})" for c in out.channels)
    how = out.activation if out.activation == "softmax" else \
        f"sigmoid > {out.threshold:g}"
    extra = (["largest component"] if out.largest_component else []) + \
        ([f"min {out.min_size} voxels"] if out.min_size else [])
    return f"{rois} ({how}{''.join('; ' + e for e in extra)})"


def estimate_slices(manifest, n_slices: int) -> int:
    """How many slices a run over a series of ``n_slices`` (in the model's plane) reads."""
    if manifest.task == "classification" and getattr(manifest.output, "slices", "all") == \
            "middle" and n_slices >= 3:
        return max(1, n_slices // 3)
    return n_slices


def runtime_estimate(seconds_per_slice: float, n_slices: int) -> str:
    """``"about 3 s for 150 slices"`` (under a second: ``"under 1 s …"``; minutes above 90 s).

    >>> runtime_estimate(0.5, 1), runtime_estimate(1.0, 200)
    ('under 1 s for 1 slice', 'about 3 min 20 s for 200 slices')
    """
    total = seconds_per_slice * n_slices
    what = f"{n_slices} slice{'s' if n_slices != 1 else ''}"
    if total < 1:
        return f"under 1 s for {what}"
    seconds = math.ceil(total)
    if seconds <= 90:
        return f"about {seconds} s for {what}"
    return f"about {seconds // 60} min {seconds % 60:02d} s for {what}"


def validation_summary(manifest) -> str:
    """The bundle's validation figures (``"—"`` when it has none)."""
    validation = manifest.validation or {}
    if not validation:
        return "—"
    text = str(validation.get("summary") or "")
    if not text and validation.get("metrics"):
        text = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                         for k, v in validation["metrics"].items())
    date = validation.get("date")
    return f"{text} ({date})" if date else text or "—"


def model_result_lines(result: dict) -> list[tuple[str, str]]:
    """A model run's result as ``(text, kind)`` lines, kind ok / warning / error / muted."""
    model, task = result.get("model", "?"), result.get("task")
    drafted, total = result.get("drafted_total", len(result.get("drafted", []))), \
        result.get("series", 0)
    unchanged = result.get("unchanged_total", len(result.get("unchanged", [])))
    verb = "classified" if task == "classification" else "drafted"
    head = f"{model} {verb} {drafted} of {total} series"
    if unchanged:
        head += f" ({unchanged} unchanged: nothing new to write)"
    lines = [(head + ".", "ok")]
    if result.get("cancelled"):
        lines.append(("Cancelled: the series drafted so far each have a complete new version; "
                      "the others were not touched.", "warning"))
    for line in result.get("drafted", []):
        series, version = line[0], line[1]
        if len(line) >= 4:
            lines.append((f"{series}: {line[2]} (probability {float(line[3]):.2f}), "
                          f"version {version}", "muted"))
        elif task != "classification":
            lines.append((f"{series}: version {version}", "muted"))
    for series, reason in result.get("skipped", []):
        lines.append((f"Skipped {series}: {reason}", "warning"))
    more = result.get("skipped_total", 0) - len(result.get("skipped", []))
    if more > 0:
        lines.append((f"… and {more} more skipped series.", "muted"))
    lines += [(note, "muted") for note in result.get("notes", [])]
    if result.get("load_seconds", 0) >= 1:
        lines.append((f"Loading the model took {result['load_seconds']:.1f} s.", "muted"))
    return lines
