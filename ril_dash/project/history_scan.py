"""Cheap scans of an annotation root (split out of :mod:`ril_dash.project.history`)."""

from __future__ import annotations

import os
from pathlib import Path

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


