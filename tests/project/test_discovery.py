"""Tests for series discovery, series-id resolution and the folder tree."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ril_dash.errors import SeriesNotFound
from ril_dash.project.discovery import (
    SeriesRecord,
    build_folder_tree,
    discover_series,
    natural_key,
    resolve_series_path,
)


def write_nifti(path: Path, shape=(4, 5, 3)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.5, 1.0])), str(path))
    return path


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    write_nifti(root / "P10" / "ST1" / "t1.nii.gz")
    write_nifti(root / "P2" / "ST1" / "arterial.nii.gz")
    write_nifti(root / "P2" / "ST1" / "venous.NII")
    write_nifti(root / "P1" / "flat.nii")
    write_nifti(root / "top.nii.gz")
    touch(root / "P1" / "notes.txt")
    touch(root / "P1" / "scan.nii.gz.bak")
    touch(root / "P1" / ".hidden.nii.gz")
    touch(root / "P1" / "._flat.nii")
    touch(root / ".cache" / "x.nii.gz")
    touch(root / "P1" / ".git" / "y.nii")
    (root / "P1" / "folder.nii").mkdir()  # a folder named like a series is walked, not listed
    return root


def test_discovers_nifti_in_natural_order(images: Path) -> None:
    records = discover_series(images)
    assert [r.id for r in records] == ["P1/flat.nii", "P2/ST1/arterial.nii.gz", "P2/ST1/venous.NII",
                                       "P10/ST1/t1.nii.gz", "top.nii.gz"]
    by_id = {r.id: r for r in records}
    venous = by_id["P2/ST1/venous.NII"]
    assert venous.name == "venous" and venous.levels == ("P2", "ST1")
    assert by_id["top.nii.gz"].levels == () and by_id["top.nii.gz"].name == "top"
    path = images / "P2" / "ST1" / "venous.NII"
    assert venous.size == path.stat().st_size and venous.mtime == path.stat().st_mtime
    assert isinstance(venous, SeriesRecord)


def test_natural_key() -> None:
    names = ["P10", "P2", "p1", "P2a", "P02b"]
    assert sorted(names, key=natural_key) == ["p1", "P2", "P2a", "P02b", "P10"]


def test_empty_and_missing_roots(tmp_path: Path) -> None:
    assert discover_series(tmp_path) == []
    assert discover_series(tmp_path / "missing") == []


def test_symlinks_inside_followed_outside_skipped(tmp_path: Path) -> None:
    root = tmp_path / "images"
    outside = tmp_path / "outside"
    write_nifti(root / "A" / "a.nii.gz")
    write_nifti(outside / "secret.nii.gz")
    write_nifti(outside / "dir" / "deep.nii")
    os.symlink(root / "A" / "a.nii.gz", root / "link_in.nii.gz")
    os.symlink(outside / "secret.nii.gz", root / "link_out.nii.gz")
    os.symlink(outside / "dir", root / "linkdir_out")
    os.symlink(root / "A", root / "B")  # folder link inside the root
    os.symlink(root, root / "A" / "loop")  # cycle back to the root
    os.symlink(tmp_path / "nowhere.nii", root / "broken.nii")
    ids = [r.id for r in discover_series(root)]
    assert ids == ["A/a.nii.gz", "B/a.nii.gz", "link_in.nii.gz"]


@pytest.mark.slow
def test_ten_thousand_files_without_opening_them(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for p in range(100):
        folder = root / f"P{p}" / "ST1"
        folder.mkdir(parents=True)
        for s in range(100):
            (folder / f"s{s}.nii.gz").write_bytes(b"")  # not valid gzip: never opened
    records = discover_series(root)
    assert len(records) == 10_000
    assert records[0].id == "P0/ST1/s0.nii.gz" and records[-1].id == "P99/ST1/s99.nii.gz"
    assert records[2].id == "P0/ST1/s2.nii.gz"
    tree = build_folder_tree(records)
    assert tree[""]["count"] == 10_000 and len(tree[""]["children"]) == 100
    assert tree["P5"] == {"children": ["P5/ST1"], "count": 100}


def test_folder_tree(images: Path) -> None:
    tree = build_folder_tree(discover_series(images))
    assert tree[""] == {"children": ["P1", "P2", "P10"], "count": 5}
    assert tree["P2"] == {"children": ["P2/ST1"], "count": 2}
    assert tree["P2/ST1"] == {"children": [], "count": 2}
    assert tree["P10/ST1"]["count"] == 1
    assert set(tree) == {"", "P1", "P2", "P2/ST1", "P10", "P10/ST1"}
    assert build_folder_tree([]) == {"": {"children": [], "count": 0}}


def test_resolve_series_path_accepts_real_series(images: Path) -> None:
    path = resolve_series_path(images, "P2/ST1/arterial.nii.gz")
    assert path == images.resolve() / "P2" / "ST1" / "arterial.nii.gz"
    assert nib.load(str(path)).shape == (4, 5, 3)


@pytest.mark.parametrize("bad", [
    "../outside/secret.nii.gz", "P1/../../outside/secret.nii.gz", "/etc/passwd.nii",
    "P1\\flat.nii", "P1/flat.nii\x00", "", "./P1/flat.nii", "P1//flat.nii",
    "C:/x.nii", "P1/notes.txt", "missing.nii.gz", "link_out.nii.gz", None,
])
def test_resolve_series_path_refuses(tmp_path: Path, images: Path, bad) -> None:
    write_nifti(tmp_path / "outside" / "secret.nii.gz")
    os.symlink(tmp_path / "outside" / "secret.nii.gz", images / "link_out.nii.gz")
    with pytest.raises(SeriesNotFound):
        resolve_series_path(images, bad)


def test_discovery_never_writes(images: Path) -> None:
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in images.rglob("*")}
    discover_series(images)
    after = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in images.rglob("*")}
    assert before == after
