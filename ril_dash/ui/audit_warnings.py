"""A saved change whose audit line could not be written is answered as saved, with a warning.

:func:`install_audit_warnings` starts a fresh collection of audit warnings for every request
(:func:`ril_dash.project.audit_trouble.start_collecting`, first of all ``before_request``
functions). When a change made by the request was saved but its audit line could not be written
(:meth:`ril_dash.project.audit.AuditLog.record`), the answer keeps its success status and
carries the warning "saved; the audit log could not be written":

- in the :data:`HEADER` response header, on every answer (the browser script
  ``assets/ril_warnings.js`` shows it to the user, for the JSON API and Dash callbacks alike);
- as a ``warning`` field of a JSON object answered by the API (``/ril/api/...``).

Administrators see the lasting notice in the page header (:func:`admin_notice`).
"""

from __future__ import annotations

import json

import flask
from dash import html

from ril_dash.project import audit_trouble

HEADER = "X-Ril-Warning"
_KEY = "ril_audit_warnings"


def _start() -> None:
    flask.g.setdefault(_KEY, audit_trouble.start_collecting())


def _answer(response: flask.Response) -> flask.Response:
    warnings = flask.g.get(_KEY)
    if not warnings or response.status_code >= 400:
        return response
    text = "; ".join(warnings)
    response.headers[HEADER] = text
    if response.is_json and flask.request.path.startswith("/ril/api/"):
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            response.set_data(json.dumps({**body, "warning": text}))
    return response


def install_audit_warnings(server: flask.Flask) -> None:
    """Collect each request's audit warnings and add them to its answer."""
    server.before_request_funcs.setdefault(None, []).insert(0, _start)
    server.after_request(_answer)


def admin_notice(audit_log) -> list:
    """The header's alert for administrators while audit lines could not be written."""
    text = audit_log.trouble()
    if text is None:
        return []
    return [html.Div(text, className="ril-alert ril-alert-error ril-audit-trouble",
                     role="alert")]
