"""Cheap scans of an annotation root (split out of :mod:`ril_dash.project.history`)."""

from __future__ import annotations

import os
from pathlib import Path

from ril_dash.core.atomic_io import open_private

SUFFIX = ".ril"


def annotated_series(root: str | os.PathLike) -> set[str]:
    """Ids of the series under ``root`` that have at least one version (a cheap folder scan).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "P1" / "a.nii.gz.ril" / "v").mkdir(parents=True)
    >>> _ = (root / "P1" / "a.nii.gz.ril" / "v" / "00000001.npz").write_bytes(b"")
    >>> annotated_series(root)
    {'P1/a.nii.gz'}
    """
    root = Path(root)
    found: set[str] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if not e.is_dir(follow_symlinks=False):
                continue
            if e.name.endswith(SUFFIX):
                if os.path.exists(os.path.join(e.path, "v", "00000001.npz")):
                    rel = Path(e.path).relative_to(root).as_posix()
                    found.add(rel[: -len(SUFFIX)])
            else:
                stack.append(Path(e.path))
    return found




SUMMARY = "summary.json"


def write_summary(folder: Path, version: int, texts: dict, rois: list[int],
                  workflow: dict | None = None) -> None:
    """Write the series' small summary (latest version, text values, ROIs present, workflow
    state ``{"pool", "owner"}`` or None) for the project viewer and the workflow board. It is
    derived data: replaced atomically but not fsynced, and a reader ignores a summary older than
    the latest version."""
    import json

    tmp = folder / f".{SUMMARY}.{os.getpid()}.tmp"
    with open(open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"version": version, "texts": texts, "rois": sorted(rois),
                             "workflow": workflow}))
    os.replace(tmp, folder / SUMMARY)


def read_summaries(root: str | os.PathLike,
                   series_ids: set[str] | None = None) -> dict[str, dict]:
    """``{series id: {"version", "texts", "rois", "workflow"}}`` for the annotated series under ``root``
    whose summary is current (series without one are left out); ``series_ids`` saves the
    folder scan when the caller already has :func:`annotated_series`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> folder = root / "P1" / "a.nii.gz.ril"; (folder / "v").mkdir(parents=True)
    >>> _ = (folder / "v" / "00000001.npz").write_bytes(b"")
    >>> write_summary(folder, 1, {"Phase": "arterial"}, [2, 1], {"pool": "a", "owner": "ana"})
    >>> read_summaries(root)["P1/a.nii.gz"]  # doctest: +NORMALIZE_WHITESPACE
    {'version': 1, 'texts': {'Phase': 'arterial'}, 'rois': [1, 2],
     'workflow': {'pool': 'a', 'owner': 'ana'}}
    """
    import json

    root = Path(root)
    out = {}
    for series_id in annotated_series(root) if series_ids is None else series_ids:
        folder = root / (series_id + SUFFIX)
        try:
            summary = json.loads((folder / SUMMARY).read_text())
            newer = folder / "v" / f"{int(summary['version']) + 1:08d}.npz"
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not newer.exists():
            out[series_id] = summary
    return out
