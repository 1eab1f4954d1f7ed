"""ROI manager page (``/rois``): the dataset-level ROI definitions of project.yaml, edited in place.

A table lists every ROI (colour swatch, name, RadLex ID, mask value, type, lock) with per-row
Edit / ↑ / ↓ / Delete buttons; an Add form, an Edit form and a delete confirmation dialog sit
below it. All changes go through :mod:`ril_dash.project.roi_editing` (locked, validated,
atomic, compare-and-swap on the file hash this page last saw), so an invalid change is never
written and a change made meanwhile by someone else is reported instead of overwritten. Saving
rewrites project.yaml, which drops its comments. After every change the running server reloads
the project config (:func:`ril_dash.ui.components.yaml_edits.reload_project`). Names are always rendered as text, never as HTML.

Developer notes::

    layout ─► table + ROI_SHA (hash of project.yaml shown)
    Add / Save (edit) / ↑↓ / Delete-confirm ─► roi_editing.*(expected_sha256=ROI_SHA)
        ─► reload_project ─► table, ROI_SHA, ROI_ALERT (error) / ROI_STATUS (done)
    Edit button ─► edit form filled + shown     Delete button ─► dialog with the series count
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from ril_dash.errors import RilDashError
from ril_dash.project.roi_editing import (
    DeleteNeedsConfirmation,
    add_roi,
    delete_roi,
    move_roi,
    read_project_yaml,
    series_using_roi,
    update_roi,
)
from ril_dash.project.schema import ROI_TYPES
from ril_dash.ui import access, ids
from ril_dash.ui.components.text_field_manager import text_field_section
from ril_dash.ui.components.yaml_edits import (
    apply_change,
    clicked,
    error_alert,
    reload_project,
)
from ril_dash.ui.services import get_services

LOCKED = "locked"
CONFIRM_WORD = "DELETE"
_CHANGE_OUTPUTS = [Output(ids.ROI_TABLE, "children", allow_duplicate=True),
                   Output(ids.ROI_SHA, "data", allow_duplicate=True),
                   Output(ids.ROI_ALERT, "children", allow_duplicate=True),
                   Output(ids.ROI_STATUS, "children", allow_duplicate=True)]


def register() -> None:
    dash.register_page(__name__, path="/rois", name="ROIs", title="ril_dash – ROIs",
                       layout=layout)




# ---------------------------------------------------------------- rendering
def _button(label: str, kind: str, name: str, title: str, disabled: bool = False, **extra):
    return html.Button(label, id={"type": kind, "roi": name, **extra}, n_clicks=0,
                       title=title, disabled=disabled, className=f"ril-button ril-{kind}")


def roi_table(config) -> list:
    """The table's children: a header row and one row per ROI (names as plain text)."""
    head = html.Thead(html.Tr([html.Th(t) for t in
                               ("", "Name", "RadLex ID", "Mask value", "Type", "Locked", "")]))
    rows = []
    last = len(config.rois) - 1
    for i, roi in enumerate(config.rois):
        rows.append(html.Tr(className="ril-roi-row", children=[
            html.Td(html.Span(className="ril-swatch", title=roi.color,
                              style={"backgroundColor": roi.color})),
            html.Td(roi.name, className="ril-roi-name"),
            html.Td(roi.radlex or "—", className="ril-roi-radlex"),
            html.Td(str(roi.value), className="ril-roi-value"),
            html.Td(roi.type, className="ril-roi-type"),
            html.Td("yes" if roi.locked else "no", className="ril-roi-locked"),
            html.Td(html.Div(className="ril-roi-actions", children=[
                _button("Edit", ids.ROI_EDIT_BUTTON, roi.name, f"Edit {roi.name}"),
                _button("↑", ids.ROI_MOVE_BUTTON, roi.name, "Move up", i == 0, offset=-1),
                _button("↓", ids.ROI_MOVE_BUTTON, roi.name, "Move down", i == last, offset=1),
                _button("Delete", ids.ROI_DELETE_BUTTON, roi.name, f"Delete {roi.name}"),
            ])),
        ]))
    if not rows:
        rows = [html.Tr(html.Td("No ROIs yet; add one below.", colSpan=7, className="ril-muted"))]
    return [head, html.Tbody(rows)]


