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
