"""The annotation store: append-only, durable, compare-and-swap versions of each series' masks.

The annotations of a series are one unsigned-integer *bits* array in canonical (X, Y, Z) order
(bit ``b`` set = the voxel belongs to ROI slot ``b``), a slot table ``{mask_value: bit}``, point
annotations ``{mask_value: [[x, y, z], ...]}``, per-series text values ``{field: value}`` and
per-slice provenance. Each change is one
version file holding only the bounding box of the change (see :mod:`ril_dash.project.history`
for the layout); every ``checkpoint_every`` versions a sparse checkpoint bounds loading time.

A series may also carry a workflow state (``{"pool", "owner"}``), set only by *transition*
versions (:meth:`SeriesAnnotations.commit_transition`), which change nothing else, are not
undoable and are never reverted by undo, redo or rollback. Every write takes an optional
``guard``, called under the lock with the current workflow state before anything is written,
so a right to write (e.g. "holds the series") is checked atomically with the write. The rules
themselves live in :mod:`ril_dash.project.workflow_state`.

The series ``P1/ST1/arterial.nii.gz`` lives in ``<root>/P1/ST1/arterial.nii.gz.ril/``. Commits
run under a :class:`filelock.FileLock` of that folder, check that their parent is the latest
version (:class:`~ril_dash.errors.VersionConflict` otherwise) and publish with ``os.link`` so a
version is never overwritten. Undo, redo and rollback are new versions derived from the log, so
they survive page reloads and server restarts.

A version file that cannot be read (a disk fault, a truncated copy) does not make the series
unusable: it opens as of the last readable version, read-only (:attr:`SeriesAnnotations.damage`
says which file; every write raises :class:`~ril_dash.errors.DamagedAnnotations`), until an
admin repairs it (:meth:`SeriesAnnotations.repair`: roll forward from the last readable version,
keeping the damaged files aside). Each access checks the newest version file this object has
applied (and the damaged one) against its ``stat``, so a process that cached a series notices
a file damaged or repaired by anyone else and agrees with a process that opens it afresh.

Here: the store of a project (:class:`AnnotationStore`); the versions of one series are
:mod:`ril_dash.project.series_annotations`, the states and history lines they hand out
:mod:`ril_dash.project.annotation_state`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ril_dash.errors import SeriesNotFound
from ril_dash.project.annotation_state import AnnotationState, Guard, VersionInfo
from ril_dash.project.checked_paths import CheckedPaths
from ril_dash.project.history import SUFFIX, annotated_series
from ril_dash.project.history_damage import Damage
from ril_dash.project.series_annotations import SeriesAnnotations

__all__ = ["AnnotationState", "AnnotationStore", "Damage", "Guard", "SeriesAnnotations",
           "VersionInfo", "annotated_series"]


class AnnotationStore:
    """All annotations of a project, under ``root`` (nothing is ever written outside it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> store = AnnotationStore(pathlib.Path(tempfile.mkdtemp()))
    >>> s = store.series("P1/ST1/arterial.nii.gz", (4, 4, 2))
    >>> s.folder.relative_to(store.root).as_posix(), s.has_annotations
    ('P1/ST1/arterial.nii.gz.ril', False)
    """

    def __init__(self, root: str | os.PathLike, *, checkpoint_every: int = 100,
                 lock_timeout: float = 30.0, background_checkpoints: bool = False) -> None:
        self.root = Path(root)
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.background_checkpoints = background_checkpoints
        self.lock_timeout = lock_timeout
        self._series: dict[str, SeriesAnnotations] = {}
        #: series id → ((shape, frames), store shape) of 4D series (see ril_dash.project.frames)
        self.frame_layouts: dict[str, tuple] = {}
        self._mutex = threading.Lock()
        #: the folders found inside ``root`` (device, inode), not resolved again while unchanged
        self._checked = CheckedPaths()

    def folder_for(self, series_id: str) -> Path:
        """The annotation folder of ``series_id``; refuses ids that could leave ``root``.

        Resolving the whole path (a request asks several times) is skipped while the path
        still leads to the folder (device, inode) that was found inside ``root`` last time: a
        folder swapped for a link since leads to another one, which is checked again."""
        parts = series_id.split("/")
        if (not series_id or "\\" in series_id or "\0" in series_id or series_id.startswith("/")
                or os.path.isabs(series_id) or any(p in ("", ".", "..") for p in parts)
                or ".." in series_id):
            raise SeriesNotFound(f"{series_id!r} is not a valid series id")
        folder = self.root / (series_id + SUFFIX)

        def check() -> None:
            if not folder.resolve().is_relative_to(self.root.resolve()):
                raise SeriesNotFound(f"series {series_id!r} resolves outside the annotation "
                                     "store")

        self._checked.ensure(series_id, folder, check)
        return folder

    def series(self, series_id: str, shape: tuple[int, int, int]) -> SeriesAnnotations:
        """The (cached, shared between threads) annotations of one series of shape X×Y×Z."""
        shape = tuple(int(n) for n in shape)
        folder = self.folder_for(series_id)  # checked at each use: a folder swapped for a link
        with self._mutex:
            s = self._series.get(series_id)
            if s is None or s.shape != shape:
                s = SeriesAnnotations(folder, shape, self.checkpoint_every,
                                      self.lock_timeout, series_id)
                s.background_checkpoints = self.background_checkpoints
                self._series[series_id] = s
            return s
