"""One editor for the named lists of project.yaml (ROIs, text fields): add, edit, move, delete.

A :class:`~ril_dash.ui.components.list_editor_spec.ListEditor` describes one kind of list: its
id prefix, the table's columns, the fields of the Add and Edit forms, the change functions of
:mod:`ril_dash.project` to call and the delete-confirmation rule. :func:`editor_section` draws
it (a table with per-row Edit / ↑ / ↓ / Delete buttons, a delete dialog, an Edit form, an Add
form) and :func:`register_callbacks` wires it, once per kind at import. Every change is an
application command (:mod:`ril_dash.application.definitions`: admins only, audited) run
through :func:`ril_dash.ui.components.yaml_edits.apply_change` (error or redraw) with the hash of project.yaml the page last saw (``ids.ROI_SHA``, shared by all editors of the
page), so a change made meanwhile by someone else is reported instead of overwritten. Names
are always rendered as text, never as HTML. Element ids are ``ids.editor_id(prefix, part)``;
classes ``ril-<prefix>-row``, ``ril-<prefix>-<column>`` and ``ril-<prefix>-<button>`` mark
the table; the shared ``ril-roi-*`` classes style it (``.ril-defs-read-only`` hides the
editing controls from users who are not admins).

Developer notes::

    editor_section(editor, config) ─► stores + alert + status + table + dialog + forms
    Add / Save / ↑↓ / Delete-confirm ─► apply_change(editor.changes.add|update|…(services,
        actor, name, ..., expected_sha256=ROI_SHA)) ─► table, ROI_SHA, alert / status
    Edit button ─► edit form filled + shown     Delete button ─► editor.delete_check ─► dialog
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from ril_dash.errors import RilDashError
from ril_dash.project.roi_editing import read_project_yaml
from ril_dash.ui import access, ids
from ril_dash.ui.components.list_editor_spec import Field, ListEditor
from ril_dash.ui.components.yaml_edits import (
    apply_change,
    clicked,
    error_alert,
)
from ril_dash.ui.services import get_services

CONFIRM_WORD = "DELETE"
HIDDEN = {"display": "none"}


# ---------------------------------------------------------------- rendering
def _button(editor: ListEditor, label: str, kind: str, name: str, title: str,
            disabled: bool = False, **extra) -> html.Button:
    kind = editor.id(kind)
    return html.Button(label, id={"type": kind, "item": name, **extra}, n_clicks=0, title=title,
                       disabled=disabled, className=f"ril-button ril-{kind}")


def editor_table(editor: ListEditor, config) -> list:
    """The table's children: a header row and one row per item (names as plain text)."""
    head = html.Thead(html.Tr([html.Th(c.title) for c in editor.columns] + [html.Th("")]))
    items = editor.items(config)
    rows = []
    for i, item in enumerate(items):
        cells = [html.Td(c.cell(item), **({"className": f"ril-{editor.prefix}-{c.key}"}
                                           if c.key else {})) for c in editor.columns]
        name = item.name
        rows.append(html.Tr(className=f"ril-{editor.prefix}-row", children=[*cells, html.Td(
            html.Div(className="ril-roi-actions", children=[
                _button(editor, "Edit", "edit-button", name, f"Edit {name}"),
                _button(editor, "↑", "move-button", name, "Move up", i == 0, offset=-1),
                _button(editor, "↓", "move-button", name, "Move down", i == len(items) - 1,
                        offset=1),
                _button(editor, "Delete", "delete-button", name, f"Delete {name}"),
            ]))]))
    if not rows:
        rows = [html.Tr(html.Td(f"No {editor.noun}s yet; add one below.",
                                colSpan=len(editor.columns) + 1, className="ril-muted"))]
    return [head, html.Tbody(rows)]


def _inputs(editor: ListEditor, form: str, fields: tuple[Field, ...]) -> list:
    out = []
    for f in fields:
        component = f.make(editor.id(f"{form}-{f.key}"))
        if f.label is None:
            out.append(component)
            continue
        wrapper = ({"id": editor.id(f"{form}-{f.key}-field")}
                   if editor.toggle and editor.toggle.field == f.key else {})
        out.append(html.Label([html.Span(f.label), component], className="ril-roi-field",
                              **wrapper))
    return out


def _add_form(editor: ListEditor, heading) -> html.Section:
    return html.Section(className="ril-roi-form", children=[
        heading(editor.add_title),
        html.Div(className="ril-roi-fields", children=[
            *_inputs(editor, "add", editor.add_fields),
            html.Button(f"Add {editor.noun}", id=editor.id("add"), n_clicks=0,
                        className="ril-button ril-primary"),
        ]),
        html.P(editor.add_note, className="ril-muted"),
    ])


