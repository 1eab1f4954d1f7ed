"""Project viewer page (``/``): every series of the project in a virtualised grid.

The folder panel on the left mirrors the images tree (e.g. Patient → Study → Series) with
series counts; choosing a folder narrows the grid to it. The grid (AG Grid, community edition)
has one column per hierarchy level, the metadata CSV's columns, a quick search box, sorting
and per-column filters. Clicking a series name (or double-clicking any cell) opens it in the
slice viewer. Series with annotations are in bold. Ticked series (or all those shown) can be
drafted by a model ("Run a model", :mod:`ril_dash.ui.components.model_batch`).

The grid uses AG Grid's infinite row model: it asks the server for blocks of 100 rows, and the
folder, the search box, the column filters and the sort are applied on the server
(:mod:`ril_dash.application.series_table`), so a project of 100,000 series opens as fast as one
of 100 and the browser never holds more rows than were scrolled through.

Developer notes::

    grid getRowsRequest (+ folder, search) ─► grid_rows ─► getRowsResponse (rows, row count)
    folder click ─► FOLDER_STORE ─► folder panel; count; export link (and clears the filter)
    FOLDER_STORE, search box ──clientside──► grid purgeInfiniteCache (asks its rows again)
    folder filter text ─► folder panel
    cellClicked / cellDoubleClicked ─► URL (/view?series=…)
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import dash
import dash_ag_grid as dag
from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html

from ril_dash.application.grid_query import GridQuery, GridQueryError
from ril_dash.application.series_table import (annotations_of, count_label, grid_rows,
                                               level_names, series_table)
from ril_dash.application.uncertainty import model_uncertainty
from ril_dash.errors import RilDashError
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

#: the project grid: rows asked from the server block by block; ticked series are what "Run a
#: model" drafts (a click still opens one; AG Grid cannot tick every row of an infinite grid)
SERIES_GRID_OPTIONS = {
    **GRID_OPTIONS,
    "rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": False,
                     "enableClickSelection": False},
    "rowModelType": "infinite", "cacheBlockSize": 100, "maxConcurrentDatasourceRequests": 1,
    "infiniteInitialRowCount": 1, "maxBlocksInCache": 50,
}
SERIES_GRID_OPTIONS.pop("quickFilterText")


def register() -> None:
    dash.register_page(__name__, path="/", name="Project", title="ril_dash – project",
                       layout=layout)


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


def grid_numbers() -> dict[str, dict[str, float]]:
    """The grid's number columns that are not in the series table: ``{field: {series:
    value}}`` (the uncertainty of each model that scored series here)."""
    return {uncertainty_field(ref): scores for ref, scores in uncertainty_scores().items()}


def column_defs(project) -> list[dict]:
    cols = [{"field": f"level:{name}", "headerName": name} for name in level_names(project)]
    cols.append({"field": "name", "headerName": "Series", "cellClass": "ril-link-cell",
                 "pinned": "left", "minWidth": 180})
    cols += [{"field": f"meta:{key}", "headerName": key}
             for key in series_table(project).meta_columns]
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
    children_of = series_table(project).folder_children(folder)
    crumbs = [html.Button("All series", id={"type": FOLDER_BUTTON, "path": ""},
                          className="ril-crumb", n_clicks=0)]
    parts = folder.split("/") if folder else []
    for i, part in enumerate(parts):
        crumbs.append(html.Span("›", className="ril-crumb-sep"))
        crumbs.append(html.Button(part, id={"type": FOLDER_BUTTON, "path": "/".join(parts[:i + 1])},
                                  className="ril-crumb", n_clicks=0))
    needle = (text or "").strip().lower()
    matching = [(c, n) for c, n in children_of if needle in c.rsplit("/", 1)[-1].lower()]
    children = [
        html.Button([html.Span(child.rsplit("/", 1)[-1], className="ril-folder-name"),
                     html.Span(str(count), className="ril-count")],
                    id={"type": FOLDER_BUTTON, "path": child}, className="ril-folder", n_clicks=0)
        for child, count in matching[:MAX_FOLDERS_SHOWN]
    ]
    if not children_of:
        children = [html.Div("No sub-folders", className="ril-muted")]
    elif not matching:
        children = [html.Div(f"No sub-folder matches '{text}'", className="ril-muted")]
    elif len(matching) > MAX_FOLDERS_SHOWN:
        children.append(html.Div(f"Showing {MAX_FOLDERS_SHOWN} of {len(matching)} folders; "
                                 "type above to find others.", className="ril-muted"))
    return [html.Div(crumbs, className="ril-crumbs"),
            html.Div(children, className="ril-folder-list")]


def _count(folder: str) -> str:
    services = get_services()
    table = series_table(services.project)
    notes = annotations_of(services, access.actor(), table)
    return count_label(notes.annotated, table.folder_mask(folder), folder)


def layout(**_query) -> html.Div:
    project = get_services().project
    return html.Div(className="ril-project-page", children=[
        dcc.Store(id=ids.FOLDER_STORE, data=""),
        dcc.Store(id=ids.GRID_REFRESH, data=0),
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
                html.Span(_count(""), id=ids.SERIES_COUNT, className="ril-count-label"),
                dcc.Link("Export these series", href="/export", id=ids.EXPORT_LINK,
                         className="ril-nav-link ril-export-link"),
            ]),
            batch_section(),
            dag.AgGrid(
                id=ids.GRID,
                rowModelType="infinite",
                columnDefs=column_defs(project),
                defaultColDef={"sortable": True, "filter": True, "resizable": True,
                               "floatingFilter": False, "minWidth": 110},
                dashGridOptions=SERIES_GRID_OPTIONS,
                rowClassRules={"ril-annotated": "params.data && params.data.annotated",
                               "ril-restricted": "params.data && params.data.restricted"},
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
    Output(ids.FOLDER_FILTER, "value"),
    Output(ids.SERIES_COUNT, "children"),
    Output(ids.EXPORT_LINK, "href"),
    Input(ids.FOLDER_STORE, "data"),
    Input(ids.FOLDER_FILTER, "value"),
    prevent_initial_call=True,
)
def show_folder(folder, text):
    """A new folder: its sub-folders (the filter emptied), its series count and export link;
    new filter text: the sub-folders that match it. One callback, so that a folder click
    draws the folder list once (emptying the filter does not call it again)."""
    folder = _known_folder(folder)
    if ctx.triggered_id == ids.FOLDER_FILTER:
        return (_folder_panel(get_services().project, folder, text or ""), dash.no_update,
                dash.no_update, dash.no_update)
    link = "/export" + (f"?glob={quote(folder + '/*', safe='')}" if folder else "")
    return _folder_panel(get_services().project, folder), "", _count(folder), link


def _known_folder(folder) -> str:
    """``folder`` if it holds series of the project, else '' (the whole project)."""
    if not isinstance(folder, str) or not folder:
        return ""
    return folder if series_table(get_services().project).has_folder(folder) else ""


@callback(
    Output(ids.GRID, "getRowsResponse"),
    Input(ids.GRID, "getRowsRequest"),
    State(ids.FOLDER_STORE, "data"),
    State(ids.SEARCH, "value"),
    prevent_initial_call=True,
)
def grid_block(request, folder, search):
    """One block of rows for the grid (and how many rows match), as the user may see them."""
    try:
        query = GridQuery.from_request(request, _known_folder(folder),
                                       search if isinstance(search, str) else "")
        rows, count = grid_rows(get_services(), access.actor(), query, grid_numbers())
    except (GridQueryError, TypeError, ValueError, AttributeError):
        rows, count = [], 0  # a forged or stale request: nothing to show
    return {"rowData": rows, "rowCount": count}


# a new folder or search: the grid forgets its rows and asks again, from the top
clientside_callback(
    """function (folder, search) {
        var api = window.dash_ag_grid && window.dash_ag_grid.getApi("%s");
        if (api) { api.purgeInfiniteCache(); api.ensureIndexVisible(0, "top"); }
        return Date.now();
    }""" % ids.GRID,
    Output(ids.GRID_REFRESH, "data"),
    Input(ids.FOLDER_STORE, "data"),
    Input(ids.SEARCH, "value"),
    prevent_initial_call=True,
)


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
