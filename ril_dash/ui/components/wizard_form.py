"""The steps of the model wizard as Dash components, and reading them back as the wizard's form.

Every step field is listed once in :data:`FIELDS` (form key → component id and property), so
the page's callbacks take them all with :func:`form_dependencies` and turn the values back into
the plain form of :mod:`ril_dash.models.wizard` with :func:`read_form`. The output mapping has
one dropdown per model output: ``{"type": CHANNEL, "channel": k}`` (segmentation: channel →
project ROI) and ``{"type": CLASS, "index": i}`` (classification: class index → value of the
choice text field).
"""

from __future__ import annotations

from dash import ALL, dcc, html

__all__ = ["CHANNEL", "CLASS", "FIELDS", "channel_rows", "class_rows", "form_dependencies",
           "read_form", "steps"]

PREFIX = "wiz-"
CHANNEL = "wiz-channel"
CLASS = "wiz-class"
YES = "yes"
#: form key → (component id, property); see :data:`ril_dash.models.wizard.FORM_KEYS`
FIELDS = {key: (PREFIX + key.replace("_", "-"), "value") for key in (
    "id", "version", "name", "description", "author", "license", "changelog", "task", "plane",
    "rows", "cols", "resample", "spacing_rows", "spacing_cols", "transpose", "flip", "slices",
    "norm_method", "window_low", "window_high", "range_low", "range_high", "percentile_low",
    "percentile_high", "scope", "scale", "offset", "clip_low", "clip_high", "activation",
    "threshold", "largest_component", "min_size", "text_field", "aggregate", "class_slices",
    "memory_mb")}
BOOLEANS = ("transpose", "largest_component")
IDENTITY = ("id", "version", "name", "description", "author", "license", "changelog")


def field_id(key: str) -> str:
    return FIELDS[key][0]


def form_dependencies(kind, keys=None) -> list:
    """``kind`` (Input or State) of the fields ``keys`` (default: all), then of the channel and
    class dropdowns (values) and the channel dropdowns' ids."""
    keys = list(FIELDS) if keys is None else list(keys)
    return [*(kind(*FIELDS[k]) for k in keys),
            kind({"type": CHANNEL, "channel": ALL}, "value"),
            kind({"type": CHANNEL, "channel": ALL}, "id"),
            kind({"type": CLASS, "index": ALL}, "value")]


def read_form(values, keys=None) -> dict:
    """The wizard's form from the values of :func:`form_dependencies` (same ``keys``)."""
    keys = list(FIELDS) if keys is None else list(keys)
    *plain, channel_values, channel_ids, class_values = values
    form = dict(zip(keys, plain))
    for key in BOOLEANS:
        if key in form:
            form[key] = YES in (form[key] or ())
    form["channels"] = {str(i["channel"]): v for i, v in zip(channel_ids, channel_values)}
    form["classes"] = list(class_values)
    return form


# ---- layout ---------------------------------------------------------------------------------
def _input(key: str, value=None, *, kind="text", label=None, width="ril-search", **kw):
    field = dcc.Input(id=field_id(key), value=value, type=kind, debounce=True,
                      className=width, **kw)
    return html.Label([label, field], className="ril-wizard-field") if label else field


def _radio(key: str, value, options) -> dcc.RadioItems:
    return dcc.RadioItems(id=field_id(key), value=value, inline=True,
                          options=[{"label": o, "value": o} for o in options])


def _check(key: str, label: str, on: bool) -> dcc.Checklist:
    return dcc.Checklist(id=field_id(key), value=[YES] if on else [],
                         options=[{"label": label, "value": YES}])


def _pair(low: str, high: str, label: str, values=(None, None)) -> html.Label:
    return html.Label(className="ril-wizard-field", children=[
        label, _input(low, values[0], kind="number", width="ril-wizard-number"),
        _input(high, values[1], kind="number", width="ril-wizard-number")])


def _step(number: int, title: str, *children) -> html.Section:
    return html.Section(className="ril-wizard-step", children=[
        html.H3(f"{number}. {title}"), *children])


def channel_rows(outputs: int, rois: list[str], chosen: dict | None = None) -> list:
    """One row per output channel: its project ROI (or none). With softmax channel 0 is the
    background; by default channel k drafts the k-th ROI."""
    chosen = chosen or {}
    rows = []
    for k in range(outputs):
        rows.append(html.Div(className="ril-wizard-row", children=[
            html.Span(f"channel {k}", className="ril-wizard-key"),
            dcc.Dropdown(id={"type": CHANNEL, "channel": k}, value=chosen.get(k),
                         placeholder="not drafted" if k else "background / not drafted",
                         options=[{"label": r, "value": r} for r in rois],
                         className="ril-select")]))
    return rows


def class_rows(outputs: int, values: list[str]) -> list:
    """One row per class index: the text value it stands for (prefilled in order)."""
    return [html.Div(className="ril-wizard-row", children=[
        html.Span(f"class {i}", className="ril-wizard-key"),
        dcc.Dropdown(id={"type": CLASS, "index": i},
                     value=values[i] if i < len(values) else None,
                     options=[{"label": v, "value": v} for v in values],
                     className="ril-select")]) for i in range(outputs)]


