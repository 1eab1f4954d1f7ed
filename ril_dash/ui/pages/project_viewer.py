"""Project viewer page (``/``): every series of the project in a virtualised grid.

The folder panel on the left mirrors the images tree (e.g. Patient → Study → Series) with
series counts; choosing a folder narrows the grid to it. The grid (AG Grid, community edition,
virtualised so 10,000 rows stay fast) has one column per hierarchy level, the metadata CSV's
columns, a quick search box, sorting and per-column filters. Clicking a series name (or
double-clicking any cell) opens it in the slice viewer. Series with annotations are in bold.
Ticked series (or all those shown) can be drafted by a model ("Run a model",
:mod:`ril_dash.ui.components.model_batch`).

Developer notes::

    folder click ─► FOLDER_STORE ─► folder panel; grid rowData + count (and clears the filter)
    folder filter text ─► folder panel
    search box ──clientside──► grid quickFilterText
    cellClicked / cellDoubleClicked ─► URL (/view?series=…)
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import dash
import dash_ag_grid as dag
from dash import ALL, Input, Output, callback, clientside_callback, ctx, dcc, html

from ril_dash.application import rights
from ril_dash.application.uncertainty import model_uncertainty
from ril_dash.errors import RilDashError
from ril_dash.project.annotation_store import annotated_series
from ril_dash.project.history_scan import read_summaries
from ril_dash.project.text_values import format_text_value
from ril_dash.ui import access, ids
from ril_dash.ui.components.model_batch import batch_section
from ril_dash.ui.model_catalog import runnable
from ril_dash.ui.services import get_services

FOLDER_BUTTON = "folder-button"
MAX_FOLDERS_SHOWN = 100
GRID_OPTIONS = {
    "animateRows": False,
    "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
    "quickFilterText": "",
    "theme": {"function": "themeQuartz.withParams({backgroundColor: '#1e2126', "
                          "foregroundColor: '#e6e8eb', headerBackgroundColor: '#262a30', "
                          "accentColor: '#4da3ff', browserColorScheme: 'dark', fontSize: 13, "
                          "rowHeight: 32, headerHeight: 36})"},
}

#: the project grid: ticked series are what "Run a model" drafts (a click still opens one)
SERIES_GRID_OPTIONS = {**GRID_OPTIONS, "rowSelection": {
    "mode": "multiRow", "checkboxes": True, "headerCheckbox": True,
    "enableClickSelection": False}}


def register() -> None:
    dash.register_page(__name__, path="/", name="Project", title="ril_dash – project",
                       layout=layout)


def _level_names(project) -> list[str]:
    depth = max((len(s.levels) for s in project.series), default=0)
    names = list(project.config.hierarchy)
    return names[:depth] + [f"Level {i + 1}" for i in range(len(names), depth)]


def uncertainty_scores() -> dict[str, dict[str, float]]:
    """``{model ref: {series: score}}`` of the active version of each enabled model that has
    scored series here (none when the model settings cannot be read: the Models page says
    why)."""
    services = get_services()
    try:
        return model_uncertainty(services, runnable(services))
    except RilDashError:
        return {}


def uncertainty_field(ref: str) -> str:
    """The grid field of a model's uncertainty (AG Grid reads dots in a field as nesting).

    >>> uncertainty_field("liver-seg@1.0.0")
    'uncertainty:liver-seg_1_0_0'
    """
    return "uncertainty:" + re.sub(r"[^A-Za-z0-9_-]", "_", ref)


def series_rows(project, folder: str = "") -> list[dict]:
    """One grid row per series under ``folder`` ('' is the whole project).

    With a workflow, rows also give the pool and holder; the annotations (text values, ROIs)
    and metadata columns of a series the user may not open are left out (the metadata stays
    when project.yaml sets ``metadata_visible_to: everyone``), and its row is marked
    ``restricted``. The search box and column filters work on these rows in the browser, so
    what is left out cannot be found by them either. The uncertainty of each model that
    scored the series (:func:`uncertainty_scores`) is a column too."""
    prefix = folder + "/" if folder else ""
    levels = _level_names(project)
    edited = annotated_series(project.config.annotations)
    summaries = read_summaries(project.config.annotations, edited)
    roi_names = {roi.value: roi.name for roi in project.config.rois}
    chosen = [r for r in project.series if not prefix or r.id.startswith(prefix)]
    view = rights.series_view(get_services(), access.actor(), [r.id for r in chosen],
                              annotated=edited, summaries=summaries)
    states = view.states
    uncertainty = uncertainty_scores()
    rows = []
    for record in chosen:
        row = {"id": record.id, "name": record.name, "size_mb": round(record.size / 1e6, 2),
               "annotated": record.id in edited}
        for name, value in zip(levels, record.levels):
            row[f"level:{name}"] = value
        if view.shows_metadata(record.id):
            for key, value in project.metadata.get(record.id, {}).items():
                row[f"meta:{key}"] = value
        if states is not None:
            row["pool"], row["owner"] = states[record.id].pool, states[record.id].owner or ""
        summary = summaries.get(record.id)
        if not view.readable(record.id):
            row["restricted"] = True
            rows.append(row)
            continue
        for ref, scores in uncertainty.items():
            if record.id in scores:
                row[uncertainty_field(ref)] = scores[record.id]
        if summary:
            row["rois"] = ", ".join(roi_names.get(v, str(v)) for v in summary["rois"])
            for name, value in summary["texts"].items():
                row[f"text:{name}"] = format_text_value(value)
        rows.append(row)
    return rows


def count_label(rows: list[dict], folder: str = "") -> str:
    """'13 series · 2 annotated · 11 not annotated' (in a folder: '… in P1')."""
    annotated = sum(1 for row in rows if row["annotated"])
    where = f" in {folder}" if folder else ""
    return (f"{len(rows)} series{where} · {annotated} annotated · "
            f"{len(rows) - annotated} not annotated")


def column_defs(project) -> list[dict]:
    cols = [{"field": f"level:{name}", "headerName": name} for name in _level_names(project)]
    cols.append({"field": "name", "headerName": "Series", "cellClass": "ril-link-cell",
                 "pinned": "left", "minWidth": 180})
    meta_columns = []
    for values in project.metadata.values():
        meta_columns.extend(k for k in values if k not in meta_columns)
    cols += [{"field": f"meta:{key}", "headerName": key} for key in meta_columns]
    cols += [{"field": f"text:{field.name}", "headerName": field.name}
             for field in project.config.text_fields]
    cols.append({"field": "rois", "headerName": "Annotated ROIs", "minWidth": 150})
    cols += [{"field": uncertainty_field(ref), "headerName": f"Uncertainty ({ref})",
              "filter": "agNumberColumnFilter", "type": "numericColumn", "minWidth": 150,
              "sortingOrder": ["desc", "asc", None],
              "valueFormatter": {"function": "params.value == null ? '' : "
                                             "d3.format('.3f')(params.value)"},
              "headerTooltip": "How unsure the model is (mean entropy of its output, 0-1): "
                               "annotate the highest first"}
             for ref in sorted(uncertainty_scores())]
    if get_services().workflow is not None:
        cols += [{"field": "pool", "headerName": "Pool"}, {"field": "owner",
                                                           "headerName": "Held by"}]
    cols.append({"field": "size_mb", "headerName": "Size (MB)", "filter": "agNumberColumnFilter",
                 "maxWidth": 130, "type": "numericColumn"})
    cols.append({"field": "id", "headerName": "Path", "minWidth": 260})
    return cols


def _folder_panel(project, folder: str, text: str = "") -> list:
    """Breadcrumbs to ``folder`` and its sub-folders (those matching ``text``, at most
    MAX_FOLDERS_SHOWN of them: a list of thousands of buttons helps nobody and slows the page)."""
    tree = project.folder_tree()
    node = tree.get(folder, {"children": [], "count": 0})
    crumbs = [html.Button("All series", id={"type": FOLDER_BUTTON, "path": ""},
                          className="ril-crumb", n_clicks=0)]
    parts = folder.split("/") if folder else []
    for i, part in enumerate(parts):
        crumbs.append(html.Span("›", className="ril-crumb-sep"))
        crumbs.append(html.Button(part, id={"type": FOLDER_BUTTON, "path": "/".join(parts[:i + 1])},
                                  className="ril-crumb", n_clicks=0))
    needle = (text or "").strip().lower()
    matching = [c for c in node["children"] if needle in c.rsplit("/", 1)[-1].lower()]
    children = [
        html.Button([html.Span(child.rsplit("/", 1)[-1], className="ril-folder-name"),
                     html.Span(str(tree[child]["count"]), className="ril-count")],
                    id={"type": FOLDER_BUTTON, "path": child}, className="ril-folder", n_clicks=0)
        for child in matching[:MAX_FOLDERS_SHOWN]
    ]
    if not node["children"]:
        children = [html.Div("No sub-folders", className="ril-muted")]
    elif not matching:
        children = [html.Div(f"No sub-folder matches '{text}'", className="ril-muted")]
    elif len(matching) > MAX_FOLDERS_SHOWN:
        children.append(html.Div(f"Showing {MAX_FOLDERS_SHOWN} of {len(matching)} folders; "
                                 "type above to find others.", className="ril-muted"))
    return [html.Div(crumbs, className="ril-crumbs"),
            html.Div(children, className="ril-folder-list")]


def layout(**_query) -> html.Div:
    project = get_services().project
    rows = series_rows(project)
    return html.Div(className="ril-project-page", children=[
        dcc.Store(id=ids.FOLDER_STORE, data=""),
        html.Aside(className="ril-folders", children=[
            html.H2("Folders"),
            dcc.Input(id=ids.FOLDER_FILTER, type="search", placeholder="Find a folder…",
                      className="ril-search ril-folder-filter", autoComplete="off"),
            html.Div(_folder_panel(project, ""), id=ids.FOLDERS),
        ]),
        html.Section(className="ril-series", children=[
            html.Div(className="ril-toolbar", children=[
                dcc.Input(id=ids.SEARCH, type="search", placeholder="Filter series by any column…",
                          debounce=False, className="ril-search", autoComplete="off"),
                html.Span(count_label(rows), id=ids.SERIES_COUNT, className="ril-count-label"),
                dcc.Link("Export these series", href="/export", id=ids.EXPORT_LINK,
                         className="ril-nav-link ril-export-link"),
            ]),
            batch_section(),
            dag.AgGrid(
                id=ids.GRID,
                rowData=rows,
                columnDefs=column_defs(project),
                defaultColDef={"sortable": True, "filter": True, "resizable": True,
                               "floatingFilter": False, "minWidth": 110},
                dashGridOptions=SERIES_GRID_OPTIONS,
                rowClassRules={"ril-annotated": "params.data.annotated",
                               "ril-restricted": "params.data.restricted"},
                getRowId="params.data.id",
                columnSize="autoSize",
                className="ril-grid",
                style={"height": "100%", "width": "100%"},
            ),
        ]),
    ])


@callback(
    Output(ids.FOLDER_STORE, "data"),
    Input({"type": FOLDER_BUTTON, "path": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def choose_folder(clicks):
    if not ctx.triggered_id or not any(clicks):
        return dash.no_update
    return ctx.triggered_id["path"]


@callback(
    Output(ids.FOLDERS, "children"),
    Input(ids.FOLDER_STORE, "data"),
    Input(ids.FOLDER_FILTER, "value"),
    prevent_initial_call=True,
)
def show_folders(folder, text):
    project = get_services().project
    folder = folder if folder in project.folder_tree() else ""
    return _folder_panel(project, folder, text or "")


@callback(
    Output(ids.GRID, "rowData"),
    Output(ids.SERIES_COUNT, "children"),
    Output(ids.FOLDER_FILTER, "value"),
    Output(ids.EXPORT_LINK, "href"),
    Input(ids.FOLDER_STORE, "data"),
    prevent_initial_call=True,
)
def show_folder_series(folder):
    project = get_services().project
    folder = folder if folder in project.folder_tree() else ""
    rows = series_rows(project, folder)
    link = "/export" + (f"?glob={quote(folder + '/*', safe='')}" if folder else "")
    return rows, count_label(rows, folder), "", link


def quick_search(grid_id: str, search_id: str, options: dict = GRID_OPTIONS) -> None:
    """Let the text box ``search_id`` filter the grid ``grid_id`` (whose options are
    ``options``) in the browser (any column)."""
    clientside_callback(
        "function (text) { return Object.assign(%s, {quickFilterText: text || ''}); }"
        % json.dumps(options),
        Output(grid_id, "dashGridOptions", allow_duplicate=True),
        Input(search_id, "value"),
        prevent_initial_call=True,
    )


quick_search(ids.GRID, ids.SEARCH, SERIES_GRID_OPTIONS)


clientside_callback(
    """function (clicked, doubleClicked) {
        var trig = window.dash_clientside.callback_context.triggered[0] || {};
        var event = trig.value;
        if (!event || !event.rowId) { return window.dash_clientside.no_update; }
        if (trig.prop_id.endsWith("cellClicked") && event.colId !== "name") {
            return window.dash_clientside.no_update;
        }
        // navigate like dcc.Link (history + the event dcc.Location listens to): quicker than
        // changing the Location through a callback output
        window.history.pushState({}, "", "/view?series=" + encodeURIComponent(event.rowId));
        window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
        return window.dash_clientside.no_update;
    }""",
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ids.GRID, "cellClicked"),
    Input(ids.GRID, "cellDoubleClicked"),
    prevent_initial_call=True,
)
