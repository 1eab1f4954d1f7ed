"""Tests for Project.open / init_project and metadata loading; images are never written."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import tree_digest  # noqa: E402  (tests/support.py)

from ril_dash.errors import InvalidProject, SeriesNotFound
from ril_dash.project.discovery import discover_series
from ril_dash.project.metadata import load_metadata
from ril_dash.project.project import Project, init_project
from ril_dash.project.schema import load_project_config


def write_nifti(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).integers(0, 100, (6, 5, 4)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 3.0, 1.0])), str(path))


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for rel in ["P001/ST1/arterial.nii.gz", "P001/ST1/venous.nii.gz", "P2/ST1/t1.nii",
                "P10/ST2/t2.nii.gz"]:
        write_nifti(root / rel)
    return root


PROJECT_YAML = """\
name: Demo project
images: images
annotations: annotations
hierarchy: [Patient, Study, Series]
metadata:
  file: metadata.csv
  path_column: series
rois:
  - name: Liver
    radlex: RID58
    color: "#a0522d"
    value: 1
"""

METADATA = "series,age,site\nP001/ST1/arterial.nii.gz,54,Oslo\n./P2/ST1/t1.nii,,Bergen\n"


@pytest.fixture()
def project_dir(tmp_path: Path, images: Path) -> Path:
    (tmp_path / "project.yaml").write_text(PROJECT_YAML)
    (tmp_path / "metadata.csv").write_text(METADATA)
    return tmp_path


def test_open_project(project_dir: Path) -> None:
    project = Project.open(project_dir)
    assert project.dir == project_dir.resolve()
    assert project.config.name == project.name == "Demo project"
    assert [s.id for s in project.series] == ["P001/ST1/arterial.nii.gz",
                                              "P001/ST1/venous.nii.gz", "P2/ST1/t1.nii",
                                              "P10/ST2/t2.nii.gz"]
    assert project.metadata == {"P001/ST1/arterial.nii.gz": {"age": "54", "site": "Oslo"},
                                "P2/ST1/t1.nii": {"age": "", "site": "Bergen"}}
    record = project.get_series("P2/ST1/t1.nii")
    assert record.name == "t1" and record.levels == ("P2", "ST1")
    path = project.series_path("P10/ST2/t2.nii.gz")
    assert path == project_dir.resolve() / "images" / "P10" / "ST2" / "t2.nii.gz"
    assert nib.load(str(path)).shape == (6, 5, 4)
    tree = project.folder_tree()
    assert tree[""] == {"children": ["P001", "P2", "P10"], "count": 4}
    assert tree["P001/ST1"]["count"] == 2


@pytest.mark.parametrize("bad", ["../project.yaml", "P2/ST1/../../../metadata.csv",
                                 "/etc/passwd", "P2/ST1/missing.nii", "P2\\ST1\\t1.nii", ""])
def test_get_series_refuses_unknown_and_traversal(project_dir: Path, bad: str) -> None:
    project = Project.open(project_dir)
    with pytest.raises(SeriesNotFound, match="is not in project 'Demo project'"):
        project.get_series(bad)
    with pytest.raises(SeriesNotFound):
        project.series_path(bad)


def test_rescan_picks_up_new_series(project_dir: Path) -> None:
    project = Project.open(project_dir)
    tree = project.folder_tree()
    write_nifti(project_dir / "images" / "P3" / "new.nii.gz")
    with pytest.raises(SeriesNotFound):
        project.get_series("P3/new.nii.gz")
    assert len(project.rescan()) == 5
    assert project.get_series("P3/new.nii.gz").name == "new"
    assert project.folder_tree() is not tree and project.folder_tree()[""]["count"] == 5


def test_open_without_project_yaml(tmp_path: Path) -> None:
    with pytest.raises(InvalidProject, match=r"no project.yaml in .*ril-dash init .* --images DIR"):
        Project.open(tmp_path)
    with pytest.raises(InvalidProject, match="does not exist"):
        Project.open(tmp_path / "missing")


def test_open_missing_images_names_line(project_dir: Path) -> None:
    (project_dir / "project.yaml").write_text(PROJECT_YAML.replace("images: images",
                                                                   "images: scans"))
    with pytest.raises(InvalidProject) as info:
        Project.open(project_dir)
    message = str(info.value)
    assert "project.yaml line 2: images:" in message and "scans" in message
    assert "does not exist" in message


def test_open_missing_metadata_file_names_line(project_dir: Path) -> None:
    (project_dir / "metadata.csv").unlink()
    with pytest.raises(InvalidProject, match=r"project.yaml line 6: metadata.file: .*"
                                             r"metadata.csv does not exist"):
        Project.open(project_dir)


def test_open_invalid_yaml(project_dir: Path) -> None:
    (project_dir / "project.yaml").write_text(PROJECT_YAML + "    colour: red\n")
    with pytest.raises(InvalidProject, match=r"line 13: rois\[0\]\.colour: unknown key"):
        Project.open(project_dir)


# ---- metadata -------------------------------------------------------------------------------

def test_metadata_values_are_strings(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("\ufeffpath,age,weight,note\nA\\b.nii,007,70.5,NA\nc.nii,,,\n")
    assert load_metadata(csv, "path") == {
        "A/b.nii": {"age": "007", "weight": "70.5", "note": "NA"},
        "c.nii": {"age": "", "weight": "", "note": ""}}


def test_metadata_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidProject, match="metadata file .*nope.csv does not exist"):
        load_metadata(tmp_path / "nope.csv", "series")


def test_metadata_missing_column(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("path,age\na.nii,1\n")
    with pytest.raises(InvalidProject, match=r"m.csv has no column 'series' \(columns: path, "
                                             r"age\); fix metadata.path_column"):
        load_metadata(csv, "series")


def test_metadata_duplicate_rows(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("series,age\na.nii,1\nb.nii,2\n./a.nii,3\n")
    with pytest.raises(InvalidProject, match=r"m.csv row 3: series 'a.nii' is already "
                                             r"described in row 1"):
        load_metadata(csv, "series")


def test_metadata_empty_path_cell(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("series,age\na.nii,1\n,2\n")
    with pytest.raises(InvalidProject, match=r"row 2: column 'series' is empty"):
        load_metadata(csv, "series")


@pytest.mark.parametrize("content", [b"", b"series,age\na.nii,1,2,3\nb\"x,\"\n",
                                     b"series,age\n\xff\xfe\xfa,1\n"])
def test_metadata_unreadable(tmp_path: Path, content: bytes) -> None:
    csv = tmp_path / "m.csv"
    csv.write_bytes(content)
    with pytest.raises(InvalidProject, match="metadata file .*m.csv"):
        load_metadata(csv, "series")


def test_metadata_error_via_project(project_dir: Path) -> None:
    (project_dir / "metadata.csv").write_text("path\nx.nii\n")
    with pytest.raises(InvalidProject, match="no column 'series'"):
        Project.open(project_dir)


# ---- init_project ---------------------------------------------------------------------------

def test_init_project_inside_project_dir(tmp_path: Path, images: Path) -> None:
    project = init_project(tmp_path, images)
    text = (tmp_path / "project.yaml").read_text()
    assert "images: images" in text and "annotations: annotations" in text
    assert (tmp_path / "annotations").is_dir()
    assert project.config.name == tmp_path.name and len(project.series) == 4
    assert load_project_config(tmp_path).images == images.resolve()


def test_init_project_outside_paths_are_absolute(tmp_path: Path, images: Path) -> None:
    ann = tmp_path / "store" / "ann"
    project = init_project(tmp_path / "proj", images, ann, name="Liver study")
    text = (tmp_path / "proj" / "project.yaml").read_text()
    assert f"images: {images.resolve()}" in text and f"annotations: {ann.resolve()}" in text
    assert ann.is_dir() and project.config.annotations == ann.resolve()
    assert project.config.name == "Liver study"


def test_init_project_relative_images_from_cwd(tmp_path: Path, images: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    project = init_project("proj", "images")
    assert project.config.images == images.resolve()


def test_init_project_refusals(tmp_path: Path, images: Path) -> None:
    with pytest.raises(InvalidProject, match="images folder .*missing does not exist"):
        init_project(tmp_path / "p1", tmp_path / "missing")
    with pytest.raises(InvalidProject, match="annotation folder .* is inside the images"):
        init_project(tmp_path / "p2", images, images / "ann")
    with pytest.raises(InvalidProject, match="annotation folder .* is inside the images"):
        init_project(tmp_path / "p3", images, images)
    with pytest.raises(InvalidProject, match="project folder .* is inside the images"):
        init_project(images / "proj", images, tmp_path / "ann")
    with pytest.raises(InvalidProject, match="images folder .* is inside the annotation"):
        init_project(tmp_path / "p4", images, tmp_path)
    assert not any((tmp_path / name).exists() for name in ["p1", "p2", "p3", "p4"])
    init_project(tmp_path / "p5", images)
    with pytest.raises(InvalidProject, match="project.yaml already exists"):
        init_project(tmp_path / "p5", images)


def test_images_are_never_written(tmp_path: Path, images: Path) -> None:
    (images / "P2" / "notes.txt").write_text("keep me")
    before = tree_digest(images)
    project = init_project(tmp_path / "proj", images, tmp_path / "ann")
    discover_series(images)
    project.rescan()
    Project.open(tmp_path / "proj").folder_tree()
    for bad in [images / "x", images]:
        with pytest.raises(InvalidProject):
            init_project(tmp_path / "other", images, bad)
    with pytest.raises(InvalidProject):
        init_project(images / "P2", images)
    assert tree_digest(images) == before
