"""Series files and annotation folders are checked when they are opened, not only at discovery.

A series file replaced by a symbolic link to a file outside the images folder after the project
was opened, or an annotation folder replaced by a link leaving the annotation store, must be
refused; messages name the series, never absolute paths (they are shown to users).
"""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from ril_dash.errors import InvalidImage, SeriesNotFound
from tests.application.conftest import SERIES


def outside_image(tmp_path):
    """A valid NIfTI file outside the project (what a swapped link would expose)."""
    target = tmp_path / "outside" / "secret.nii.gz"
    target.parent.mkdir()
    nib.save(nib.Nifti1Image(np.full((8, 8, 4), 7, np.int16), np.eye(4)), target)
    return target


def swap_for_link(services, series_id, target):
    path = services.project.config.images / series_id
    path.unlink()
    path.symlink_to(target)


def test_a_series_swapped_for_an_outside_link_is_refused(services, tmp_path):
    series_id = SERIES[0]
    assert services.volume(series_id).data.shape[:3] == (8, 8, 4)  # opened once, cached
    target = outside_image(tmp_path)
    swap_for_link(services, series_id, target)
    for read in (services.volume, services.shape_of, services.geometry_of,
                 services.series_path, services.project.series_path):
        with pytest.raises(SeriesNotFound) as caught:
            read(series_id)
        message = str(caught.value)
        assert f"series {series_id!r} now points outside the images folder" in message
        assert str(tmp_path) not in message
    # the other series is untouched
    assert int(services.volume(SERIES[1]).data.max()) == 8 * 8 * 4 - 1


def test_a_link_inside_the_images_folder_still_opens(services):
    images = services.project.config.images
    series_id = SERIES[0]
    moved = images / "P1" / "stored.bin"
    shutil.move(images / series_id, moved)
    (images / series_id).symlink_to(moved)
    assert int(services.volume(series_id).data.max()) == 8 * 8 * 4 - 1


def test_an_annotation_folder_swapped_for_an_outside_link_is_refused(services, tmp_path):
    series_id = SERIES[0]
    annotations = services.annotations(series_id)
    assert annotations.refresh().version == 0
    folder = annotations.folder
    outside = tmp_path / "elsewhere.ril"
    outside.mkdir()
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(SeriesNotFound) as caught:
        services.annotations(series_id)
    assert "resolves outside the annotation store" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)
    assert list(outside.iterdir()) == []


def test_messages_name_the_series_not_the_path(services, tmp_path):
    with pytest.raises(SeriesNotFound) as caught:
        services.volume("P9/none.nii.gz")
    assert "'P9/none.nii.gz' is not in project 'Commands'" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)
    series_id = SERIES[1]
    (services.project.config.images / series_id).write_bytes(b"not an image")
    for read in (services.volume, services.shape_of):
        with pytest.raises(InvalidImage) as caught:
            read(series_id)
        assert f"Image series {series_id!r} is not a readable NIfTI file" in str(caught.value)
        assert str(tmp_path) not in str(caught.value)


def test_the_full_path_check_is_made_again_only_when_the_file_changed(services, monkeypatch):
    """A request looks a series up a dozen times: the folders are resolved once, until the path
    leads to another file (which is then checked, and refused when outside)."""
    import ril_dash.project.project as project_module

    calls = []
    real_check = project_module.check_inside_images
    monkeypatch.setattr(project_module, "check_inside_images",
                        lambda root, sid: calls.append(sid) or real_check(root, sid))
    series_id = SERIES[0]
    for _ in range(5):
        services.annotations(series_id)
        services.volume(series_id)
    assert calls == [series_id]
    path = services.project.config.images / series_id
    moved = path.with_name("stored.nii.gz")
    path.rename(moved)  # (a rename changes the file's ctime: checked again)
    path.symlink_to(moved)  # a link inside the images folder: passes, then is remembered
    for _ in range(3):
        assert services.series_path(series_id) == path
    assert calls == [series_id] * 2
    path.unlink()
    shutil.copy(moved, path)  # another file (inode) at the same path
    services.series_path(series_id)
    services.series_path(series_id)
    assert calls == [series_id] * 3


def test_an_annotation_folder_checked_before_and_swapped_later_is_refused(services, tmp_path):
    """The folder's identity is remembered once it was found inside the store: a link put in
    its place later leads to another folder and is checked again."""
    series_id = SERIES[0]
    annotations = services.annotations(series_id)
    annotations.folder.mkdir(parents=True, exist_ok=True)
    services.annotations(series_id)  # the existing folder passes and is remembered
    outside = tmp_path / "elsewhere.ril"
    outside.mkdir()
    shutil.rmtree(annotations.folder)
    annotations.folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(SeriesNotFound, match="resolves outside the annotation store"):
        services.annotations(series_id)
