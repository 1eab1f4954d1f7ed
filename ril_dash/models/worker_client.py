"""The client side of the model worker: start it once per machine and user, call it, survive it.

No tensorflow or keras here: servers, jobs and the CLI call models through :class:`ModelWorker`,
which talks to the worker process (:mod:`ril_dash.models.worker`) over a Unix socket. The worker
is spawned with :mod:`subprocess` (a fresh interpreter, never a fork of a server: TensorFlow is not
fork-safe) in its own session, so a server's Ctrl-C or SIGTERM does not reach it. Its socket, key
file (mode 0600), lock and log live in ``RIL_DASH_WORKER_DIR`` or ``<tmp>/ril-dash-<uid>/``; the
first process that needs it starts it under a file lock, every other process (of this server or
another one of the same user) connects to the same worker.

A worker that died is started again by the next call; a call that was running when it died raises
:class:`ModelRunError` naming the model instead of hanging.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Client
from pathlib import Path

import filelock
import numpy as np
import psutil

from ril_dash.errors import ModelRunError, PluginError

START_TIMEOUT_S = 180.0
POLL_S = 0.5
LOG_TAIL_CHARS = 1500
LOG_MAX = 1024**2  # the worker log starts afresh beyond this size


@dataclass(frozen=True)
class ModelRef:
    """Which model file to run: the worker checks ``sha256`` and names ``label`` in errors.

    ``trusted`` (an admin trusted this exact hash) skips the safety scan and allows the bundle's
    ``custom_objects`` file (an absolute path) to run.
    """

    path: str
    sha256: str
    label: str
    trusted: bool = False
    custom_objects: str | None = None


def worker_dir() -> Path:
    """The folder of the worker's socket, key, lock and log (created private to this user)."""
    explicit = os.environ.get("RIL_DASH_WORKER_DIR")
    folder = Path(explicit) if explicit else Path(tempfile.gettempdir()) / f"ril-dash-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise ModelRunError(
            f"the model worker folder {folder} belongs to another user or others may write "
            f"to it; remove it, or point RIL_DASH_WORKER_DIR at a private folder")
    return folder


def exit_text(code: int | None) -> str:
    """How a worker ended, for messages.

    >>> exit_text(-9)
    'exit code -9, killed by SIGKILL'
    >>> exit_text(3)
    'exit code 3'
    """
    if code is None:
        return "exit code unknown"
    if code < 0:
        import signal

        try:
            return f"exit code {code}, killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"exit code {code}"


