"""Helpers that write model bundles for the tests: a manifest and a model file whose sha256
matches it (the bytes are not a real model: nothing here loads them)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ril_dash.models.manifest import EXAMPLE

MODEL_BYTES = b"not a real keras file, but bytes with a known sha256"
SHA = hashlib.sha256(MODEL_BYTES).hexdigest()
EXAMPLE_SHA = "3f1c5b6e0c2f4a1d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e"


def manifest_text(model_id: str = "kidney-seg", version: str = "1.0.0", *,
                  sha: str = SHA) -> str:
    """The README's example with another id, version and sha256."""
    return (EXAMPLE.replace("id: kidney-seg", f"id: {model_id}")
            .replace("version: 1.0.0", f"version: {version}").replace(EXAMPLE_SHA, sha))


def write_bundle(root: Path, model_id: str = "kidney-seg", version: str = "1.0.0", *,
                 folder: tuple[str, str] | None = None, model: bytes = MODEL_BYTES,
                 sha: str = SHA) -> Path:
    """Write ``root/<id>/<version>/`` (or the ``folder`` names given) and return it."""
    path = root.joinpath(*(folder or (model_id, version)))
    path.mkdir(parents=True)
    (path / "plugin.yaml").write_text(manifest_text(model_id, version, sha=sha))
    (path / "model.keras").write_bytes(model)
    return path
