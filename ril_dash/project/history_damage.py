"""Damaged version files of a series' annotation history: what is damaged, and setting the
files aside when an admin repairs the series (see
:meth:`ril_dash.project.series_annotations.SeriesAnnotations.repair`).

A version file that exists but cannot be read (:class:`~ril_dash.project.history.
UnreadableVersion`) makes its series read-only as of the version before it. Repairing keeps the
damaged file and the versions after it (which build on it) beside the others as
``<name>.npz.damaged`` and saves a version with op :data:`REPAIR` equal to the last readable
one.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from ril_dash.errors import DamagedAnnotations

REPAIR = "repair"  # the op of a version that rolls forward past damaged version files
DAMAGED_SUFFIX = ".damaged"


@dataclass(frozen=True)
class Damage:
    """The first version file of a series that cannot be read: the series is read-only as of
    ``version - 1``. ``file`` is relative to the annotation store's root; ``newest`` is the
    newest version file present (the versions after ``version`` build on it and cannot be
    applied either)."""

    series: str
    version: int
    file: str
    reason: str
    newest: int

    @property
    def readable_version(self) -> int:
        return self.version - 1

    def message(self) -> str:
        """What is wrong and what to do, for users and admins."""
        later = (f" Versions {self.version + 1}–{self.newest}, which build on it, cannot be "
                 f"shown either." if self.newest > self.version else "")
        return (f"The annotation file {self.file} of {self.series} is damaged ({self.reason}). "
                f"The series is shown as of version {self.readable_version}, the last readable "
                f"one, and cannot be changed.{later} An admin can repair it: Repair in the "
                f"viewer, or on the server: ril-dash repair PROJECT_DIR {self.series}  (this "
                f"saves a new version equal to version {self.readable_version} and keeps the "
                f"damaged file beside it as *{DAMAGED_SUFFIX}).")

    def error(self) -> DamagedAnnotations:
        return DamagedAnnotations(self.message(), file=self.file, version=self.version)

    def as_json(self) -> dict:
        return {"file": self.file, "version": self.version, "reason": self.reason,
                "readable_version": self.readable_version, "newest": self.newest,
                "message": self.message()}


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.damaged`` (``.damaged-2``... if taken); never replaces."""
    for n in range(1, 1000):
        target = path.with_name(path.name + DAMAGED_SUFFIX + ("" if n == 1 else f"-{n}"))
        try:
            os.link(path, target)
        except FileExistsError:
            continue
        path.unlink()
        return target
    raise OSError(errno.EEXIST, f"too many set-aside copies of {path.name}")