def steps(form: dict, *, rois: list[str], choice_fields: dict[str, list[str]],
          outputs: int) -> list:
    """The wizard's steps prefilled with ``form`` (see
    :func:`ril_dash.models.wizard.suggested_form`); ``rois`` are the project's area ROIs,
    ``choice_fields`` its choice text fields with their values, ``outputs`` the model's output
    channels or classes."""
    seg = form.get("task") != "classification"
    first_field = next(iter(choice_fields), None)
    default_rois = {k: rois[k - 1] for k in range(1, min(outputs, len(rois) + 1))}
    if form.get("activation") == "sigmoid":
        default_rois = {k: rois[k] for k in range(min(outputs, len(rois)))}
    return [
        _step(1, "Identity",
              _input("id", form.get("id"), label="Bundle id (lower-case, e.g. liver-seg)"),
              _input("version", form.get("version"), label="Version (a new folder; never "
                                                           "overwritten)"),
              _input("name", form.get("name"), label="Name"),
              _input("description", form.get("description"), label="Description",
                     width="ril-search ril-wide"),
              _input("author", form.get("author"), label="Author"),
              _input("license", form.get("license"), label="Licence"),
              _input("changelog", form.get("changelog"), label="Changelog",
                     width="ril-search ril-wide")),
        _step(2, "Task", _radio("task", form["task"], ["segmentation", "classification"]),
              html.P("Dimension 2: the model sees one slice (plus adjacent slices) at a time. "
                     "The wizard makes slice-wise bundles only; write the plugin.yaml of a "
                     "3D (patch-wise) bundle by hand.", className="ril-muted")),
        _step(3, "Input geometry",
              html.Label(["Plane ", _radio("plane", form.get("plane", "axial"),
                                           ["axial", "coronal", "sagittal"])]),
              html.Label(className="ril-wizard-field", children=[
                  "Model input size (rows, cols) ",
                  _input("rows", form["rows"], kind="number", width="ril-wizard-number"),
                  _input("cols", form["cols"], kind="number", width="ril-wizard-number")]),
              html.Label(["Get there by ", _radio("resample", form.get("resample", "size"),
                                                  ["size", "spacing", "none"])]),
              _pair("spacing_rows", "spacing_cols", "Spacing (row mm, col mm; resample: "
                                                    "spacing) "),
              _check("transpose", "transpose (rows ↔ cols)", False),
              dcc.Checklist(id=field_id("flip"), value=[], inline=True,
                            options=[{"label": "flip rows (upside down)", "value": "rows"},
                                     {"label": "flip cols (left ↔ right)", "value": "cols"}]),
              _input("slices", form.get("slices", 1), kind="number", width="ril-wizard-number",
                     label="Adjacent slices as channels (2.5D, odd) ")),
        _step(4, "Normalisation",
              dcc.Dropdown(id=field_id("norm_method"), value=form["norm_method"],
                           clearable=False, className="ril-select",
                           options=[{"label": label, "value": value} for value, label in (
                               ("window", "window (e.g. CT HU) then scale to a range"),
                               ("zscore", "z-score"), ("percentile", "percentile min-max"),
                               ("scale", "fixed scale and offset"), ("none", "none"))]),
              _pair("window_low", "window_high", "Window (lower, upper) ",
                    (form.get("window_low"), form.get("window_high"))),
              _pair("range_low", "range_high", "Scaled to (window, percentile; default 0, 1) "),
              _pair("percentile_low", "percentile_high", "Percentiles (default 1, 99) "),
              html.Label(["Statistics of ", _radio("scope", "slice", ["slice", "volume"])]),
              html.Label(className="ril-wizard-field", children=[
                  "x × scale + offset ",
                  _input("scale", 1, kind="number", width="ril-wizard-number"),
                  _input("offset", 0, kind="number", width="ril-wizard-number")]),
              _pair("clip_low", "clip_high", "Clip the result to (optional) ")),
        _step(5, "Outputs",
              html.Div(id="wiz-seg-outputs", hidden=not seg, children=[
                  html.Label(["Activation ", _radio("activation", form["activation"],
                                                    ["softmax", "sigmoid"])]),
                  html.P("softmax: the most likely channel wins, channel 0 is the background; "
                         "sigmoid: every channel above the threshold.", className="ril-muted"),
                  _input("threshold", 0.5, kind="number", width="ril-wizard-number",
                         label="Threshold (sigmoid) ", step="any"),
                  html.Div(id="wiz-channels", children=channel_rows(outputs, rois,
                                                                     default_rois)),
                  _check("largest_component", "keep only the largest connected part per ROI",
                         True),
                  _input("min_size", 20, kind="number", width="ril-wizard-number",
                         label="Drop parts smaller than (voxels) ")]),
              html.Div(id="wiz-class-outputs", hidden=seg, children=[
                  html.Label(className="ril-wizard-field", children=[
                      "Text field (a choice field of the project) ",
                      dcc.Dropdown(id=field_id("text_field"), value=first_field,
                                   className="ril-select",
                                   options=[{"label": n, "value": n} for n in choice_fields])]),
                  html.Div(id="wiz-classes", children=class_rows(
                      outputs, choice_fields.get(first_field, []))),
                  html.Label(["Series value from the slices' ",
                              _radio("aggregate", "mean", ["mean", "max"])]),
                  html.Label(["Slices read ", _radio("class_slices", "all",
                                                     ["all", "middle"])])])),
        _step(6, "Runtime",
              html.P(id="wiz-runtime", className="ril-muted",
                     children="CPU seconds per slice: measured on the preview."),
              _input("memory_mb", form.get("memory_mb", 150), kind="number",
                     width="ril-wizard-number", label="Memory (MB, estimated from the "
                                                      "parameters) ")),
    ]
