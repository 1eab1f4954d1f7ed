"""What the editors of named project.yaml lists (ROIs, text fields) share: checks of names and
flags, finding an item by name, unique names, adding, changing, removing and reordering items.
``what`` names the kind of item in the messages ("ROI", "text field")."""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

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


Item = TypeVar("Item")


def added(items: Sequence[Item], item: Item, what: str) -> tuple[Item, ...]:
    """``items`` with ``item`` appended, refused if its name is taken (ignoring case)."""
    check_unique_name(items, item.name, what)
    return (*items, item)


def removed(items: Sequence[Item], name, what: str, hint: str) -> tuple[tuple[Item, ...], Item]:
    """``items`` without the one named ``name``, and that item."""
    items = list(items)
    item = items.pop(find_index(items, name, what, hint))
    return tuple(items), item


def check_fixed(item, label: str, attribute: str, new, why: str) -> None:
    """Refuse to change ``item.<attribute>``, fixed once the item exists, to ``new`` (``None``
    keeps it); ``label`` names it in the message, ``why`` ends the message.

    Examples
    --------
    >>> from types import SimpleNamespace as N
    >>> check_fixed(N(name="Liver", type="area"), "type", "type", "area", "...")
    >>> check_fixed(N(name="Liver", type="area"), "type", "type", "point", "add a new ROI.")
    Traceback (most recent call last):
    ril_dash.errors.InvalidProject: The type of 'Liver' (area) cannot be changed: add a new ROI.
    """
    old = getattr(item, attribute)
    if new is not None and new != old:
        raise InvalidProject(f"The {label} of {item.name!r} ({old}) cannot be changed: {why}")


def updated(items: Sequence[Item], old_name, new_name: str | None, what: str, hint: str,
            change: Callable[[Item, str], Item]) -> tuple[Item, ...]:
    """``items`` with the one named ``old_name`` replaced by ``change(item, name)``.

    ``name`` is ``new_name`` (refused if another item has it, ignoring case) or, when that is
    None, the item's own name; ``change`` refuses what may not change and returns the new item.

    Examples
    --------
    >>> from types import SimpleNamespace as N
    >>> [i.name for i in updated([N(name="a"), N(name="b")], "A", "c", "ROI", "",
    ...                          lambda item, name: N(name=name))]
    ['c', 'b']
    >>> updated([N(name="a"), N(name="b")], "a", "B", "ROI", "",
    ...         lambda item, name: item)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ril_dash.errors.InvalidProject: An ROI named 'b' already exists (ROI names ignore case); ...
    """
    items = list(items)
    i = find_index(items, old_name, what, hint)
    if new_name is not None:
        check_unique_name(items, new_name, what, skip=i)
    items[i] = change(items[i], items[i].name if new_name is None else new_name)
    return tuple(items)


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
