"""The "Text fields" section of the ROI manager page (``/rois``): project.yaml's ``text_fields``.

A table lists every field (name, type, allowed values, required) with per-row Edit / ↑ / ↓ /
Delete buttons; an Add form (the allowed-values box is shown only for choice types), an Edit
form and a delete confirmation sit below it. All changes go through
:mod:`ril_dash.project.text_field_editing` (locked, validated, atomic, compare-and-swap on the
hash of project.yaml the page last saw -- the same ``ROI_SHA`` store as the ROI section, so
edits in either section keep the other's hash current). Errors are shown as alerts; names are
rendered as text, never as HTML. After every change the server reloads the project config
(:func:`ril_dash.ui.components.yaml_edits.reload_project`) so the viewer shows the new fields.

Developer notes::

    text_field_section() ─► table + forms (inside roi_manager.layout, which holds ROI_SHA)
    Add / Save / ↑↓ / Delete-confirm ─► text_field_editing.*(expected_sha256=ROI_SHA)
        ─► reload_project ─► TF_TABLE, ROI_SHA, TF_ALERT (error) / TF_STATUS (done)
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from ril_dash.errors import RilDashError
from ril_dash.project.roi_editing import read_project_yaml
from ril_dash.project.schema import FIELD_TYPES
from ril_dash.project.text_field_editing import (
    CHOICE_TYPES,
    add_text_field,
    delete_text_field,
    move_text_field,
    update_text_field,
)
from ril_dash.ui import ids
from ril_dash.ui.components.yaml_edits import (
    apply_change,
    clicked,
    error_alert,
    reload_project,
)
from ril_dash.ui.services import get_services

REQUIRED = "required"
_HIDDEN = {"display": "none"}
_CHANGE_OUTPUTS = [Output(ids.TF_TABLE, "children", allow_duplicate=True),
                   Output(ids.ROI_SHA, "data", allow_duplicate=True),
                   Output(ids.TF_ALERT, "children", allow_duplicate=True),
                   Output(ids.TF_STATUS, "children", allow_duplicate=True)]


# ---------------------------------------------------------------- rendering
def _button(label: str, kind: str, name: str, title: str, disabled: bool = False, **extra):
    return html.Button(label, id={"type": kind, "field": name, **extra}, n_clicks=0,
                       title=title, disabled=disabled, className=f"ril-button ril-{kind}")


def text_field_table(config) -> list:
    """The table's children: a header row and one row per text field (names as plain text)."""
    head = html.Thead(html.Tr([html.Th(t) for t in
                               ("Name", "Type", "Allowed values", "Required", "")]))
    rows = []
    last = len(config.text_fields) - 1
    for i, f in enumerate(config.text_fields):
        rows.append(html.Tr(className="ril-tf-row", children=[
            html.Td(f.name, className="ril-tf-name"),
            html.Td(f.type, className="ril-tf-type"),
            html.Td(", ".join(f.values) or "—", className="ril-tf-values"),
            html.Td("yes" if f.required else "no", className="ril-tf-required"),
            html.Td(html.Div(className="ril-roi-actions", children=[
                _button("Edit", ids.TF_EDIT_BUTTON, f.name, f"Edit {f.name}"),
                _button("↑", ids.TF_MOVE_BUTTON, f.name, "Move up", i == 0, offset=-1),
                _button("↓", ids.TF_MOVE_BUTTON, f.name, "Move down", i == last, offset=1),
                _button("Delete", ids.TF_DELETE_BUTTON, f.name, f"Delete {f.name}"),
            ])),
        ]))
    if not rows:
        rows = [html.Tr(html.Td("No text fields yet; add one below.", colSpan=5,
                                className="ril-muted"))]
    return [head, html.Tbody(rows)]


def _field(label: str, component, **kwargs) -> html.Label:
    return html.Label([html.Span(label), component], className="ril-roi-field", **kwargs)


def _values_style(kind) -> dict:
    return {} if kind in CHOICE_TYPES else _HIDDEN


def _add_form() -> html.Div:
    return html.Div(className="ril-roi-form", children=[
        html.H3("Add a text field"),
        html.Div(className="ril-roi-fields", children=[
            _field("Name", dcc.Input(id=ids.TF_ADD_NAME, type="text", value="", maxLength=64,
                                     placeholder="e.g. Contrast phase", autoComplete="off")),
            _field("Type", dcc.Dropdown(id=ids.TF_ADD_TYPE, value="choice", clearable=False,
                                        searchable=False, style={"minWidth": "10em"},
                                        options=[{"label": t, "value": t}
                                                 for t in FIELD_TYPES])),
            _field("Allowed values (comma-separated)",
                   dcc.Input(id=ids.TF_ADD_VALUES, type="text", value="", autoComplete="off",
                             placeholder="e.g. arterial, venous, delayed"),
                   id=ids.TF_ADD_VALUES_FIELD),
            dcc.Checklist(id=ids.TF_ADD_REQUIRED, value=[],
                          options=[{"label": "Required", "value": REQUIRED}]),
            html.Button("Add text field", id=ids.TF_ADD, n_clicks=0,
                        className="ril-button ril-primary"),
        ]),
        html.P("The type cannot be changed later (values already saved would no longer fit).",
               className="ril-muted"),
    ])


