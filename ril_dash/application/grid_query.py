"""What the project grid asks for, applied to the columns of a :class:`SeriesTable`.

The grid (AG Grid's infinite row model) asks for rows ``start``–``end`` with its column filters
(``filterModel``) and sort (``sortModel``); the page adds the folder and the search box. The
answers are those AG Grid gives in the browser with all rows loaded:

* search box: every word (case ignored) appears in some column of the row;
* text filters: ``contains``, ``notContains``, ``equals``, ``notEqual``, ``startsWith``,
  ``endsWith``, ``blank``, ``notBlank`` (case ignored), number filters: ``equals``,
  ``notEqual``, ``lessThan(OrEqual)``, ``greaterThan(OrEqual)``, ``inRange`` (ends excluded),
  ``blank``, ``notBlank``; two conditions joined by ``AND`` / ``OR``;
* sort: by each sorted column in turn, text by code point, missing values first (last when
  descending); ties keep the project's (natural) order.

Metadata a user may not see counts as empty for all of these, so it cannot be found by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ril_dash.errors import RilDashError

if TYPE_CHECKING:  # pragma: no cover
    from ril_dash.application.series_table import Annotations, SeriesTable

#: the grid's blocks are of this many rows; a request for more is cut to it
MAX_BLOCK = 1000


class GridQueryError(RilDashError):
    """A grid request that cannot be answered (an unknown column or filter)."""


@dataclass(frozen=True)
class GridQuery:
    """Rows ``start``–``end`` under ``folder`` ('' is the project) matching ``search`` and
    AG Grid's ``filter_model``, in the order of its ``sort_model``."""

    folder: str = ""
    search: str = ""
    filter_model: dict = field(default_factory=dict)
    sort_model: list = field(default_factory=list)
    start: int = 0
    end: int = 100

    @classmethod
    def from_request(cls, request: dict | None, folder: str | None,
                     search: str | None) -> "GridQuery":
        """From the grid's ``getRowsRequest`` (None: the first block) and the page's state."""
        request = request or {}
        start = max(0, int(request.get("startRow") or 0))
        end = int(request.get("endRow") or start + 100)
        folder = folder if isinstance(folder, str) else ""
        search = search if isinstance(search, str) else ""
        return cls(folder, search, dict(request.get("filterModel") or {}),
                   list(request.get("sortModel") or []), start,
                   max(start, min(end, start + MAX_BLOCK)))


def column(table: "SeriesTable", notes: "Annotations", col_id: str) -> pd.Series:
    """The values of grid column ``col_id`` for every row, as the user may see them."""
    if col_id in ("id", "name", "size_mb") or col_id.startswith("level:"):
        if col_id in table.frame:
            return table.frame[col_id]
    elif col_id.startswith("meta:") and col_id in table.frame:
        values = table.frame[col_id]
        return values if notes.shows_metadata.all() else values.where(notes.shows_metadata, "")
    elif col_id in notes.columns:
        return notes.columns[col_id]
    elif col_id in notes.numbers:
        return pd.Series(notes.numbers[col_id])
    elif col_id == "rois" or col_id.startswith("text:"):
        return pd.Series("", index=table.frame.index, dtype=object)
    raise GridQueryError(f"the grid has no column {col_id!r}; reload the page")


def select_rows(table: "SeriesTable", notes: "Annotations", query: GridQuery) -> np.ndarray:
    """Positions (in ``table``) of the rows ``query`` matches, in the grid's order."""
    mask = table.folder_mask(query.folder)
    mask = np.ones(len(table.frame), bool) if mask is None else mask.copy()
    for word in query.search.lower().split():
        mask &= _search_word(table, notes, word)
    for col_id, model in query.filter_model.items():
        mask &= _filter(column(table, notes, col_id), model)
    rows = np.flatnonzero(mask)
    if query.sort_model and len(rows):
        keys, ascending = [], []
        for item in query.sort_model:
            key = column(table, notes, str(item.get("colId"))).to_numpy()[rows]
            if key.dtype.kind == "f":  # no value: first ascending, last descending
                key = np.where(np.isnan(key), -np.inf, key)
            keys.append(key)
            ascending.append(item.get("sort") != "desc")
        frame = pd.DataFrame({str(i): key for i, key in enumerate(keys)})
        order = frame.sort_values(list(frame.columns), ascending=ascending,
                                  kind="stable").index.to_numpy()
        rows = rows[order]
    return rows


def _search_word(table, notes, word: str) -> np.ndarray:
    found = np.array(table.public_text.str.contains(word, regex=False), bool)
    found |= table.meta_text.str.contains(word, regex=False).to_numpy() & notes.shows_metadata
    for values in notes.columns.values():
        filled = values[values != ""]  # most series have no annotation: look at the others
        hits = filled.str.lower().str.contains(word, regex=False).to_numpy(bool)
        found[filled.index.to_numpy()[hits]] = True
    return found


def _filter(values: pd.Series, model: dict) -> np.ndarray:
    if not isinstance(model, dict):
        raise GridQueryError("a column filter must be an object; reload the page")
    if "conditions" in model:
        parts = [_filter(values, {"filterType": model.get("filterType"), **c})
                 for c in model["conditions"]]
        if not parts:
            return np.ones(len(values), bool)
        join = np.logical_or if model.get("operator") == "OR" else np.logical_and
        return join.reduce(parts)
    kind = model.get("type")
    if model.get("filterType") == "number":
        return _number_filter(pd.to_numeric(values, errors="coerce").to_numpy(float), kind,
                              model.get("filter"), model.get("filterTo"))
    return _text_filter(values.astype(str), kind, str(model.get("filter") or "").lower())


def _text_filter(values: pd.Series, kind, text: str) -> np.ndarray:
    if kind in ("blank", "notBlank"):
        blank = (values.str.strip() == "").to_numpy()
        return blank if kind == "blank" else ~blank
    lower = values.str.lower()
    tests = {"contains": lambda: lower.str.contains(text, regex=False),
             "notContains": lambda: ~lower.str.contains(text, regex=False),
             "equals": lambda: lower == text, "notEqual": lambda: lower != text,
             "startsWith": lambda: lower.str.startswith(text),
             "endsWith": lambda: lower.str.endswith(text)}
    if kind not in tests:
        raise GridQueryError(f"unknown text filter {kind!r}; reload the page")
    return np.asarray(tests[kind](), bool)


def _number_filter(values: np.ndarray, kind, low, high) -> np.ndarray:
    if kind in ("blank", "notBlank"):
        blank = np.isnan(values)
        return blank if kind == "blank" else ~blank
    try:
        low = float(low)
        high = float(high) if kind == "inRange" else 0.0
    except (TypeError, ValueError):
        return np.ones(len(values), bool)  # no number typed yet: the grid filters nothing
    with np.errstate(invalid="ignore"):
        tests = {"equals": lambda: values == low, "notEqual": lambda: values != low,
                 "lessThan": lambda: values < low, "lessThanOrEqual": lambda: values <= low,
                 "greaterThan": lambda: values > low,
                 "greaterThanOrEqual": lambda: values >= low,
                 "inRange": lambda: (values > low) & (values < high)}
        if kind not in tests:
            raise GridQueryError(f"unknown number filter {kind!r}; reload the page")
        return tests[kind]()
