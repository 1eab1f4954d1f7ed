"""The project grid's rows asked block by block (:mod:`ril_dash.application.series_table`,
:mod:`ril_dash.application.grid_query`): folder, search box, column filters and sort give the
rows AG Grid would give with every row in the browser; the folder panel's children and counts;
the rights rule (no metadata of a series one may not open, not even through a search)."""

from __future__ import annotations

import pytest

from ril_dash.application.grid_query import GridQuery, GridQueryError
from ril_dash.application.series_table import (annotations_of, count_label, grid_rows,
                                               matching_ids, series_table)
from ril_dash.application.services import Services
from ril_dash.project.project import Project
from tests.application.conftest import SERIES, actor
from tests.application.test_metadata_rights import with_metadata

PATIENTS = ["P1", "P2", "P10"]
P10 = ["P10/S1/a.nii.gz", "P10/S1/b.nii.gz", "P10/S2/a.nii.gz", "P10/S2/b.nii.gz"]


@pytest.fixture
def grid(tmp_path) -> Services:
    """P1, P2, P10 × studies S1, S2 × series a, b; P10 also has 'loose.nii' in its folder."""
    root = tmp_path / "proj"
    lines = ["series,sex,age"]
    for i, patient in enumerate(PATIENTS):
        for study in ("S1", "S2"):
            for k, name in enumerate("ab"):
                path = root / "images" / patient / study / f"{name}.nii.gz"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"x" * (10_000 * (i + 1) + k))
                lines.append(f"{patient}/{study}/{name}.nii.gz,{'FM'[i % 2]},{30 + 10 * i}")
    (root / "images" / "P10" / "loose.nii").write_bytes(b"")
    (root / "meta.csv").write_text("\n".join(lines) + "\n")
    (root / "project.yaml").write_text("name: Grid\nimages: images\nhierarchy: [Patient, Study]\n"
                                       "metadata: {file: meta.csv}\n")
    return Services(Project.open(root), background_checkpoints=False)


def ids(services, who="ana", **query) -> list[str]:
    rows, count = grid_rows(services, actor(who), GridQuery(**query))
    assert count == len(matching_ids(services, actor(who), GridQuery(**query)))
    return [row["id"] for row in rows]


def test_rows_in_the_natural_order_with_their_columns(grid):
    every = ids(grid, end=1000)
    assert every == [f"{p}/{s}/{n}.nii.gz" for p in ["P1", "P2"] for s in ("S1", "S2")
                     for n in "ab"] + ["P10/loose.nii"] + P10
    rows, count = grid_rows(grid, actor("ana"), GridQuery(start=1, end=3))
    assert count == 13 and [r["id"] for r in rows] == every[1:3]
    assert rows[0] == {"id": "P1/S1/b.nii.gz", "name": "b", "size_mb": 0.01, "annotated": False,
                       "level:Patient": "P1", "level:Study": "S1", "meta:sex": "F",
                       "meta:age": "30"}
    loose = grid_rows(grid, actor("ana"), GridQuery(start=8, end=9))[0][0]
    assert loose == {"id": "P10/loose.nii", "name": "loose", "size_mb": 0.0,
                     "annotated": False, "level:Patient": "P10"}


def test_folder_narrows_and_the_panel_counts(grid):
    table = series_table(grid.project)
    assert table.folder_children("") == [("P1", 4), ("P2", 4), ("P10", 5)]
    assert table.folder_children("P10") == [("P10/S1", 2), ("P10/S2", 2)]
    assert table.folder_children("P10/S1") == []
    assert ids(grid, folder="P10/S2") == ["P10/S2/a.nii.gz", "P10/S2/b.nii.gz"]
    assert ids(grid, folder="P1") == [f"P1/{s}/{n}.nii.gz" for s in ("S1", "S2") for n in "ab"]
    assert ids(grid, folder="P3") == [] and not table.has_folder("P3")
    assert table.has_folder("P10/S1") and table.has_folder("")
    notes = annotations_of(grid, actor("ana"), table)
    assert count_label(notes.annotated, table.folder_mask("P10"), "P10") == \
        "5 series in P10 · 0 annotated · 5 not annotated"
    assert count_label(notes.annotated, None) == "13 series · 0 annotated · 13 not annotated"


def test_search_box_words_in_any_column(grid):
    assert ids(grid, search="p10 b") == ["P10/S1/b.nii.gz", "P10/S2/b.nii.gz"]
    assert ids(grid, search="M 40") == [f"P2/{s}/{n}.nii.gz" for s in ("S1", "S2") for n in "ab"]
    assert ids(grid, search="LOOSE") == ["P10/loose.nii"]
    assert ids(grid, search="0.03") == P10  # their size in MB
    assert ids(grid, search="0.00") == []  # 0 MB is written "0", as the browser writes it
    assert ids(grid, search="nothing-like-it") == []


