"""The annotation panel of the slice viewer: ROI palette, tools, brush, limits, history, statistics.

Tool settings go to the browser script (``assets/ril_annotate.js``) through one clientside
callback; the script does the drawing and talks to the annotation routes. The history list is drawn by the
script while its section is open (no Dash components per row: a long history stays cheap);
the statistics are a server callback.

Developer notes::

    palette / tool / brush / limits / overlay controls ─clientside settings─► rilAnnotate
    action buttons (fill holes, dilate, erode, clear, undo, redo) ─clientside─► rilAnnotate.act
    semi-automatic contouring section (components/contour_panel.py) ─► rilAnnotate.act
    rilAnnotate (after every save) ─set_props─► ANNOT_VERSION ─► undo/redo buttons
    History section (rendered by rilAnnotate from /ril/api/versions while it is open)
    statistics button ─► roi_stats() ─► table + histogram
"""

from __future__ import annotations

import dash
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, callback, clientside_callback, dcc, html

from ril_dash.errors import RilDashError
from ril_dash.project.annotation_views import roi_stats
from ril_dash.project.schema import ProjectConfig
from ril_dash.ui import access, ids
from ril_dash.ui.components.contour_panel import contour_section
from ril_dash.ui.components.text_fields import text_fields_section
from ril_dash.ui.services import get_services

TOOLS = [("navigate", "Navigate", "N"), ("brush", "Brush", "B"), ("eraser", "Eraser", "E"),
         ("lasso", "Lasso fill", "L"), ("lasso_erase", "Lasso erase", ""),
         ("fill", "Fill region", "F"), ("point", "Point", "P")]
ACTIONS = [("fill_holes", "Fill holes"), ("dilate", "Dilate"), ("erode", "Erode"),
           ("clear", "Clear ROI")]
STAT_ROWS = [("count", "Voxels"), ("volume_ml", "Volume (mL)"), ("mean", "Mean"), ("sd", "SD"),
             ("min", "Min"), ("p5", "5th pct"), ("p25", "25th pct"), ("median", "Median"),
             ("p75", "75th pct"), ("p95", "95th pct"), ("max", "Max")]


def roi_table(config: ProjectConfig) -> dict:
    """ROI definitions for the browser, keyed by mask value (as JSON object keys)."""
    return {str(r.value): {"name": r.name, "color": r.color, "type": r.type, "locked": r.locked,
                           "order": i, "radlex": r.radlex}
            for i, r in enumerate(config.rois)}


def _roi_label(roi) -> html.Span:
    marks = (" · point" if roi.type == "point" else "") + (" · locked" if roi.locked else "")
    return html.Span([html.Span(className="ril-swatch", style={"background": roi.color}),
                      html.Span(roi.name), html.Span(marks, className="ril-muted-inline")],
                     title=f"{roi.name} ({roi.radlex or 'no RadLex ID'}, mask value {roi.value})")


def _section(title: str, *children, open_=True, edit_only=False):
    """A collapsible section; ``edit_only`` ones are hidden while the series is read-only."""
    return html.Details([html.Summary(title), *children], open=open_,
                        className="ril-annot-section" + (" ril-edit-only" if edit_only else ""))


def _copy_to_frames(n_frames: int) -> html.Div:
    """Copy the chosen ROI of the frame on screen to frames first..last (one undoable version)."""
    def box(id_, value):
        return dcc.Input(id=id_, type="number", min=0, max=n_frames - 1, step=1, value=value,
                         className="ril-small-input")
    return html.Div([html.Button("Copy to frames…", className="ril-button", n_clicks=0,
                                 id={"type": ids.ANNOT_ACTION, "action": "copy_frames"},
                                 title="Copy the chosen ROI of this frame to the frames "
                                       "from … to … (one undoable change)"),
                     " ", box(ids.ANNOT_COPY_FIRST, 0), " to ",
                     box(ids.ANNOT_COPY_LAST, n_frames - 1)], className="ril-button-row")


