"""The identity of a project: a random id kept in its job folder, the same for every process
and machine that opens the same folder.

A job sent to another machine carries this id with the job's id; the worker there compares it
with the id of the folder it was started on, so a worker pointed at another project, or at a
stale copy of this one, refuses the job instead of writing somewhere else. The id also names
the project's queues on a shared job broker.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> first = project_identity(folder)
>>> project_identity(folder) == first, len(first)
(True, 32)
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from filelock import FileLock

from ril_dash.core.atomic_io import atomic_write_text, private_dir
from ril_dash.errors import StorageError
from ril_dash.jobs.store import FOLDER

__all__ = ["IDENTITY_FILE", "project_identity"]

IDENTITY_FILE = "project-id"
_ID = re.compile(r"[0-9a-f]{32}")


def project_identity(project_dir: str | os.PathLike) -> str:
    """The id of the project in ``project_dir`` (made on first use: 32 hex digits)."""
    folder = Path(project_dir) / FOLDER
    path = folder / IDENTITY_FILE
    found = _read(path)
    if found:
        return found
    if not folder.is_dir():
        private_dir(folder)
    with FileLock(str(folder / ".lock"), timeout=30, mode=0o600):
        found = _read(path)  # another process may have made it meanwhile
        if not found:
            found = uuid.uuid4().hex
            atomic_write_text(path, found + "\n")
    return found


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"the project id in {path} cannot be read ({exc}); remove the file "
                           f"and start again (workers then need a restart too)") from None
    if not _ID.fullmatch(text):
        raise StorageError(f"{path} does not hold a project id; remove it and start the server "
                           f"again (workers then need a restart too)")
    return text
