"""The scan of the images reuses the listings of folders unchanged since the previous scan
(:func:`ril_dash.project.discovery.scan_series`), kept by a project in ``.series-index.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ril_dash.project.discovery import discover_series, scan_series
from ril_dash.project.project import SERIES_INDEX, Project


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def ids(records) -> list[str]:
    return [r.id for r in records]


def bump(folder: Path) -> None:
    """Give ``folder`` a later modification time (as adding or removing a file does)."""
    stat = folder.stat()
    os.utime(folder, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_unchanged_folders_come_from_the_index(tmp_path):
    root = tmp_path / "images"
    for rel in ["P1/S1/a.nii.gz", "P1/S1/b.nii", "P2/S1/a.nii.gz", "P10/c.nii"]:
        touch(root / rel)
    first, index = scan_series(root)
    assert ids(first) == ["P1/S1/a.nii.gz", "P1/S1/b.nii", "P2/S1/a.nii.gz", "P10/c.nii"]
    assert set(index) == {str(root), *(str(root / f) for f in ["P1", "P1/S1", "P2", "P2/S1",
                                                                 "P10"])}
    # an entry of an unchanged folder is believed (here: a forged size proves it was read)
    forged = json.loads(json.dumps(index))
    forged[str(root / "P2" / "S1")][1][0][1] = 12345
    again, _ = scan_series(root, forged)
    assert ids(again) == ids(first) and again[2].size == 12345
    # a folder that changed is read again: new and removed files are seen
    touch(root / "P2" / "S1" / "new.nii")
    (root / "P1" / "S1" / "b.nii").unlink()
    bump(root / "P2" / "S1")
    bump(root / "P1" / "S1")
    after, new_index = scan_series(root, forged)
    assert ids(after) == ["P1/S1/a.nii.gz", "P2/S1/a.nii.gz", "P2/S1/new.nii", "P10/c.nii"]
    assert after[1].size == 1 and ids(after) == ids(discover_series(root))
    # a removed folder leaves the index; junk entries are ignored (the folder is read)
    (root / "P10" / "c.nii").unlink()
    (root / "P10").rmdir()
    bump(root)
    junk = {**new_index, str(root / "P1"): "junk", str(root / "P2"): [1, 2, 3]}
    final, final_index = scan_series(root, junk)
    assert ids(final) == ids(discover_series(root)) and str(root / "P10") not in final_index


def test_folders_with_links_are_always_read(tmp_path):
    root, other = tmp_path / "images", tmp_path / "images" / "real"
    touch(other / "a.nii")
    (root / "linked").symlink_to(other)
    series, index = scan_series(root)
    assert ids(series) == ["linked/a.nii", "real/a.nii"]
    assert str(root) not in index and str(root / "real") in index


def test_a_project_keeps_the_index_and_reuses_it(tmp_path):
    touch(tmp_path / "images" / "P1" / "a.nii.gz")
    (tmp_path / "project.yaml").write_text("name: Index\nimages: images\n")
    project = Project.open(tmp_path)
    stored = json.loads((tmp_path / SERIES_INDEX).read_text())
    assert stored["images"] == str(tmp_path / "images") and len(stored["folders"]) == 2
    folder = str(tmp_path / "images" / "P1")
    stored["folders"][folder][1][0][1] = 777  # forged: proves the next scan reused it
    (tmp_path / SERIES_INDEX).write_text(json.dumps(stored))
    assert Project.open(tmp_path).series[0].size == 777
    touch(tmp_path / "images" / "P1" / "b.nii")
    bump(tmp_path / "images" / "P1")
    assert ids(project.rescan()) == ["P1/a.nii.gz", "P1/b.nii"]
    assert project.series[0].size == 1
    # a damaged index file is not an error: the scan is complete, and the file is rewritten
    (tmp_path / SERIES_INDEX).write_text("{not json")
    assert ids(Project.open(tmp_path).series) == ["P1/a.nii.gz", "P1/b.nii"]
    assert json.loads((tmp_path / SERIES_INDEX).read_text())["folders"]


def test_the_walk_gives_the_natural_order_of_the_paths(tmp_path):
    from ril_dash.project.discovery import natural_key

    root = tmp_path / "images"
    rels = ["P10/a.nii", "P2/b10.nii", "P2/b9.nii", "P2/b9/x.nii", "P2/S1/c.nii", "p2/d.nii",
            "P2.nii", "a.nii", "Z/1.nii.gz", "P2/s1.nii"]
    for rel in rels:
        touch(root / rel)
    expected = sorted(rels, key=natural_key)
    assert ids(discover_series(root)) == expected  # 'P2' and 'p2' differ only by case
    (root / "p2" / "d.nii").unlink()
    (root / "p2").rmdir()
    expected.remove("p2/d.nii")
    assert ids(discover_series(root)) == expected
