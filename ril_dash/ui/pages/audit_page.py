"""Audit log page (``/audit``, administrators only): who did what to which series, and when.

Reads the project's append-only log (:class:`ril_dash.project.audit.AuditLog`): logins and
logouts, series locks, workflow transitions, saves, exports and imports. Filters by user,
action, series (substring) and time; the newest entries come first and at most
:data:`MAX_ROWS` are shown (narrow the filters to see older ones).
"""

from __future__ import annotations

import datetime as dt
import json

import dash
import dash_ag_grid as dag
from dash import Input, Output, callback, dcc, html

from ril_dash.errors import PermissionDenied
from ril_dash.project.audit import ACTIONS
from ril_dash.ui import access, ids
from ril_dash.ui.pages.project_viewer import GRID_OPTIONS
from ril_dash.ui.services import get_services

MAX_ROWS = 5000
SINCE = [("", "any time"), ("1", "last 24 hours"), ("7", "last 7 days"), ("30", "last 30 days")]


def register() -> None:
    dash.register_page(__name__, path="/audit", name="Audit", title="ril_dash – audit log",
                       layout=layout)


def _denied(message: str) -> html.Div:
    return html.Div(className="ril-page", children=[
        html.H2("Audit log"), html.Div(message, className="ril-alert ril-alert-error")])


def layout(**_query) -> html.Div:
    try:
        access.require_admin("read the audit log")
    except PermissionDenied as exc:
        return _denied(str(exc))
    return html.Div(className="ril-page ril-board", children=[
        html.H2("Audit log"),
        html.Div(className="ril-board-filters", children=[
            dcc.Input(id=ids.AUDIT_USER, placeholder="user", className="ril-search",
                      debounce=True),
            dcc.Dropdown(id=ids.AUDIT_ACTION, placeholder="any action", className="ril-select",
                         options=[{"label": a, "value": a} for a in (*ACTIONS, "login_failed")]),
            dcc.Input(id=ids.AUDIT_SERIES, placeholder="series contains…", className="ril-search",
                      debounce=True),
            dcc.Dropdown(id=ids.AUDIT_SINCE, value="", clearable=False, className="ril-select",
                         options=[{"label": label, "value": v} for v, label in SINCE]),
            html.Span(id=ids.AUDIT_COUNT, className="ril-muted"),
        ]),
        html.Div(className="ril-board-grid", children=[dag.AgGrid(
            id=ids.AUDIT_GRID, rowData=[],
            columnDefs=[{"field": "time", "headerName": "Time (server)", "flex": 2},
                        {"field": "user", "headerName": "User", "flex": 1},
                        {"field": "action", "headerName": "Action", "flex": 1},
                        {"field": "series", "headerName": "Series", "flex": 3},
                        {"field": "detail", "headerName": "Detail", "flex": 3}],
            defaultColDef={"sortable": True, "filter": True, "resizable": True},
            dashGridOptions=GRID_OPTIONS, className="ril-grid",
            style={"height": "100%", "width": "100%"})]),
    ])


def audit_rows(user: str | None, action: str | None, series: str | None,
               days: str | None) -> list[dict]:
    """The matching entries as grid rows (details as compact JSON text), newest first."""
    since = None
    if days:
        since = dt.datetime.now() - dt.timedelta(days=int(days))
    entries = get_services().audit.read(user=user or None, action=action or None, since=since,
                                        limit=None if series else MAX_ROWS)
    if series:
        entries = [e for e in entries if series in (e.get("series") or "")][:MAX_ROWS]
    return [{"time": str(e.get("time") or "")[:19].replace("T", " "), "user": e.get("user"), "action": e.get("action"),
             "series": e.get("series") or "",
             "detail": "" if e.get("detail") is None else json.dumps(e["detail"],
                                                                      ensure_ascii=False)}
            for e in entries]


@callback(
    Output(ids.AUDIT_GRID, "rowData"), Output(ids.AUDIT_COUNT, "children"),
    Input(ids.AUDIT_USER, "value"), Input(ids.AUDIT_ACTION, "value"),
    Input(ids.AUDIT_SERIES, "value"), Input(ids.AUDIT_SINCE, "value"),
)
def show_entries(user, action, series, days):
    access.require_admin("read the audit log")
    if days not in {v for v, _ in SINCE}:
        days = ""
    rows = audit_rows((user or "").strip(), action, (series or "").strip(), days)
    more = " (newest shown; narrow the filters)" if len(rows) >= MAX_ROWS else ""
    return rows, f"{len(rows)} entries{more}"
