"""ROI manager page (``/rois``): the ROIs and text fields of project.yaml, edited in place.

The page holds two editors of :mod:`ril_dash.ui.components.list_editor`: the ROIs (colour
swatch, name, RadLex ID, mask value, type, lock) and, below them, the text fields
(:mod:`ril_dash.ui.components.text_field_manager`). ROI changes go through
:mod:`ril_dash.project.roi_editing` (locked, validated, atomic, compare-and-swap on the file
hash this page last saw), so an invalid change is never written and a change made meanwhile by
someone else is reported instead of overwritten. Saving rewrites project.yaml, which drops its
comments. Deleting an ROI that annotations use asks to type DELETE and says in how many series.
Users who are not admins see the lists read-only, without editing controls, and the server
refuses their changes.

Developer notes::

    layout ─► current_config ─► ROI_SHA + editor_section(ROI_EDITOR) + (TEXT_FIELD_EDITOR)
    ROI_EDITOR: add/update/move_roi, delete via _delete_roi (series count confirmed)
"""

from __future__ import annotations

import dash
from dash import dcc, html

from ril_dash.application.definitions import add_roi, delete_roi, move_roi, update_roi
from ril_dash.project.roi_editing import DeleteNeedsConfirmation, series_using_roi
from ril_dash.project.schema import ROI_TYPES
from ril_dash.ui import access, ids
from ril_dash.ui.components.list_editor import (
    CONFIRM_WORD,
    current_config,
    editor_section,
    register_callbacks,
)
from ril_dash.ui.components.list_editor_spec import (
    Changes,
    Column,
    DeleteCheck,
    ListEditor,
    checkbox,
    colour_box,
    kind_choice,
    text_box,
)
from ril_dash.ui.components.text_field_manager import TEXT_FIELD_EDITOR


def register() -> None:
    dash.register_page(__name__, path="/rois", name="ROIs", title="ril_dash – ROIs",
                       layout=layout)


def _fixed_note(roi) -> str:
    return (f"Mask value {roi.value} and type {roi.type} are fixed once an ROI is created: "
            f"existing masks store them, so changing them would silently re-label them.")


def _delete_check(project, roi) -> DeleteCheck:
    count = len(series_using_roi(project, roi.value))
    if not count:
        return DeleteCheck(f"{roi.name} has no annotations in any series. Delete it?",
                           confirmed={"count": 0})
    return DeleteCheck(f"{roi.name} has annotations in {count} series; deleting it removes them "
                       f"from the current masks (they stay in each series' history). Type "
                       f"{CONFIRM_WORD} to confirm.", typed=True, confirmed={"count": count})


def _delete_roi(services, actor, name: str, /, *, count: int,
                expected_sha256: str | None) -> None:
    """Delete an ROI the user saw used in ``count`` series (clearing its annotations)."""
    try:
        delete_roi(services, actor, name, confirm_series_count=count or None,
                   expected_sha256=expected_sha256)
    except DeleteNeedsConfirmation as exc:
        raise DeleteNeedsConfirmation(
            f"{name} now has annotations in {len(exc.series)} series (it had {count} when you "
            f"clicked Delete); click Delete again to see the new count.", exc.series) from None


ROI_EDITOR = register_callbacks(ListEditor(
    prefix=ids.ROI_EDITOR,
    noun="ROI",
    title=None,  # the page's own heading
    intro=None,
    items=lambda config: config.rois,
    columns=(Column("", lambda r: html.Span(className="ril-swatch", title=r.color,
                                            style={"backgroundColor": r.color})),
             Column("Name", lambda r: r.name, "name"),
             Column("RadLex ID", lambda r: r.radlex or "—", "radlex"),
             Column("Mask value", lambda r: str(r.value), "value"),
             Column("Type", lambda r: r.type, "type"),
             Column("Locked", lambda r: "yes" if r.locked else "no", "locked")),
    add_title="Add an ROI",
    add_fields=(text_box("name", "Name", placeholder="e.g. Liver", max_length=64,
                         clear_after_add=True),
                text_box("radlex", "RadLex ID", placeholder="e.g. RID58 (optional)",
                         clear_after_add=True),
                colour_box("color", "Colour", "#e6194b"),
                kind_choice("type", "Type", ROI_TYPES, "area"),
                checkbox("locked", "Locked")),
    add_note="The mask value is assigned automatically and, like the type, cannot be changed "
             "later (existing masks store it).",
    edit_fields=(text_box("name", "Name", max_length=64),
                 text_box("radlex", "RadLex ID"),
                 colour_box("color", "Colour", "#000000"),
                 checkbox("locked", "Locked")),
    fixed_note=_fixed_note,
    toggle=None,
    delete_check=_delete_check,
    changes=Changes(add_roi, update_roi, move_roi, _delete_roi),
))


def layout(**_query) -> html.Div:
    config, sha, alert = current_config((ROI_EDITOR, TEXT_FIELD_EDITOR))
    admin = access.is_admin()
    return html.Div(className="ril-roi-page" + ("" if admin else " ril-defs-read-only"), children=[
        dcc.Store(id=ids.ROI_SHA, data=sha),
        html.H1("ROIs"),
        html.P("The regions of interest of the whole project (project.yaml). Saving a change "
               "rewrites project.yaml; comments in it are not kept.", className="ril-muted"),
        None if admin else html.Div("Only an administrator changes the ROIs and text fields; "
                                    "you see them read-only.", id=ids.ROI_READ_ONLY,
                                    className="ril-alert ril-alert-warning"),
        editor_section(ROI_EDITOR, config, alert),
        editor_section(TEXT_FIELD_EDITOR, config, alert),
    ])
