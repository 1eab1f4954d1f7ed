"""Project files that hold annotations, secrets or logs are private to the service user.

After real operations (an edit with a text value, an audit entry, a model setting, a job, a
session) the files are mode 0600 and their folders 0700, whatever the umask; files left
world-readable by an older version are narrowed at the next write. The images stay as they are.
"""

from __future__ import annotations

import os
import stat
import types

import numpy as np
import pytest

from ril_dash.jobs.store import JobStore
from ril_dash.models.registry import ModelRegistry
from ril_dash.project.audit import AuditLog
from ril_dash.project.sessions import SessionStore
from tests.application.conftest import SERIES


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def open_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def edit(services):
    annotations = services.annotations(SERIES[0])
    delta = types.SimpleNamespace(box=((0, 2), (0, 2), (1, 2)), before=np.zeros((2, 2, 1),
                                  np.uint8), after=np.ones((2, 2, 1), np.uint8))
    annotations.commit(0, delta, {"user": "ann", "op": "paint", "roi": 1}, slots={1: 0},
                       texts={"Phase": "arterial"})
    return annotations.folder


def test_annotations_and_the_audit_log_are_private(services):
    folder = edit(services)
    project = services.project.dir
    AuditLog.for_project(project).record("ann", "paint", SERIES[0], {"roi": 1})
    summary = folder / "summary.json"
    assert "arterial" in summary.read_text()
    assert mode(summary) == 0o600
    versions = list((folder / "v").iterdir())
    assert versions and all(mode(v) == 0o600 for v in versions)
    assert mode(folder) == mode(folder / "v") == mode(folder / "c") == 0o700
    assert mode(project / "audit.log.jsonl") == 0o600
    # images are not secrets: untouched
    assert mode(services.project.config.images / SERIES[0]) == 0o644


def test_files_of_an_older_version_are_narrowed(services):
    project = services.project.dir
    log = project / "audit.log.jsonl"
    log.write_text("")
    log.chmod(0o644)
    AuditLog.for_project(project).record("ann", "login")
    assert mode(log) == 0o600 and log.read_text().count("\n") == 1
    folder = edit(services)
    folder.chmod(0o755)
    services.annotations(SERIES[0]).commit(1, None, {"user": "ann", "op": "text"},
                                           texts={"Phase": "venous"})
    assert mode(folder) == 0o700 and mode(folder / "summary.json") == 0o600


def test_model_settings_jobs_and_sessions_are_private(services):
    project = services.project.dir
    ModelRegistry(project).set_enabled("some-model", False)
    assert mode(project / ".models") == 0o700
    assert mode(project / ".models" / "state.json") == 0o600
    SessionStore.for_project(project).create("ann")
    assert mode(project / ".sessions") == 0o700
    assert all(mode(p) == 0o600 for p in (project / ".sessions").iterdir())
    jobs = JobStore.for_project(project)
    job = jobs.create("ann", "export", {"folder": "out"})
    assert mode(project / ".jobs") == 0o700 and mode(jobs.path_of(job.id)) == 0o600
