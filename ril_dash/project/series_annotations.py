"""The versioned annotations of one series: load, history, commit, undo, redo, rollback,
workflow transitions and the repair of damaged version files (see
:mod:`ril_dash.project.annotation_store` for the store as a whole and its guarantees).

A :class:`SeriesAnnotations` keeps the replayed :class:`~ril_dash.project.history.History` of
its series in memory, shared by the threads of a process; every write takes the series' file
lock, checks its parent version and publishes one new version file.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import fsync_dir, private_dir
from ril_dash.core.overlay import present_bits
from ril_dash.errors import StorageError, VersionConflict
from ril_dash.project.annotation_state import (
    PROVENANCE_KINDS,
    AnnotationState,
    DeltaLike,
    Guard,
    VersionInfo,
    copy_workflow,
    state_of,
)
from ril_dash.project.history import (
    SUFFIX,
    TRANSITION,
    History,
    Points,
    SlotTable,
    Texts,
    UnreadableVersion,
    VersionRecord,
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

__all__ = ["SeriesAnnotations"]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _slices(box) -> tuple[slice, slice, slice]:
    return tuple(slice(a, b) for a, b in box)


class SeriesAnnotations:
    """The versioned annotations of one series (get it from
    :meth:`ril_dash.project.annotation_store.AnnotationStore.series`).

    Examples
    --------
    >>> import tempfile, pathlib, types
    >>> from ril_dash.project.annotation_store import AnnotationStore
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
            return state_of(self._current(catch_up=False), view=True)

    def refresh(self) -> AnnotationState:
        """Pick up versions committed elsewhere (a ``stat`` when there are none) and return them."""
        with self._mutex:
            return state_of(self._current(catch_up=True), view=True)

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
            return state_of(self._history_at(version), view=False)

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
            meta = dict(decide(copy_workflow(hist.workflow)))
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
            guard(copy_workflow(hist.workflow))
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
