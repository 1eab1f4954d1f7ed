"""The project grid's rows as columns: one table per scan of the project, queried per request.

A project of 100,000 series cannot be sent to the browser as 100,000 row objects (24 MB of
JSON, seconds to parse and more to build in the grid). :class:`SeriesTable` holds the series
list and the metadata CSV once as pandas columns (built again only after a rescan), and
:func:`grid_rows` answers one block of the grid at a time: the folder, the search box, the
column filters and the sort are applied on the columns (:mod:`ril_dash.application.grid_query`),
and only the requested rows become dictionaries.

What depends on the annotation store and on the user (annotated, the status columns, the
rights rule: a series the user may not open shows neither its annotations nor, unless
project.yaml says ``metadata_visible_to: everyone``, its metadata, and cannot be found by them)
is read at each request, as the page did before, from the store's summaries; series without
versions share one workflow state, so the rule is applied per distinct state, not per series.

The folder panel is answered from the same columns (:meth:`SeriesTable.folder_children`).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ril_dash.application import rights
from ril_dash.application.grid_query import GridQuery, select_rows
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.project.annotation_store import annotated_series
from ril_dash.project.history_scan import read_summaries
from ril_dash.project.text_values import format_text_value


def level_names(project) -> list[str]:
    """The names of the folder levels: project.yaml's ``hierarchy``, then "Level N"."""
    depth = max((len(s.levels) for s in project.series), default=0)
    names = list(project.config.hierarchy)
    return names[:depth] + [f"Level {i + 1}" for i in range(len(names), depth)]


class SeriesTable:
    """The series of a project and their metadata as columns (the order of ``project.series``).

    ``frame`` has the columns ``id``, ``name``, ``size_mb``, ``level:<name>`` and
    ``meta:<column>`` (missing values are ''); ``public_text`` and ``meta_text`` are the
    lower-cased text the search box looks in (the metadata apart, for the rights rule).
    """

    def __init__(self, project) -> None:
        self.series, self.metadata = project.series, project.metadata
        self.levels = level_names(project)
        self.meta_columns = []
        for keys in dict.fromkeys(tuple(values) for values in project.metadata.values()):
            self.meta_columns.extend(k for k in keys if k not in self.meta_columns)
        records = project.series
        data = {"id": [r.id for r in records], "name": [r.name for r in records],
                "size_mb": np.round(np.fromiter((r.size for r in records), float,
                                                len(records)) / 1e6, 2)}
        for depth, name in enumerate(self.levels):
            data[f"level:{name}"] = [r.levels[depth] if depth < len(r.levels) else ""
                                     for r in records]
        empty: dict = {}
        rows = [project.metadata.get(r.id, empty) for r in records]
        for key in self.meta_columns:
            data[f"meta:{key}"] = [row.get(key, "") for row in rows]
        self.frame = pd.DataFrame(data)
        self.frame.index = pd.RangeIndex(len(records))
        self.position = {series_id: i for i, series_id in enumerate(data["id"])}
        public = [f"level:{name}" for name in self.levels] + ["name", "id"]
        sizes = pd.Series([_js_number(v) for v in data["size_mb"]], dtype=object)
        self.public_text = _joined(self.frame, public, sizes)
        self.meta_text = _joined(self.frame, [f"meta:{k}" for k in self.meta_columns])
        self._children: dict[str, list[tuple[str, int]]] = {}
        self._depth = np.fromiter((len(r.levels) for r in records), np.int16, len(records))

    def folder_mask(self, folder: str) -> np.ndarray | None:
        """Rows under ``folder`` (None for the whole project, '' included)."""
        if not folder:
            return None
        parts = folder.split("/")
        if len(parts) > len(self.levels):
            return np.zeros(len(self.frame), bool)
        mask = self._depth >= len(parts)
        for depth, part in enumerate(parts):
            mask &= (self.frame[f"level:{self.levels[depth]}"].to_numpy() == part)
        return mask

    def has_folder(self, folder: str) -> bool:
        """Whether ``folder`` ('' is the project) holds any series."""
        mask = self.folder_mask(folder)
        return True if mask is None else bool(mask.any())

    def folder_children(self, folder: str) -> list[tuple[str, int]]:
        """``[(child folder path, series under it)]`` of ``folder``, in natural order (the
        order of the series, which are sorted naturally by path); kept for the next call (the
        panel asks again at each key typed in its filter)."""
        children = self._children.get(folder)
        if children is None:
            if len(self._children) >= 256:
                self._children.clear()
            children = self._children[folder] = self._folder_children(folder)
        return children

    def _folder_children(self, folder: str) -> list[tuple[str, int]]:
        depth = len(folder.split("/")) if folder else 0
        if depth >= len(self.levels):
            return []
        mask = self.folder_mask(folder)
        deeper = self._depth > depth
        mask = deeper if mask is None else mask & deeper
        names = self.frame[f"level:{self.levels[depth]}"].to_numpy()[mask]
        counts = pd.Series(names).value_counts(sort=False)
        prefix = folder + "/" if folder else ""
        return [(prefix + name, int(counts[name])) for name in pd.unique(names)]


