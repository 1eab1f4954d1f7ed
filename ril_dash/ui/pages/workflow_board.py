"""Workflow board (``/workflow``): my series, each pool's queue, who holds what, and my actions.

The grid lists the series the logged-in user may see (admins: all), with their pool, holder and
who is editing them now. Pool cards give each pool's counts (waiting / held); a card, the
"show" choice and the search box filter the grid. Choosing a row shows the actions the
workflow allows this user on that series, and only those; the server checks them again when
one is taken (:func:`ril_dash.project.workflow_state.transition` under the series' lock),
records an annotation version labelled with the transition and an audit entry.

Developer notes::

    filters / refresh counter / timer ─► board() ─► grid rows + pool cards + counts
    selected row ─► actions_for() ─► action buttons (+ assign targets)
    action button ─► take_action() ─► application.moves.move_series ─► message + refresh counter
"""

from __future__ import annotations

import json
from urllib.parse import quote

import dash
import dash_ag_grid as dag
from dash import (
    ALL,
    Input,
    Output,
    State,
    callback,
    ctx,
    dcc,
    html,
)

from ril_dash.application.moves import move_series
from ril_dash.errors import PermissionDenied, RilDashError, SeriesNotFound
from ril_dash.project.workflow_state import board_states
from ril_dash.ui import access, ids
from ril_dash.ui.pages.project_viewer import GRID_OPTIONS, quick_search
from ril_dash.ui.services import get_services
from ril_dash.workflow import machine
from ril_dash.workflow.machine import Action, Target

ACTION_LABELS = {Action.ACQUIRE: "Acquire", Action.RELEASE: "Return to pool",
                 Action.ASSIGN: "Assign", Action.APPROVE: "Approve",
                 Action.SEND_BACK: "Send back"}
SHOW = [("mine", "my series"), ("queues", "my pools' queues"), ("all", "everything I can see")]
REFRESH_MS = 15_000


def register() -> None:
    dash.register_page(__name__, path="/workflow", name="Workflow",
                       title="ril_dash – workflow", layout=layout)


def board_rows(user: str) -> tuple[list[dict], dict[str, tuple[int, int]]]:
    """(grid rows of the series ``user`` may see, with pool, holder and current editor;
    ``{pool: (waiting, held)}`` counted over every series: queue sizes are no secret)."""
    services = get_services()
    workflow = services.workflow
    ids_ = [s.id for s in services.project.series]
    states = board_states(services.project.config.annotations, ids_, workflow)
    editing = {lease.series_id: lease.user for lease in services.locks.all()}
    admin = access.is_admin(user)
    counts = {name: [0, 0] for name in workflow.pools}
    rows = []
    for series_id in ids_:
        state = states[series_id]
        if state.pool in counts:
            counts[state.pool][1 if state.owner else 0] += 1
        if not admin and state.owner != user and not machine.can(workflow, state, user, "read"):
            continue
        rows.append({"id": series_id, "series": series_id, "pool": state.pool,
                     "owner": state.owner or "", "editing": editing.get(series_id, ""),
                     "mine": state.owner == user})
    return rows, {name: (w, h) for name, (w, h) in counts.items()}


def _filtered(rows: list[dict], show: str, pool: str | None, user: str) -> list[dict]:
    workflow = get_services().workflow
    if show == "mine":
        rows = [r for r in rows if r["mine"]]
    elif show == "queues":
        mine = set(workflow.pools_of(user))
        rows = [r for r in rows if r["pool"] in mine and not r["owner"]]
    if pool:
        rows = [r for r in rows if r["pool"] == pool]
    return rows


def pool_cards(counts: dict[str, tuple[int, int]], chosen: str | None) -> list:
    """One card per pool: series waiting (nobody holds them) and held."""
    cards = []
    for name, (waiting, held) in counts.items():
        cards.append(html.Button(
            [html.Strong(name), html.Span(f"{waiting} waiting · {held} held",
                                          className="ril-muted-inline")],
            id={"type": ids.WF_POOL_CARD, "pool": name}, n_clicks=0,
            className="ril-pool-card" + (" ril-pool-chosen" if name == chosen else ""),
            title=f"Show only the pool {name}"))
    return cards