def test_column_filters_and_sort(grid):
    text = {"filterType": "text"}
    assert ids(grid, filter_model={"meta:age": {**text, "type": "equals", "filter": "50"}}) \
        == P10
    assert ids(grid, filter_model={"meta:sex": {**text, "type": "blank"}}) == ["P10/loose.nii"]
    either = {**text, "operator": "OR", "conditions": [
        {"type": "startsWith", "filter": "P2/S2"}, {"type": "endsWith", "filter": "LOOSE.NII"}]}
    assert ids(grid, filter_model={"id": either}) == ["P2/S2/a.nii.gz", "P2/S2/b.nii.gz",
                                                      "P10/loose.nii"]
    both = {"filterType": "number", "operator": "AND", "conditions": [
        {"type": "greaterThan", "filter": 0.005}, {"type": "lessThanOrEqual", "filter": 0.02}]}
    assert ids(grid, filter_model={"size_mb": both}) == ids(grid, folder="P1") + \
        ids(grid, folder="P2")
    assert ids(grid, filter_model={"level:Study": {**text, "type": "notContains",
                                                  "filter": "s"}}) == ["P10/loose.nii"]
    by_age = ids(grid, end=1000, sort_model=[{"colId": "meta:age", "sort": "desc"},
                                             {"colId": "name", "sort": "asc"}])
    assert by_age[:4] == ["P10/S1/a.nii.gz", "P10/S2/a.nii.gz", "P10/S1/b.nii.gz",
                          "P10/S2/b.nii.gz"]
    assert by_age[-1] == "P10/loose.nii"  # no age: first ascending, last descending
    with pytest.raises(GridQueryError, match="no column 'meta:nope'"):
        ids(grid, sort_model=[{"colId": "meta:nope", "sort": "asc"}])
    with pytest.raises(GridQueryError, match="unknown text filter 'regex'"):
        ids(grid, filter_model={"id": {**text, "type": "regex", "filter": "."}})


def test_a_rescan_builds_the_table_again(grid):
    table = series_table(grid.project)
    assert series_table(grid.project) is table
    (grid.project.config.images / "P3").mkdir()
    (grid.project.config.images / "P3" / "new.nii").write_bytes(b"")
    grid.project.rescan()
    assert series_table(grid.project) is not table
    assert ids(grid, folder="P3") == ["P3/new.nii"]


def test_no_metadata_of_series_one_may_not_open(services):
    services = with_metadata(services)
    nina = grid_rows(services, actor("nina"), GridQuery())[0]  # in no pool
    assert [row["id"] for row in nina] == list(SERIES)
    assert all(row["restricted"] and not any(k.startswith("meta:") for k in row) for row in nina)
    assert ids(services, "nina", search="jane") == []
    assert ids(services, "nina", filter_model={"meta:patient": {
        "filterType": "text", "type": "contains", "filter": "Jane"}}) == []
    assert ids(services, "ana", search="jane") == [SERIES[0]]  # an analyst reads the new ones
    ana = grid_rows(services, actor("ana"), GridQuery())[0]
    assert ana[0]["meta:patient"] == "Jane Doe" and ana[0]["pool"] == "analysts"
    assert not ana[0].get("restricted")


OVER = {"uncertainty:m": {"filterType": "number", "type": "greaterThanOrEqual", "filter": 0.5}}


def test_number_columns_sort_and_filter(grid):
    scores = {"uncertainty:m": {"P2/S1/a.nii.gz": 0.7, "P1/S1/a.nii.gz": 0.2,
                                "P10/S2/b.nii.gz": 0.9, "gone.nii": 0.5}}
    field = "uncertainty:m"
    rows, _ = grid_rows(grid, actor("ana"), GridQuery(sort_model=[{"colId": field,
                                                                   "sort": "desc"}]), scores)
    assert [(r["id"], r.get(field)) for r in rows[:4]] == [
        ("P10/S2/b.nii.gz", 0.9), ("P2/S1/a.nii.gz", 0.7), ("P1/S1/a.nii.gz", 0.2),
        ("P1/S1/b.nii.gz", None)]  # then the series without a score, in their order
    ascending = grid_rows(grid, actor("ana"), GridQuery(sort_model=[{"colId": field,
                                                                     "sort": "asc"}]), scores)
    assert [r["id"] for r in ascending[0][-3:]] == ["P1/S1/a.nii.gz", "P2/S1/a.nii.gz",
                                                    "P10/S2/b.nii.gz"]
    assert [r["id"] for r in grid_rows(grid, actor("ana"), GridQuery(filter_model=OVER),
                                       scores)[0]] == ["P2/S1/a.nii.gz", "P10/S2/b.nii.gz"]


def test_number_columns_follow_the_rights(services):
    """nina may not open the workflow project's series: no score shown, none found."""
    services, field = with_metadata(services), "uncertainty:m"
    mine = {field: {SERIES[0]: 0.6}}
    assert field not in grid_rows(services, actor("nina"), GridQuery(), mine)[0][0]
    assert grid_rows(services, actor("ana"), GridQuery(), mine)[0][0][field] == 0.6
    assert matching_ids(services, actor("nina"), GridQuery(filter_model=OVER), mine) == []
    assert matching_ids(services, actor("ana"), GridQuery(filter_model=OVER), mine) == \
        [SERIES[0]]
