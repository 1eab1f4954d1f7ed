"""The model worker process and its client, with real (tiny) Keras models.

Every test here starts processes: the models are written once by ``make_test_models.py`` in a
subprocess, and one worker (its own ``RIL_DASH_WORKER_DIR``) serves the module; only the tests
about starting, sharing and losing the worker start more.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest

from ril_dash.errors import ModelRunError, PluginError
from ril_dash.models.safety import file_sha256
from ril_dash.models.worker_client import ModelRef, ModelWorker
from tests.models.helpers import run_model_script

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return run_model_script("make_test_models.py", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def worker(tmp_path_factory, models):
    """A worker of this module only, with a cache small enough to hold two of the test models."""
    folder = tmp_path_factory.mktemp("worker")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RIL_DASH_WORKER_DIR", str(folder))
        patch.setenv("RIL_DASH_MODEL_CACHE_MB", "40")
        client = ModelWorker()
        client.status()
        yield client
        client.shutdown()
        assert client.process.poll() is not None and not (folder / "worker.sock").exists()


def ref(models: Path, name: str, **extra) -> ModelRef:
    path = models / name
    return ModelRef(str(path), file_sha256(path), f"{path.stem}@1.0.0", **extra)


def test_predict_matches_keras_for_the_keras_and_h5_files(worker, models):
    batch = np.load(models / "conv_input.npy")
    expected = np.load(models / "conv_expected.npy")
    for name in ("conv.keras", "conv.h5"):
        out = worker.predict(ref(models, name), batch.astype("float64"), batch_size=2)
        assert out.dtype == np.float32 and out.shape == (5, 16, 16, 2)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    status = worker.status()
    assert status["pid"] == worker.process.pid and status["cold_start_s"] > 0
    assert status["loaded"][-2:] == ["conv@1.0.0", "conv@1.0.0"]


def test_inspect_warm_and_the_bare_predict_baseline(worker, models, monkeypatch):
    monkeypatch.chdir(models)  # a relative path is the client's, not the worker's
    conv = ModelRef("conv.keras", file_sha256(models / "conv.keras"), "conv@1.0.0")
    assert worker.inspect(conv) == {"inputs": [[None, 16, 16, 1]],
                                    "outputs": [[None, 16, 16, 2]], "params": 4 * 9 + 4 + 4 * 2 + 2}
    assert worker.warm(conv)["cached"] is True
    seconds = worker.time_bare_predict(conv, np.zeros((20, 16, 16, 1)), batch_size=4)
    assert 0 < seconds < 30


def test_the_cache_keeps_the_most_recently_used_models(worker, models):
    # 40 MB and at least 16 MB per model: two stay loaded
    for name in ("conv.keras", "nan.keras", "unet_odd.keras", "conv.keras"):
        worker.warm(ref(models, name))
    assert worker.status()["loaded"] == ["unet_odd@1.0.0", "conv@1.0.0"]
    assert worker.warm(ref(models, "nan.keras"))["cached"] is False


def test_refused_files_never_load(worker, models, tmp_path):
    with pytest.raises(PluginError, match=r"lambda@1\.0\.0: lambda\.keras \(config\.json\) "
                                          r"contains a Lambda layer 'lambda'"):
        worker.predict(ref(models, "lambda.keras"), np.zeros((1, 16, 16, 1)))
    with pytest.raises(PluginError, match=r"custom@1\.0\.0: custom\.keras \(config\.json\) "
                                          r"contains a custom object ril_test>Doubler"):
        worker.inspect(ref(models, "custom.keras"))
    altered = tmp_path / "conv.keras"
    shutil.copy(models / "conv.keras", altered)
    recorded = file_sha256(altered)
    shutil.copy(models / "nan.keras", altered)  # same name, other content
    with pytest.raises(PluginError, match="the model file conv.keras has sha256 .* but the "
                                          "manifest records " + recorded):
        worker.warm(ModelRef(str(altered), recorded, "conv@2.0.0"))
    linked = tmp_path / "linked.h5"
    shutil.copy(models / "conv.h5", linked)
    with h5py.File(linked, "a") as handle:
        handle["model_weights/extra"] = h5py.ExternalLink("/tmp/elsewhere.h5", "/payload")
    with pytest.raises(PluginError, match=r"linked@1\.0\.0: linked\.h5 holds an external link "
                                          r"'model_weights/extra' to /tmp/elsewhere\.h5:/payload"):
        worker.predict(ref(tmp_path, "linked.h5"), np.zeros((1, 16, 16, 1)))
    assert {"conv@2.0.0", "linked@1.0.0"}.isdisjoint(worker.status()["loaded"])


def test_a_trusted_version_loads_its_custom_objects(worker, models):
    trusted = ref(models, "custom.keras", trusted=True,
                  custom_objects=str(models / "custom_layers.py"))
    out = worker.predict(trusted, np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(out, [[2.0, 4.0, 6.0]])
    with pytest.raises(PluginError, match="custom object ril_test>Doubler"):
        worker.predict(ref(models, "custom.keras"), np.ones((1, 3)))  # trust withdrawn


def test_a_model_that_raises_or_emits_nan_fails_naming_it(worker, models):
    odd = ref(models, "unet_odd.keras")
    assert worker.predict(odd, np.ones((1, 16, 16, 1))).shape == (1, 16, 16, 4)
    with pytest.raises(ModelRunError, match=r"unet_odd@1\.0\.0 failed on a batch of shape "
                                            r"\(1, 15, 15, 1\) \(\w+Error: [^\n]*15[^\n]*14"
                                            r"[^\n]*\); check the manifest"):
        worker.predict(odd, np.ones((1, 15, 15, 1)))
    with pytest.raises(ModelRunError, match=r"conv@1\.0\.0 takes batches of shape \(any, 16, 16, "
                                            r"1\) but was given \(2, 16, 16\); make the manifest"):
        worker.predict(ref(models, "conv.keras"), np.ones((2, 16, 16)))
    with pytest.raises(ModelRunError, match=r"nan@1\.0\.0 returned 32 NaN or infinite values "
                                            r"\(of 32\); nothing was written"):
        worker.predict(ref(models, "nan.keras"), np.ones((2, 4, 4, 1)))
    assert worker.predict(odd, np.ones((1, 8, 8, 1))).shape == (1, 8, 8, 4)  # still serving


def test_a_worker_killed_mid_predict_fails_that_call_and_the_next_call_restarts_it(worker, models):
    slow = ref(models, "slow.keras")
    worker.warm(slow)
    old_pid = worker.status()["pid"]
    outcome: dict = {}

    def run():
        try:
            worker.predict(slow, np.zeros((400, 128, 128, 1)), batch_size=8)
        except ModelRunError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while worker.status()["running"] != "slow@1.0.0":  # status answers beside a model call
        assert time.monotonic() < deadline and thread.is_alive(), outcome
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(old_pid, signal.SIGKILL)
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert outcome["error"] == ("the model worker stopped while running slow@1.0.0 (exit code -9, "
                                "killed by SIGKILL); it restarts for the next run")
    out = worker.predict(ref(models, "conv.keras"), np.load(models / "conv_input.npy"))
    np.testing.assert_allclose(out, np.load(models / "conv_expected.npy"), rtol=1e-5, atol=1e-6)
    assert worker.status()["pid"] not in (old_pid, None)


SHARE = """
import sys
from ril_dash.models.worker_client import ModelWorker
print(ModelWorker.shared().status()["pid"])
"""


def test_client_processes_share_one_worker_which_ends_when_idle(tmp_path):
    # no PYTHONPATH: the clients import this checkout from their working folder, and the worker
    # (working in its own folder) is told where the clients' ril_dash lies
    env = {**os.environ, "RIL_DASH_WORKER_DIR": str(tmp_path), "RIL_DASH_WORKER_IDLE_S": "4",
           "PYTHONPATH": ""}
    clients = [subprocess.Popen([sys.executable, "-c", SHARE], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    pids = set()
    for client in clients:
        out, err = client.communicate(timeout=180)
        assert client.returncode == 0, err[-2000:]
        pids.add(int(out.strip()))
    assert len(pids) == 1
    (pid,) = pids
    worker = psutil.Process(pid)
    assert worker.cmdline()[1:3] == ["-m", "ril_dash.models.worker"]
    assert os.getsid(pid) == pid  # its own session: a server's signals do not reach it
    assert oct((tmp_path / "worker.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "worker.sock").stat().st_mode & 0o777) == "0o600"
    psutil.wait_procs([worker], timeout=30)
    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "worker.sock").exists()
