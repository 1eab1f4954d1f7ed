"""What the ROI and text-field editors share: run one project.yaml change and report it.

A change is an application command of :mod:`ril_dash.application.definitions` (admins only,
audited; it edits project.yaml under a lock with a hash check, validation and an atomic write,
and makes this server use the new file). :func:`apply_change` runs it and returns what the page
shows: the redrawn table, the new file hash, an error alert or a status line. When someone else
changed the file first, it redraws the table from disk so the user can redo the change.
"""

from __future__ import annotations

from typing import Callable

import dash
from dash import ctx, html

from ril_dash.errors import RilDashError, VersionConflict
from ril_dash.project.roi_editing import read_project_yaml
from ril_dash.ui.services import get_services


def error_alert(message: str) -> html.Div:
    return html.Div([html.Strong("Not saved. "), html.Span(message)],
                    className="ril-alert ril-alert-error")


def clicked() -> bool:
    """The callback was triggered by a real click (not by a button being drawn)."""
    return bool(ctx.triggered_id) and bool(ctx.triggered and ctx.triggered[0]["value"])


def apply_change(action: Callable[[], object], done: str, table: Callable):
    """Run ``action()``; return (table rows, new hash, alert, status) for the page."""
    services = get_services()
    try:
        action()
    except VersionConflict as exc:
        try:
            config, sha = read_project_yaml(services.project.dir)
            services.reload_config()
        except RilDashError:
            return dash.no_update, dash.no_update, error_alert(str(exc)), None
        return table(config), sha, error_alert(str(exc)), None
    except RilDashError as exc:
        return dash.no_update, dash.no_update, error_alert(str(exc)), None
    config, sha = read_project_yaml(services.project.dir)
    return table(config), sha, None, done
