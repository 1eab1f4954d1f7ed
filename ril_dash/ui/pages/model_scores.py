"""Model scores page (``/scores``): how far each model version's drafts were from the humans.

For every series the logged-in user may read and every model ref (``id@version``) that drafted
it, the latest draft is scored against the current version per ROI it wrote
(:func:`ril_dash.application.compare.project_scores`); the page shows the per-model means and
the per-series scores, and downloads them as CSV or Excel. Per model version (a round of the
annotate–train–draft loop) it also shows the human correction effort spent on its drafts, read
from the version history (:func:`ril_dash.application.effort.effort_by_model`), and per model
trained in the tool its validation score against round and training-set size
(:mod:`ril_dash.application.loop_progress`).
"""

from __future__ import annotations

import dash
import dash_ag_grid as dag
from dash import Input, Output, callback, dcc, html

from ril_dash.application import compare
from ril_dash.application.effort import IDLE_CAP_SECONDS, effort_by_model
from ril_dash.application.loop_progress import loop_rounds, loop_series
from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.components.compare_panel import tables_download
from ril_dash.ui.components.loop_plot import loop_figure
from ril_dash.ui.pages.project_viewer import GRID_OPTIONS
from ril_dash.ui.services import get_services

SCORE = {"type": "numericColumn", "valueFormatter": {"function": "d3.format('.3f')(params.value)"}}


def register() -> None:
    dash.register_page(__name__, path="/scores", name="Model scores",
                       title="ril_dash – model scores", layout=layout)


def _grid(grid_id: str, columns: list[dict], height: str) -> dag.AgGrid:
    return dag.AgGrid(id=grid_id, rowData=[], columnDefs=columns, className="ril-grid",
                      defaultColDef={"sortable": True, "filter": True, "resizable": True,
                                     "flex": 1},
                      dashGridOptions=GRID_OPTIONS, style={"height": height, "width": "100%"})


def layout(**_query) -> html.Div:
    means = [{"field": "model", "headerName": "Model", "flex": 2},
             {"field": "roi", "headerName": "ROI"},
             {"field": "series", "headerName": "Series", "type": "numericColumn"},
             {"field": "mean_dice", "headerName": "Mean Dice", **SCORE},
             {"field": "mean_jaccard", "headerName": "Mean Jaccard", **SCORE},
             {"field": "min_dice", "headerName": "Min Dice", **SCORE},
             {"field": "max_dice", "headerName": "Max Dice", **SCORE}]
    rows = [{"field": "series", "headerName": "Series", "flex": 3},
            {"field": "model", "headerName": "Model", "flex": 2},
            {"field": "roi_name", "headerName": "ROI"},
            {"field": "draft_version", "headerName": "Draft v", "type": "numericColumn"},
            {"field": "current_version", "headerName": "Current v", "type": "numericColumn"},
            {"field": "dice", "headerName": "Dice", **SCORE},
            {"field": "jaccard", "headerName": "Jaccard", **SCORE}]
    effort = [{"field": "model", "headerName": "Model", "flex": 2},
              {"field": "series", "headerName": "Series", "type": "numericColumn"},
              {"field": "median_strokes", "headerName": "Strokes (median)",
               "type": "numericColumn"},
              {"field": "strokes", "headerName": "Strokes (total)", "type": "numericColumn"},
              {"field": "median_voxels", "headerName": "Voxels changed (median)",
               "type": "numericColumn"},
              {"field": "median_minutes", "headerName": "Minutes (median)",
               "type": "numericColumn"},
              {"field": "minutes", "headerName": "Minutes (total)", "type": "numericColumn"}]
    return html.Div(className="ril-page ril-scores", children=[
        html.H2("Model scores"),
        html.P("Each model version's latest draft of a series against the series' current "
               "annotations, per ROI the draft wrote: volume Dice and Jaccard (1.0 = the "
               "humans kept the draft as it was).", className="ril-muted"),
        html.Div(className="ril-button-row", children=[
            html.Button("Refresh", id=ids.SCORES_REFRESH, className="ril-button", n_clicks=0),
            html.Button("CSV (per series)", id=ids.SCORES_CSV, className="ril-button"),
            html.Button("CSV (means)", id=ids.SCORES_MEANS_CSV, className="ril-button"),
            html.Button("Excel", id=ids.SCORES_EXCEL, className="ril-button"),
            html.Span(id=ids.SCORES_MESSAGE, className="ril-muted", role="status")]),
        html.H3("Per model version"),
        _grid(ids.SCORES_MEANS, means, "180px"),
        html.H3("Per series"),
        _grid(ids.SCORES_GRID, rows, "420px"),
        html.H3("Correction effort per model version"),
        html.P("What the humans spent on each model version's latest drafts after the model: "
               "edit versions (strokes), voxels changed (net, draft vs current) and minutes "
               f"from the first to the last edit (pauses counted at most "
               f"{IDLE_CAP_SECONDS / 60:g} min).", className="ril-muted"),
        _grid(ids.SCORES_EFFORT, effort, "180px"),
        html.H3("Validation score per round of training"),
        html.P("Each version trained in ril_dash, scored on its validation series when it was "
               "trained (the split is kept across rounds): by round and by the number of "
               "series it learned from.", className="ril-muted"),
        dcc.Graph(id=ids.SCORES_LOOP, figure=loop_figure([]), config={"displaylogo": False}),
        dcc.Download(id=ids.SCORES_DOWNLOAD),
    ])


def _scores():
    return compare.project_scores(get_services(), access.actor())


@callback(
    Output(ids.SCORES_MEANS, "rowData"), Output(ids.SCORES_GRID, "rowData"),
    Output(ids.SCORES_MESSAGE, "children"), Output(ids.SCORES_EFFORT, "rowData"),
    Output(ids.SCORES_LOOP, "figure"),
    Input(ids.SCORES_REFRESH, "n_clicks"),
)
def show_scores(_):
    try:
        scores = _scores()
        effort = effort_by_model(get_services(), access.actor())
    except RilDashError as exc:
        return [], [], str(exc), [], dash.no_update
    rows = [dict(vars(s)) for s in scores]
    models = len({s.model for s in scores})
    return (compare.model_means(scores), rows,
            f"{len(rows)} scores of {models} model versions" if rows else
            "No series that you may read has a model draft yet.", effort,
            loop_figure(loop_series(loop_rounds(get_services()))))


@callback(
    Output(ids.SCORES_DOWNLOAD, "data"),
    Input(ids.SCORES_CSV, "n_clicks"), Input(ids.SCORES_MEANS_CSV, "n_clicks"),
    Input(ids.SCORES_EXCEL, "n_clicks"),
    prevent_initial_call=True,
)
def download_scores(*_):
    means, per_series = compare.summary_tables(_scores())
    which = dash.ctx.triggered_id
    if which == ids.SCORES_EXCEL:
        return tables_download([means, per_series], "model-scores", "xlsx")
    table = means if which == ids.SCORES_MEANS_CSV else per_series
    return tables_download([table], "model-scores" + ("-means" if table is means else ""), "csv")
