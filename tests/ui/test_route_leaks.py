"""What the Flask routes tell a caller: no index page without a session, no absolute paths.

In-process apps (``create_app`` with a Flask test client) over a small project: the favicon
without a session on a login server, 404 and image errors of ``/ril/api`` routes, and a series
file swapped for a symbolic link leaving the images folder after the app started.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

SERIES = ("P1/ct.nii.gz", "P2/ct.nii.gz")
SLICE = "/ril/api/slice?plane=axial&index=0&wc=0&ww=100&series="


#: Dash's global callbacks as the pages registered them (see ``keep_dash_callbacks``)
SAVED_CALLBACKS: list[tuple[dict, list]] = []


@pytest.fixture(scope="module", autouse=True)
def keep_dash_callbacks():
    """The first app of a process to answer a request takes Dash's global callbacks; give
    them back afterwards, for the tests that build their own app later in this process."""
    import dash._callback as registry

    yield
    for callbacks, listed in SAVED_CALLBACKS[:1]:
        registry.GLOBAL_CALLBACK_MAP.update(callbacks)
        registry.GLOBAL_CALLBACK_LIST[:] = listed


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("leaks") / "Secret-Study-Folder"
    for sid in SERIES:
        path = root / "images" / sid
        path.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 4), np.int16), np.eye(4)), path)
    (root / "project.yaml").write_text("name: Hidden Name\nimages: images\n")
    return root


def make_app(project_dir, login_required: bool):
    from ril_dash.project.project import Project
    from ril_dash.settings import Settings
    from ril_dash.ui.app import create_app

    import dash._callback as registry

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIL_DASH_HOME", str(project_dir.parent / "home"))
        app = create_app(Project.open(project_dir),
                         Settings(project_dir=project_dir, login_required=login_required))
    if registry.GLOBAL_CALLBACK_MAP:
        SAVED_CALLBACKS.append((dict(registry.GLOBAL_CALLBACK_MAP),
                                list(registry.GLOBAL_CALLBACK_LIST)))
    return app


@pytest.fixture(scope="module")
def client(project_dir):
    return make_app(project_dir, login_required=False).server.test_client()


def test_favicon_without_a_session_is_not_the_index_page(project_dir):
    client = make_app(project_dir, login_required=True).server.test_client()
    for path in ("/favicon.ico", "/anything/else", "/view"):
        reply = client.get(path)
        body = reply.get_data(as_text=True)
        assert "Hidden Name" not in body and "dash" not in body.lower(), path
        if path == "/favicon.ico":
            assert reply.status_code == 301 and reply.headers["Location"] == "/_favicon.ico"
        else:
            assert reply.status_code in (302, 401), path
    icon = client.get("/_favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/x-icon"


def test_an_unknown_series_404_does_not_show_paths(client, project_dir):
    reply = client.get(SLICE + "P9/none.nii.gz")
    assert reply.status_code == 404
    error = reply.get_json()["error"]
    assert "'P9/none.nii.gz' is not in project 'Hidden Name'" in error
    assert str(project_dir) not in error and "Secret-Study-Folder" not in error


def test_a_broken_image_error_names_the_series_only(client, project_dir):
    path = project_dir / "images" / SERIES[1]
    path.write_bytes(b"not an image at all")
    reply = client.get(SLICE + SERIES[1])
    assert reply.status_code == 422
    error = reply.get_json()["error"]
    assert f"Image series {SERIES[1]!r} is not a readable NIfTI file" in error
    assert "Secret-Study-Folder" not in error


def test_a_series_swapped_for_an_outside_link_is_refused(client, project_dir, tmp_path):
    assert client.get(SLICE + SERIES[0]).status_code == 200
    outside = tmp_path / "outside.nii.gz"
    nib.save(nib.Nifti1Image(np.full((8, 8, 4), 5, np.int16), np.eye(4)), outside)
    path = project_dir / "images" / SERIES[0]
    path.unlink()
    path.symlink_to(outside)
    reply = client.get(SLICE + SERIES[0])
    assert reply.status_code == 404
    error = reply.get_json()["error"]
    assert f"series {SERIES[0]!r} now points outside the images folder" in error
    assert str(tmp_path) not in error and "Secret-Study-Folder" not in error


def test_the_background_callback_cache_is_private(client, project_dir):
    caches = list((project_dir.parent / "home" / "cache").glob("background-*"))
    assert len(caches) == 1
    assert caches[0].stat().st_mode & 0o777 == 0o700