class ModelWorker:
    """A handle on the shared model worker; thread-safe; one per process via :meth:`shared`."""

    _shared: ModelWorker | None = None
    _shared_pid: int | None = None
    _shared_lock = threading.Lock()

    def __init__(self, folder: Path | None = None):
        self.folder = folder or worker_dir()
        self.socket = str(self.folder / "worker.sock")
        self.key_file = self.folder / "worker.key"
        self.log_file = self.folder / "worker.log"
        self.lock = filelock.FileLock(str(self.folder / "worker.lock"))
        self.idle: list = []  # connections not in use
        self.guard = threading.Lock()
        self.process: subprocess.Popen | None = None  # set when this process started the worker
        self.pid: int | None = None
        self.cold_start_s: float | None = None

    @classmethod
    def shared(cls) -> ModelWorker:
        """This process's handle (a new one after a fork: connections are not shared)."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared_pid != os.getpid():
                cls._shared = cls()
                cls._shared_pid = os.getpid()
            return cls._shared

    # -- public calls --------------------------------------------------------------------------
    def predict(self, ref: ModelRef, batch, *, batch_size: int = 8) -> np.ndarray:
        """The model's output on ``batch`` (float32); NaN/inf or a failure → ModelRunError."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.call("predict", ref.label, ref=ref_payload(ref), batch=batch,
                         batch_size=int(batch_size))

    def inspect(self, ref: ModelRef) -> dict:
        """``{"inputs": [shape...], "outputs": [shape...], "params": n}``, None = any size."""
        return self.call("inspect", ref.label, ref=ref_payload(ref))

    def time_bare_predict(self, ref: ModelRef, batch, *, batch_size: int = 8) -> float:
        """Seconds of a bare ``model.predict(batch, batch_size=...)`` in the worker."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.call("time_bare_predict", ref.label, ref=ref_payload(ref), batch=batch,
                         batch_size=int(batch_size))

    def explain_layers(self, ref: ModelRef) -> dict:
        """``{"layers": [{"name", "kind", "shape", "conv"}...], "default": name, "methods"}``:
        the layers Grad-CAM and SAM can read."""
        return self.call("explain_layers", ref.label, ref=ref_payload(ref))

    def explain(self, ref: ModelRef, batch, method: str, target: int, **options) -> dict:
        """Activation or saliency maps of ``batch`` (see :mod:`ril_dash.models.explain`):
        ``{"maps", "layer", "regions", "scores", "seconds"}``; ModelRunError with the reason
        when the method does not fit the model or the target."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.call("explain", ref.label, ref=ref_payload(ref), batch=batch,
                         method=str(method), target=int(target), **options)

    def train_begin(self, spec: dict, data: dict, parent: ModelRef | None = None) -> dict:
        """Start a training session in the worker (:mod:`ril_dash.models.train`): ``spec``
        (task, architecture, n_classes, learning_rate, batch_size, seed; optional: epochs of
        the learning-rate schedule, epoch_slices, augment), ``data`` (x_train, y_train, x_val,
        y_val arrays) and the bundle to fine-tune, if any."""
        return self.call("train_begin", "training", spec=spec, data=data,
                         parent=None if parent is None else ref_payload(parent))

    def train_epoch(self, deadline_s: float | None = None) -> dict:
        """One epoch of the session: ``{"epoch", "loss", "val_loss", "val_dice" or
        "val_accuracy", "stopped": None | "nan" | "time", "best", "seconds"}``."""
        return self.call("train_epoch", "training",
                         deadline_s=None if deadline_s is None else float(deadline_s))

    def train_save(self, path: str) -> dict:
        """Save the session's best weights as a clean ``.keras`` file at ``path``."""
        return self.call("train_save", "training", path=os.path.abspath(path))

    def train_end(self) -> None:
        """Forget the session (its memory is freed)."""
        self.call("train_end", "training")

    def warm(self, ref: ModelRef) -> dict:
        """Load the model (no prediction): ``{"label", "cached", "load_s"}``."""
        return self.call("warm", ref.label, ref=ref_payload(ref))

    def status(self) -> dict:
        """``{"pid", "loaded": [labels], "memory_mb", "running": label or None, "rss_mb", "keras",
        "ready_s", "uptime_s"}``, plus
        ``cold_start_s`` when this process started the worker."""
        found = self.call("status", "the model worker status")
        found["cold_start_s"] = self.cold_start_s
        return found

    def shutdown(self) -> None:
        """Stop the worker if it runs (the next call starts a new one)."""
        try:
            conn = self.connect(start=False)
        except ModelRunError:
            return
        if conn is None:
            return
        try:
            conn.send(("shutdown", {}))
            conn.recv()
        except (EOFError, OSError):
            pass
        finally:
            conn.close()
        with self.guard:
            while self.idle:
                self.idle.pop().close()
        self.wait_exit(self.pid, 10.0)

    # -- plumbing ------------------------------------------------------------------------------
    def call(self, op: str, label: str, **kwargs):
        conn = self.take()
        try:
            conn.send((op, kwargs))
            answer = self.receive(conn, label)
        except BaseException:
            conn.close()
            raise
        with self.guard:
            self.idle.append(conn)
        if answer[0] == "ok":
            return answer[1]
        _, kind, message = answer
        if kind == "PluginError":
            raise PluginError(message)
        if kind == "ModelRunError":
            raise ModelRunError(message)
        raise ModelRunError(f"the model worker failed while running {label} ({kind}: {message})")

    def receive(self, conn, label: str):
        """Wait for the answer, checking that the worker still lives (no hang if it died)."""
        pid = self.pid
        try:
            while not conn.poll(POLL_S):
                if pid is not None and not pid_alive(pid, self.process):
                    break
            return conn.recv()
        except (EOFError, OSError):
            pass
        code = self.wait_exit(pid, 5.0)
        raise ModelRunError(f"the model worker stopped while running {label} ({exit_text(code)}); "
                            f"it restarts for the next run")

    def take(self):
        """An idle connection that is still open, or a new one (starting the worker if needed)."""
        with self.guard:
            while self.idle:
                conn = self.idle.pop()
                if conn.poll(0):  # readable while idle: the worker closed it (it ended)
                    conn.close()
                    continue
                return conn
        return self.connect(start=True)

    def connect(self, start: bool):
        conn = self.try_connect()
        if conn is not None or not start:
            return conn
        with self.lock.acquire(timeout=START_TIMEOUT_S):
            conn = self.try_connect()  # another process may have started it meanwhile
            if conn is None:
                self.start()
                conn = self.try_connect()
        if conn is None:
            raise ModelRunError(f"the model worker started but does not answer on {self.socket}; "
                                f"see {self.log_file}")
        return conn

    def try_connect(self):
        if not os.path.exists(self.socket):
            return None
        try:
            conn = Client(self.socket, family="AF_UNIX", authkey=self.key_file.read_bytes())
        except (OSError, EOFError):
            return None
        except Exception:  # a key mismatch (a stale socket of an older worker)
            return None
        if self.pid is None or not pid_alive(self.pid, self.process):
            conn.send(("status", {}))
            reply = conn.recv()
            if reply[0] == "ok":
                self.pid = reply[1]["pid"]
        return conn

    def start(self) -> None:
        """Spawn the worker (caller holds the file lock) and wait until it answers."""
        if os.path.exists(self.socket):  # left by a worker that died
            os.unlink(self.socket)
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        os.chmod(self.key_file, 0o600)
        started = time.perf_counter()
        # the worker imports the same ril_dash as this process, whatever its working folder
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        mode = "ab" if self.log_file.exists() and self.log_file.stat().st_size < LOG_MAX else "wb"
        with open(self.log_file, mode) as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ril_dash.models.worker", "--socket", self.socket,
                 "--authkey-file", str(self.key_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                close_fds=True, cwd=str(self.folder), env=env)
        self.pid = self.process.pid
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ModelRunError(f"the model worker did not start ({exit_text(code)}): "
                                    f"{self.log_tail()}")
            if os.path.exists(self.socket):
                self.cold_start_s = round(time.perf_counter() - started, 2)
                return
            time.sleep(0.05)
        self.process.kill()
        raise ModelRunError(f"the model worker did not start within {START_TIMEOUT_S:.0f} s; "
                            f"see {self.log_file}")

    def log_tail(self) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"no log at {self.log_file}"
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return " ".join(lines[-3:])[-LOG_TAIL_CHARS:] if lines else "the log is empty"

    def wait_exit(self, pid: int | None, timeout: float) -> int | None:
        """The worker's exit code when this process started it (None otherwise or if alive)."""
        if self.process is not None and pid == self.process.pid:
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
        if pid is not None:
            try:
                psutil.Process(pid).wait(timeout=timeout)
            except (psutil.NoSuchProcess, psutil.TimeoutExpired, ChildProcessError):
                pass
        return None


def ref_payload(ref: ModelRef) -> dict:
    """The ref as the worker gets it: absolute paths (the worker's folder is not ours)."""
    payload = asdict(ref)
    payload["path"] = os.path.abspath(ref.path)
    if ref.custom_objects:
        payload["custom_objects"] = os.path.abspath(ref.custom_objects)
    return payload


def pid_alive(pid: int, process: subprocess.Popen | None) -> bool:
    if process is not None and process.pid == pid:
        return process.poll() is None
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
