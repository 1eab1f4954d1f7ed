"""Atomic file writes: temp file in the same folder, flush + fsync, ``os.replace``, fsync folder.

A reader never sees a half-written file, and a crash leaves either the old or the new content.
The temp file keeps the real extension so format-sniffing libraries (nibabel) still work.

Files written here are private to the service user (mode 0600: the temp file is created so,
whatever the umask): project files hold annotations, secrets and logs. :func:`open_private`
and :func:`private_dir` do the same for files appended to and for folders (0700).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: mode of the files and folders of a project that hold annotations, secrets or logs
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def _narrow(fd_or_path, info: os.stat_result, mode: int) -> None:
    """Take group and other rights away from a file or folder of ours that has them."""
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        os.chmod(fd_or_path, mode)


def open_private(path: str | os.PathLike, flags: int) -> int:
    """``os.open`` a file (created if missing) with mode 0600; an existing file of ours with
    wider rights (from an older version) is narrowed. Returns the descriptor.

    Examples
    --------
    >>> path = Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> with open(open_private(path, os.O_WRONLY | os.O_APPEND), "ab") as fh:
    ...     _ = fh.write(b"x")
    >>> oct(path.stat().st_mode & 0o777)
    '0o600'
    """
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    try:
        _narrow(fd, os.fstat(fd), PRIVATE_FILE)
    except OSError:
        os.close(fd)
        raise
    return fd


def private_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and missing parents) and make it 0700 if it is ours; return it.

    Examples
    --------
    >>> folder = private_dir(Path(tempfile.mkdtemp()) / "a" / "b")
    >>> oct(folder.stat().st_mode & 0o777)
    '0o700'
    """
    folder = Path(folder)
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _narrow(folder, folder.stat(), PRIVATE_DIR)
    return folder


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
    ``tag`` goes into its name (so a writer can find its own leftovers after a crash). The
    file is created empty with mode 0600.

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
    try:
        os.fchmod(fd, PRIVATE_FILE)  # mkstemp's mode today; stated, as privacy depends on it
    finally:
        os.close(fd)
    return Path(name)


def commit_temp(temp: str | os.PathLike, path: str | os.PathLike) -> None:
    """fsync ``temp``, move it over ``path`` and fsync the folder."""
    with open(temp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(temp, path)
    fsync_dir(Path(path).parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (creating parent folders), mode 0600.

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