def _field(label: str, component) -> html.Label:
    return html.Label([html.Span(label), component], className="ril-roi-field")


def _add_form() -> html.Section:
    return html.Section(className="ril-roi-form", children=[
        html.H2("Add an ROI"),
        html.Div(className="ril-roi-fields", children=[
            _field("Name", dcc.Input(id=ids.ROI_ADD_NAME, type="text", value="", maxLength=64,
                                     placeholder="e.g. Liver", autoComplete="off")),
            _field("RadLex ID", dcc.Input(id=ids.ROI_ADD_RADLEX, type="text", value="",
                                          placeholder="e.g. RID58 (optional)",
                                          autoComplete="off")),
            _field("Colour", dcc.Input(id=ids.ROI_ADD_COLOR, type="color", value="#e6194b")),
            _field("Type", dcc.RadioItems(id=ids.ROI_ADD_TYPE, value="area", inline=True,
                                          options=[{"label": t, "value": t} for t in ROI_TYPES])),
            dcc.Checklist(id=ids.ROI_ADD_LOCKED, value=[],
                          options=[{"label": "Locked", "value": LOCKED}]),
            html.Button("Add ROI", id=ids.ROI_ADD, n_clicks=0, className="ril-button ril-primary"),
        ]),
        html.P("The mask value is assigned automatically and, like the type, cannot be changed "
               "later (existing masks store it).", className="ril-muted"),
    ])


def _edit_form() -> html.Section:
    return html.Section(id=ids.ROI_EDIT_FORM, hidden=True, className="ril-roi-form", children=[
        html.H2(id=ids.ROI_EDIT_TITLE),
        html.Div(className="ril-roi-fields", children=[
            _field("Name", dcc.Input(id=ids.ROI_EDIT_NAME, type="text", value="", maxLength=64,
                                     autoComplete="off")),
            _field("RadLex ID", dcc.Input(id=ids.ROI_EDIT_RADLEX, type="text", value="",
                                          autoComplete="off")),
            _field("Colour", dcc.Input(id=ids.ROI_EDIT_COLOR, type="color", value="#000000")),
            dcc.Checklist(id=ids.ROI_EDIT_LOCKED, value=[],
                          options=[{"label": "Locked", "value": LOCKED}]),
            html.Button("Save", id=ids.ROI_EDIT_SAVE, n_clicks=0,
                        className="ril-button ril-primary"),
            html.Button("Cancel", id=ids.ROI_EDIT_CANCEL, n_clicks=0, className="ril-button"),
        ]),
        html.P(id=ids.ROI_EDIT_FIXED, className="ril-muted"),
    ])


def _delete_dialog() -> html.Div:
    return html.Div(id=ids.ROI_DELETE_DIALOG, hidden=True, role="dialog",
                    className="ril-roi-dialog", children=[
        html.P(id=ids.ROI_DELETE_MESSAGE),
        dcc.Input(id=ids.ROI_DELETE_TEXT, type="text", value="", autoComplete="off",
                  placeholder=f"Type {CONFIRM_WORD}"),
        html.Button("Delete", id=ids.ROI_DELETE_CONFIRM, n_clicks=0,
                    className="ril-button ril-danger"),
        html.Button("Cancel", id=ids.ROI_DELETE_CANCEL, n_clicks=0, className="ril-button"),
    ])


