"""The tables of an export: ROI statistics, points, the mask-value mapping; CSV, JSON and Excel.

A table is a :class:`Table` (a sheet name, column names, rows); :func:`write_excel` writes any
number of them, one sheet each, so later tables (text annotations) only add a ``Table``.
Every file is written to a temp file beside its destination and then renamed.

The mapping files are the contract with the importer (:mod:`ril_dash.project.import_masks`):

``mapping.json``::

    {"rois": [{"value": 1, "name": "Liver", "radlex": "RID58", "color": "#a0522d",
               "type": "area"}, ...],
     "combined": "bitwise OR of values"}

``mapping.csv``: the header ``value,name,radlex,color,type`` and one row per ROI (an empty
``radlex`` cell means none).

No text a user typed (ROI, series and user names, text annotations) becomes a spreadsheet
formula: every cell goes through :func:`spreadsheet_cell`. In a workbook a text cell is always
written as a string (never a formula), unchanged; in a CSV a text starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return gets a leading single quote (``'=Liver``), which
spreadsheets show as text (a text that starts with a quote gets one more, so reading back
removes exactly one). Whether a cell is text is told by its Python type, not its content:
a number (``int``, ``float``, numpy numbers, booleans) is never quoted, so ``-12.5`` stays a
number while the text ``"-12.5"`` is quoted. :func:`csv_cell_text` removes that quote again
when one of our own CSV files is read back (the mapping by the importer).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ril_dash.core.atomic_io import commit_temp, temp_path_for

__all__ = ["FORMULA_STARTS", "MAPPING_COLUMNS", "PARTIAL_TAG", "POINT_COLUMNS", "STAT_COLUMNS",
           "Table", "atomic_file", "csv_cell_text", "csv_text", "excel_bytes", "is_partial",
           "mapping_table", "spreadsheet_cell", "write_csv", "write_excel", "write_mapping"]

STAT_COLUMNS = ("series", "roi", "count", "volume_ml", "mean", "sd", "min", "max", "median",
                "p5", "p25", "p75", "p95")
POINT_COLUMNS = ("series", "roi", "radlex", "i", "j", "k", "x_mm", "y_mm", "z_mm")
MAPPING_COLUMNS = ("value", "name", "radlex", "color", "type")
COMBINED_RULE = "bitwise OR of values"
_MAX_WIDTH = 60
#: in the name of every temp file or folder an export writes (".Liver.ril-partial-x1y2.nii.gz"),
#: so the leftovers of a killed export can be told from anything else and removed
PARTIAL_TAG = "ril-partial-"
#: a text starting with one of these is (or turns into) a formula in Excel, LibreOffice or
#: Google Sheets when a CSV file is opened
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Table:
    """One table of the export: ``name`` is its sheet name (≤ 31 characters)."""

    name: str
    columns: tuple[str, ...]
    rows: list[list[Any]] = field(default_factory=list)


def atomic_file(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp)`` on a temp file beside ``path``, then rename it onto ``path``.

    The temp file is removed if ``write`` fails (or is interrupted), so only complete files
    ever carry the final name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path, tag=PARTIAL_TAG)
    try:
        write(temp)
        commit_temp(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def is_partial(name: str) -> bool:
    """Whether ``name`` is one of an export's temp files (or folders).

    >>> is_partial(".Liver.ril-partial-k2j4x0qa.nii.gz"), is_partial("Liver.nii.gz")
    (True, False)
    """
    return name.startswith(".") and f".{PARTIAL_TAG}" in name


def _write_text(path: Path, text: str) -> Path:
    return atomic_file(path, lambda temp: temp.write_bytes(text.encode("utf-8")))


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a CSV cell: None → empty, text that a spreadsheet would take for a formula
    (or that starts with a quote) → the text behind a single quote, anything else (numbers
    included) unchanged.

    >>> [spreadsheet_cell(v) for v in ("=A1", "-2+3", "'x", "Liver", -12.5, None)]
    ["'=A1", "'-2+3", "''x", 'Liver', -12.5, '']
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def csv_cell_text(text: str) -> str:
    """A text cell of one of our CSV files as it was before :func:`spreadsheet_cell` quoted it
    (one leading quote removed).

    >>> csv_cell_text("'=Liver"), csv_cell_text("''quoted'"), csv_cell_text("Liver")
    ('=Liver', "'quoted'", 'Liver')
    """
    return text[1:] if text.startswith("'") else text


def csv_text(table: Table) -> str:
    """``table`` as CSV text with a header row, each cell through :func:`spreadsheet_cell`.

    >>> csv_text(Table("t", ("a", "b"), [[1, None], [-2, "=1+2"]])).splitlines()
    ['a,b', '1,', "-2,'=1+2"]
    """
    buf = io.StringIO()
    # CRLF line ends (RFC 4180) make the writer quote a cell holding a lone CR too, so a text
    # cannot start a new row (that would begin with its unquoted rest) in a spreadsheet
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([spreadsheet_cell(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([spreadsheet_cell(v) for v in row])
    return buf.getvalue()


def write_csv(path: Path, table: Table) -> Path:
    """Write ``table`` as UTF-8 CSV with a header row (None → empty cell)."""
    return _write_text(path, csv_text(table))


def mapping_table(rois) -> Table:
    """The mapping of mask values to ROIs (``rois``: RoiDef-like objects)."""
    return Table("mapping", MAPPING_COLUMNS,
                 [[int(r.value), r.name, r.radlex, r.color, r.type] for r in rois])


def write_mapping(out_dir: Path, rois) -> list[Path]:
    """Write ``mapping.json`` and ``mapping.csv``; return their paths."""
    table = mapping_table(rois)
    doc = {"rois": [dict(zip(MAPPING_COLUMNS, row)) for row in table.rows],
           "combined": COMBINED_RULE}
    json_path = out_dir / "mapping.json"
    _write_text(json_path, json.dumps(doc, indent=2) + "\n")
    return [json_path, write_csv(out_dir / "mapping.csv", table)]


def _append_row(sheet, values) -> None:
    """Append ``values`` as a row; every text cell is a string, never a formula (openpyxl takes
    a text starting with "=" for a formula unless its type is set back to string). Control
    characters that a workbook cannot hold become U+FFFD instead of failing the export."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    sheet.append([ILLEGAL_CHARACTERS_RE.sub("\ufffd", v) if isinstance(v, str) else v
                  for v in values])
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"


def _workbook(tables: list[Table]):
    """One sheet per table: bold, frozen header row and column widths fitted to the content;
    text cells are strings, never formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for table in tables:
        sheet = book.create_sheet(table.name[:31])
        _append_row(sheet, table.columns)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        widths = [len(c) for c in table.columns]
        for row in table.rows:
            _append_row(sheet, row)
            for i, v in enumerate(row):
                if v is not None:
                    text = f"{v:.6g}" if isinstance(v, float) else str(v)
                    widths[i] = max(widths[i], len(text))
        for i, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = min(width + 2, _MAX_WIDTH)
        sheet.freeze_panes = "A2"
    return book


def write_excel(path: Path, tables: list[Table]) -> Path:
    """Write ``tables`` to an Excel file, one sheet each (see :func:`excel_bytes`)."""
    book = _workbook(tables)
    return atomic_file(path, lambda temp: book.save(os.fspath(temp)))


def excel_bytes(tables: list[Table]) -> bytes:
    """The Excel file of ``tables`` (one sheet each, bold frozen header, fitted widths)."""
    buf = io.BytesIO()
    _workbook(tables).save(buf)
    return buf.getvalue()