def _edit_form(editor: ListEditor, heading) -> html.Section:
    return html.Section(id=editor.id("edit-form"), hidden=True, className="ril-roi-form",
                        children=[
        heading(id=editor.id("edit-title")),
        html.Div(className="ril-roi-fields", children=[
            *_inputs(editor, "edit", editor.edit_fields),
            html.Button("Save", id=editor.id("edit-save"), n_clicks=0,
                        className="ril-button ril-primary"),
            html.Button("Cancel", id=editor.id("edit-cancel"), n_clicks=0,
                        className="ril-button"),
        ]),
        html.P(id=editor.id("edit-fixed"), className="ril-muted"),
    ])


def _delete_dialog(editor: ListEditor) -> html.Div:
    return html.Div(id=editor.id("delete-dialog"), hidden=True, role="dialog",
                    className="ril-roi-dialog", children=[
        html.P(id=editor.id("delete-message")),
        dcc.Input(id=editor.id("delete-text"), type="text", value="", autoComplete="off",
                  placeholder=f"Type {CONFIRM_WORD}", style=HIDDEN),
        html.Button("Delete", id=editor.id("delete-confirm"), n_clicks=0,
                    className="ril-button ril-danger"),
        html.Button("Cancel", id=editor.id("delete-cancel"), n_clicks=0,
                    className="ril-button"),
    ])


def current_config(editors: Sequence[ListEditor]):
    """(config, sha, None) of project.yaml as on disk, or (None, None, error alert); the
    server reloads it when another process changed one of the editors' lists."""
    services = get_services()
    try:
        config, sha = read_project_yaml(services.project.dir)
    except RilDashError as exc:
        return None, None, error_alert(str(exc))
    if any(e.items(config) != e.items(services.project.config) for e in editors):
        services.reload_config()
    return config, sha, None


def editor_section(editor: ListEditor, config, alert=None) -> html.Section:
    """The editor; it must sit in a layout that holds ``ids.ROI_SHA``."""
    heading = html.H3 if editor.title else html.H2
    return html.Section(className=f"ril-{editor.prefix}-section", children=[
        dcc.Store(id=editor.id("edit-target"), data=None),
        dcc.Store(id=editor.id("delete-target"), data=None),
        editor.title and html.H2(editor.title),
        editor.intro and html.P(editor.intro, className="ril-muted"),
        html.Div(alert, id=editor.id("alert"), role="alert"),
        html.Div(id=editor.id("status"), role="status", className="ril-roi-status"),
        html.Table([] if config is None else editor_table(editor, config),
                   id=editor.id("table"), className="ril-roi-table"),
        _delete_dialog(editor),
        _edit_form(editor, heading),
        _add_form(editor, heading),
    ])


# ---------------------------------------------------------------- changes
def _find(editor: ListEditor, name):
    return next((x for x in editor.items(get_services().project.config) if x.name == name), None)


def _form(fields: tuple[Field, ...], values: Sequence) -> dict:
    return {f.key: f.read(v) for f, v in zip(fields, values, strict=True)}


