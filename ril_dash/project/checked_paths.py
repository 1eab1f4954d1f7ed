"""Containment checks that are not repeated while a path still leads to what passed them.

Resolving every folder of a path to check that it stays inside a root (the images folder, the
annotation store) costs a system call per folder, and a request asks for the same paths many
times. :class:`CheckedPaths` remembers the identity of the file or folder (device, inode and,
if asked, the change time) that passed the check under a key, and runs the check again only
when the path now leads to something else: a file or folder swapped for a symbolic link since
leads to another one, and is checked again. A path that does not exist is checked every time.
"""

from __future__ import annotations

import os
from collections.abc import Callable


class CheckedPaths:
    """Keys (series ids) → identity of what passed the check last time."""

    def __init__(self, *, with_ctime: bool = False) -> None:
        self.with_ctime = with_ctime
        self._passed: dict[str, tuple] = {}

    def ensure(self, key: str, path: str | os.PathLike, check: Callable[[], object],
               context: tuple = ()) -> None:
        """Run ``check`` (which raises when ``path`` is outside) unless ``path`` still leads to
        what passed it under ``key`` (and the same ``context``) last time."""
        try:
            st = os.stat(path)
        except OSError:  # not there (yet)
            check()
            return
        identity = (*context, st.st_dev, st.st_ino, st.st_ctime_ns if self.with_ctime else None)
        if self._passed.get(key) != identity:
            check()
            self._passed[key] = identity