def _edit_form() -> html.Div:
    return html.Div(id=ids.TF_EDIT_FORM, hidden=True, className="ril-roi-form", children=[
        html.H3(id=ids.TF_EDIT_TITLE),
        html.Div(className="ril-roi-fields", children=[
            _field("Name", dcc.Input(id=ids.TF_EDIT_NAME, type="text", value="", maxLength=64,
                                     autoComplete="off")),
            _field("Allowed values (comma-separated)",
                   dcc.Input(id=ids.TF_EDIT_VALUES, type="text", value="", autoComplete="off"),
                   id=ids.TF_EDIT_VALUES_FIELD),
            dcc.Checklist(id=ids.TF_EDIT_REQUIRED, value=[],
                          options=[{"label": "Required", "value": REQUIRED}]),
            html.Button("Save", id=ids.TF_EDIT_SAVE, n_clicks=0,
                        className="ril-button ril-primary"),
            html.Button("Cancel", id=ids.TF_EDIT_CANCEL, n_clicks=0, className="ril-button"),
        ]),
        html.P(id=ids.TF_EDIT_FIXED, className="ril-muted"),
    ])


def _delete_dialog() -> html.Div:
    return html.Div(id=ids.TF_DELETE_DIALOG, hidden=True, role="dialog",
                    className="ril-roi-dialog", children=[
        html.P(id=ids.TF_DELETE_MESSAGE),
        html.Button("Delete", id=ids.TF_DELETE_CONFIRM, n_clicks=0,
                    className="ril-button ril-danger"),
        html.Button("Cancel", id=ids.TF_DELETE_CANCEL, n_clicks=0, className="ril-button"),
    ])


def text_field_section() -> html.Section:
    """The "Text fields" section; it must sit in a layout that holds ``ids.ROI_SHA``."""
    services = get_services()
    alert, table = None, []
    try:
        config, _sha = read_project_yaml(services.project.dir)
        if config.text_fields != services.project.config.text_fields:  # changed elsewhere
            reload_project(services)
        table = text_field_table(config)
    except RilDashError as exc:
        alert = error_alert(str(exc))
    return html.Section(className="ril-tf-section", children=[
        dcc.Store(id=ids.TF_EDIT_TARGET, data=None),
        dcc.Store(id=ids.TF_DELETE_TARGET, data=None),
        html.H2("Text fields"),
        html.P("Per-series text annotations (e.g. a contrast phase), defined once for the whole "
               "project in project.yaml.", className="ril-muted"),
        html.Div(alert, id=ids.TF_ALERT, role="alert"),
        html.Div(id=ids.TF_STATUS, role="status", className="ril-roi-status"),
        html.Table(table, id=ids.TF_TABLE, className="ril-roi-table ril-tf-table"),
        _delete_dialog(),
        _edit_form(),
        _add_form(),
    ])


# ---------------------------------------------------------------- changes



def _change(action, done: str):
    return apply_change(action, done, text_field_table)

@callback(Output(ids.TF_ADD_VALUES_FIELD, "style"), Input(ids.TF_ADD_TYPE, "value"))
def show_add_values(kind):
    return _values_style(kind)


@callback(*_CHANGE_OUTPUTS,
          Output(ids.TF_ADD_NAME, "value"), Output(ids.TF_ADD_VALUES, "value"),
          Input(ids.TF_ADD, "n_clicks"),
          State(ids.TF_ADD_NAME, "value"), State(ids.TF_ADD_TYPE, "value"),
          State(ids.TF_ADD_VALUES, "value"), State(ids.TF_ADD_REQUIRED, "value"),
          State(ids.ROI_SHA, "data"), prevent_initial_call=True)
def add(_, name, kind, values, required, sha):
    project_dir = get_services().project.dir
    values = (values or "") if kind in CHOICE_TYPES else ""  # the hidden box is ignored
    out = _change(lambda: add_text_field(project_dir, name or "", kind, values,
                                         REQUIRED in (required or []), expected_sha256=sha),
                  f"Added {(name or '').strip()}.")
    saved = out[2] is None
    return *out, ("" if saved else dash.no_update), ("" if saved else dash.no_update)


