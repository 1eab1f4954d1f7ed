"""Audit log page (``/audit``, administrators only): who did what to which series, and when.

Reads the project's append-only log (:class:`ril_dash.project.audit.AuditLog`, every file of it,
rotated ones included): logins and logouts, series locks, workflow transitions, saves, exports
and imports. Filters by user, action, series (substring) and time. The newest
:data:`PAGE_ROWS` matching entries come first; "Older" shows the next page, "Newest" the first.
A page is read from the end of the log and the read stops once the page is full, so the page
stays fast on a log of millions of lines (``tests/benchmarks/bench_audit.py``).

Developer notes::

    filters, Newest ─► show_entries(from the newest) ─► AUDIT_GRID, AUDIT_COUNT, AUDIT_PAGE
    Older ─► show_entries(from AUDIT_PAGE's "next" position) ─► the same
"""

from __future__ import annotations

import datetime as dt
import json

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, callback, ctx, dcc, html

from ril_dash.errors import PermissionDenied
from ril_dash.project.audit import ACTIONS
from ril_dash.project.audit_files import Filters
from ril_dash.ui import access, ids
from ril_dash.ui.pages.project_viewer import GRID_OPTIONS
from ril_dash.ui.services import get_services

PAGE_ROWS = 1000
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
            html.Button("Newest", id=ids.AUDIT_NEWEST, n_clicks=0, className="ril-button"),
            html.Button("Older", id=ids.AUDIT_OLDER, n_clicks=0, className="ril-button",
                        disabled=True, title="the next page of older entries"),
            html.Span(id=ids.AUDIT_COUNT, className="ril-muted"),
            dcc.Store(id=ids.AUDIT_PAGE),
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


def _position(value) -> tuple[int, int] | None:
    """A page position sent back by the browser: [file number, offset], else None."""
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        return value[0], value[1]
    return None


def audit_page(user: str | None, action: str | None, series: str | None, days: str | None,
               before: tuple[int, int] | None = None) -> tuple[list[dict], tuple | None]:
    """One page of matching entries as grid rows (details as compact JSON text), newest first,
    older than ``before``; and the position of the next page (None: no older entries)."""
    since = None
    if days:
        since = (dt.datetime.now() - dt.timedelta(days=int(days))).timestamp()
    filters = Filters(user=user or None, action=action or None, series_contains=series or None,
                      since=since)
    entries, older = get_services().audit.page(filters, PAGE_ROWS, before)
    rows = [{"time": str(e.get("time") or "")[:19].replace("T", " "), "user": e.get("user"),
             "action": e.get("action"), "series": e.get("series") or "",
             "detail": "" if e.get("detail") is None else json.dumps(e["detail"],
                                                                      ensure_ascii=False)}
            for e in entries]
    return rows, older


def _count(n: int, page: int, older) -> str:
    where = f" on page {page}" if page > 1 else ""
    if older is None:
        return f"{n} entries{where}" if n or page == 1 else "no older entries"
    return f"{n} newest entries{where}; Older shows the next page"


@callback(
    Output(ids.AUDIT_GRID, "rowData"), Output(ids.AUDIT_COUNT, "children"),
    Output(ids.AUDIT_PAGE, "data"), Output(ids.AUDIT_OLDER, "disabled"),
    Input(ids.AUDIT_USER, "value"), Input(ids.AUDIT_ACTION, "value"),
    Input(ids.AUDIT_SERIES, "value"), Input(ids.AUDIT_SINCE, "value"),
    Input(ids.AUDIT_NEWEST, "n_clicks"), Input(ids.AUDIT_OLDER, "n_clicks"),
    State(ids.AUDIT_PAGE, "data"),
)
def show_entries(user, action, series, days, _newest, _older, shown):
    access.require_admin("read the audit log")
    if days not in {v for v, _ in SINCE}:
        days = ""
    shown = shown if isinstance(shown, dict) else {}
    before, page = None, 1
    if ctx.triggered_id == ids.AUDIT_OLDER and _position(shown.get("next")) is not None:
        before = _position(shown["next"])
        page = shown.get("page", 1) + 1 if isinstance(shown.get("page"), int) else 2
    rows, older = audit_page((user or "").strip(), action, (series or "").strip(), days, before)
    state = {"page": page, "next": None if older is None else list(older)}
    return rows, _count(len(rows), page, older), state, older is None
