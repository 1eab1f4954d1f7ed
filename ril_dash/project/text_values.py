"""Per-series text annotations: validate values of the project's text fields and save them.

A series' text values are one ``{field name: value}`` dict in the annotation store (see
:meth:`ril_dash.project.series_annotations.SeriesAnnotations.commit`): ``str`` for ``choice`` and
``text`` fields, ``list[str]`` for ``multi_choice``, ``float`` for ``number`` and ``bool`` for
``yes_no``. A field without a value is absent from the dict. Every change is one undoable
version with op ``"text"``. Nothing here knows about HTTP or Dash.
"""

from __future__ import annotations

import math
from typing import Any

from ril_dash.errors import EditRefused, VersionConflict
from ril_dash.project.annotation_store import Guard, SeriesAnnotations
from ril_dash.project.schema import ProjectConfig, TextFieldDef

__all__ = ["MAX_TEXT", "field_by_name", "fields_json", "missing_required", "set_text_values",
           "validate_text_value"]
MAX_TEXT = 2000
_TRUE, _FALSE = ("true", "yes"), ("false", "no")


def _show(raw: Any) -> str:
    return repr(raw if not isinstance(raw, str) else raw[:40])[:60]


def _allowed(field: TextFieldDef) -> str:
    return ", ".join(repr(v) for v in field.values) or "(none configured)"


def validate_text_value(field: TextFieldDef, raw: Any) -> Any:
    """The stored value of ``field`` for ``raw`` (as sent by a browser); ``None`` clears it.

    Raises
    ------
    EditRefused
        ``raw`` is not a valid value of the field (the message names the field and, for
        choice fields, the allowed values).

    Examples
    --------
    >>> f = TextFieldDef("Phase", "choice", ("arterial", "venous"))
    >>> validate_text_value(f, "venous"), validate_text_value(f, ""), validate_text_value(f, None)
    ('venous', None, None)
    >>> validate_text_value(TextFieldDef("Size", "number"), " 4.5")
    4.5
    >>> validate_text_value(TextFieldDef("Ok", "yes_no"), "No")
    False
    >>> validate_text_value(TextFieldDef("Tags", "multi_choice", ("a", "b")), ["b", "a"])
    ['b', 'a']
    >>> validate_text_value(f, "late")
    Traceback (most recent call last):
    ...
    ril_dash.errors.EditRefused: 'late' is not a choice of Phase; use one of 'arterial', 'venous'
    """
    name = field.name
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if field.type == "text":
        if not isinstance(raw, str):
            raise EditRefused(f"{name} must be text, not {_show(raw)}")
        value = raw.strip()
        if len(value) > MAX_TEXT:
            raise EditRefused(f"{name} is {len(value)} characters long; at most {MAX_TEXT} "
                              "are allowed")
        return value
    if field.type == "choice":
        if not isinstance(raw, str) or raw.strip() not in field.values:
            raise EditRefused(f"{_show(raw)} is not a choice of {name}; use one of "
                              f"{_allowed(field)}")
        return raw.strip()
    if field.type == "multi_choice":
        if not isinstance(raw, (list, tuple)):
            raise EditRefused(f"{name} takes a list of choices among {_allowed(field)}, not "
                              f"{_show(raw)}")
        values = []
        for item in raw:
            if not isinstance(item, str) or item.strip() not in field.values:
                raise EditRefused(f"{_show(item)} is not a choice of {name}; use any of "
                                  f"{_allowed(field)}")
            if item.strip() in values:
                raise EditRefused(f"{item.strip()!r} is chosen twice in {name}")
            values.append(item.strip())
        return values or None
    if field.type == "number":
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise EditRefused(f"{name} must be a number, not {_show(raw)}")
        try:
            value = float(raw.strip() if isinstance(raw, str) else raw)
        except (ValueError, OverflowError):
            raise EditRefused(f"{name} must be a number, not {_show(raw)}") from None
        if not math.isfinite(value):
            raise EditRefused(f"{name} must be a finite number, not {_show(raw)}")
        return value
    if field.type == "yes_no":
        if isinstance(raw, bool):
            return raw
        word = raw.strip().casefold() if isinstance(raw, str) else None
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise EditRefused(f"{name} must be yes or no (true/false), not {_show(raw)}")
    raise EditRefused(f"{name} has the unknown type {field.type!r}")