def register_callbacks(editor: ListEditor) -> ListEditor:
    """Wire one editor's buttons; call once per kind, at import. Returns ``editor``."""
    no = dash.no_update
    sha_state = State(ids.ROI_SHA, "data")
    changed = [Output(editor.id("table"), "children", allow_duplicate=True),
               Output(ids.ROI_SHA, "data", allow_duplicate=True),
               Output(editor.id("alert"), "children", allow_duplicate=True),
               Output(editor.id("status"), "children", allow_duplicate=True)]

    def change(action, done: str):
        return apply_change(action, done, partial(editor_table, editor))

    cleared = [f for f in editor.add_fields if f.clear_after_add]
    toggle = editor.toggle

    if toggle:
        @callback(Output(editor.id(f"add-{toggle.field}-field"), "style"),
                  Input(editor.id(f"add-{toggle.by}"), "value"))
        def show_add_field(kind):
            return {} if toggle.shown(kind) else HIDDEN

    @callback(*changed, *[Output(editor.id(f"add-{f.key}"), "value") for f in cleared],
              Input(editor.id("add"), "n_clicks"),
              *[State(editor.id(f"add-{f.key}"), "value") for f in editor.add_fields],
              sha_state, prevent_initial_call=True)
    def add(_, *values):
        form = _form(editor.add_fields, values[:-1])
        if toggle and not toggle.shown(form[toggle.by]):
            form[toggle.field] = None  # what the hidden box holds is ignored
        services, who, sha = get_services(), access.actor(), values[-1]
        name = form.pop("name")
        out = change(lambda: editor.changes.add(services, who, name, **form, expected_sha256=sha),
                     f"Added {name.strip()}.")
        return *out, *(("" if out[2] is None else no,) * len(cleared))

    @callback(*changed, Input({"type": editor.id("move-button"), "item": ALL, "offset": ALL},
                              "n_clicks"), sha_state, prevent_initial_call=True)
    def move(_, sha):
        if not clicked():
            return (no,) * 4
        name, offset = ctx.triggered_id["item"], int(ctx.triggered_id["offset"])
        services, who = get_services(), access.actor()
        return change(lambda: editor.changes.move(services, who, name, offset,
                                                  expected_sha256=sha),
                      f"Moved {name} {'up' if offset < 0 else 'down'}.")

    edit_outputs = [Output(editor.id("edit-target"), "data"),
                    Output(editor.id("edit-form"), "hidden"),
                    Output(editor.id("edit-title"), "children"),
                    *[Output(editor.id(f"edit-{f.key}"), "value") for f in editor.edit_fields],
                    *([Output(editor.id(f"edit-{toggle.field}-field"), "style")]
                      if toggle else []),
                    Output(editor.id("edit-fixed"), "children")]

    @callback(*edit_outputs, Input({"type": editor.id("edit-button"), "item": ALL}, "n_clicks"),
              prevent_initial_call=True)
    def open_edit(_):
        item = _find(editor, ctx.triggered_id["item"]) if clicked() else None
        if item is None:
            return (no,) * len(edit_outputs)
        shown = ({} if toggle.shown(getattr(item, toggle.by)) else HIDDEN,) if toggle else ()
        return (item.name, False, f"Edit {item.name}",
                *[f.fill(getattr(item, f.key)) for f in editor.edit_fields], *shown,
                editor.fixed_note(item))

    @callback(*changed, Output(editor.id("edit-form"), "hidden", allow_duplicate=True),
              Input(editor.id("edit-save"), "n_clicks"), State(editor.id("edit-target"), "data"),
              *[State(editor.id(f"edit-{f.key}"), "value") for f in editor.edit_fields],
              sha_state, prevent_initial_call=True)
    def save_edit(_, target, *values):
        if not target:
            return (no,) * 5
        form = _form(editor.edit_fields, values[:-1])
        item = _find(editor, target)
        if toggle and item is not None and not toggle.shown(getattr(item, toggle.by)):
            form[toggle.field] = None  # a hidden field stays as it is
        services, who, sha = get_services(), access.actor(), values[-1]
        out = change(lambda: editor.changes.update(services, who, target, **form,
                                                   expected_sha256=sha),
                     f"Saved {form['name'].strip()}.")
        return *out, (out[2] is None) or no

    @callback(Output(editor.id("delete-target"), "data"),
              Output(editor.id("delete-dialog"), "hidden"),
              Output(editor.id("delete-message"), "children"),
              Output(editor.id("delete-text"), "value"), Output(editor.id("delete-text"), "style"),
              Output(editor.id("alert"), "children", allow_duplicate=True),
              Input({"type": editor.id("delete-button"), "item": ALL}, "n_clicks"),
              prevent_initial_call=True)
    def open_delete(_):
        item = _find(editor, ctx.triggered_id["item"]) if clicked() else None
        if item is None:
            return (no,) * 6
        try:
            check = editor.delete_check(get_services().project, item)
        except RilDashError as exc:
            return (no,) * 5 + (error_alert(str(exc)),)
        target = {"name": item.name, "typed": check.typed, "confirmed": check.confirmed}
        return target, False, check.message, "", {} if check.typed else HIDDEN, None

    @callback(*changed, Output(editor.id("delete-dialog"), "hidden", allow_duplicate=True),
              Input(editor.id("delete-confirm"), "n_clicks"),
              State(editor.id("delete-target"), "data"), State(editor.id("delete-text"), "value"),
              sha_state, prevent_initial_call=True)
    def confirm_delete(_, target, text, sha):
        if not target:
            return (no,) * 5
        name = target["name"]
        if target["typed"] and (text or "").strip() != CONFIRM_WORD:
            return (no, no, error_alert(f"Type {CONFIRM_WORD} in the box to confirm deleting "
                                        f"{name}."), None, no)
        services, who = get_services(), access.actor()
        out = change(lambda: editor.changes.delete(services, who, name, **target["confirmed"],
                                                   expected_sha256=sha), f"Deleted {name}.")
        return *out, True

    for shown, cancel in (("edit-form", "edit-cancel"), ("delete-dialog", "delete-cancel")):
        callback(Output(editor.id(shown), "hidden", allow_duplicate=True),
                 Input(editor.id(cancel), "n_clicks"), prevent_initial_call=True)(_close)
    return editor


def _close(_):
    return True
