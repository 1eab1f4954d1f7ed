"""Atomic file writes: temp file in the same folder, flush + fsync, ``os.replace``, fsync folder.

A reader never sees a half-written file, and a crash leaves either the old or the new content.
The temp file keeps the real extension so format-sniffing libraries (nibabel) still work.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (a new or renamed file in it) to disk, where the platform can."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(path: str | os.PathLike, tag: str = "") -> Path:
    """Return a fresh temp path beside ``path`` that keeps its full suffix (e.g. ``.nii.gz``);
    ``tag`` goes into its name (so a writer can find its own leftovers after a crash).

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> p = temp_path_for(folder / "mask.nii.gz", tag="partial-")
    >>> p.name.startswith(".mask.partial-") and p.name.endswith(".nii.gz") and p.parent == folder
    True
    """
    path = Path(path)
    suffix = "".join(path.suffixes) or ".tmp"
    stem = path.name[: len(path.name) - len(suffix)] if path.suffixes else path.name
    fd, name = tempfile.mkstemp(prefix=f".{stem}.{tag}", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def commit_temp(temp: str | os.PathLike, path: str | os.PathLike) -> None:
    """fsync ``temp``, move it over ``path`` and fsync the folder."""
    with open(temp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(temp, path)
    fsync_dir(Path(path).parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (creating parent folders).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_bytes(d / "a" / "f.txt", b"hi")
    >>> (d / "a" / "f.txt").read_bytes()
    b'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    try:
        with open(temp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
