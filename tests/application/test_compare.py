"""Model draft vs human (ril_dash.application.compare): sources, rights, the project summary and
its CSV/Excel tables, checked against counts of voxel index tuples."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from ril_dash.application import compare
from ril_dash.application.compare import CompareRefused, Source
from ril_dash.errors import PermissionDenied
from ril_dash.project.export_tables import csv_text, excel_bytes
from tests.application.conftest import SERIES, actor
from tests.support import commit_roi

S1, S2 = SERIES
LIVER, SPLEEN = 1, 2
KIDNEY_SEG = {"kind": "model", "model": "kidney-seg@1.0.0"}
KIDNEY_SEG_2 = {"kind": "model", "model": "kidney-seg@2.0.0"}


def set_roi(services, series, value, voxels, provenance=None, user="ana") -> int:
    return commit_roi(services.annotations(series), value, voxels, provenance, user)


def block(x0, x1, y0, y1, z0, z1) -> set[tuple]:
    return {(x, y, z) for x in range(x0, x1) for y in range(y0, y1) for z in range(z0, z1)}


def dice(a: set, b: set) -> float:
    return 2 * len(a & b) / (len(a) + len(b))


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


DRAFT = block(1, 5, 1, 5, 1, 3)  # slices z = 1, 2
HUMAN = block(2, 6, 1, 5, 2, 4)  # slices z = 2, 3


@pytest.fixture
def drafted(services):
    """S1: a model draft of the liver (v1), a human edit of it (v2), a spleen (v3)."""
    draft = set_roi(services, S1, LIVER, DRAFT, KIDNEY_SEG)
    set_roi(services, S1, LIVER, HUMAN)
    set_roi(services, S1, SPLEEN, block(0, 2, 0, 2, 0, 1))
    return draft


def test_model_draft_vs_current_matches_set_arithmetic(services, drafted):
    ana = actor("ana")
    assert [(v.id, v.model) for v in compare.model_drafts(services, ana, S1)] == [
        (1, "kidney-seg@1.0.0")]
    a, b = compare.default_sources(services, ana, S1)
    assert (a, b) == (Source(1, LIVER), Source(None, LIVER))
    result = compare.compare_series(services, ana, S1, a, b, plane="axial")
    s = result.scores
    assert result.versions == (1, 3)
    assert result.labels == ("Liver @ v1 (kidney-seg@1.0.0)", "Liver @ current")
    assert s.slices.tolist() == [1, 2, 3]
    for row in s.rows():
        da = {v for v in DRAFT if v[2] == row["index"]}
        hb = {v for v in HUMAN if v[2] == row["index"]}
        assert (row["size_a"], row["size_b"], row["intersection"]) == (len(da), len(hb),
                                                                        len(da & hb))
        assert row["dice"] == pytest.approx(dice(da, hb))
    assert s.dice.tolist() == [0.0, pytest.approx(0.75), 0.0]
    assert s.volume_dice == pytest.approx(dice(DRAFT, HUMAN))
    assert s.volume_jaccard == pytest.approx(jaccard(DRAFT, HUMAN))

    # the same on the coronal plane: slices along y
    coronal = compare.compare_series(services, ana, S1, a, b, plane="coronal").scores
    assert coronal.slices.tolist() == [1, 2, 3, 4]
    assert coronal.volume_dice == pytest.approx(dice(DRAFT, HUMAN))
    # a chosen range, with a both-empty slice in it
    chosen = compare.compare_series(services, ana, S1, a, b, slices=range(0, 2)).scores
    assert chosen.slices.tolist() == [0, 1] and chosen.both_empty.tolist() == [True, False]
    assert chosen.dice.tolist() == [1.0, 0.0] and chosen.volume_dice == 0.0


def test_two_rois_of_one_version_and_two_versions(services, drafted):
    root = actor("root")
    spleen = block(0, 2, 0, 2, 0, 1)
    rois = compare.compare_series(services, root, S1, Source(None, LIVER), Source(None, SPLEEN))
    assert rois.scores.volume_dice == 0.0 and rois.scores.slices.tolist() == [0, 2, 3]
    same = compare.compare_series(services, root, S1, Source(3, SPLEEN), Source(None, SPLEEN))
    assert (same.scores.volume_dice, same.scores.volume_jaccard) == (1.0, 1.0)
    assert int(same.scores.size_a.sum()) == len(spleen)
    # before the spleen existed (v2) vs now: one-sided
    assert compare.compare_series(services, root, S1, Source(2, SPLEEN),
                                  Source(None, SPLEEN)).scores.volume_dice == 0.0
    # version 0 (nothing) vs version 0: both empty, 1.0 and flagged
    empty = compare.compare_series(services, root, S1, Source(0, LIVER), Source(0, LIVER))
    assert (empty.scores.volume_dice, empty.scores.volume_both_empty) == (1.0, True)


def test_bad_sources_are_refused_with_what_to_do(services, drafted):
    root = actor("root")
    with pytest.raises(CompareRefused, match="has no version 9 .*versions are 0 to 3"):
        compare.compare_series(services, root, S1, Source(9, LIVER), Source(None, LIVER))
    with pytest.raises(CompareRefused, match="No ROI has mask value 7; choose one of: Liver"):
        compare.compare_series(services, root, S1, Source(1, 7), Source(None, LIVER))
    with pytest.raises(CompareRefused, match="Unknown plane 'oblique'"):
        compare.compare_series(services, root, S1, Source(1, LIVER), Source(None, LIVER),
                               plane="oblique")
    with pytest.raises(CompareRefused, match=r"slice indices \[4\] are outside 0..3"):
        compare.compare_series(services, root, S1, Source(1, LIVER), Source(None, LIVER),
                               slices=[4])


def test_typed_slice_selections():
    assert compare.parse_slices(None) is None and compare.parse_slices(" ") is None
    assert compare.parse_slices("ALL") == "all"
    assert compare.parse_slices("2, 4-6; 1") == [1, 3, 4, 5, 0]
    with pytest.raises(CompareRefused, match="'x' is not a slice number or range"):
        compare.parse_slices("1, x")
    with pytest.raises(CompareRefused, match="'5-3': slices are numbered from 1"):
        compare.parse_slices("5-3")
    with pytest.raises(CompareRefused, match="no series has 999999999 slices"):
        compare.parse_slices("1-999999999")


def test_reading_needs_the_read_right(services, drafted):
    rita = actor("rita")  # a reviewer: S1 is in the analysts' pool
    for call in (lambda: compare.model_drafts(services, rita, S1),
                 lambda: compare.version_choices(services, rita, S1),
                 lambda: compare.default_sources(services, rita, S1),
                 lambda: compare.compare_series(services, rita, S1, Source(1, LIVER),
                                                Source(None, LIVER))):
        with pytest.raises(PermissionDenied, match="rita may not open P1/ct.nii.gz"):
            call()
    assert compare.project_scores(services, rita) == []
    assert len(compare.project_scores(services, actor("ana"))) == 1


def test_version_choices_list_current_then_drafts_then_the_rest(services, drafted):
    choices = compare.version_choices(services, actor("bob"), S1)
    assert [c["value"] for c in choices] == [None, 1, 3, 2]
    assert choices[0]["label"] == "current (v3)"
    assert choices[1]["label"].startswith("v1 · model kidney-seg@1.0.0 · ")
    assert choices[2]["label"].startswith("v3 · paint by ana · ")


def test_a_series_without_drafts_defaults_to_no_source_a(services):
    set_roi(services, S2, LIVER, block(0, 1, 0, 1, 0, 1))
    assert compare.default_sources(services, actor("root"), S2) == (None, Source(None, LIVER))


def test_project_summary_scores_the_latest_draft_of_each_model(services, drafted):
    # S2: kidney-seg@1 drafts the liver twice (the later one counts), kidney-seg@2 once
    set_roi(services, S2, LIVER, block(0, 2, 0, 2, 0, 1), KIDNEY_SEG)
    v2 = set_roi(services, S2, LIVER, block(0, 4, 0, 4, 0, 1), KIDNEY_SEG)
    v3 = set_roi(services, S2, LIVER, block(0, 4, 0, 2, 0, 1), KIDNEY_SEG_2)
    human = block(0, 4, 0, 3, 0, 1)
    set_roi(services, S2, LIVER, human)
    scores = compare.project_scores(services, actor("root"))
    got = {(s.series, s.model): s for s in scores}
    assert sorted(got) == [(S1, "kidney-seg@1.0.0"), (S2, "kidney-seg@1.0.0"),
                           (S2, "kidney-seg@2.0.0")]
    s1 = got[(S1, "kidney-seg@1.0.0")]
    assert (s1.draft_version, s1.current_version, s1.roi_name) == (1, 3, "Liver")
    assert s1.dice == pytest.approx(dice(DRAFT, HUMAN))
    s2 = got[(S2, "kidney-seg@1.0.0")]
    assert s2.draft_version == v2
    assert s2.dice == pytest.approx(dice(block(0, 4, 0, 4, 0, 1), human))
    assert (s2.voxels_draft, s2.voxels_current) == (16, 12)
    new = got[(S2, "kidney-seg@2.0.0")]
    assert new.draft_version == v3
    assert new.jaccard == pytest.approx(jaccard(block(0, 4, 0, 2, 0, 1), human))

    means = compare.model_means(scores)
    assert [(m["model"], m["roi"], m["series"]) for m in means] == [
        ("kidney-seg@1.0.0", "Liver", 2), ("kidney-seg@2.0.0", "Liver", 1)]
    assert means[0]["mean_dice"] == pytest.approx((s1.dice + s2.dice) / 2)
    assert means[0]["min_dice"] == pytest.approx(min(s1.dice, s2.dice))


def test_the_tables_in_csv_and_excel(services, drafted):
    root = actor("root")
    result = compare.compare_series(services, root, S1, Source(1, LIVER), Source(None, LIVER))
    volume, per_slice = compare.comparison_tables(result)
    rows = list(csv.reader(io.StringIO(csv_text(per_slice))))
    assert rows[0] == list(compare.SLICE_COLUMNS)
    assert rows[1:] == [
        [S1, "axial", "2", "Liver @ v1 (kidney-seg@1.0.0)", "Liver @ current", "16", "0", "0",
         "0.0", "0.0", "False"],
        [S1, "axial", "3", "Liver @ v1 (kidney-seg@1.0.0)", "Liver @ current", "16", "16",
         "12", "0.75", "0.6", "False"],
        [S1, "axial", "4", "Liver @ v1 (kidney-seg@1.0.0)", "Liver @ current", "0", "16", "0",
         "0.0", "0.0", "False"]]
    book = load_workbook(io.BytesIO(excel_bytes([volume, per_slice])))
    assert book.sheetnames == ["volume", "slices"]
    sheet = list(book["volume"].iter_rows(values_only=True))
    assert sheet[0] == compare.VOLUME_COLUMNS
    assert sheet[1][:8] == (S1, "axial", 3, "Liver @ v1 (kidney-seg@1.0.0)", "Liver @ current",
                            32, 32, 12)
    assert sheet[1][8] == pytest.approx(dice(DRAFT, HUMAN))
    assert sheet[1][10] is False

    means, per_series = compare.summary_tables(compare.project_scores(services, root))
    book = load_workbook(io.BytesIO(excel_bytes([means, per_series])))
    assert list(book["model means"].iter_rows(values_only=True))[1][:3] == (
        "kidney-seg@1.0.0", "Liver", 1)
    assert list(book["series scores"].iter_rows(values_only=True))[1][:5] == (
        S1, "kidney-seg@1.0.0", 1, 3, "Liver")


@pytest.fixture
def hostile(tmp_path):
    """A series, an ROI, a model ref and a user whose names start like a spreadsheet formula,
    with a model draft of that ROI and a human edit of it."""
    import nibabel as nib
    import numpy as np

    from ril_dash.application.services import Services
    from ril_dash.project.project import Project
    from tests.application.conftest import SHAPE, YAML

    root = tmp_path / "hostile"
    (root / "images").mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.int16), np.eye(4)),
             root / "images" / "=evil.nii.gz")
    (root / "project.yaml").write_text(YAML.replace("{name: Liver,", '{name: "=Liver",'))
    services = Services(Project.open(root), background_checkpoints=False)
    set_roi(services, "=evil.nii.gz", LIVER, DRAFT,
            {"kind": "model", "model": "=cmd|' /C calc'!A0"}, user="=admin")
    set_roi(services, "=evil.nii.gz", LIVER, HUMAN, user="@admin")
    return services


def test_score_downloads_hold_names_as_text(hostile):
    """The compare and model-score downloads (CSV and Excel) through the builder the pages use:
    formula-like names quoted in the CSV, strings in the workbook, scores still numbers."""
    import base64

    from ril_dash.ui.components.compare_panel import tables_download

    root = actor("root")
    result = compare.compare_series(hostile, root, "=evil.nii.gz", Source(1, LIVER),
                                    Source(None, LIVER))
    volume, per_slice = compare.comparison_tables(result)
    label_a = "=Liver @ v1 (=cmd|' /C calc'!A0)"
    sent = tables_download([volume], "compare", "csv")
    rows = list(csv.reader(io.StringIO(sent["content"], newline="")))
    assert rows[1][:5] == ["'=evil.nii.gz", "axial", "3", "'" + label_a, "'=Liver @ current"]
    assert float(rows[1][8]) == pytest.approx(dice(DRAFT, HUMAN))

    means, per_series = compare.summary_tables(compare.project_scores(hostile, root))
    sent = tables_download([means, per_series], "model-scores", "xlsx")
    book = load_workbook(io.BytesIO(base64.b64decode(sent["content"])))
    sent = tables_download([volume, per_slice], "compare", "xlsx")
    book_compare = load_workbook(io.BytesIO(base64.b64decode(sent["content"])))
    cells = [c for b in (book, book_compare) for sheet in b.worksheets
             for row in sheet.iter_rows(min_row=2) for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells if c.data_type == "s"}
    assert {"=evil.nii.gz", "=cmd|' /C calc'!A0", "=Liver", label_a} <= texts
    scores = list(book["series scores"].iter_rows(values_only=True))[1]
    assert scores[:5] == ("=evil.nii.gz", "=cmd|' /C calc'!A0", 1, 2, "=Liver")
    assert scores[7] == pytest.approx(dice(DRAFT, HUMAN))
    rows = list(csv.reader(io.StringIO(csv_text(per_series), newline="")))
    assert rows[1][:5] == ["'=evil.nii.gz", "'=cmd|' /C calc'!A0", "1", "2", "'=Liver"]
