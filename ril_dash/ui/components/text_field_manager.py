"""The "Text fields" editor of the ROI manager page (``/rois``): project.yaml's ``text_fields``.

An instance of :mod:`ril_dash.ui.components.list_editor`: a table (name, type, allowed values,
required) with per-row Edit / ↑ / ↓ / Delete buttons, an Add form (the allowed-values box is
shown only for choice types), an Edit form and a one-click delete confirmation. Changes go
through :mod:`ril_dash.project.text_field_editing` (locked, validated, atomic, compare-and-swap
on the hash of project.yaml the page last saw -- the ``ROI_SHA`` store shared with the ROI
editor, so edits in either keep the other's hash current). After every change the server
reloads the project config so the viewer shows the new fields.
"""

from __future__ import annotations

from ril_dash.project.schema import FIELD_TYPES
from ril_dash.application.definitions import (
    add_text_field,
    delete_text_field,
    move_text_field,
    update_text_field,
)
from ril_dash.project.text_field_editing import CHOICE_TYPES
from ril_dash.ui import ids
from ril_dash.ui.components.list_editor import register_callbacks
from ril_dash.ui.components.list_editor_spec import (
    Changes,
    Column,
    DeleteCheck,
    ListEditor,
    Toggle,
    checkbox,
    kind_choice,
    text_box,
)

VALUES_LABEL = "Allowed values (comma-separated)"


def _fixed_note(field) -> str:
    return (f"The type ({field.type}) is fixed once a field is created: values already saved "
            f"would no longer fit another type. Removing an allowed value keeps the values "
            f"already saved in each series' history.")


def _delete_check(_project, field) -> DeleteCheck:
    return DeleteCheck(f"Delete the text field {field.name}? Values already saved stay in each "
                       f"series' history; the field is no longer shown or exported.")


TEXT_FIELD_EDITOR = register_callbacks(ListEditor(
    prefix=ids.TF_EDITOR,
    noun="text field",
    title="Text fields",
    intro="Per-series text annotations (e.g. a contrast phase), defined once for the whole "
          "project in project.yaml.",
    items=lambda config: config.text_fields,
    columns=(Column("Name", lambda f: f.name, "name"),
             Column("Type", lambda f: f.type, "type"),
             Column("Allowed values", lambda f: ", ".join(f.values) or "—", "values"),
             Column("Required", lambda f: "yes" if f.required else "no", "required")),
    add_title="Add a text field",
    add_fields=(text_box("name", "Name", placeholder="e.g. Contrast phase", max_length=64,
                         clear_after_add=True),
                kind_choice("type", "Type", FIELD_TYPES, "choice", menu=True),
                text_box("values", VALUES_LABEL, placeholder="e.g. arterial, venous, delayed",
                         clear_after_add=True),
                checkbox("required", "Required")),
    add_note="The type cannot be changed later (values already saved would no longer fit).",
    edit_fields=(text_box("name", "Name", max_length=64),
                 text_box("values", VALUES_LABEL, fill=", ".join),
                 checkbox("required", "Required")),
    fixed_note=_fixed_note,
    toggle=Toggle("values", "type", lambda kind: kind in CHOICE_TYPES),
    delete_check=_delete_check,
    changes=Changes(add_text_field, update_text_field, move_text_field, delete_text_field),
))