@callback(*_CHANGE_OUTPUTS,
          Input({"type": ids.TF_MOVE_BUTTON, "field": ALL, "offset": ALL}, "n_clicks"),
          State(ids.ROI_SHA, "data"), prevent_initial_call=True)
def move(_, sha):
    if not clicked():
        return (dash.no_update,) * 4
    name, offset = ctx.triggered_id["field"], int(ctx.triggered_id["offset"])
    project_dir = get_services().project.dir
    return _change(lambda: move_text_field(project_dir, name, offset, expected_sha256=sha),
                   f"Moved {name} {'up' if offset < 0 else 'down'}.")


@callback(Output(ids.TF_EDIT_TARGET, "data"), Output(ids.TF_EDIT_FORM, "hidden"),
          Output(ids.TF_EDIT_TITLE, "children"), Output(ids.TF_EDIT_NAME, "value"),
          Output(ids.TF_EDIT_VALUES, "value"), Output(ids.TF_EDIT_VALUES_FIELD, "style"),
          Output(ids.TF_EDIT_REQUIRED, "value"), Output(ids.TF_EDIT_FIXED, "children"),
          Input({"type": ids.TF_EDIT_BUTTON, "field": ALL}, "n_clicks"),
          prevent_initial_call=True)
def open_edit(_):
    if not clicked():
        return (dash.no_update,) * 8
    name = ctx.triggered_id["field"]
    field = next((f for f in get_services().project.config.text_fields if f.name == name), None)
    if field is None:
        return (dash.no_update,) * 8
    return (field.name, False, f"Edit {field.name}", field.name, ", ".join(field.values),
            _values_style(field.type), [REQUIRED] if field.required else [],
            (f"The type ({field.type}) is fixed once a field is created: values already saved "
             f"would no longer fit another type. Removing an allowed value keeps the values "
             f"already saved in each series' history."))


@callback(*_CHANGE_OUTPUTS, Output(ids.TF_EDIT_FORM, "hidden", allow_duplicate=True),
          Input(ids.TF_EDIT_SAVE, "n_clicks"),
          State(ids.TF_EDIT_TARGET, "data"), State(ids.TF_EDIT_NAME, "value"),
          State(ids.TF_EDIT_VALUES, "value"), State(ids.TF_EDIT_REQUIRED, "value"),
          State(ids.ROI_SHA, "data"), prevent_initial_call=True)
def save_edit(_, target, name, values, required, sha):
    if not target:
        return (dash.no_update,) * 5
    services = get_services()
    field = next((f for f in services.project.config.text_fields if f.name == target), None)
    values = (values or "") if field is None or field.type in CHOICE_TYPES else None
    out = _change(lambda: update_text_field(services.project.dir, target, name=name or "",
                                            values=values,
                                            required=REQUIRED in (required or []),
                                            expected_sha256=sha),
                  f"Saved {(name or '').strip()}.")
    return *out, (out[2] is None) or dash.no_update


@callback(Output(ids.TF_EDIT_FORM, "hidden", allow_duplicate=True),
          Input(ids.TF_EDIT_CANCEL, "n_clicks"), prevent_initial_call=True)
def cancel_edit(_):
    return True


@callback(Output(ids.TF_DELETE_TARGET, "data"), Output(ids.TF_DELETE_DIALOG, "hidden"),
          Output(ids.TF_DELETE_MESSAGE, "children"),
          Input({"type": ids.TF_DELETE_BUTTON, "field": ALL}, "n_clicks"),
          prevent_initial_call=True)
def open_delete(_):
    if not clicked():
        return (dash.no_update,) * 3
    name = ctx.triggered_id["field"]
    message = (f"Delete the text field {name}? Values already saved stay in each series' "
               f"history; the field is no longer shown or exported.")
    return name, False, message


@callback(*_CHANGE_OUTPUTS, Output(ids.TF_DELETE_DIALOG, "hidden", allow_duplicate=True),
          Input(ids.TF_DELETE_CONFIRM, "n_clicks"),
          State(ids.TF_DELETE_TARGET, "data"), State(ids.ROI_SHA, "data"),
          prevent_initial_call=True)
def confirm_delete(_, target, sha):
    if not target:
        return (dash.no_update,) * 5
    project_dir = get_services().project.dir
    out = _change(lambda: delete_text_field(project_dir, target, expected_sha256=sha),
                  f"Deleted {target}.")
    return *out, True


@callback(Output(ids.TF_DELETE_DIALOG, "hidden", allow_duplicate=True),
          Input(ids.TF_DELETE_CANCEL, "n_clicks"), prevent_initial_call=True)
def cancel_delete(_):
    return True