def _no_workflow() -> html.Div:
    return html.Div(className="ril-page", children=[
        html.H2("Workflow"),
        html.Div(["This project has no workflow. Add a ", html.Code("workflow:"),
                  " section to project.yaml (pools, their users and rights, where series go "
                  "next) or serve with ", html.Code("ril-dash serve PROJECT --workflow FILE"),
                  "; the demo project's workflow.yaml is an example."],
                 className="ril-alert ril-alert-warning", id=ids.WF_MESSAGE),
    ])


def layout(**_query) -> html.Div:
    services = get_services()
    workflow = services.workflow
    if workflow is None:
        return _no_workflow()
    user = access.current_user()
    pools = ", ".join(workflow.pools_of(user)) or "none"
    role = " · administrator" if access.is_admin(user) else ""
    return html.Div(className="ril-page ril-board", children=[
        dcc.Store(id=ids.WF_REFRESH, data=0),
        dcc.Store(id=ids.WF_POOL, data=None),
        dcc.Interval(id=ids.WF_TIMER, interval=REFRESH_MS),
        html.H2("Workflow"),
        html.Div([html.Span("Signed in as "), html.Strong(user),
                  html.Span(f" · your pools: {pools}{role}")], className="ril-muted"),
        html.Div(id=ids.WF_CARDS, className="ril-pool-cards"),
        html.Div(className="ril-board-filters", children=[
            dcc.RadioItems(id=ids.WF_SHOW, value="mine", inline=True,
                           options=[{"label": label, "value": v} for v, label in SHOW]),
            dcc.Input(id=ids.WF_SEARCH, type="search", placeholder="Search series, pool, user…",
                      className="ril-search", debounce=False),
            html.Span(id=ids.WF_COUNT, className="ril-muted"),
        ]),
        html.Div(className="ril-board-main", children=[
            html.Div(className="ril-board-grid", children=[dag.AgGrid(
                id=ids.WF_GRID, rowData=[], getRowId="params.data.id",
                columnDefs=[{"field": "series", "headerName": "Series", "flex": 3},
                            {"field": "pool", "headerName": "Pool", "flex": 1},
                            {"field": "owner", "headerName": "Held by", "flex": 1},
                            {"field": "editing", "headerName": "Editing now", "flex": 1}],
                defaultColDef={"sortable": True, "filter": True, "resizable": True},
                dashGridOptions=GRID_OPTIONS, rowClassRules={"ril-mine": "params.data.mine"},
                className="ril-grid", style={"height": "100%", "width": "100%"})]),
            html.Aside(className="ril-board-actions", children=[
                html.H3("Actions"),
                html.Div("Choose a series.", id=ids.WF_ACTIONS, className="ril-muted"),
                html.Div(id=ids.WF_MESSAGE, role="status"),
            ]),
        ]),
    ])


@callback(
    Output(ids.WF_POOL, "data"),
    Input({"type": ids.WF_POOL_CARD, "pool": ALL}, "n_clicks"),
    State(ids.WF_POOL, "data"),
    prevent_initial_call=True,
)
def choose_pool(clicks, chosen):
    if not ctx.triggered_id or not any(clicks or []):
        return dash.no_update
    pool = ctx.triggered_id["pool"]
    return None if pool == chosen else pool


@callback(
    Output(ids.WF_GRID, "rowData"), Output(ids.WF_CARDS, "children"),
    Output(ids.WF_COUNT, "children"),
    Input(ids.WF_SHOW, "value"), Input(ids.WF_POOL, "data"), Input(ids.WF_REFRESH, "data"),
    Input(ids.WF_TIMER, "n_intervals"),
)
def board(show, pool, _refresh, _tick):
    if get_services().workflow is None:
        return [], [], ""
    user = access.current_user()
    rows, counts = board_rows(user)
    shown = _filtered(rows, show, pool, user)
    mine = sum(1 for r in rows if r["mine"])
    return shown, pool_cards(counts, pool), f"{len(shown)} shown · {mine} held by you"


