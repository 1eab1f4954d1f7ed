"""Checks a model file passes before any Keras code reads it (no tensorflow or keras import).

Model files are untrusted input: a ``.keras`` archive or a legacy ``.h5`` file can name Python
code to run on load (Keras CVE-2024-3660, CVE-2025-1550, CVE-2025-9905, CVE-2026-1462). The
worker loads a file only after

1. :func:`require_sha256`: the file is byte for byte the one the manifest recorded, and
2. :func:`scan_model_file`: every object its model config names is a plain Keras built-in from an
   allow-list: no ``Lambda`` (pickled Python), no ``TFSMLayer`` (loads a SavedModel from a path),
   no class from a module outside Keras, no custom object (a ``registered_name`` such as
   ``"my_package>MyLayer"``); a ``.keras`` archive holds nothing beyond ``config.json``,
   ``metadata.json``, ``model.weights.h5`` and ``assets/``; no HDF5 file (the ``.h5`` model or
   the archive's weights) holds external links, external-storage or virtual datasets.

Only an admin's trust of that exact file (by hash) lets a model skip the scan. The compile
configuration (optimizer, loss, metrics) is not scanned: the worker loads with ``compile=False``,
so Keras never deserialises it.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from ril_dash.errors import PluginError

TRUST_HINT = "ask an admin to trust this exact version (by its hash) if you know where it came from"

#: Archive members a plain ``.keras`` file holds (``assets/...`` is allowed too).
KERAS_ARCHIVE_FILES = frozenset({"config.json", "metadata.json", "model.weights.h5"})
MAX_CONFIG_BYTES = 64 * 1024**2
MAX_WEIGHTS_BYTES = 4 * 1024**3

#: Classes that load code or files: refused with a specific explanation.
REFUSED_CLASSES = {
    "Lambda": ("a Lambda layer", "it stores Python code",
               "rebuild the model without Lambda layers (built-in layers such as Rescaling, "
               "Activation or Add do the usual jobs)"),
    "TFSMLayer": ("a TFSMLayer", "it loads a TensorFlow SavedModel from a path",
                  "export the whole model as a plain .keras file"),
    "__lambda__": ("a serialised Python function", "it is code",
                   "rebuild the model with built-in functions only"),
}

#: Serialisation markers of plain values (tensors, shapes, tuples), not classes.
VALUE_MARKERS = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__tuple__",
                           "__bytes__", "__slice__", "__ellipsis__"})

#: Keras modules whose built-ins may appear (``module`` in a Keras 3 config).
KERAS_MODULES = frozenset({
    "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
    "keras.activations", "keras.models", "keras.src.models.functional",
    "keras.src.models.sequential", "keras.src.models.model", "keras.dtype_policies",
    "keras.src.dtype_policies.dtype_policy",
})

MODEL_CLASSES = {"Functional", "Sequential", "Model"}
POLICY_CLASSES = {"DTypePolicy", "FloatDTypePolicy", "DTypePolicyMap"}
INITIALIZER_CLASSES = {
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "Zeros", "STFT",
}
REGULARIZER_CLASSES = {"L1", "L2", "L1L2", "OrthogonalRegularizer"}
CONSTRAINT_CLASSES = {"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"}
LAYER_CLASSES = {
    "InputLayer", "Dense", "EinsumDense", "Embedding", "Identity", "Masking",
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "RMSNormalization", "SpectralNormalization",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
    "GaussianNoise", "AlphaDropout", "ActivityRegularization",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "Flatten", "Reshape", "Permute", "RepeatVector",
    "Rescaling", "Normalization", "Resizing", "CenterCrop",
    "MultiHeadAttention", "Attention", "AdditiveAttention",
    "LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell", "SimpleRNNCell", "Bidirectional",
    "TimeDistributed", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
}
ALLOWED_CLASSES = frozenset(MODEL_CLASSES | POLICY_CLASSES | INITIALIZER_CLASSES
                            | REGULARIZER_CLASSES | CONSTRAINT_CLASSES | LAYER_CLASSES)
#: Keras 3 serialises a built-in function (an activation) as class "function" of keras.activations.
FUNCTION_MODULES = frozenset({"keras.activations"})


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"abc")
    >>> file_sha256(f.name)[:16]
    'ba7816bf8f01cfea'
    >>> os.unlink(f.name)
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_sha256(path: str | Path, expected: str, label: str) -> None:
    """Refuse a missing model file or one whose hash differs from the recorded one."""
    path = Path(path)
    if not path.is_file():
        raise PluginError(f"{label}: the model file {path} is missing; put the bundle's model file "
                          f"back, or publish a new version of the bundle")
    actual = file_sha256(path)
    if actual != expected.lower():
        raise PluginError(
            f"{label}: the model file {path.name} has sha256 {actual}, but the manifest records "
            f"{expected}: the file was replaced or altered after the version was published. "
            f"Restore the original file, or publish the new file as a new version with its hash")


def scan_model_file(path: str | Path, label: str | None = None) -> None:
    """Raise :class:`PluginError` unless the model file passes the allow-list scan."""
    path = Path(path)
    label = label or path.name
    suffix = path.suffix.lower()
    if suffix == ".keras":
        _scan_keras_archive(path, label)
    elif suffix in (".h5", ".hdf5"):
        import h5py

        try:
            handle = h5py.File(path, "r")
        except OSError as exc:
            raise PluginError(f"{label}: {path.name} is not a readable HDF5 file ({exc}); "
                              f"save the model again with model.save('model.keras')") from exc
        with handle:
            _scan_hdf5(handle, label, path.name)
            raw = handle.attrs.get("model_config")
            if raw is None:
                raise PluginError(f"{label}: {path.name} holds weights only, no model; save the "
                                  f"full model with model.save('model.keras')")
            _scan_config_text(raw, label, f"{path.name} (model_config)")
    else:
        raise PluginError(f"{label}: {path.name} is not a Keras model file; use a .keras file "
                          f"(preferred) or a legacy full-model .h5 file")


def _scan_keras_archive(path: Path, label: str) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PluginError(f"{label}: {path.name} is not a valid .keras archive ({exc}); save the "
                          f"model again with model.save('model.keras')") from exc
    with archive:
        names = [info.filename for info in archive.infolist()]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise PluginError(f"{label}: {path.name} holds {', '.join(twice)} more than once "
                              f"(a tampered archive); save the model again with "
                              f"model.save('model.keras')")
        infos = {info.filename: info for info in archive.infolist()}
        unknown = sorted(name for name in infos
                         if name not in KERAS_ARCHIVE_FILES and not name.startswith("assets/"))
        if unknown:
            raise PluginError(
                f"{label}: {path.name} holds entries a plain Keras model does not have: "
                f"{', '.join(unknown[:5])}; save the model again with model.save('model.keras'), "
                f"or {TRUST_HINT}")
        if "config.json" not in infos:
            raise PluginError(f"{label}: {path.name} has no config.json; save the model again "
                              f"with model.save('model.keras')")
        if infos["config.json"].file_size > MAX_CONFIG_BYTES:
            raise PluginError(f"{label}: the config.json of {path.name} is over "
                              f"{MAX_CONFIG_BYTES // 1024**2} MiB; this is not a plain model")
        _scan_config_text(archive.read("config.json"), label, f"{path.name} (config.json)")
        weights = infos.get("model.weights.h5")
        if weights is not None:
            if weights.file_size > MAX_WEIGHTS_BYTES:
                raise PluginError(f"{label}: the weights of {path.name} unpack to over "
                                  f"{MAX_WEIGHTS_BYTES // 1024**3} GiB; refused")
            import h5py

            # read in place (Keras stores the weights uncompressed, so seeking is cheap)
            with archive.open(weights) as member, h5py.File(member, "r") as handle:
                _scan_hdf5(handle, label, f"{path.name} (model.weights.h5)")


def _scan_hdf5(handle, label: str, where: str) -> None:
    """Refuse external links, external-storage datasets and virtual datasets anywhere."""
    import h5py

    problems: list[str] = []

    def visit(name, link):
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"an external link '{name}' to {link.filename}:{link.path}")
            return None
        if isinstance(link, h5py.HardLink):
            obj = handle.get(name)
            if isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    problems.append(f"a virtual dataset '{name}'")
                elif obj.id.get_create_plist().get_external_count() > 0:
                    problems.append(f"a dataset '{name}' stored in an external file")
        return None

    handle.visititems_links(visit)
    if problems:
        raise PluginError(
            f"{label}: {where} holds {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            + "; a model file must be self-contained: save the model again with "
              "model.save('model.keras')")


def _scan_config_text(raw, label: str, where: str) -> None:
    try:
        config = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"{label}: the model config in {where} is not valid JSON ({exc}); "
                          f"save the model again with model.save('model.keras')") from exc
    problem = config_problem(config)
    if problem:
        raise PluginError(f"{label}: {where} contains {problem}")


def config_problem(config, path: str = "") -> str | None:
    """The first object in a Keras model config that is not an allowed built-in, described with
    what to do about it; None when the whole config is allowed.

    >>> config_problem({"class_name": "Dense", "module": "keras.layers", "config": {}})
    >>> print(config_problem({"class_name": "Evil", "module": "os", "config": {}}))
    class Evil of module os at the model config (only Keras built-ins are loaded); ...
    """
    if isinstance(config, list):
        for index, item in enumerate(config):
            found = config_problem(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if not isinstance(config, dict):
        return None
    if "class_name" in config:
        found = _object_problem(config, path or "the model config")
        if found:
            return found
    for key, value in config.items():
        if key == "compile_config":
            continue  # never deserialised: the worker loads with compile=False
        found = config_problem(value, f"{path}.{key}" if path else key)
        if found:
            return found
    return None


def _object_problem(obj: dict, where: str) -> str | None:
    class_name = obj.get("class_name")
    module = obj.get("module")
    registered = obj.get("registered_name")
    inner = obj.get("config")
    name = obj.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
    at = f"'{name}'" if isinstance(name, str) else where
    if not isinstance(class_name, str):
        return f"an object at {where} whose class name is not text; {TRUST_HINT}"
    if class_name in REFUSED_CLASSES:
        what, why, todo = REFUSED_CLASSES[class_name]
        return f"{what} {at} ({why}); {todo}, or {TRUST_HINT}"
    if class_name in VALUE_MARKERS:
        return None
    if isinstance(registered, str) and ">" in registered:
        return (f"a custom object {registered} ({at}), whose code would run on load; rebuild "
                f"the model from Keras built-ins, or {TRUST_HINT}")
    if module is not None and module not in KERAS_MODULES:
        return (f"class {class_name} of module {module} at {at} (only Keras built-ins are "
                f"loaded); rebuild the model from Keras built-ins, or {TRUST_HINT}")
    if class_name == "function":
        if module in FUNCTION_MODULES:
            return None
        return f"a function reference at {at} outside keras.activations; {TRUST_HINT}"
    if class_name not in ALLOWED_CLASSES:
        return (f"class {class_name} at {at}, which is not on ril_dash's list of Keras built-ins "
                f"it loads unchecked; rebuild the model from common Keras layers, or {TRUST_HINT}")
    if isinstance(registered, str) and registered not in (class_name, ""):
        return f"class {class_name} registered as {registered} at {at}; {TRUST_HINT}"
    return None