def annotation_panel(config: ProjectConfig, texts: dict | None = None, *,
                     read_only: bool = False, contour_preset: str = "ct",
                     n_frames: int = 1) -> html.Aside:
    """The panel; ``read_only`` (someone else edits the series, or the user may not) hides the
    editing sections and disables the text inputs (the server refuses edits regardless);
    ``contour_preset`` is the series' semi-automatic contouring preset; a 4D series
    (``n_frames`` > 1) gets the "Copy to frames…" action."""
    rois = list(config.rois)
    first = next((r.value for r in rois if not r.locked), rois[0].value if rois else None)
    return html.Aside(className="ril-annot-panel" + (" ril-read-only" if read_only else ""),
                      children=[
        dcc.Store(id=ids.ANNOT_ROIS, data=roi_table(config)),
        dcc.Store(id=ids.ANNOT_VERSION),
        html.Div(id=ids.ANNOT_SINK, style={"display": "none"}),
        text_fields_section(config, texts or {}, disabled=read_only),
        _section("ROIs", html.Div("No ROIs are defined; add some in the ROI manager.",
                                  className="ril-muted") if not rois else
                 dcc.RadioItems(id=ids.ANNOT_ROI, value=first, className="ril-roi-list",
                                options=[{"label": _roi_label(r), "value": r.value} for r in rois]),
                 dcc.Checklist(id=ids.ANNOT_HIDDEN, value=[], inline=True, className="ril-hide",
                               options=[{"label": f"hide {r.name}", "value": r.value}
                                        for r in rois])),
        _section("Tool",
                 dcc.RadioItems(id=ids.ANNOT_TOOL, value="navigate", className="ril-tool-list",
                                options=[{"label": f"{label}" + (f"  ({key})" if key else ""),
                                          "value": value} for value, label, key in TOOLS]),
                 html.Label("Brush diameter", className="ril-sub"),
                 dcc.Slider(id=ids.ANNOT_BRUSH, min=1, max=50, step=1, value=5, marks=None,
                            tooltip={"placement": "bottom", "always_visible": False}),
                 dcc.RadioItems(id=ids.ANNOT_UNIT, value="vox", inline=True,
                                options=[{"label": "voxels", "value": "vox"},
                                         {"label": "mm", "value": "mm"}]),
                 html.Label(["Also paint ", dcc.Input(id=ids.ANNOT_DEPTH, type="number", min=0,
                                                      max=50, step=1, value=0,
                                                      className="ril-small-input"),
                             " slices above and below"], className="ril-sub"),
                 dcc.Checklist(id=ids.ANNOT_LIMIT, value=[], className="ril-sub",
                               options=[{"label": "Only image values from … to …",
                                         "value": "on"}]),
                 html.Div(className="ril-wl-inputs", children=[
                     dcc.Input(id=ids.ANNOT_LO, type="number", placeholder="low", value=-100),
                     dcc.Input(id=ids.ANNOT_HI, type="number", placeholder="high", value=300)]),
                 edit_only=True),
        _section("Operations",
                 html.Div([html.Button(label, id={"type": ids.ANNOT_ACTION, "action": action},
                                       className="ril-button", n_clicks=0)
                           for action, label in ACTIONS], className="ril-button-row"),
                 dcc.RadioItems(id=ids.ANNOT_SCOPE, value="slice", inline=True,
                                options=[{"label": "this slice", "value": "slice"},
                                         {"label": "whole volume", "value": "volume"}]),
                 html.Div([html.Button("Undo", id={"type": ids.ANNOT_ACTION, "action": "undo"},
                                       className="ril-button", n_clicks=0, title="Ctrl+Z"),
                           html.Button("Redo", id={"type": ids.ANNOT_ACTION, "action": "redo"},
                                       className="ril-button", n_clicks=0,
                                       title="Ctrl+Shift+Z")], className="ril-button-row"),
                 _copy_to_frames(n_frames) if n_frames > 1 else None,
                 edit_only=True),
        contour_section(_section, contour_preset),
        html.Div(id=ids.ANNOT_MESSAGE, className="ril-annot-message", role="status"),
        _section("Overlay",
                 dcc.RadioItems(id=ids.ANNOT_STYLE, value="fill", inline=True,
                                options=[{"label": "filled", "value": "fill"},
                                         {"label": "outline", "value": "outline"}]),
                 dcc.Slider(id=ids.ANNOT_OPACITY, min=0, max=1, step=0.05, value=0.4, marks=None)),
        _section("Points", html.Div(id=ids.ANNOT_POINTS, className="ril-points"), open_=False)
        if any(r.type == "point" for r in rois) else None,
        _section("History", html.Div(id=ids.ANNOT_HISTORY, className="ril-history"),
                 open_=False),
        _section("Statistics",
                 dcc.Dropdown(id=ids.STATS_ROI, clearable=False,
                              options=[{"label": r.name, "value": r.value} for r in rois
                                       if r.type == "area"],
                              value=next((r.value for r in rois if r.type == "area"), None)),
                 dcc.RadioItems(id=ids.STATS_SCOPE, value="volume", inline=True,
                                options=[{"label": "whole volume", "value": "volume"},
                                         {"label": "this slice", "value": "slice"}]),
                 html.Button("Compute", id=ids.STATS_RUN, className="ril-button", n_clicks=0),
                 html.Div(id=ids.STATS_OUT), open_=False),
    ])


