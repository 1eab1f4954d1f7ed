"""What a list editor of :mod:`ril_dash.ui.components.list_editor` edits: one kind of named list.

A :class:`ListEditor` names the id prefix, the table's :class:`Column` s, the :class:`Field` s of
the Add and Edit forms (built with :func:`text_box`, :func:`colour_box`, :func:`kind_choice`,
:func:`checkbox`), an optional :class:`Toggle` (a field shown only for some kinds), the
delete-confirmation rule (``delete_check`` → :class:`DeleteCheck`) and the project.yaml
:class:`Changes`. Only data and small pure functions here; drawing and wiring live in
:mod:`~ril_dash.ui.components.list_editor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

from dash import dcc

from ril_dash.ui import ids


def _text(value) -> str:
    return value or ""


def _same(value):
    return value


@dataclass(frozen=True)
class Field:
    """One input of a form; ``key`` is its id part (``add-<key>``, ``edit-<key>``) and the
    keyword the change function takes it as."""

    key: str
    label: str | None  # None: the input stands alone (a checkbox carries its own label)
    make: Callable[[str], Any]  # the input, given its id
    read: Callable[[Any], Any] = _same  # the input's value → what the change function takes
    fill: Callable[[Any], Any] = _same  # the item's attribute ``key`` → the input's value
    clear_after_add: bool = False


def text_box(key: str, label: str, *, placeholder: str | None = None,
             max_length: int | None = None, fill: Callable[[Any], str] = _text,
             clear_after_add: bool = False) -> Field:
    extra = {k: v for k, v in (("placeholder", placeholder), ("maxLength", max_length))
             if v is not None}
    return Field(key, label, lambda id_: dcc.Input(id=id_, type="text", value="",
                                                   autoComplete="off", **extra),
                 read=_text, fill=fill, clear_after_add=clear_after_add)


def colour_box(key: str, label: str, value: str) -> Field:
    return Field(key, label, lambda id_: dcc.Input(id=id_, type="color", value=value))


def kind_choice(key: str, label: str, kinds: Sequence[str], default: str, *,
                menu: bool = False) -> Field:
    """One of ``kinds``: inline radio buttons, or a drop-down menu when ``menu``."""
    options = [{"label": k, "value": k} for k in kinds]
    if menu:
        return Field(key, label, lambda id_: dcc.Dropdown(
            id=id_, value=default, options=options, clearable=False, searchable=False,
            style={"minWidth": "10em"}))
    return Field(key, label, lambda id_: dcc.RadioItems(id=id_, value=default, options=options,
                                                        inline=True))


def checkbox(key: str, label: str) -> Field:
    """A yes/no field: the change function gets a bool."""
    return Field(key, None, lambda id_: dcc.Checklist(id=id_, value=[],
                                                      options=[{"label": label, "value": key}]),
                 read=lambda value: key in (value or []), fill=lambda on: [key] if on else [])


@dataclass(frozen=True)
class Column:
    title: str
    cell: Callable[[Any], Any]  # the item → the cell's content (a string is shown as text)
    key: str | None = None  # the cell's class is ril-<prefix>-<key>


@dataclass(frozen=True)
class Toggle:
    """Field ``field`` is shown only when ``shown(kind)``, where ``kind`` is the Add form's
    field ``by`` or the edited item's attribute ``by``; a hidden field is passed as None."""

    field: str
    by: str
    shown: Callable[[Any], bool]


@dataclass(frozen=True)
class DeleteCheck:
    """What the delete dialog says; ``typed``: the user must type DELETE; ``confirmed``:
    keywords handed to the delete function (e.g. the number of series the user was shown)."""

    message: str
    typed: bool = False
    confirmed: dict = field(default_factory=dict)


class Changes(NamedTuple):
    """The application commands that change one list of project.yaml
    (:mod:`ril_dash.application.definitions`). Each takes ``(services, actor, name)`` first and
    ``expected_sha256=`` last: ``add(…, **add_form)``, ``update(…, **edit_form)``,
    ``move(…, offset)``, ``delete(…, **DeleteCheck.confirmed)``."""

    add: Callable[..., object]
    update: Callable[..., object]
    move: Callable[..., object]
    delete: Callable[..., object]


@dataclass(frozen=True)
class ListEditor:
    """One kind of named list (an item has a ``name``)."""

    prefix: str  # ids <prefix>-table, <prefix>-add-name, …
    noun: str  # "ROI": "No ROIs yet", "Add ROI"
    title: str | None  # a heading of its own (None: the page's heading serves)
    intro: str | None
    items: Callable[[Any], Sequence]  # the config → the list
    columns: tuple[Column, ...]
    add_title: str
    add_fields: tuple[Field, ...]  # one of them is "name"
    add_note: str
    edit_fields: tuple[Field, ...]  # one of them is "name"
    fixed_note: Callable[[Any], str]  # the Edit form's note on what cannot change
    toggle: Toggle | None  # a field shown only for some kinds
    delete_check: Callable[[Any, Any], DeleteCheck]  # (project, item); may raise RilDashError
    changes: Changes

    def id(self, part: str) -> str:
        return ids.editor_id(self.prefix, part)
