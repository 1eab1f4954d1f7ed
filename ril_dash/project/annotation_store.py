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
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import fsync_dir, private_dir
from ril_dash.core.overlay import present_bits
from ril_dash.core.slice_unions import SliceUnions
from ril_dash.errors import SeriesNotFound, StorageError, VersionConflict
from ril_dash.project.checked_paths import CheckedPaths
from ril_dash.project.history import (
    SUFFIX,
    TRANSITION,
    History,
    Points,
    SlotTable,
    Texts,
    UnreadableVersion,
    VersionRecord,
    annotated_series,
    build_record,
    checkpoint_quietly,
    clean_strays,
    copy_texts,
    list_versions,
    read_version,
    replay,
    rollback_changes,
    version_name,
    write_version,
)
from ril_dash.project.history_damage import REPAIR, Damage, set_aside
from ril_dash.project.history_scan import write_summary

__all__ = ["AnnotationState", "AnnotationStore", "Damage", "Guard", "SeriesAnnotations",
           "VersionInfo", "annotated_series"]
PROVENANCE_KINDS = ("manual", "semi-auto", "model", "import")
#: called under the series lock with the current workflow state (``{"pool", "owner"}`` or None);
#: raising refuses the write (nothing is written, the exception propagates)
Guard = Callable[[dict | None], None]


class DeltaLike(Protocol):
    """What :meth:`SeriesAnnotations.commit` needs of a change (``ril_dash.core.paint.Delta``)."""

    box: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    before: np.ndarray
    after: np.ndarray


@dataclass(frozen=True)
class AnnotationState:
    """A series' annotations at ``version``.

    ``bits`` from :meth:`SeriesAnnotations.load` is a read-only view of the cached array, which
    later commits through the same object update in place: copy it to keep a snapshot.
    ``provenance`` maps ``(plane, index)`` to ``{"kind", "model", "version", "roi"}``;
    ``texts`` maps text field names to their values (see :mod:`ril_dash.project.text_values`);
    ``workflow`` is the workflow state ``{"pool", "owner"}`` (None: never transitioned).
    ``unions`` (states of :meth:`SeriesAnnotations.load`) knows which ROI bits each slice of
    the cached array holds (:mod:`ril_dash.core.slice_unions`).
    """

    bits: np.ndarray
    slots: SlotTable
    points: Points
    version: int
    provenance: dict[tuple[str, int], dict]
    texts: Texts = field(default_factory=dict)
    workflow: dict | None = None
    unions: SliceUnions | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class VersionInfo:
    """One line of the history (:meth:`SeriesAnnotations.versions`); ``label`` describes a
    transition (e.g. ``"assign analysts → reviewers by ana"``), None for other ops; ``frame``
    is the frame an edit of a 4D series with masks per frame was made on (None: other)."""

    id: int
    parent: int
    user: str
    time: str
    op: str
    tool: str | None
    roi: int | None
    target: int | None
    kind: str | None
    model: str | None
    label: str | None = None
    frame: int | None = None


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _copy(workflow: dict | None) -> dict | None:
    return None if workflow is None else dict(workflow)


def _state(hist: History, *, view: bool) -> AnnotationState:
    if not view:  # ``hist`` is already a private copy
        return AnnotationState(hist.bits, hist.slots, hist.points, hist.version, hist.provenance,
                               hist.texts, hist.workflow)
    bits = hist.bits.view()
    bits.flags.writeable = False
    return AnnotationState(bits, dict(hist.slots),
                           {k: [list(p) for p in v] for k, v in hist.points.items()},
                           hist.version, {k: dict(v) for k, v in hist.provenance.items()},
                           copy_texts(hist.texts), _copy(hist.workflow), hist.unions)


def _slices(box) -> tuple[slice, slice, slice]:
    return tuple(slice(a, b) for a, b in box)


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


