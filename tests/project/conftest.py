"""Fixtures shared by the tests of ril_dash.project."""

from __future__ import annotations

import pytest

from ril_dash.project.project import init_project


@pytest.fixture
def proj(tmp_path):
    """The folder of a new project "Study" (init_project's example ROI and text field) over an
    empty images folder."""
    (tmp_path / "images").mkdir()
    return init_project(tmp_path / "proj", tmp_path / "images", name="Study").dir
