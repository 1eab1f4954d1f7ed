"""The model worker process: the only ril_dash code that imports tensorflow or keras.

Run as ``python -m ril_dash.models.worker --socket PATH --authkey-file FILE``; the client
(:mod:`ril_dash.models.worker_client`) spawns it, never a fork of a server. It listens on a Unix
socket (``multiprocessing.connection``, authenticated with the key in FILE) and serves every client
process of the machine's user, one thread per connection; model calls run one at a time under a
lock. Each request is ``(op, kwargs)``; the answer is ``("ok", result)`` or ``("error",
class_name, message)`` where class_name is ``PluginError`` or ``ModelRunError`` (the client
re-raises them) or another class (an unexpected failure).

Models load lazily (``keras.saving.load_model(path, compile=False, safe_mode=True)``) after the
file's sha256 matches and :func:`ril_dash.models.safety.scan_model_file` passes; a ref that an
admin trusted skips the scan, may load its bundle's custom-objects file and loads without safe
mode. Loaded models stay warm in a least-recently-used cache bounded by ``RIL_DASH_MODEL_CACHE_MB``
(default 2048; a model's size is estimated from its parameter count). The worker exits by itself
after ``RIL_DASH_WORKER_IDLE_S`` seconds (default 1800) without a request.

tensorflow/keras are imported inside functions, so importing this module (e.g. for doctests) stays
cheap; :func:`main` imports keras before it listens, so "ready" means TensorFlow is loaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from multiprocessing.connection import Listener
from pathlib import Path

import numpy as np

from ril_dash.errors import ModelRunError, PluginError
from ril_dash.models.safety import require_sha256, scan_model_file

#: Keras 3.13.2 fixes CVE-2024-3660 (Lambda, fixed in 2.13), CVE-2025-1550 (3.9.0),
#: CVE-2025-8747/9906 (3.11.0), CVE-2025-9905 (.h5 ignoring safe_mode, 3.11.3), CVE-2025-12060
#: (3.12.0) and CVE-2026-1462 (TFSMLayer, 3.13.2).
MIN_KERAS = (3, 13, 2)
#: bytes per parameter in the cache estimate: float32 weights plus TensorFlow's traced graphs and
#: buffers, measured roughly on small convolutional nets
BYTES_PER_PARAM = 4 * 3
MIN_MODEL_BYTES = 16 * 1024**2


def keras_version_problem(version: str) -> str | None:
    """Why this Keras version may not load untrusted models, or None when it is recent enough.

    >>> keras_version_problem("3.15.1")
    >>> keras_version_problem("3.10.0").split(";")[0]
    'Keras 3.10.0 is installed, but ril_dash needs Keras >= 3.13.2 to load model files'
    """
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        parts.append(int(digits) if digits else 0)
    if tuple(parts) >= MIN_KERAS:
        return None
    needed = ".".join(map(str, MIN_KERAS))
    return (f"Keras {version} is installed, but ril_dash needs Keras >= {needed} to load model "
            f"files; older versions run code hidden in model files (CVE-2025-1550, CVE-2025-9905, "
            f"CVE-2026-1462). Upgrade it: pip install -U 'keras>={needed}'")


@dataclass
class Loaded:
    model: object
    label: str
    nbytes: int
    load_s: float
    explainers: dict = field(default_factory=dict)  # helper models of ril_dash.models.explain


class ModelCache:
    """Loaded models by :func:`model_key`, least recently used first out beyond ``limit_bytes``."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self.models: OrderedDict[tuple[str, str], Loaded] = OrderedDict()
        self.guard = threading.Lock()  # status() reads while a model call may be loading

    def get(self, key):
        with self.guard:
            found = self.models.get(key)
            if found is not None:
                self.models.move_to_end(key)
            return found

    def put(self, key, loaded: Loaded) -> None:
        with self.guard:
            self.models[key] = loaded
            self.models.move_to_end(key)
            while len(self.models) > 1 and self.bytes_unlocked() > self.limit_bytes:
                self.models.popitem(last=False)

    def bytes_unlocked(self) -> int:
        return sum(item.nbytes for item in self.models.values())

    def total_bytes(self) -> int:
        with self.guard:
            return self.bytes_unlocked()

    def labels(self) -> list[str]:
        with self.guard:
            return [item.label for item in self.models.values()]


