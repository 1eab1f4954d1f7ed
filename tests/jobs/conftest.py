"""Fixtures of the job tests: an empty job store in a temporary project folder."""

from __future__ import annotations

import pytest

from ril_dash.jobs import JobStore


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore.for_project(tmp_path)
