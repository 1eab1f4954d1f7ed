"""The "Semi-automatic contouring" section of the annotation panel: actions and parameters.

The buttons are annotation actions (``{"type": ANNOT_ACTION, "action": "contour_snap"}``...):
the panel's clientside action callback hands them to ``assets/ril_annotate.js``, which reads
the parameter inputs below at that moment and posts to ``/ril/api/contour``
(:mod:`ril_dash.ui.contour_routes`). Empty parameter inputs mean "the preset's value".

Developer notes::

    Snap (S) / Auto (A) / Fill between (I) / Batch ─clientside─► rilAnnotate.act("contour_…")
    rilAnnotate.contour(tool) ─reads─► preset, method, band, blur, sensitivity, iterations,
                                       smoothing, limit, first/last ─POST─► /ril/api/contour
"""

from __future__ import annotations

from dash import dcc, html

from ril_dash.core.contour_params import METHODS, PRESETS, RANGES
from ril_dash.core.contour_propagate import MAX_LIMIT
from ril_dash.ui import ids

#: action → (button label, key, what it does)
CONTOUR_ACTIONS = [
    ("contour_snap", "Snap", "S", "Snap the ROI on this slice to the structure's edges"),
    ("contour_auto", "Auto-contour", "A",
     "From this slice, contour the neighbouring slices one by one"),
    ("contour_interpolate", "Fill between", "I",
     "Fill the empty slices between annotated slices (shape-based interpolation); with a "
     "range below, only the empty slices inside it"),
    ("contour_batch", "Batch snap", "",
     "Snap every annotated slice from 'first' to 'last' (a job with progress)"),
]
PRESET_LABELS = {"ct": "CT", "mr": "MR", "generic": "other"}
#: parameter input id → (label, parameter name, step)
PARAMETERS = [
    (ids.CONTOUR_BAND, "Edge search band (px)", "band", 1),
    (ids.CONTOUR_SIGMA, "Edge blur (px)", "edge_sigma", 0.1),
    (ids.CONTOUR_ALPHA, "Edge sensitivity", "edge_alpha", 10),
    (ids.CONTOUR_ITERATIONS, "Iterations", "iterations", 1),
    (ids.CONTOUR_SMOOTHING, "Smoothing", "smoothing", 1),
]


def _number(id_: str, label: str, name: str, step) -> html.Label:
    lo, hi, what = RANGES[name]
    return html.Label([label, dcc.Input(id=id_, type="number", min=lo, max=hi, step=step,
                                        placeholder=str(getattr(PRESETS["ct"], name)),
                                        className="ril-small-input")],
                      className="ril-sub ril-contour-param", title=what)


def contour_section(section, preset: str = "ct") -> html.Details:
    """The section, made with the panel's ``section(title, *children, ...)`` helper;
    ``preset`` is the series' parameter preset (see
    :func:`~ril_dash.core.contour_params.preset_for`)."""
    return section(
        "Semi-automatic contouring",
        html.Div([html.Button(f"{label}" + (f" ({key})" if key else ""), title=what,
                              id={"type": ids.ANNOT_ACTION, "action": action},
                              className="ril-button", n_clicks=0)
                  for action, label, key, what in CONTOUR_ACTIONS], className="ril-button-row"),
        html.Div("Slices made by these tools are drawn lighter until you edit them.",
                 className="ril-muted"),
        html.Label(["Auto-contour at most ",
                    dcc.Input(id=ids.CONTOUR_LIMIT, type="number", min=1, max=MAX_LIMIT,
                              step=1, value=40, className="ril-small-input"),
                    " slices each way"], className="ril-sub"),
        html.Label(["Batch snap / fill between: slices ",
                    dcc.Input(id=ids.CONTOUR_FIRST, type="number", min=0, step=1,
                              placeholder="first", className="ril-small-input"),
                    " to ",
                    dcc.Input(id=ids.CONTOUR_LAST, type="number", min=0, step=1,
                              placeholder="last", className="ril-small-input")],
                   className="ril-sub"),
        html.Details([html.Summary("Parameters"),
                      dcc.RadioItems(id=ids.CONTOUR_PRESET, value=preset, inline=True,
                                     options=[{"label": PRESET_LABELS[p], "value": p}
                                              for p in PRESETS]),
                      dcc.RadioItems(id=ids.CONTOUR_METHOD, value="", inline=True,
                                     options=[{"label": "preset's method", "value": ""}] +
                                     [{"label": m, "value": m} for m in METHODS]),
                      *[_number(*p) for p in PARAMETERS]],
                     className="ril-contour-params"),
        open_=False, edit_only=True)