class Worker:
    """The request handlers; every model call holds :attr:`lock`."""

    def __init__(self, cache_bytes: int):
        self.cache = ModelCache(cache_bytes)
        self.lock = threading.Lock()
        self.started = time.time()
        self.ready_s: float | None = None
        self.last_request = time.monotonic()
        self.busy = 0
        self.busy_lock = threading.Lock()
        self.running: str | None = None  # label of the model call in progress
        self.training = None  # the TrainingSession of ril_dash.models.train, between requests

    def mark_busy(self, delta: int) -> None:
        with self.busy_lock:
            self.busy += delta
            self.last_request = time.monotonic()

    # -- models --------------------------------------------------------------------------------
    def load(self, ref: dict) -> Loaded:
        key = model_key(ref)
        found = self.cache.get(key)
        if found is not None:
            return found
        label = ref["label"]
        require_sha256(ref["path"], ref["sha256"], label)
        trusted = bool(ref.get("trusted"))
        if not trusted:
            scan_model_file(ref["path"], label)
        import keras

        custom = load_custom_objects(ref.get("custom_objects"), label) if trusted else {}
        start = time.perf_counter()
        try:
            model = keras.saving.load_model(ref["path"], custom_objects=custom or None,
                                            compile=False, safe_mode=not trusted)
        except Exception as exc:  # Keras raises many kinds; all mean "this file does not load"
            raise PluginError(f"{label}: Keras could not load {Path(ref['path']).name} "
                              f"({type(exc).__name__}: {short(exc)}); check that the file is a "
                              f"full model saved with model.save()") from exc
        nbytes = max(MIN_MODEL_BYTES, int(model.count_params()) * BYTES_PER_PARAM)
        loaded = Loaded(model, label, nbytes, time.perf_counter() - start)
        self.cache.put(key, loaded)
        return loaded

    def warm(self, ref: dict) -> dict:
        cached = self.cache.get(model_key(ref)) is not None
        loaded = self.load(ref)
        return {"label": loaded.label, "cached": cached, "load_s": loaded.load_s}

    def predict(self, ref: dict, batch, batch_size: int = 8) -> np.ndarray:
        loaded = self.load(ref)
        batch = np.asarray(batch, dtype=np.float32)
        check_batch_shape(loaded, batch.shape)
        return checked_output(run_model(loaded, batch, batch_size), loaded.label)

    def inspect(self, ref: dict) -> dict:
        model = self.load(ref).model
        return {"inputs": [shape_list(t.shape) for t in model.inputs],
                "outputs": [shape_list(t.shape) for t in model.outputs],
                "params": int(model.count_params())}

    def time_bare_predict(self, ref: dict, batch, batch_size: int = 8) -> float:
        """Seconds of one bare ``model.predict`` on ``batch`` (after a warm-up call on one
        batch_size chunk, so graph tracing is not counted): the benchmark baseline."""
        loaded = self.load(ref)
        batch = np.asarray(batch, dtype=np.float32)
        run_predict(loaded, batch[:batch_size], batch_size)
        start = time.perf_counter()
        run_predict(loaded, batch, batch_size)
        return time.perf_counter() - start

    def explain_layers(self, ref: dict) -> dict:
        """The model's layers with a spatial output and the default one for Grad-CAM / SAM."""
        from ril_dash.models import explain

        model = self.load(ref).model
        return {"layers": explain.spatial_layers(model), "default": explain.default_layer(model),
                "methods": list(explain.METHODS)}

    def explain(self, ref: dict, batch, method: str, target: int, **options) -> dict:
        """Maps of ``method`` for ``batch`` (:func:`ril_dash.models.explain.explain`)."""
        from ril_dash.models import explain

        loaded = self.load(ref)
        batch = np.asarray(batch, dtype=np.float32)
        check_batch_shape(loaded, batch.shape)
        return explain.explain(loaded, batch, method, target, **options)

    # -- training (ril_dash.models.train) ------------------------------------------------------
    def train_begin(self, spec: dict, data: dict, parent: dict | None = None) -> dict:
        """Start a training session (replacing any earlier one): see :mod:`ril_dash.models.train`."""
        import keras

        from ril_dash.models import train

        self.training = None
        parent_model = None if parent is None else self.load(parent).model
        self.training = train.begin(keras, spec, data, parent_model)
        return {"params": int(self.training.model.count_params()),
                "train_slices": len(self.training.x), "validation_slices": len(self.training.x_val)}

    def train_epoch(self, deadline_s: float | None = None) -> dict:
        return self.session().epoch(deadline_s)

    def train_save(self, path: str) -> dict:
        return self.session().save(path)

    def train_end(self) -> dict:
        self.training = None
        return {}

    def session(self):
        if self.training is None:
            raise ModelRunError("the model worker has no training session (it restarted, or "
                                "another training replaced it); start the training again")
        return self.training

    def status(self) -> dict:
        import keras
        import psutil

        return {"pid": os.getpid(), "loaded": self.cache.labels(),
                "memory_mb": round(self.cache.total_bytes() / 1024**2, 1),
                "running": self.running,
                "rss_mb": round(psutil.Process().memory_info().rss / 1024**2, 1),
                "keras": keras.__version__, "ready_s": self.ready_s,
                "uptime_s": round(time.time() - self.started, 1)}

    def handle(self, op: str, kwargs: dict):
        handlers = {"warm": self.warm, "predict": self.predict, "inspect": self.inspect,
                    "time_bare_predict": self.time_bare_predict,
                    "explain_layers": self.explain_layers, "explain": self.explain,
                    "train_begin": self.train_begin, "train_epoch": self.train_epoch,
                    "train_save": self.train_save, "train_end": self.train_end}
        if op == "status":
            return self.status()
        if op not in handlers:
            raise ModelRunError(f"the model worker does not know the request '{op}'; "
                                f"restart the server so that both sides run the same version")
        with self.lock:
            ref = kwargs.get("ref") or {}
            self.running = ref.get("label") or ("training" if op.startswith("train") else None)
            try:
                return handlers[op](**kwargs)
            finally:
                self.running = None