quick_search(ids.WF_GRID, ids.WF_SEARCH)


@callback(
    Output(ids.WF_ACTIONS, "children"),
    Input(ids.WF_GRID, "selectedRows"), Input(ids.WF_REFRESH, "data"),
)
def actions_for(selected, _refresh):
    services = get_services()
    if not selected or services.workflow is None:
        return html.Div("Choose a series.", className="ril-muted")
    series = selected[0]["id"]
    user = access.current_user()
    try:
        state = access.series_state(series)
        if not access.may(series, "read", user) and state.owner != user:
            return html.Div("You may not see this series.", className="ril-muted")
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    workflow = access.workflow_for(user)
    allowed = machine.allowed_actions(workflow, state, user)
    held = f"held by {state.owner}" if state.owner else "nobody holds it"
    children = [html.Div(series, className="ril-series-title", title=series),
                html.Div(f"In {state.pool}, {held}.", className="ril-muted"),
                dcc.Link("Open in the viewer", href=f"/view?series={quote(series, safe='/')}",
                         className="ril-link")]
    if not allowed:
        children.append(html.Div("The workflow allows you no action on this series now.",
                                 className="ril-muted"))
    for action in allowed:
        if action is Action.ASSIGN:
            targets = machine.assign_targets(workflow, state, user)
            children.append(html.Div(className="ril-assign", children=[
                dcc.Dropdown(id={"type": ids.WF_ASSIGN_TARGET, "series": series},
                             clearable=False,
                             value=json.dumps([targets[0].pool, targets[0].user]),
                             options=[{"label": str(t), "value": json.dumps([t.pool, t.user])}
                                      for t in targets]),
                html.Button(ACTION_LABELS[action], className="ril-button", n_clicks=0,
                            id={"type": ids.WF_ACTION, "action": action.value})]))
        else:
            children.append(html.Button(ACTION_LABELS[action], className="ril-button",
                                        n_clicks=0,
                                        id={"type": ids.WF_ACTION, "action": action.value}))
    return children


def _target(raw) -> Target | None:
    try:
        pool, user = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if not isinstance(pool, str) or not (user is None or isinstance(user, str)):
        return None
    return Target(pool, user)


@callback(
    Output(ids.WF_MESSAGE, "children"), Output(ids.WF_REFRESH, "data"),
    Input({"type": ids.WF_ACTION, "action": ALL}, "n_clicks"),
    State(ids.WF_GRID, "selectedRows"),
    State({"type": ids.WF_ASSIGN_TARGET, "series": ALL}, "value"),
    State(ids.WF_REFRESH, "data"),
    prevent_initial_call=True,
)
def take_action(clicks, selected, targets, refresh):
    if not ctx.triggered_id or not any(clicks or []) or not selected:
        return dash.no_update, dash.no_update
    action = ctx.triggered_id["action"]
    series = _selected_series(selected)
    try:
        target = _target(targets[0]) if action == "assign" and targets else None
        result = perform(series, action, target)
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error"), (refresh or 0) + 1
    return (html.Div(f"Done: {result.label}.", className="ril-alert ril-alert-ok",
                     id=ids.WF_DONE), (refresh or 0) + 1)


def _selected_series(selected) -> str:
    """The series of the grid's selected row; the grid only lists the project's series, so
    anything else is a forged request and is refused (403) without a message."""
    row = selected[0] if isinstance(selected, list) and selected else None
    series = row.get("id") if isinstance(row, dict) else None
    try:
        get_services().project.get_series(series)
    except SeriesNotFound:
        raise PermissionDenied(f"{str(series)[:200]!r} is not a series of this project.") \
            from None
    return series


def perform(series: str, action: str, target: Target | None):
    """Take ``action`` on ``series`` for the logged-in user (checked again under the lock)."""
    return move_series(get_services(), access.actor(), series, action, target)