class SeriesAnnotations:
    """The versioned annotations of one series (get it from :meth:`AnnotationStore.series`).

    Examples
    --------
    >>> import tempfile, pathlib, types
    >>> s = AnnotationStore(pathlib.Path(tempfile.mkdtemp())).series("P1/t1.nii.gz", (4, 4, 2))
    >>> box = ((0, 2), (0, 2), (1, 2))
    >>> delta = types.SimpleNamespace(box=box, before=np.zeros((2, 2, 1), np.uint8),
    ...                               after=np.ones((2, 2, 1), np.uint8))
    >>> s.commit(0, delta, {"user": "ann", "op": "paint", "roi": 1}, slots={1: 0})
    1
    >>> int(s.load().bits.sum()), s.undo("ann"), int(s.load().bits.sum()), s.redo("ann")
    (4, 2, 0, 3)
    >>> [(v.id, v.op, v.target) for v in s.versions()]
    [(3, 'redo', 1), (2, 'undo', 1), (1, 'paint', None)]
    """

    def __init__(self, folder: Path, shape: tuple[int, int, int], checkpoint_every: int = 100,
                 lock_timeout: float = 30.0, series_id: str = "") -> None:
        self.folder, self.shape, self.series_id = folder, tuple(shape), series_id
        self.checkpoint_every, self.lock_timeout = checkpoint_every, lock_timeout
        self._vdir, self._cdir = folder / "v", folder / "c"
        self.background_checkpoints = False  # write checkpoints in a thread (servers)
        self._hist: History | None = None
        self._present: set[int] | None = None  # ROI bits with voxels (for the summary)
        self._metas: dict[int, dict] = {}
        self._damage: Damage | None = None  # the first unreadable version file, if any
        self._stamp: tuple | None = None  # stat of the newest applied (and the damaged) file
        self._mutex = threading.RLock()

    # ----------------------------------------------------------------- reading
    @property
    def has_annotations(self) -> bool:
        """Whether at least one version exists (one ``stat``)."""
        return (self._vdir / version_name(1)).exists()

    @property
    def version(self) -> int:
        """The latest version known to this object (0 = nothing annotated yet)."""
        return self.load().version

    def load(self) -> AnnotationState:
        """The latest state known to this object (loaded from disk the first time).

        Commits made through this object keep it current; call :meth:`refresh` to pick up
        commits of other processes or objects.
        """
        with self._mutex:
            return _state(self._current(catch_up=False), view=True)

    def refresh(self) -> AnnotationState:
        """Pick up versions committed elsewhere (a ``stat`` when there are none) and return them."""
        with self._mutex:
            return _state(self._current(catch_up=True), view=True)

    @property
    def damage(self) -> Damage | None:
        """The first version file that cannot be read (None: all readable); while set, the
        state is that of the last readable version and every write is refused."""
        with self._mutex:
            self._current(catch_up=True)
            return self._damage

    def version_stamp(self, version: int) -> tuple | None:
        """Identity (inode, size, mtime) of the file of ``version``, to key caches of old
        states: a repair replaces a version file by another of the same number."""
        return _stat(self._vdir / version_name(version)) if version > 0 else None

    def state_at(self, version: int) -> AnnotationState:
        """The state right after ``version`` (0 = empty), as an independent copy."""
        with self._mutex:
            return _state(self._history_at(version), view=False)

    def versions(self, limit: int | None = None) -> list[VersionInfo]:
        """The history, newest first (reads only the metadata of each version file)."""
        with self._mutex:
            self._current(catch_up=False)  # forgets cached metadata a repair made stale
            ids = list_versions(self._vdir)[::-1][:limit]
            out = []
            for i in ids:
                meta = self._metas.get(i)
                if meta is None:
                    try:
                        meta = self._metas[i] = read_version(self._vdir / version_name(i),
                                                             arrays=False).meta
                    except FileNotFoundError:  # set aside by a repair meanwhile
                        continue
                    except UnreadableVersion as exc:  # listed, not fatal
                        out.append(VersionInfo(i, i - 1, "", "", "damaged", None, None, None,
                                               None, None, f"damaged file: {exc}"))
                        continue
                prov = meta.get("provenance") or {}
                out.append(VersionInfo(i, meta["parent"], meta.get("user", ""), meta["time"],
                                       meta["op"], meta.get("tool"), meta.get("roi"),
                                       meta.get("target"), prov.get("kind"), prov.get("model"),
                                       meta.get("label"), meta.get("frame")))
            return out

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` has something to undo (per the latest state known here)."""
        with self._mutex:
            return bool(self._current(catch_up=False).done)

    @property
    def can_redo(self) -> bool:
        """Whether :meth:`redo` has something to redo (per the latest state known here)."""
        with self._mutex:
            return bool(self._current(catch_up=False).undone)

    # ----------------------------------------------------------------- writing
    def commit(self, parent: int, delta: DeltaLike | None, meta: dict[str, Any],
               points: Points | None = None, slots: SlotTable | None = None,
               texts: Texts | None = None, *, guard: Guard | None = None) -> int:
        """Append one version: ``delta`` (or ``None``), new ``points``, a new slot table and/or
        new ``texts`` (the full ``{field: value}`` dict; ``None`` = unchanged).

        ``meta`` holds ``user``, ``op`` and optionally ``tool``, ``roi``, ``provenance``
        (``{"kind": "manual"|"semi-auto"|"model"|"import", "model": "name@version"}``, plus
        ``"tool"`` for semi-automatic tools, e.g. ``"snap"``: kept per slice) and
        ``slices`` (``[{"plane": "axial", "index": 12, "roi": 1}]``, the display slices touched).
        ``guard`` (see :data:`Guard`) may refuse the write under the lock.

        Returns
        -------
        int
            The new version id (``parent + 1``).

        Raises
        ------
        VersionConflict
            ``parent`` is not the latest version: someone else saved first; reload.
        StorageError
            The version could not be written (disk full, permissions); nothing was changed.
        ValueError
            A malformed delta (box outside the volume, ``before`` not the current contents).
        """
        meta = dict(meta)
        if meta.get("op") in (None, "undo", "redo", "rollback", TRANSITION) or "workflow" in meta:
            raise ValueError("commit() needs a normal 'op' and no 'workflow'; use undo(), redo(), "
                             "rollback() or commit_transition()")
        prov = dict(meta.get("provenance") or {"kind": "manual", "model": None})
        if prov.get("kind") not in PROVENANCE_KINDS:
            raise ValueError(f"provenance kind must be one of {PROVENANCE_KINDS}")
        meta["provenance"] = {"kind": prov["kind"], "model": prov.get("model"),
                              **({"tool": str(prov["tool"])} if prov.get("tool") else {})}
        box = after = None
        if delta is not None:
            box = tuple((int(a), int(b)) for a, b in delta.box)
            ext = tuple(b - a for a, b in box)
            if len(box) != 3 or any(a < 0 or b > n or a >= b for (a, b), n in zip(box, self.shape)):
                raise ValueError(f"delta box {box} is not inside the volume {self.shape}")
            after = np.asarray(delta.after)
            if after.shape != ext or np.shape(delta.before) != ext:
                raise ValueError(f"delta arrays {after.shape} do not match the box {ext}")
        with self._mutex, self._locked():
            hist = self._current(catch_up=True)
            self._check(guard, parent, hist)
            if box is not None and not np.array_equal(hist.bits[_slices(box)], delta.before):
                raise ValueError(f"delta.before does not match version {hist.version} of "
                                 f"{self.series_id or self.folder}")
            rid = hist.version + 1
            entries = [[s["plane"], int(s["index"]),
                        {**meta["provenance"], "version": rid, "roi": s.get("roi", meta.get("roi"))}]
                       for s in meta.get("slices") or ()]
            texts = None if texts is None else copy_texts(texts)
            return self._publish(hist, meta, box, after, points, slots, entries,
                                 texts=None if texts == hist.texts else texts)

    def undo(self, user: str, *, parent: int | None = None,
             guard: Guard | None = None) -> int | None:
        """Undo the latest not-yet-undone change (a new version); ``None`` if there is none."""
        with self._mutex, self._locked():
            hist = self._current(catch_up=True)
            self._check(guard, parent, hist)
            if not hist.done:
                return None
            rec = read_version(self._vdir / version_name(hist.done[-1]))
            return self._publish(hist, self._derived("undo", user, rec), rec.box, rec.before,
                                 rec.meta.get("points_before") if rec.points_changed else None,
                                 None, rec.meta.get("prov_before") or [], json_points=True,
                                 texts=rec.meta.get("texts_before") if rec.texts_changed else None)

    def redo(self, user: str, *, parent: int | None = None,
             guard: Guard | None = None) -> int | None:
        """Re-apply the latest undone change (a new version); ``None`` if there is none."""
        with self._mutex, self._locked():
            hist = self._current(catch_up=True)
            self._check(guard, parent, hist)
            if not hist.undone:
                return None
            rec = read_version(self._vdir / version_name(hist.undone[-1]))
            return self._publish(hist, self._derived("redo", user, rec), rec.box, rec.after,
                                 rec.meta.get("points_after") if rec.points_changed else None,
                                 None, rec.meta.get("prov") or [], json_points=True,
                                 texts=rec.meta.get("texts_after") if rec.texts_changed else None)

    def rollback(self, version: int, user: str, *, parent: int | None = None,
                 guard: Guard | None = None) -> int:
        """Commit a new version whose state equals that of ``version`` (nothing is deleted; the
        workflow state is left as it is)."""
        with self._mutex, self._locked():
            hist = self._current(catch_up=True)
            self._check(guard, parent, hist)
            box, after, points, texts, entries = rollback_changes(self._history_at(version), hist)
            meta = {"user": user, "op": "rollback", "target": int(version), "tool": None,
                    "roi": None, "provenance": {"kind": "manual", "model": None},
                    "slices": [{"plane": p, "index": i, "roi": None} for p, i, _ in entries]}
            return self._publish(hist, meta, box, after, points, None, entries, texts=texts)

    def commit_transition(self, decide: Callable[[dict | None], dict[str, Any]]) -> int:
        """Append a transition version on top of the latest version, whoever wrote it.

        Under the lock, ``decide(current workflow state or None)`` returns the version's meta:
        ``user``, ``workflow`` (the new state ``{"pool": str, "owner": str | None}``) and
        anything else to record (``label``, ...). If it raises, nothing is written and the
        exception propagates. Returns the new version id.
        """
        with self._mutex, self._locked():
            hist = self._current(catch_up=True)
            self._refuse_if_damaged()
            meta = dict(decide(_copy(hist.workflow)))
            workflow = meta.get("workflow")
            if not (isinstance(workflow, dict) and isinstance(workflow.get("pool"), str)
                    and isinstance(workflow.get("owner"), (str, type(None)))):
                raise ValueError(f"a transition needs workflow={{'pool': str, 'owner': str or "
                                 f"None}}, not {workflow!r}")
            meta.update(op=TRANSITION, target=None, slices=[],
                        workflow={"pool": workflow["pool"], "owner": workflow.get("owner")})
            return self._publish(hist, meta, None, None, None, None, [])

    def repair(self, user: str) -> tuple[int, list[str]] | None:
        """Roll forward past the damaged version files (None when nothing is damaged).

        Under the lock, the damaged file and every later version file (they build on it) are
        renamed ``<name>.npz.damaged`` (kept, no longer versions), checkpoints from the damaged
        version on are dropped (derived data), and a new version with op ``"repair"`` is saved
        in the damaged one's place, equal to the last readable version (``target``); its
        ``damaged`` lists the files set aside. Returns ``(new version, names set aside)``.
        """
        with self._mutex, self._locked():
            self._forget()  # decide from the files as they are now, under the lock
            hist = self._current(catch_up=False)
            damage = self._damage
            if damage is None:
                return None
            aside = []
            try:
                for v in list_versions(self._vdir):
                    if v >= damage.version:
                        aside.append(set_aside(self._vdir / version_name(v)).name)
                for c in list_versions(self._cdir):
                    if c >= damage.version:
                        (self._cdir / version_name(c)).unlink(missing_ok=True)
                fsync_dir(self._vdir)
            except OSError as exc:
                self._forget()
                raise StorageError(f"could not set the damaged annotation files of "
                                   f"{damage.series} aside ({exc.strerror or exc}); fix the "
                                   f"folder's permissions or free space and try again") from exc
            self._damage = None
            meta = {"user": user, "op": REPAIR, "target": hist.version, "tool": None,
                    "roi": None, "provenance": {"kind": "manual", "model": None},
                    "slices": [], "damaged": aside,
                    "label": f"repair: back to version {hist.version}; set aside "
                             f"{', '.join(aside)} (damaged: {damage.reason})"}
            return self._publish(hist, meta, None, None, None, None, []), aside

    # ----------------------------------------------------------------- internals
    @contextmanager
    def _locked(self):
        try:
            for folder in (self.folder, self._vdir, self._cdir):  # text values: private
                private_dir(folder)
        except OSError as exc:
            raise StorageError(f"cannot create the annotation folder {self.folder}: {exc}") from exc
        try:
            with FileLock(self.folder / ".lock", timeout=self.lock_timeout):
                yield
        except Timeout as exc:
            raise StorageError(f"the annotations of {self.series_id or self.folder} are locked by "
                               f"another writer for more than {self.lock_timeout} s; "
                               "try again") from exc

    def _check(self, guard: Guard | None, parent: int | None, hist: History) -> None:
        """Refuse a damaged series, run ``guard`` on the current workflow state, then check
        ``parent`` (lock held)."""
        self._refuse_if_damaged()
        if guard is not None:
            guard(_copy(hist.workflow))
        self._check_parent(parent, hist)

    def _check_parent(self, parent: int | None, hist: History) -> None:
        if parent is not None and parent != hist.version:
            raise VersionConflict(
                f"the annotations of {self.series_id or self.folder} changed: you edited version "
                f"{parent} but version {hist.version} was saved meanwhile (by another user, tab or "
                "process). Reload the series to see the latest annotations, then redo your edit.")

    @staticmethod
    def _derived(op: str, user: str, rec: VersionRecord) -> dict[str, Any]:
        return {"user": user, "op": op, "target": rec.id, "tool": rec.meta.get("tool"),
                "roi": rec.meta.get("roi"), "provenance": {"kind": "manual", "model": None},
                "slices": rec.meta.get("slices") or []}

    def _publish(self, hist: History, meta: dict, box, after, points, slots, entries,
                 *, json_points: bool = False, texts: Texts | None = None) -> int:
        """Write version ``hist.version + 1`` (lock held, ``hist`` current) and apply it."""
        rid = hist.version + 1
        rec = build_record(hist, meta, box, after, points, slots, entries, self.shape,
                           json_points=json_points, texts=texts)
        try:
            write_version(self._vdir, rec)
        except FileExistsError as exc:
            raise VersionConflict(f"version {rid} of {self.series_id or self.folder} was saved by "
                                  "another writer; reload and try again") from exc
        except OSError as exc:
            why = "the disk is full" if exc.errno == errno.ENOSPC else str(exc)
            raise StorageError(f"could not save the annotations of {self.series_id or self.folder} "
                               f"({why}); nothing was changed, free space or fix permissions and "
                               "try again") from exc
        self._metas[rid] = rec.meta
        hist.apply(rec)
        self._stamp = self._stamp_now(hist)
        self._write_summary(hist, rec)
        if rid % self.checkpoint_every == 0:
            if self.background_checkpoints:  # keep the full-state write off the request path
                threading.Thread(target=checkpoint_quietly, args=(self._cdir, hist.copy()),
                                 daemon=True, name=f"checkpoint-{rid}").start()
            else:
                checkpoint_quietly(self._cdir, hist)
        return rid

    def _write_summary(self, hist: History, rec) -> None:
        """Keep ``summary.json`` (ROIs present, text values) current, updating the set of
        ROI bits present from the change alone where possible (a full scan only on the first
        save of this process, or when an ROI lost voxels)."""
        if self._present is None:
            self._present = set(present_bits(hist.bits))
        elif rec.box is not None:
            added = set(present_bits(rec.after))
            self._present |= added
            for bit in set(present_bits(rec.before)) - added:
                if not hist.unions.holds(bit):
                    self._present.discard(bit)
        rois = [v for v, b in hist.slots.items() if b in self._present]
        rois += [v for v, pts in hist.points.items() if pts and v not in rois]
        try:
            write_summary(self.folder, hist.version, hist.texts, [int(v) for v in rois],
                          hist.workflow)
        except OSError:  # derived data: its readers fall back to the versions or skip it
            pass

    def _current(self, *, catch_up: bool) -> History:
        self._validate()
        if self._hist is None:
            self._clean_strays()
            self._hist = self._load_readable()
        elif catch_up and self._damage is None:
            self._catch_up(self._hist)
        return self._hist

    def _load_readable(self) -> History:
        """The state after the newest version, or after the last readable one (setting
        :attr:`damage`) when a version file on the way cannot be read."""
        present = list_versions(self._vdir)
        self._damage, target = None, (present or [0])[-1]
        while True:
            try:
                hist = self._replay(target)
                break
            except UnreadableVersion as exc:  # the earliest damaged file found is kept
                self._damage = self._damage_of(exc, present[-1])
                target = exc.version - 1
        self._stamp = self._stamp_now(hist)
        return hist

    def _damage_of(self, exc: UnreadableVersion, newest: int) -> Damage:
        name = exc.path.name
        file = f"{self.series_id}{SUFFIX}/v/{name}" if self.series_id else name
        return Damage(self.series_id or str(self.folder), exc.version, file, exc.reason,
                      max(newest, exc.version))

    def _stamp_now(self, hist: History) -> tuple:
        damaged = None if self._damage is None else self._damage.version
        return (hist.version, self.version_stamp(hist.version),
                damaged, None if damaged is None else self.version_stamp(damaged))

    def _validate(self) -> None:
        """Forget the cached state when the newest version file it applied (or the damaged
        one) changed on disk: damaged, repaired or replaced by another process."""
        if self._hist is not None and self._stamp != self._stamp_now(self._hist):
            self._forget()

    def _forget(self) -> None:
        self._hist, self._present, self._damage, self._stamp = None, None, None, None
        self._metas.clear()

    def _refuse_if_damaged(self) -> None:
        if self._damage is not None:
            raise self._damage.error()

    def _catch_up(self, hist: History) -> None:
        applied = False
        while True:
            path = self._vdir / version_name(hist.version + 1)
            try:
                rec = read_version(path)
            except FileNotFoundError:
                break
            except UnreadableVersion as exc:
                self._damage = self._damage_of(exc, list_versions(self._vdir)[-1])
                applied = True
                break
            hist.apply(rec)
            applied = True
            self._present = None  # another writer's change: recount on the next save
        if applied:
            self._stamp = self._stamp_now(hist)

    def _history_at(self, version: int) -> History:
        latest = self._current(catch_up=True).version
        if not 0 <= version <= latest:
            raise ValueError(f"version {version} does not exist (latest is {latest})")
        if version == latest:
            return self._hist.copy()
        return self._replay(version)

    def _replay(self, version: int) -> History:
        return replay(self._vdir, self._cdir, self.shape, version, self.series_id or self.folder)

    def _clean_strays(self) -> None:
        clean_strays(self.folder, (self._vdir, self._cdir))