def model_key(ref: dict) -> tuple:
    """A loaded model is reused only for the same file, hash and trust (a version whose trust
    was withdrawn is scanned again)."""
    return ref["path"], ref["sha256"], bool(ref.get("trusted")), ref.get("custom_objects")


def check_batch_shape(loaded: Loaded, shape: tuple) -> None:
    """Refuse a batch that cannot fit the model's (single) input, before Keras sees it."""
    inputs = loaded.model.inputs
    if len(inputs) != 1:
        raise ModelRunError(f"{loaded.label} takes {len(inputs)} inputs; ril_dash runs models "
                            f"with exactly one input: export the model with a single input")
    expected = shape_list(inputs[0].shape)
    fits = len(expected) == len(shape) and all(
        want is None or want == got for want, got in zip(expected[1:], shape[1:]))
    if not fits:
        wanted = "(" + ", ".join("any" if dim is None else str(dim) for dim in expected) + ")"
        raise ModelRunError(
            f"{loaded.label} takes batches of shape {wanted} but was given {tuple(shape)}; "
            f"make the manifest's input size, slices (channels) and frames match the model")


def run_model(loaded: Loaded, batch: np.ndarray, batch_size: int):
    """The model on ``batch``, ``batch_size`` items per call of its compiled predict step
    (``predict_on_batch``: without the per-call set-up of ``model.predict``, which costs more
    than the model itself on the small chunks a run sends for early progress)."""
    step = max(1, int(batch_size))
    return guarded(loaded, batch, lambda: np.concatenate(
        [np.asarray(loaded.model.predict_on_batch(batch[i:i + step]))
         for i in range(0, len(batch), step)]))


def run_predict(loaded: Loaded, batch: np.ndarray, batch_size: int):
    """A bare ``model.predict`` (the benchmark's baseline)."""
    return guarded(loaded, batch, lambda: loaded.model.predict(
        batch, batch_size=max(1, int(batch_size)), verbose=0))


def guarded(loaded: Loaded, batch: np.ndarray, call):
    try:
        return call()
    except Exception as exc:  # a model that raises: report it, naming the bundle
        raise ModelRunError(
            f"{loaded.label} failed on a batch of shape {tuple(batch.shape)} "
            f"({type(exc).__name__}: {short(exc)}); check the manifest's input size, slices and "
            f"frames against the model's input shape") from exc


def checked_output(output, label: str) -> np.ndarray:
    """One float32 array with finite values, else :class:`ModelRunError` naming the bundle."""
    if isinstance(output, (list, tuple)) or isinstance(output, dict):
        raise ModelRunError(f"{label} returned {len(output)} outputs; ril_dash runs models with "
                            f"exactly one output: export the model with its single output tensor")
    array = np.asarray(output, dtype=np.float32)
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ModelRunError(
            f"{label} returned {bad} NaN or infinite values (of {array.size}); nothing was "
            f"written. Check the model's weights and the manifest's normalization")
    return array