_cache: "weakref.WeakKeyDictionary[object, SeriesTable]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def series_table(project) -> SeriesTable:
    """The table of ``project``'s current scan (built once; again after a rescan)."""
    with _cache_lock:
        table = _cache.get(project)
        if table is None or table.series is not project.series or \
                table.metadata is not project.metadata:
            table = _cache[project] = SeriesTable(project)
    return table


def _js_number(value: float) -> str:
    """A number as the browser writes it (``0`` rather than ``0.0``), which the grid's search
    looked in."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _joined(frame: pd.DataFrame, columns: list[str], *extra: pd.Series) -> pd.Series:
    """The lower-cased values of ``columns`` (and ``extra``) of each row, one per line."""
    parts = [frame[c].tolist() for c in columns] + [list(e) for e in extra]
    if not parts:
        return pd.Series([""] * len(frame), dtype=object)
    return pd.Series(["\n".join(map(str, values)).lower() for values in zip(*parts)],
                     dtype=object)


@dataclass
class Annotations:
    """What the store and the rights say of the series for one user, now: ``annotated`` and
    ``readable`` / ``shows_metadata`` masks, the status columns of the annotated series and
    the number columns (NaN where a series has no value or may not be read)."""

    annotated: np.ndarray
    readable: np.ndarray
    shows_metadata: np.ndarray
    columns: dict[str, pd.Series]
    pools: tuple[np.ndarray, np.ndarray] | None
    numbers: dict[str, np.ndarray]


def annotations_of(services: Services, actor: Actor, table: SeriesTable,
                   numbers: dict[str, dict[str, float]] | None = None) -> Annotations:
    """Annotated series, the rights of ``actor`` and the status columns (texts, ROIs, pool,
    holder) for every row of ``table``, from the store's summaries (one read); ``numbers``
    (``{field: {series: value}}``, e.g. a model's uncertainty) become number columns, shown
    only where the series may be read."""
    project = services.project
    n = len(table.frame)
    edited = {s for s in annotated_series(project.config.annotations) if s in table.position}
    summaries = read_summaries(project.config.annotations, edited)
    annotated = np.zeros(n, bool)
    annotated[[table.position[s] for s in edited]] = True
    view = rights.series_view(services, actor, sorted(edited), annotated=edited,
                              summaries=summaries)
    default = rights.unannotated_view(services, actor)
    readable = np.full(n, default.readable)
    shows = np.full(n, default.shows_metadata)
    pools = None
    if default.state is not None:
        pool = np.full(n, default.state.pool, dtype=object)
        owner = np.full(n, default.state.owner or "", dtype=object)
        pools = (pool, owner)
    roi_names = {roi.value: roi.name for roi in project.config.rois}
    cells: dict[str, dict[int, str]] = {"rois": {}}
    for series_id in edited:
        i = table.position[series_id]
        readable[i], shows[i] = view.readable(series_id), view.shows_metadata(series_id)
        if pools is not None:
            state = view.states[series_id]
            pools[0][i], pools[1][i] = state.pool, state.owner or ""
        summary = summaries.get(series_id)
        if not readable[i] or not summary:
            continue
        cells["rois"][i] = ", ".join(roi_names.get(v, str(v)) for v in summary["rois"])
        for name, value in summary["texts"].items():
            cells.setdefault(f"text:{name}", {})[i] = format_text_value(value)
    columns = {}
    for name, values in cells.items():
        column = pd.Series("", index=table.frame.index, dtype=object)
        if values:
            column.iloc[list(values)] = list(values.values())
        columns[name] = column
    if pools is not None:
        columns["pool"] = pd.Series(pools[0], dtype=object)
        columns["owner"] = pd.Series(pools[1], dtype=object)
    number_columns = {}
    for field, values in (numbers or {}).items():
        column = np.full(n, np.nan)
        known = [(table.position[s], v) for s, v in values.items() if s in table.position]
        if known:
            where, found = zip(*known)
            column[list(where)] = np.asarray(found, float)
        column[~readable] = np.nan
        number_columns[field] = column
    return Annotations(annotated, readable, shows, columns, pools, number_columns)


def count_label(annotated: np.ndarray, mask: np.ndarray | None, folder: str = "") -> str:
    """'13 series · 2 annotated · 11 not annotated' (in a folder: '… in P1')."""
    chosen = annotated if mask is None else annotated[mask]
    total, done = len(chosen), int(chosen.sum())
    where = f" in {folder}" if folder else ""
    return f"{total} series{where} · {done} annotated · {total - done} not annotated"


def grid_rows(services: Services, actor: Actor, query: GridQuery,
              numbers: dict[str, dict[str, float]] | None = None) -> tuple[list[dict], int]:
    """The rows ``query.start`` to ``query.end`` of the grid for ``actor`` and the number of
    rows that match (``query``: folder, search text, column filters, sort; ``numbers``: the
    number columns of :func:`annotations_of`)."""
    table = series_table(services.project)
    notes = annotations_of(services, actor, table, numbers)
    order = select_rows(table, notes, query)
    return [_row(table, notes, i) for i in order[query.start:query.end]], len(order)


def matching_ids(services: Services, actor: Actor, query: GridQuery,
                 numbers: dict[str, dict[str, float]] | None = None) -> list[str]:
    """Every series id the grid shows under ``query`` (in its order)."""
    table = series_table(services.project)
    notes = annotations_of(services, actor, table, numbers)
    ids = table.frame["id"].to_numpy()
    return [str(ids[i]) for i in select_rows(table, notes, query)]


def _row(table: SeriesTable, notes: Annotations, i: int) -> dict:
    frame = table.frame
    row = {"id": frame["id"].iat[i], "name": frame["name"].iat[i],
           "size_mb": float(frame["size_mb"].iat[i]), "annotated": bool(notes.annotated[i])}
    for name in table.levels:
        value = frame[f"level:{name}"].iat[i]
        if value:
            row[f"level:{name}"] = value
    if notes.shows_metadata[i]:
        metadata = table.metadata.get(row["id"], {})
        for key, value in metadata.items():
            row[f"meta:{key}"] = value
    if notes.pools is not None:
        row["pool"], row["owner"] = notes.pools[0][i], notes.pools[1][i]
    for field, values in notes.numbers.items():
        if not np.isnan(values[i]):
            row[field] = float(values[i])
    if not notes.readable[i]:
        row["restricted"] = True
    elif notes.annotated[i]:
        for name, column in notes.columns.items():
            if name not in ("pool", "owner") and column.iat[i]:
                row[name] = column.iat[i]
    return row
