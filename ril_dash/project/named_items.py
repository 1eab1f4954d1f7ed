"""Checks shared by the editors of named project.yaml lists (ROIs, text fields): names, flags,
finding an item by name, unique names and reordering. ``what`` names the kind of item in the
messages ("ROI", "text field")."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ril_dash.errors import InvalidProject
from ril_dash.project.schema import MAX_NAME_LENGTH


def _a(what: str) -> str:
    return "An" if what[:1].lower() in "aeiou" or what.isupper() else "A"


def clean_name(name, what: str, example: str) -> str:
    """A stripped, one-line name of at most MAX_NAME_LENGTH characters.

    Examples
    --------
    >>> clean_name("  Liver ", "ROI", "Liver")
    'Liver'
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidProject(f"The {what} name is empty; give the {what} a name, e.g. "
                             f"{example}.")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidProject(f"The {what} name is {len(name)} characters long; use at most "
                             f"{MAX_NAME_LENGTH}.")
    if any(ord(c) < 32 for c in name):
        raise InvalidProject(f"The {what} name contains a line break or control character; "
                             "use one line of text.")
    return name


def clean_bool(value, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidProject(f"{what} must be true or false, got {value!r}.")
    return bool(value)


def find_index(items: Sequence, name, what: str, hint: str) -> int:
    """Index of the item named ``name`` (case-insensitive); ``hint`` says what to do if none."""
    key = str(name).strip().casefold()
    for i, item in enumerate(items):
        if item.name.casefold() == key:
            return i
    known = ", ".join(item.name for item in items) or "none"
    raise InvalidProject(f"There is no {what} named {str(name)[:80]!r} ({what}s: {known}); "
                         f"{hint}.")


def check_unique_name(items: Sequence, name: str, what: str, skip: int | None = None) -> None:
    for i, item in enumerate(items):
        if i != skip and item.name.casefold() == name.casefold():
            raise InvalidProject(f"{_a(what)} {what} named {item.name!r} already exists "
                                 f"({what} names ignore case); choose another name.")


def moved(items: Sequence, name, offset, what: str, hint: str) -> tuple:
    """``items`` with the one named ``name`` moved ``offset`` places, clamped to the ends.

    Examples
    --------
    >>> from types import SimpleNamespace as N
    >>> [i.name for i in moved([N(name="a"), N(name="b"), N(name="c")], "a", 5, "ROI", "")]
    ['b', 'c', 'a']
    """
    check_offset(offset)
    items = list(items)
    i = find_index(items, name, what, hint)
    j = min(max(i + int(offset), 0), len(items) - 1)
    items.insert(j, items.pop(i))
    return tuple(items)


def check_offset(offset) -> None:
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise InvalidProject(f"offset must be a whole number (-1 up, +1 down), got {offset!r}.")
