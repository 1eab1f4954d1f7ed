"""The header's notice of new model bundles: "kidney-seg 1.3.0 is available", without a restart.

Every page of the shell polls the catalog (cheap: it is cached by folder times) every
:data:`POLL_MS`. The first answer only records when the page looked; a usable bundle version
that appears later (:func:`ril_dash.models.catalog.notices`) is announced with a link to the
Models page until the user dismisses it. Only logged-in users are answered (the callback asks
for the user; a request without a session gets 401).

Developer notes::

    NOTICE_TIMER ─► poll_catalog(last look) ─► NOTICE_SEEN (this look's time), NOTICE (new)
    Dismiss ─clientside─► NOTICE emptied
"""

from __future__ import annotations

import time

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from ril_dash.models.catalog import notices
from ril_dash.ui import access, ids
from ril_dash.ui.model_catalog import catalog_entries
from ril_dash.ui.services import get_services

#: how often the pages ask whether new bundles appeared
POLL_MS = 10_000
DISMISS = "models-notice-dismiss"


def notice_parts() -> list:
    """The shell's timer, the store of the last look's time and the (hidden when empty)
    notice."""
    return [dcc.Interval(id=ids.NOTICE_TIMER, interval=POLL_MS),
            dcc.Store(id=ids.NOTICE_SEEN),
            html.Div(id=ids.NOTICE, className="ril-model-notice", role="status")]


def notice_box(lines: list[str]) -> html.Div:
    return html.Div(className="ril-alert ril-alert-info", children=[
        *[html.Div(line, className="ril-notice-line") for line in lines],
        dcc.Link("Open the Models page", href="/models", className="ril-nav-link"),
        html.Button("Dismiss", id=DISMISS, className="ril-button", n_clicks=0)])


@callback(
    Output(ids.NOTICE_SEEN, "data"), Output(ids.NOTICE, "children"),
    Input(ids.NOTICE_TIMER, "n_intervals"), State(ids.NOTICE_SEEN, "data"),
    State(ids.NOTICE, "children"),
)
def poll_catalog(_ticks, last_look, shown):
    """Announce the bundle versions that appeared since the page's last look."""
    access.current_user()  # logged-in users only (NotLoggedIn: 401)
    now = time.time()
    if last_look is None:
        return now, dash.no_update
    lines = notices(catalog_entries(get_services()), float(last_look))
    if not lines:
        return now, dash.no_update
    return now, notice_box(lines + _shown_lines(shown))


def _shown_lines(shown) -> list[str]:
    """The lines of a notice still on screen (a second new version adds to them)."""
    if not isinstance(shown, dict):
        return []
    found = []
    for child in (shown.get("props") or {}).get("children") or []:
        props = child.get("props") or {} if isinstance(child, dict) else {}
        if props.get("className") == "ril-notice-line":
            found.append(str(props.get("children")))
    return found


clientside_callback(
    "function (n) { return n ? [] : window.dash_clientside.no_update; }",
    Output(ids.NOTICE, "children", allow_duplicate=True),
    Input(DISMISS, "n_clicks"),
    prevent_initial_call=True,
)
