"""The uncertainty scores of one model version, kept in the project.

One small JSON file per model version: ``PROJECT/.models/uncertainty/<id>@<version>.json``::

    {"model": "liver-seg@1.0.0", "sha256": "…", "method": "mean normalised entropy …",
     "series": {"P1/ct.nii.gz": {"score": 0.21, "voxels": 5120, "time": "…", "job": "…"}}}

A score belongs to the model file it was made with: scores of another sha256 (the version's
file replaced) are not read. Writing merges into what is on disk under a file lock, then
replaces the file atomically, so two jobs of the same model on other series keep each other's
scores and a reader never sees half a file.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from ril_dash.core.atomic_io import atomic_write_text, private_dir
from ril_dash.errors import StorageError
from ril_dash.models.registry import STATE_DIR

__all__ = ["UNCERTAINTY_DIR", "read_scores", "scores_path", "write_scores"]

UNCERTAINTY_DIR = "uncertainty"
_SAFE = re.compile(r"[^A-Za-z0-9._@-]")


def scores_path(project_dir: str | Path, model_ref: str) -> Path:
    """The scores file of ``model_ref`` (``id@version``) in the project."""
    return Path(project_dir) / STATE_DIR / UNCERTAINTY_DIR / (_SAFE.sub("_", model_ref)
                                                              + ".json")


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read the uncertainty scores {path.name}: {exc}; delete the "
                           "file and score the series again.") from exc
    return data if isinstance(data, dict) else {}


def read_scores(project_dir: str | Path, model_ref: str, sha256: str | None = None
                ) -> dict[str, float]:
    """``{series: score}`` of ``model_ref`` (empty when none were made, or when they were made
    with another model file than ``sha256``)."""
    data = _load(scores_path(project_dir, model_ref))
    if sha256 is not None and data.get("sha256") not in (None, sha256):
        return {}
    series = data.get("series") or {}
    return {str(s): float(v["score"]) for s, v in series.items()
            if isinstance(v, dict) and isinstance(v.get("score"), (int, float))}


def write_scores(project_dir: str | Path, model_ref: str, sha256: str, method: str,
                 scores: dict[str, dict]) -> Path:
    """Merge ``{series: {"score", "voxels", "job"}}`` into the model's scores file."""
    path = scores_path(project_dir, model_ref)
    private_dir(path.parent)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with FileLock(str(path) + ".lock", timeout=30):
        data = _load(path)
        if data.get("sha256") != sha256 or data.get("method") != method:
            data = {}  # another model file or method: the old scores no longer apply
        series = data.get("series") or {}
        for sid, entry in scores.items():
            series[sid] = {**entry, "time": now}
        data = {"model": model_ref, "sha256": sha256, "method": method, "series": series}
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    return path
