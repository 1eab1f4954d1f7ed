"""The text annotations of a series (project-wide fields such as "Contrast phase") in the viewer.

One input per field of ``project.yaml``'s ``text_fields``, of the kind its type needs (a
dropdown for a choice, a checklist for several, a number box, yes/no, free text). A change is
saved at once as a new annotation version, like a stroke; a refused value shows the message
and the field returns to its saved value.

Developer notes::

    field changed ─► series_edits.set_texts(parent = ANNOT_VERSION.version) ─► ANNOT_VERSION (new)
    ANNOT_VERSION ─clientside─► rilAnnotate.sync (the painting layer learns the new version)
"""

from __future__ import annotations

import dash
from dash import (
    ALL,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
    html,
)

from ril_dash.errors import RilDashError
from ril_dash.project.schema import ProjectConfig, TextFieldDef
from ril_dash.ui import access, ids
from ril_dash.ui.services import get_services


def _input(field: TextFieldDef, value, disabled: bool = False):
    fid = {"type": ids.TEXT_FIELD, "name": field.name}
    if field.type == "choice":
        return dcc.Dropdown(id=fid, value=value, clearable=not field.required, disabled=disabled,
                            options=[{"label": v, "value": v} for v in field.values])
    if field.type in ("multi_choice", "yes_no"):
        options = ([{"label": v, "value": v} for v in field.values]
                   if field.type == "multi_choice" else
                   [{"label": "yes", "value": True}, {"label": "no", "value": False}])
        for option in options:
            option["disabled"] = disabled
        if field.type == "multi_choice":
            return dcc.Checklist(id=fid, value=value or [], inline=True, options=options)
        return dcc.RadioItems(id=fid, value=value, inline=True, options=options)
    kind = "number" if field.type == "number" else "text"
    return dcc.Input(id=fid, type=kind, value=value, debounce=True, className="ril-wide-input",
                     disabled=disabled)


def text_fields_section(config: ProjectConfig, texts: dict, *,
                        disabled: bool = False) -> html.Details | None:
    """The "Series information" section, or None when the project defines no text fields.

    ``disabled``: shown read-only (the server refuses changes regardless)."""
    if not config.text_fields:
        return None
    rows = [html.Div(className="ril-text-field", children=[
        html.Span(field.name + (" *" if field.required else ""), className="ril-sub"),
        _input(field, texts.get(field.name), disabled)]) for field in config.text_fields]
    return html.Details([html.Summary("Series information"), *rows,
                         html.Div(id=ids.TEXT_MESSAGE, className="ril-annot-message")],
                        open=True, className="ril-annot-section")


@callback(
    Output(ids.TEXT_MESSAGE, "children"),
    Output(ids.ANNOT_VERSION, "data", allow_duplicate=True),
    Input({"type": ids.TEXT_FIELD, "name": ALL}, "value"),
    State(ids.VIEWER_META, "data"), State(ids.ANNOT_VERSION, "data"),
    prevent_initial_call=True,
)
def save_text(values, meta, info):
    from ril_dash.application.series_edits import set_texts
    from ril_dash.project.text_values import missing_required

    trigger = ctx.triggered_id
    if not trigger or not meta:
        return dash.no_update, dash.no_update
    if info and info.get("viewing") is not None:  # showing an old version: read-only
        return "Viewing an old version (read-only): nothing was saved.", dash.no_update
    services = get_services()
    series = meta["series"]
    value = ctx.triggered[0]["value"]
    try:
        who = access.actor()
        info = info or {}
        parent = info["version"] if "version" in info else services.annotations(series).version
        change = set_texts(services, who, series, parent, {trigger["name"]: value})
    except RilDashError as exc:
        return html.Span(str(exc), className="ril-annot-error"), dash.no_update
    missing = missing_required(services.project.config, change.state.texts)
    note = f"Required: {', '.join(missing)}" if missing else "Saved."
    if not change.changed:
        return note, dash.no_update
    return note, {"series": series, "version": change.state.version,
                  "can_undo": change.can_undo, "can_redo": change.can_redo,
                  "viewing": None}


clientside_callback(
    """function (info) {
        if (info && window.rilAnnotate && window.rilAnnotate.sync) { window.rilAnnotate.sync(info); }
        return window.dash_clientside.no_update;
    }""",
    Output(ids.TEXT_MESSAGE, "title"),
    Input(ids.ANNOT_VERSION, "data"),
    prevent_initial_call=True,
)


@callback(
    Output({"type": ids.TEXT_FIELD, "name": ALL}, "value"),
    Input(ids.ANNOT_VERSION, "data"),
    State({"type": ids.TEXT_FIELD, "name": ALL}, "value"),
    State({"type": ids.TEXT_FIELD, "name": ALL}, "id"),
    prevent_initial_call=True,
)
def show_saved_texts(info, shown, field_ids):
    """After undo, redo, rollback or viewing an old version, show the values of that version."""
    if not info or not info.get("series") or not field_ids:
        return [dash.no_update] * len(field_ids or [])
    version = info.get("viewing")
    access.require(info["series"], "read")
    texts = get_services().state(info["series"], version).texts
    saved = [texts.get(fid["name"]) for fid in field_ids]
    return [dash.no_update if s == v else s for s, v in zip(saved, shown)]