clientside_callback(
    dash.ClientsideFunction(namespace="ril_annotate", function_name="settings"),
    Output(ids.ANNOT_SINK, "children"),
    Input(ids.ANNOT_TOOL, "value"), Input(ids.ANNOT_ROI, "value"), Input(ids.ANNOT_BRUSH, "value"),
    Input(ids.ANNOT_UNIT, "value"), Input(ids.ANNOT_LIMIT, "value"), Input(ids.ANNOT_LO, "value"),
    Input(ids.ANNOT_HI, "value"), Input(ids.ANNOT_DEPTH, "value"), Input(ids.ANNOT_STYLE, "value"),
    Input(ids.ANNOT_OPACITY, "value"), Input(ids.ANNOT_HIDDEN, "value"),
    Input(ids.ANNOT_SCOPE, "value"), State(ids.ANNOT_ROIS, "data"),
)

clientside_callback(
    dash.ClientsideFunction(namespace="ril_annotate", function_name="action"),
    Output(ids.ANNOT_SINK, "title"),
    Input({"type": ids.ANNOT_ACTION, "action": ALL}, "n_clicks"),
    prevent_initial_call=True,
)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


@callback(
    Output(ids.STATS_OUT, "children"),
    Input(ids.STATS_RUN, "n_clicks"),
    State(ids.STATS_ROI, "value"), State(ids.STATS_SCOPE, "value"),
    State(ids.VIEWER_META, "data"), State(ids.PLANE, "value"), State(ids.SLICE_SLIDER, "value"),
    State(ids.FRAME, "value"),
    prevent_initial_call=True,
)
def show_statistics(_, roi, scope, meta, plane, index, frame):
    if roi is None or not meta:
        return html.Div("Choose an area ROI.", className="ril-muted")
    services = get_services()
    series = meta["series"]
    try:
        access.require(series, "read")
        where = {"plane": plane, "index": int(index)} if scope == "slice" else {}
        result = roi_stats(services.project.config, services.state(series, frame=int(frame or 0)),
                           services.volume(series), int(roi), frame=int(frame or 0), **where)
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    stats = result["stats"]
    if not stats["count"]:
        return html.Div(f"{result['name']} has no voxels here.", className="ril-muted")
    rows = [html.Tr([html.Td(label), html.Td(_fmt(stats[key]))]) for key, label in STAT_ROWS]
    bbox = " × ".join(f"{lo}–{hi}" for lo, hi in stats["bbox"])
    rows.append(html.Tr([html.Td("Box (voxels)"), html.Td(bbox)]))
    hist = result["histogram"]
    centers = [(a + b) / 2 for a, b in zip(hist["edges"][:-1], hist["edges"][1:])]
    fig = go.Figure(go.Bar(x=centers, y=hist["counts"], marker_color="#4da3ff"))
    fig.update_layout(height=160, margin=dict(l=30, r=8, t=8, b=24), bargap=0,
                      paper_bgcolor="#1e2126", plot_bgcolor="#1e2126",
                      font=dict(color="#e6e8eb", size=10))
    return [html.Table(rows, className="ril-stats-table"),
            dcc.Graph(figure=fig, config={"displayModeBar": False}, id=ids.STATS_HISTOGRAM)]


clientside_callback(
    """function (info) {
        var nu = window.dash_clientside.no_update;
        if (!info) { return [nu, nu]; }
        return [!info.can_undo, !info.can_redo];
    }""",
    Output({"type": ids.ANNOT_ACTION, "action": "undo"}, "disabled"),
    Output({"type": ids.ANNOT_ACTION, "action": "redo"}, "disabled"),
    Input(ids.ANNOT_VERSION, "data"),
)
