"""The client's process-local parts, without starting a worker."""

from __future__ import annotations

import os

import pytest

from ril_dash.errors import ModelRunError
from ril_dash.models.worker_client import ModelRef, ModelWorker, worker_dir


def test_the_worker_folder_is_private_or_refused(tmp_path, monkeypatch):
    folder = tmp_path / "w"
    monkeypatch.setenv("RIL_DASH_WORKER_DIR", str(folder))
    assert worker_dir() == folder and oct(folder.stat().st_mode & 0o777) == "0o700"
    folder.chmod(0o777)
    with pytest.raises(ModelRunError, match=f"the model worker folder {folder} belongs to another "
                                            f"user or others may write to it; remove it"):
        worker_dir()


def test_the_shared_handle_is_per_process(tmp_path, monkeypatch):
    monkeypatch.setenv("RIL_DASH_WORKER_DIR", str(tmp_path))
    monkeypatch.setattr(ModelWorker, "_shared", None)  # restored afterwards for other tests
    parent = ModelWorker.shared()
    assert ModelWorker.shared() is parent
    pid = os.fork()
    if pid == 0:  # the child must not reuse the parent's connections
        os._exit(0 if ModelWorker.shared() is not parent else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert ModelWorker.shared() is parent


def test_a_model_ref_is_a_plain_value():
    ref = ModelRef("/b/model.keras", "ab" * 32, "kidney-seg@1.0.0")
    assert (ref.trusted, ref.custom_objects) == (False, None)
    assert ref == ModelRef("/b/model.keras", "ab" * 32, "kidney-seg@1.0.0")