def layout(**_query) -> html.Div:
    services = get_services()
    alert, table, sha = None, [], None
    try:
        config, sha = read_project_yaml(services.project.dir)
        if config.rois != services.project.config.rois:  # changed by another process
            reload_project(services)
        table = roi_table(config)
    except RilDashError as exc:
        alert = error_alert(str(exc))
    admin = access.is_admin()
    page_class = "ril-roi-page" + ("" if admin else " ril-defs-read-only")
    return html.Div(className=page_class, children=[
        dcc.Store(id=ids.ROI_SHA, data=sha),
        dcc.Store(id=ids.ROI_EDIT_TARGET, data=None),
        dcc.Store(id=ids.ROI_DELETE_TARGET, data=None),
        html.H1("ROIs"),
        html.P("The regions of interest of the whole project (project.yaml). Saving a change "
               "rewrites project.yaml; comments in it are not kept.", className="ril-muted"),
        None if admin else html.Div("Only an administrator changes the ROIs and text fields; "
                                    "you see them read-only.", id=ids.ROI_READ_ONLY,
                                    className="ril-alert ril-alert-warning"),
        html.Div(alert, id=ids.ROI_ALERT, role="alert"),
        html.Div(id=ids.ROI_STATUS, role="status", className="ril-roi-status"),
        html.Table(table, id=ids.ROI_TABLE, className="ril-roi-table"),
        _delete_dialog(),
        _edit_form(),
        _add_form(),
        text_field_section(),
    ])


# ---------------------------------------------------------------- changes



def _change(action, done: str):
    return apply_change(action, done, roi_table)

@callback(*_CHANGE_OUTPUTS,
          Output(ids.ROI_ADD_NAME, "value"), Output(ids.ROI_ADD_RADLEX, "value"),
          Input(ids.ROI_ADD, "n_clicks"),
          State(ids.ROI_ADD_NAME, "value"), State(ids.ROI_ADD_RADLEX, "value"),
          State(ids.ROI_ADD_COLOR, "value"), State(ids.ROI_ADD_TYPE, "value"),
          State(ids.ROI_ADD_LOCKED, "value"), State(ids.ROI_SHA, "data"),
          prevent_initial_call=True)
def add(_, name, radlex, color, kind, locked, sha):
    project_dir = get_services().project.dir
    out = _change(lambda: add_roi(project_dir, name or "", radlex, color, None, kind,
                                  LOCKED in (locked or []), expected_sha256=sha),
                  f"Added {(name or '').strip()}.")
    saved = out[2] is None
    return *out, ("" if saved else dash.no_update), ("" if saved else dash.no_update)


@callback(*_CHANGE_OUTPUTS,
          Input({"type": ids.ROI_MOVE_BUTTON, "roi": ALL, "offset": ALL}, "n_clicks"),
          State(ids.ROI_SHA, "data"), prevent_initial_call=True)
def move(_, sha):
    if not clicked():
        return (dash.no_update,) * 4
    name, offset = ctx.triggered_id["roi"], int(ctx.triggered_id["offset"])
    project_dir = get_services().project.dir
    return _change(lambda: move_roi(project_dir, name, offset, expected_sha256=sha),
                   f"Moved {name} {'up' if offset < 0 else 'down'}.")


@callback(Output(ids.ROI_EDIT_TARGET, "data"), Output(ids.ROI_EDIT_FORM, "hidden"),
          Output(ids.ROI_EDIT_TITLE, "children"), Output(ids.ROI_EDIT_NAME, "value"),
          Output(ids.ROI_EDIT_RADLEX, "value"), Output(ids.ROI_EDIT_COLOR, "value"),
          Output(ids.ROI_EDIT_LOCKED, "value"), Output(ids.ROI_EDIT_FIXED, "children"),
          Input({"type": ids.ROI_EDIT_BUTTON, "roi": ALL}, "n_clicks"),
          prevent_initial_call=True)
def open_edit(_):
    if not clicked():
        return (dash.no_update,) * 8
    name = ctx.triggered_id["roi"]
    roi = next((r for r in get_services().project.config.rois if r.name == name), None)
    if roi is None:
        return (dash.no_update,) * 8
    return (roi.name, False, f"Edit {roi.name}", roi.name, roi.radlex or "", roi.color,
            [LOCKED] if roi.locked else [],
            (f"Mask value {roi.value} and type {roi.type} are fixed once an ROI is created: "
             f"existing masks store them, so changing them would silently re-label them."))


