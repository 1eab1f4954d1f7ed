"""The slice viewer's "Compare" section: Dice and Jaccard between two annotation sources.

Source A and B are each a version (the current one, a model draft, any other version) and an
ROI; by default the latest model draft vs the current version of the ROI it wrote. The result is
the volume Dice and Jaccard, a plot of Dice per slice and a table per slice, on the viewer's
plane and the slices typed (default: where either source has voxels); a click on a plot point
or a table row moves the viewer to that slice
(``window.rilViewer.goTo``). The tables download as CSV or Excel. The scores are computed by
:mod:`ril_dash.application.compare`, which checks the read right of the logged-in user.

Developer notes::

    opening the section (summary n_clicks) ─► version/ROI choices + defaults
    Compare button / plane change ─► compare_series() ─► scores, plot, table, COMPARE_DONE
    plot clickData / row n_clicks ─clientside─► rilViewer.goTo(slice)
    CSV / Excel buttons + COMPARE_DONE ─► compare_series() again ─► dcc.Download
"""

from __future__ import annotations

import dash
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, callback, clientside_callback, dcc, html

from ril_dash.application import compare
from ril_dash.application.compare import Source
from ril_dash.errors import RilDashError
from ril_dash.project.export_tables import Table, csv_text, excel_bytes
from ril_dash.project.schema import ProjectConfig
from ril_dash.ui import access, ids
from ril_dash.ui.services import get_services

CURRENT = "current"
GRID = "#343a42"  # the page's line colour
_CHOICE_OUTPUTS = [Output(i, p) for i in (ids.COMPARE_A_VERSION, ids.COMPARE_A_ROI,
                                          ids.COMPARE_B_VERSION, ids.COMPARE_B_ROI)
                   for p in ("options", "value")]


def compare_panel(config: ProjectConfig) -> html.Details:
    """The (closed) Compare section; its choices load when it is first opened."""
    areas = [{"label": r.name, "value": r.value} for r in config.rois if r.type == "area"]

    def source(name, version_id, roi_id):
        return html.Div(className="ril-compare-source", children=[
            html.Label(name, className="ril-sub"),
            dcc.Dropdown(id=version_id, options=[], clearable=False, placeholder="version"),
            dcc.Dropdown(id=roi_id, options=areas, clearable=False, placeholder="ROI"),
        ])

    return html.Details(className="ril-annot-section ril-compare", open=False, children=[
        html.Summary("Compare", id=ids.COMPARE_OPEN, n_clicks=0,
                     title="Dice and Jaccard between two versions or ROIs"),
        source("A", ids.COMPARE_A_VERSION, ids.COMPARE_A_ROI),
        source("B", ids.COMPARE_B_VERSION, ids.COMPARE_B_ROI),
        html.Label(title="Empty: the slices where either source has voxels; or 'all', or "
                         "slices and ranges like '3-5, 9' (numbered as the viewer shows them)",
                   children=dcc.Input(id=ids.COMPARE_SLICES, type="text", debounce=True,
                                      className="ril-compare-slices",
                                      placeholder="slices: where either has voxels")),
        html.Button("Compare", id=ids.COMPARE_RUN, className="ril-button", n_clicks=0),
        html.Div(id=ids.COMPARE_MESSAGE, className="ril-muted", role="status"),
        html.Div(id=ids.COMPARE_SCORES, className="ril-compare-scores"),
        dcc.Graph(id=ids.COMPARE_PLOT, config={"displayModeBar": False},
                  style={"height": "160px", "display": "none"}),
        html.Div(id=ids.COMPARE_TABLE, className="ril-compare-table"),
        html.Div(className="ril-button-row", children=[
            html.Button("CSV", id=ids.COMPARE_CSV, className="ril-button", n_clicks=0,
                        disabled=True, title="Download the per-slice and volume scores"),
            html.Button("Excel", id=ids.COMPARE_EXCEL, className="ril-button", n_clicks=0,
                        disabled=True, title="Download the scores as an Excel workbook")]),
        dcc.Store(id=ids.COMPARE_DONE),
        dcc.Download(id=ids.COMPARE_DOWNLOAD),
        html.Div(id=ids.COMPARE_JUMP, hidden=True),
    ])