def field_by_name(config: ProjectConfig, name: Any) -> TextFieldDef:
    """The text field called ``name`` (exact, else ignoring case); :class:`EditRefused` if none."""
    if isinstance(name, str):
        for f in config.text_fields:
            if f.name == name:
                return f
        for f in config.text_fields:
            if f.name.casefold() == name.casefold():
                return f
    known = ", ".join(repr(f.name) for f in config.text_fields) or "none are configured"
    raise EditRefused(f"Unknown text field {_show(name)}; the text fields are {known}")


def fields_json(config: ProjectConfig) -> list[dict]:
    """The text fields as JSON (``name``, ``type``, ``values``, ``required``)."""
    return [{"name": f.name, "type": f.type, "values": list(f.values), "required": f.required}
            for f in config.text_fields]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def missing_required(config: ProjectConfig, texts: dict) -> list[str]:
    """Names of the required fields without a value in ``texts`` (in the project's order).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> cfg = SimpleNamespace(text_fields=(TextFieldDef("A", "text", required=True),
    ...                                    TextFieldDef("B", "yes_no", required=True),
    ...                                    TextFieldDef("C", "text")))
    >>> missing_required(cfg, {"B": False})
    ['A']
    """
    return [f.name for f in config.text_fields if f.required and _empty(texts.get(f.name))]


def set_text_values(config: ProjectConfig, annotations: SeriesAnnotations, parent: int | None,
                    changes: dict, user: str, *, guard: Guard | None = None,
                    meta: dict | None = None) -> int | None:
    """Validate ``changes`` (``{field name: raw value}``; ``None``/``""`` clears) and save them
    as one version (op ``"text"``, provenance manual unless ``meta`` says otherwise, e.g. a
    model's classification) on top of ``parent``; ``guard`` is checked under the store lock
    (see :meth:`SeriesAnnotations.commit`).

    Returns the new version, or ``None`` when no value changed.

    Raises
    ------
    EditRefused
        An unknown field or an invalid value (nothing is saved).
    VersionConflict
        ``parent`` is not the latest version.
    Exception
        Whatever ``guard`` raises (e.g. :class:`~ril_dash.errors.PermissionDenied`).
    """
    if not isinstance(changes, dict):
        raise EditRefused("'values' must be an object {field name: value}")
    validated = {}
    for name, raw in changes.items():
        f = field_by_name(config, name)
        validated[f.name] = validate_text_value(f, raw)
    state = annotations.refresh()
    if parent is not None and parent != state.version:
        raise VersionConflict(
            f"the annotations of {annotations.series_id or annotations.folder} changed: you "
            f"edited version {parent} but version {state.version} was saved meanwhile. Reload "
            "the series to see the latest values, then redo your edit.")
    texts = dict(state.texts)
    for name, value in validated.items():
        if value is None:
            texts.pop(name, None)
        else:
            texts[name] = value
    if texts == state.texts:
        return None
    meta = {"user": user, "op": "text", "tool": None, "roi": None,
            "provenance": {"kind": "manual", "model": None}, **(meta or {})}
    return annotations.commit(state.version if parent is None else parent, None, meta,
                              texts=texts, guard=guard)


def format_text_value(value) -> str:
    """A text annotation as one table cell: lists joined by '; ', yes/no for booleans.

    Examples
    --------
    >>> format_text_value(["cyst", "stone"]), format_text_value(True), format_text_value(None)
    ('cyst; stone', 'yes', '')
    """
    if isinstance(value, list):
        return "; ".join(map(str, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)
