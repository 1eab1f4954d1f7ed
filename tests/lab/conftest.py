"""Fixtures of the job tier tests: a private Redis server, the demo project (small) with the
example kidney model, and ``ril-dash worker`` processes (helpers in ``lab_support.py``)."""

from __future__ import annotations

import pytest
from lab_support import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """``redis-server`` on a free loopback port, no persistence, its files in a temp folder."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model_worker_env(tmp_path_factory):
    """A model worker folder of this module only (shut down at the end)."""
    from ril_dash.models.worker_client import ModelWorker

    folder = tmp_path_factory.mktemp("model-worker")
    yield {"RIL_DASH_WORKER_DIR": str(folder)}
    ModelWorker(folder).shutdown()