def tables_download(tables: list[Table], stem: str, fmt: str) -> dict:
    """A ``dcc.Download`` payload: the first table as CSV, or every table as one workbook."""
    if fmt == "csv":
        return dcc.send_string(csv_text(tables[0]), f"{stem}.csv")
    return dcc.send_bytes(excel_bytes(tables), f"{stem}.xlsx")


def _version(value) -> int | None:
    return None if value in (None, CURRENT) else int(value)


def _source(version, roi) -> Source:
    if roi is None:
        raise compare.CompareRefused("Choose an ROI for both sources.")
    return Source(_version(version), int(roi))


@callback(*_CHOICE_OUTPUTS, Output(ids.COMPARE_MESSAGE, "children"),
          Input(ids.COMPARE_OPEN, "n_clicks"),
          State(ids.VIEWER_META, "data"), State(ids.COMPARE_A_VERSION, "options"),
          prevent_initial_call=True)
def load_choices(_, meta, loaded):
    if loaded or not meta:  # loaded on the first opening only
        return [dash.no_update] * 9
    services, who = get_services(), access.actor()
    try:
        choices = compare.version_choices(services, who, meta["series"])
        a, b = compare.default_sources(services, who, meta["series"])
    except RilDashError as exc:
        return [dash.no_update] * 8 + [str(exc)]
    options = [{"label": c["label"], "value": CURRENT if c["value"] is None else str(c["value"])}
               for c in choices]
    rois = [{"label": r.name, "value": r.value} for r in services.project.config.rois
            if r.type == "area"]
    roi = b.roi if b else None
    a_version = str(a.version) if a else CURRENT
    note = "" if a else "No model has drafted this series; choose two versions or two ROIs."
    return options, a_version, rois, roi, options, CURRENT, rois, roi, note


def _figure(comparison) -> go.Figure:
    s = comparison.scores
    fig = go.Figure(go.Scatter(
        x=(s.slices + 1).tolist(), y=s.dice.tolist(), customdata=s.slices.tolist(),
        mode="lines+markers", marker={"size": 7, "color": "#4da3ff"}, line={"width": 1},
        hovertemplate="slice %{x}: Dice %{y:.3f}<extra></extra>", name="Dice"))
    fig.update_layout(height=160, margin=dict(l=34, r=8, t=8, b=28), showlegend=False,
                      paper_bgcolor="#1e2126", plot_bgcolor="#1e2126", clickmode="event",
                      font=dict(color="#e6e8eb", size=10),
                      xaxis={"title": {"text": "slice", "standoff": 2}, "gridcolor": GRID},
                      yaxis={"range": [-0.05, 1.05], "title": {"text": "Dice", "standoff": 2},
                             "gridcolor": GRID})
    return fig


def _table(comparison) -> html.Table:
    head = html.Tr([html.Th(h) for h in ("Slice", "A", "B", "Shared", "Dice", "Jaccard")])
    rows = [html.Tr(id={"type": ids.COMPARE_ROW, "index": r["index"]}, n_clicks=0,
                    className="ril-compare-row" + (" ril-both-empty" if r["both_empty"] else ""),
                    title=f"Go to slice {r['index'] + 1}",
                    children=[html.Td(r["index"] + 1), html.Td(r["size_a"]), html.Td(r["size_b"]),
                              html.Td(r["intersection"]), html.Td(f"{r['dice']:.3f}"),
                              html.Td(f"{r['jaccard']:.3f}")])
            for r in comparison.scores.rows()]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="ril-stats-table")


def _scores_text(comparison) -> list:
    s = comparison.scores
    flag = " (both empty)" if s.volume_both_empty else ""
    return [html.Div(f"{comparison.labels[0]}  vs  {comparison.labels[1]}", className="ril-sub"),
            html.Div([html.Strong(f"Dice {s.volume_dice:.3f}"), "  ·  ",
                      html.Strong(f"Jaccard {s.volume_jaccard:.3f}"), flag,
                      html.Span(f"  on {len(s.slices)} slices", className="ril-muted-inline")],
                     id=f"{ids.COMPARE_SCORES}-volume")]