@callback(*_CHANGE_OUTPUTS, Output(ids.ROI_EDIT_FORM, "hidden", allow_duplicate=True),
          Input(ids.ROI_EDIT_SAVE, "n_clicks"),
          State(ids.ROI_EDIT_TARGET, "data"), State(ids.ROI_EDIT_NAME, "value"),
          State(ids.ROI_EDIT_RADLEX, "value"), State(ids.ROI_EDIT_COLOR, "value"),
          State(ids.ROI_EDIT_LOCKED, "value"), State(ids.ROI_SHA, "data"),
          prevent_initial_call=True)
def save_edit(_, target, name, radlex, color, locked, sha):
    if not target:
        return (dash.no_update,) * 5
    project_dir = get_services().project.dir
    out = _change(lambda: update_roi(project_dir, target, name=name or "", radlex=radlex or "",
                                     color=color, locked=LOCKED in (locked or []),
                                     expected_sha256=sha),
                  f"Saved {(name or '').strip()}.")
    return *out, (out[2] is None) or dash.no_update


@callback(Output(ids.ROI_EDIT_FORM, "hidden", allow_duplicate=True),
          Input(ids.ROI_EDIT_CANCEL, "n_clicks"), prevent_initial_call=True)
def cancel_edit(_):
    return True


@callback(Output(ids.ROI_DELETE_TARGET, "data"), Output(ids.ROI_DELETE_DIALOG, "hidden"),
          Output(ids.ROI_DELETE_MESSAGE, "children"), Output(ids.ROI_DELETE_TEXT, "value"),
          Output(ids.ROI_DELETE_TEXT, "style"),
          Output(ids.ROI_ALERT, "children", allow_duplicate=True),
          Input({"type": ids.ROI_DELETE_BUTTON, "roi": ALL}, "n_clicks"),
          prevent_initial_call=True)
def open_delete(_):
    if not clicked():
        return (dash.no_update,) * 6
    name = ctx.triggered_id["roi"]
    project = get_services().project
    roi = next((r for r in project.config.rois if r.name == name), None)
    if roi is None:
        return (dash.no_update,) * 6
    try:
        count = len(series_using_roi(project, roi.value))
    except RilDashError as exc:
        return (dash.no_update,) * 5 + (error_alert(str(exc)),)
    if count:
        message = (f"{roi.name} has annotations in {count} series; deleting it removes them "
                   f"from the current masks (they stay in each series' history). Type "
                   f"{CONFIRM_WORD} to confirm.")
        style = {}
    else:
        message = f"{roi.name} has no annotations in any series. Delete it?"
        style = {"display": "none"}
    return {"name": roi.name, "count": count}, False, message, "", style, None


@callback(*_CHANGE_OUTPUTS, Output(ids.ROI_DELETE_DIALOG, "hidden", allow_duplicate=True),
          Input(ids.ROI_DELETE_CONFIRM, "n_clicks"),
          State(ids.ROI_DELETE_TARGET, "data"), State(ids.ROI_DELETE_TEXT, "value"),
          State(ids.ROI_SHA, "data"), prevent_initial_call=True)
def confirm_delete(_, target, text, sha):
    if not target:
        return (dash.no_update,) * 5
    if target["count"] and (text or "").strip() != CONFIRM_WORD:
        return (dash.no_update, dash.no_update,
                error_alert(f"Type {CONFIRM_WORD} in the box to confirm deleting {target['name']}."),
                None, dash.no_update)
    project_dir = get_services().project.dir

    def action():
        try:
            delete_roi(project_dir, target["name"], confirm_series_count=target["count"] or None,
                       expected_sha256=sha, user=access.current_user())
        except DeleteNeedsConfirmation as exc:
            raise DeleteNeedsConfirmation(
                f"{target['name']} now has annotations in {len(exc.series)} series (it had "
                f"{target['count']} when you clicked Delete); click Delete again to see the new "
                f"count.", exc.series) from None

    out = _change(action, f"Deleted {target['name']}.")
    return *out, True


@callback(Output(ids.ROI_DELETE_DIALOG, "hidden", allow_duplicate=True),
          Input(ids.ROI_DELETE_CANCEL, "n_clicks"), prevent_initial_call=True)
def cancel_delete(_):
    return True