def shape_list(shape) -> list:
    return [None if dim is None else int(dim) for dim in shape]


def short(exc: BaseException, limit: int = 400) -> str:
    """An exception's message on one line without TensorFlow's traceback and colour codes.

    >>> short(ValueError("Graph execution error:\\n\\nDetected at node c defined at (most recent "
    ...       "call last):\\n  File \\"x.py\\", line 1\\n\\n  File \\"y.py\\", line 2\\n\\n"
    ...       "Dimensions must match\\n\\t [[{{node c}}]] [Op:__inference_1]"))
    'Dimensions must match'
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    paragraphs = [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]
    kept = [part for part in paragraphs
            if not part.startswith(("Detected at node", "Arguments received", "Graph execution",
                                    'File "'))]
    text = " ".join(" ".join(kept or paragraphs).split())
    text = re.sub(r"\s*\[\[\{\{node .*$", "", text)  # TensorFlow's op and node names
    return text if len(text) <= limit else text[:limit] + "…"


def load_custom_objects(filename: str | None, label: str) -> dict:
    """Run a trusted bundle's custom-objects file; its ``CUSTOM_OBJECTS`` dict (and whatever it
    registers with ``keras.saving.register_keras_serializable``) is available to the load."""
    if not filename:
        return {}
    path = Path(filename)
    if not path.is_file():
        raise PluginError(f"{label}: the custom-objects file {path} is missing; put it back in "
                          f"the bundle or remove model.custom_objects from plugin.yaml")
    spec = importlib.util.spec_from_file_location(f"ril_dash_custom_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PluginError(f"{label}: the custom-objects file {path.name} failed "
                          f"({type(exc).__name__}: {short(exc)}); fix it and publish a new "
                          f"version") from exc
    return dict(getattr(module, "CUSTOM_OBJECTS", {}) or {})


def serve_connection(worker: Worker, conn, stop: threading.Event) -> None:
    with conn:
        while not stop.is_set():
            try:
                op, kwargs = conn.recv()
            except (EOFError, OSError):
                return
            worker.mark_busy(+1)
            try:
                if op == "shutdown":
                    conn.send(("ok", None))
                    stop.set()
                    return
                try:
                    reply = ("ok", worker.handle(op, kwargs))
                except (PluginError, ModelRunError) as exc:
                    reply = ("error", type(exc).__name__, str(exc))
                except Exception as exc:  # keep serving; the client reports it
                    reply = ("error", type(exc).__name__, short(exc))
                try:
                    conn.send(reply)
                except (OSError, ValueError):
                    return
            finally:
                worker.mark_busy(-1)


def idle_watch(worker: Worker, idle_s: float, stop: threading.Event) -> None:
    while not stop.wait(min(5.0, idle_s / 4)):
        if worker.busy == 0 and time.monotonic() - worker.last_request > idle_s:
            stop.set()


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        print(f"ignoring {name}={raw!r}: not a number; using {default}", file=sys.stderr)
        return default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ril_dash.models.worker",
                                     description="ril_dash model worker (spawned by servers)")
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument("--authkey-file", required=True, help="file holding the shared key")
    args = parser.parse_args(argv)
    authkey = Path(args.authkey_file).read_bytes()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    problem = keras_version_problem(keras.__version__)
    if problem:
        print(problem, file=sys.stderr, flush=True)
        return 3
    worker = Worker(int(env_number("RIL_DASH_MODEL_CACHE_MB", 2048) * 1024**2))
    stop = threading.Event()
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    listener = Listener(args.socket, family="AF_UNIX", authkey=authkey)
    os.chmod(args.socket, 0o600)
    worker.ready_s = round(time.time() - process_start_time(), 2)
    threading.Thread(target=idle_watch, daemon=True,
                     args=(worker, env_number("RIL_DASH_WORKER_IDLE_S", 1800), stop)).start()
    threading.Thread(target=accept_loop, args=(worker, listener, stop), daemon=True).start()
    stop.wait()
    try:
        os.unlink(args.socket)
    except OSError:
        pass
    # daemon threads may sit in TensorFlow; leave without waiting for them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def accept_loop(worker: Worker, listener, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn = listener.accept()
        except Exception:  # a client that failed the handshake, or a closed listener
            continue
        threading.Thread(target=serve_connection, args=(worker, conn, stop), daemon=True).start()


def process_start_time() -> float:
    import psutil

    return psutil.Process().create_time()


if __name__ == "__main__":
    sys.exit(main())
