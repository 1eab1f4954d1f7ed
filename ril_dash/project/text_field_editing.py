"""Editing the dataset-level text-field definitions (``text_fields``) of project.yaml, safely.

Every change (:func:`add_text_field`, :func:`update_text_field`, :func:`move_text_field`,
:func:`delete_text_field`) goes through :func:`ril_dash.project.roi_editing.edit_project_yaml`,
like the ROI edits: a :class:`filelock.FileLock`, an optional compare-and-swap on the file's
SHA-256 (``expected_sha256=``, from :func:`~ril_dash.project.roi_editing.read_project_yaml`; a
mismatch raises :class:`~ril_dash.errors.VersionConflict`), validation of the new text with
``parse_project_yaml`` *before* writing, and an atomic write. Invalid input raises
:class:`~ril_dash.errors.InvalidProject` and leaves project.yaml unchanged byte for byte.

The type of a field is fixed once created (saved values would no longer fit it). Removing an
allowed value, or deleting a field, is allowed even when series hold that value: saved values
stay in each series' history; a deleted field is simply no longer shown or exported.

Developer notes::

    add/update/move/delete(expected_sha256=sha) ─► _clean_* (input) ─► edit_project_yaml(change)
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

from ril_dash.errors import InvalidProject, VersionConflict
from ril_dash.project.named_items import (
    added,
    check_fixed,
    check_offset,
    clean_bool,
    clean_name,
    moved,
    removed,
    updated,
)
from ril_dash.project.roi_editing import edit_project_yaml
from ril_dash.project.schema import (
    FIELD_TYPES,
    ProjectConfig,
    TextFieldDef,
)

CHOICE_TYPES = ("choice", "multi_choice")
MAX_VALUE_LENGTH = 100


# ---------------------------------------------------------------- validation of user input


def _clean_type(kind) -> str:
    if kind not in FIELD_TYPES:
        raise InvalidProject(f"{str(kind)[:40]!r} is not a text field type; use one of "
                             f"{', '.join(FIELD_TYPES)}.")
    return kind


def parse_values(values) -> tuple[str, ...]:
    """Allowed values from a comma-separated string or an iterable, stripped, empties dropped.

    Examples
    --------
    >>> parse_values(" good, poor ,, ")
    ('good', 'poor')
    >>> parse_values(["a", " b "])
    ('a', 'b')
    """
    if values is None:
        return ()
    if isinstance(values, str):
        values = values.split(",")
    if not isinstance(values, Iterable):
        raise InvalidProject(f"The allowed values must be a list of texts, got {values!r}.")
    out = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidProject(f"Allowed value {value!r} is not a text; list texts only.")
        if value.strip():
            out.append(value.strip())
    return tuple(out)


def _clean_values(values, kind: str, name: str) -> tuple[str, ...]:
    values = parse_values(values)
    if kind not in CHOICE_TYPES:
        if values:
            raise InvalidProject(f"{name!r} is a {kind} field, which has no allowed values; "
                                 f"only choice and multi_choice fields list values.")
        return ()
    if not values:
        raise InvalidProject(f"{name!r} is a {kind} field; list at least one allowed value "
                             f"(comma-separated, e.g. good, acceptable, poor).")
    seen: dict[str, str] = {}
    for value in values:
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidProject(f"The allowed value {value[:40]!r}… is {len(value)} characters "
                                 f"long; use at most {MAX_VALUE_LENGTH}.")
        if any(ord(c) < 32 for c in value):
            raise InvalidProject(f"The allowed value {value[:40]!r} contains a line break or "
                                 f"control character; use one line of text.")
        if value.casefold() in seen:
            raise InvalidProject(f"{value!r} is listed twice (as {seen[value.casefold()]!r}; "
                                 f"values ignore case); list each value once.")
        seen[value.casefold()] = value
    return values


def _edit(project_dir, expected_sha256, change) -> ProjectConfig:
    try:
        return edit_project_yaml(project_dir, expected_sha256, change)
    except VersionConflict:
        raise VersionConflict("project.yaml was changed by someone else; reload the text "
                              "fields and make your change again.") from None


# ---------------------------------------------------------------- the changes
def add_text_field(project_dir: str | os.PathLike, name: str, type: str,
                   values: Iterable[str] | str = (), required: bool = False, *,
                   expected_sha256: str | None = None) -> ProjectConfig:
    """Append a text field; returns the new config.

    ``values`` (the choices of a ``choice`` / ``multi_choice`` field) may be a list or a
    comma-separated string.

    Raises
    ------
    InvalidProject
        Empty, too long or duplicate (case-insensitive) name, unknown type, no values for a
        choice type, values for another type, a value listed twice.
    VersionConflict
        ``expected_sha256`` is not the file's current hash.
    """
    name = clean_name(name, "text field", "Contrast phase")
    kind = _clean_type(type)
    values = _clean_values(values, kind, name)
    required = clean_bool(required, "required")

    def change(config: ProjectConfig) -> ProjectConfig:
        return replace(config, text_fields=added(
            config.text_fields, TextFieldDef(name, kind, values, required), "text field"))

    return _edit(project_dir, expected_sha256, change)


def update_text_field(project_dir: str | os.PathLike, old_name: str, *, name: str | None = None,
                      values: Iterable[str] | str | None = None, required: bool | None = None,
                      type: str | None = None,
                      expected_sha256: str | None = None) -> ProjectConfig:
    """Rename a field, change its allowed values or whether it is required (``None``: keep).

    ``type`` is accepted only to refuse a change with a clear message: the type of a field is
    fixed once created. Removing an allowed value that series use is allowed (their saved values
    stay in the history).
    """
    new_name = None if name is None else clean_name(name, "text field", "Contrast phase")
    new_required = None if required is None else clean_bool(required, "required")

    def change_field(field: TextFieldDef, final_name: str) -> TextFieldDef:
        check_fixed(field, "type", "type", type, f"values already saved would no longer fit "
                    f"a {type} field. Add a new field instead.")
        return replace(field, name=final_name,
                       values=(field.values if values is None
                               else _clean_values(values, field.type, final_name)),
                       required=field.required if new_required is None else new_required)

    return _edit(project_dir, expected_sha256, lambda config: replace(
        config, text_fields=updated(config.text_fields, old_name, new_name, "text field",
                                    "reload the page", change_field)))


def move_text_field(project_dir: str | os.PathLike, name: str, offset: int, *,
                    expected_sha256: str | None = None) -> ProjectConfig:
    """Move a field ``offset`` places (−1 up, +1 down), clamped to the list's ends."""
    check_offset(offset)
    return _edit(project_dir, expected_sha256, lambda config: replace(
        config, text_fields=moved(config.text_fields, name, offset, "text field",
                                  "reload the page")))


def delete_text_field(project_dir: str | os.PathLike, name: str, *,
                      expected_sha256: str | None = None) -> ProjectConfig:
    """Remove a field: values already saved stay in each series' history; it is no longer
    shown or exported."""

    return _edit(project_dir, expected_sha256, lambda config: replace(
        config, text_fields=removed(config.text_fields, name, "text field",
                                    "reload the page")[0]))
