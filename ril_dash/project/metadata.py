"""Per-series metadata from a CSV table (patient age, scanner, split, …).

One column holds the series path relative to the images folder (posix, extension included); the
other columns are kept as text and shown beside the series. Every value is a string ('' for an
empty cell): the table is for display and filtering, not arithmetic.
"""

from __future__ import annotations

import os
from itertools import repeat
from pathlib import Path

import pandas as pd

from ril_dash.errors import InvalidProject


def normalise_series_path(text: str) -> str:
    """Return a metadata path cell as a series id: posix, no ``./``, no surrounding spaces.

    Examples
    --------
    >>> normalise_series_path(" ./P1\\\\ST1//a.nii.gz ")
    'P1/ST1/a.nii.gz'
    """
    text = text.strip().replace("\\", "/")
    return "/".join(p for p in text.split("/") if p not in ("", "."))


def load_metadata(csv_path: str | os.PathLike, path_column: str) -> dict[str, dict[str, str]]:
    """Read a metadata CSV into ``{series id: {column: value}}``.

    Parameters
    ----------
    csv_path : path-like
        The CSV file (UTF-8, a byte-order mark is fine).
    path_column : str
        The column holding each series' path relative to the images folder.

    Returns
    -------
    dict
        Keyed by normalised series id; each value maps the other columns to strings.

    Raises
    ------
    InvalidProject
        If the file is missing or unreadable, the column is missing, a path cell is empty, or
        two rows name the same series. Row numbers count data rows from 1 (the header is not
        counted).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "meta.csv"
    >>> _ = f.write_text("series,age,site\\nP1/a.nii.gz,54,\\nP2/b.nii,NA,Oslo\\n")
    >>> load_metadata(f, "series")
    {'P1/a.nii.gz': {'age': '54', 'site': ''}, 'P2/b.nii': {'age': 'NA', 'site': 'Oslo'}}
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InvalidProject(f"metadata file {csv_path} does not exist; create it or fix "
                             f"metadata.file in project.yaml")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InvalidProject(f"metadata file {csv_path} is empty; it needs a header row with "
                             f"a {path_column!r} column") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidProject(f"metadata file {csv_path} cannot be read as CSV ({detail}); "
                             f"save it as UTF-8 comma-separated text") from None
    table.columns = [str(c).strip() for c in table.columns]
    if path_column not in table.columns:
        raise InvalidProject(f"metadata file {csv_path} has no column {path_column!r} "
                             f"(columns: {', '.join(table.columns)}); fix "
                             f"metadata.path_column in project.yaml or rename the column")
    table = table.fillna("")
    others = [c for c in table.columns if c != path_column]
    out: dict[str, dict[str, str]] = {}
    first_row: dict[str, int] = {}
    columns = [table[c].tolist() for c in others]  # plain lists: quicker to walk
    for row_number, (cell, values) in enumerate(
            zip(table[path_column].tolist(), zip(*columns) if columns else repeat(())),
            start=1):
        series_id = normalise_series_path(str(cell))
        if not series_id:
            raise InvalidProject(f"metadata file {csv_path} row {row_number}: column "
                                 f"{path_column!r} is empty; give the series path or remove "
                                 f"the row")
        if series_id in out:
            raise InvalidProject(f"metadata file {csv_path} row {row_number}: series "
                                 f"{series_id!r} is already described in row "
                                 f"{first_row[series_id]}; keep one row per series")
        first_row[series_id] = row_number
        out[series_id] = {col: "" if val is None else str(val) for col, val in zip(others, values)}
    return out