@callback(
    Output(ids.COMPARE_SCORES, "children"), Output(ids.COMPARE_PLOT, "figure"),
    Output(ids.COMPARE_PLOT, "style"), Output(ids.COMPARE_TABLE, "children"),
    Output(ids.COMPARE_DONE, "data"), Output(ids.COMPARE_CSV, "disabled"),
    Output(ids.COMPARE_EXCEL, "disabled"),
    Input(ids.COMPARE_RUN, "n_clicks"), Input(ids.PLANE, "value"),
    State(ids.COMPARE_A_VERSION, "value"), State(ids.COMPARE_A_ROI, "value"),
    State(ids.COMPARE_B_VERSION, "value"), State(ids.COMPARE_B_ROI, "value"),
    State(ids.COMPARE_SLICES, "value"), State(ids.VIEWER_META, "data"),
    State(ids.COMPARE_DONE, "data"),
    prevent_initial_call=True,
)
def show_comparison(_, plane, a_version, a_roi, b_version, b_roi, slices, meta, done):
    if not meta or (dash.ctx.triggered_id == ids.PLANE and not done):
        return [dash.no_update] * 7  # a plane change before any comparison
    hidden = {"height": "160px", "display": "none"}
    try:
        a, b = _source(a_version, a_roi), _source(b_version, b_roi)
        chosen = compare.parse_slices(slices)
        result = compare.compare_series(get_services(), access.actor(), meta["series"], a, b,
                                        plane=plane, slices=chosen)
    except (RilDashError, ValueError) as exc:
        return (html.Div(str(exc), className="ril-alert ril-alert-error"), dash.no_update,
                hidden, [], None, True, True)
    done = {"series": meta["series"], "plane": plane, "a": [a.version, a.roi],
            "b": [b.version, b.roi], "slices": chosen}
    return (_scores_text(result), _figure(result), {"height": "160px"}, _table(result), done,
            False, False)


@callback(
    Output(ids.COMPARE_DOWNLOAD, "data"),
    Input(ids.COMPARE_CSV, "n_clicks"), Input(ids.COMPARE_EXCEL, "n_clicks"),
    State(ids.COMPARE_DONE, "data"),
    prevent_initial_call=True,
)
def download_comparison(_csv, _excel, done):
    """The CSV (per slice) or Excel (volume and per slice) file of the comparison shown; a
    user who may not read the series is refused (403) by compare_series."""
    try:
        a, b = Source(*done["a"]), Source(*done["b"])
        result = compare.compare_series(get_services(), access.actor(), done["series"], a, b,
                                        plane=done["plane"], slices=done.get("slices"))
    except (compare.CompareRefused, KeyError, TypeError, ValueError):  # nothing shown, or forged
        return dash.no_update
    stem = "dice-" + done["series"].replace("/", "_").split(".nii")[0] + f"-{done['plane']}"
    fmt = "csv" if dash.ctx.triggered_id == ids.COMPARE_CSV else "xlsx"
    tables = compare.comparison_tables(result)
    return tables_download(tables[::-1] if fmt == "csv" else tables, stem, fmt)


clientside_callback(
    """function (click, rows) {
        var nu = window.dash_clientside.no_update;
        var trig = window.dash_clientside.callback_context.triggered[0] || {};
        if (!trig.value || !window.rilViewer) { return nu; }
        var index = null;
        if (trig.prop_id.indexOf("clickData") >= 0) {
            var point = trig.value.points && trig.value.points[0];
            index = point ? point.customdata : null;
        } else {
            index = JSON.parse(trig.prop_id.slice(0, trig.prop_id.lastIndexOf("."))).index;
        }
        if (index == null) { return nu; }
        window.rilViewer.goTo(index);
        return String(index);
    }""",
    Output(ids.COMPARE_JUMP, "title"),
    Input(ids.COMPARE_PLOT, "clickData"),
    Input({"type": ids.COMPARE_ROW, "index": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
