"""On-disk format of the annotation history: version files, checkpoints and the undo stacks.

A series' annotation folder holds::

    <series>.ril/
        .lock                  filelock of the series (serialises writers, threads and processes)
        v/00000001.npz         one file per version, append-only, never rewritten
        v/00000002.npz
        c/00000100.npz         checkpoint: the full state after version 100 (derived data)

A **version file** is a compressed ``.npz`` with the members ``meta`` (UTF-8 JSON as ``uint8``),
and, when voxels changed, ``box`` (``int64`` 3×2, half-open canonical box), ``before`` and
``after`` (the box's contents before and after the change). ``meta`` holds ``id``, ``parent``,
``user``, ``time`` (UTC ISO), ``op``, ``tool``, ``roi``, ``target``, ``provenance``
(``{"kind", "model"}``), ``slices`` (display slices touched), ``slots`` (``{mask_value: bit}``),
``shape``, ``prov`` / ``prov_before`` (the change to the per-slice provenance map, as
``[plane, index, record-or-null]`` entries), when point annotations changed,
``points_before`` / ``points_after`` and, when the per-series text values changed,
``texts_before`` / ``texts_after`` (``{field name: value}``; files without them change none).
A version with op ``"transition"`` changes nothing of the above; it carries ``workflow``
(``{"pool", "owner"}``, the series' workflow state from then on) and a ``label``. Undo, redo and
rollback never change the workflow state; the rules live in :mod:`ril_dash.workflow.machine` and
:mod:`ril_dash.project.workflow_state`.

A **checkpoint** holds ``meta`` (JSON: version, slots, points, texts, workflow state,
provenance map, undo and redo stacks, shape), ``z`` (the indices of non-empty z-slices) and
``slices`` (those slices, X×Y×n).

``shape`` is that of the series' bits: canonical (X, Y, Z), or (X, Y, Z·T) for a 4D series of T
frames with a mask per frame (the frames stacked along Z; the frame of an edit is in ``frame``
and its provenance planes are ``"axial@t"``...; see :mod:`ril_dash.project.frames`).

Policy (locking, compare-and-swap, undo) lives in :mod:`ril_dash.project.annotation_store`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import atomic_write_bytes, fsync_dir
from ril_dash.core.mask_slots import slots_dtype, widen_bits
from ril_dash.core.slice_unions import SliceUnions
from ril_dash.errors import DamagedAnnotations, StorageError
from ril_dash.project.history_scan import SUFFIX, annotated_series

__all__ = ["SUFFIX", "TRANSITION", "History", "UnreadableVersion", "VersionRecord",
           "annotated_series",
           "build_record", "clean_strays", "diff_box", "latest_workflow", "list_versions",
           "read_version", "replay", "version_name", "workflow_of", "write_checkpoint",
           "write_version"]

_log = logging.getLogger(__name__)
_RESERVED = ("id", "parent", "time", "shape", "slots", "prov", "prov_before",
             "points_before", "points_after", "texts_before", "texts_after")
VERSION_RE = re.compile(r"^(\d{8})\.npz$")
SlotTable = dict[int, int]
Points = dict[int, list[list[int]]]
ProvKey = tuple[str, int]
Texts = dict[str, object]  # field name → str | list[str] | float | bool
TRANSITION = "transition"  # the op of a version that records a new workflow state


def workflow_of(meta: dict) -> dict | None:
    """The workflow state (``{"pool", "owner"}``) a version's ``meta`` sets, or None.

    Examples
    --------
    >>> workflow_of({"op": "transition", "workflow": {"pool": "a", "owner": None}})
    {'pool': 'a', 'owner': None}
    >>> workflow_of({"op": "paint"}) is None
    True
    """
    wf = meta.get("workflow")
    return dict(wf) if meta.get("op") == TRANSITION and isinstance(wf, dict) else None


def version_name(version: int) -> str:
    """File name of a version or checkpoint.

    Examples
    --------
    >>> version_name(42)
    '00000042.npz'
    """
    return f"{version:08d}.npz"


def points_to_json(points: Points | None) -> dict[str, list[list[int]]] | None:
    """Points with string keys and plain-int coordinates (JSON-ready)."""
    if points is None:
        return None
    return {str(int(k)): [[int(c) for c in p] for p in v] for k, v in points.items()}


def points_from_json(points: dict | None) -> Points:
    """Inverse of :func:`points_to_json` (``None`` gives ``{}``)."""
    return {int(k): [list(map(int, p)) for p in v] for k, v in (points or {}).items()}


def slots_from_json(slots: dict | None) -> SlotTable:
    """Slot table with int keys and values."""
    return {int(k): int(v) for k, v in (slots or {}).items()}


@dataclass
class VersionRecord:
    """One version file, read back: its metadata and (when voxels changed) the box contents."""

    meta: dict
    box: tuple[tuple[int, int], ...] | None = None
    before: np.ndarray | None = None
    after: np.ndarray | None = None

    @property
    def id(self) -> int:
        return int(self.meta["id"])

    @property
    def points_changed(self) -> bool:
        return self.meta.get("points_after") is not None

    @property
    def texts_changed(self) -> bool:
        return self.meta.get("texts_after") is not None

    @property
    def undoable(self) -> bool:
        """Whether the linear undo stack holds this version (a normal op that changed something)."""
        return self.meta["op"] not in ("undo", "redo", TRANSITION) and bool(
            self.box is not None or self.points_changed or self.texts_changed
            or self.meta.get("prov"))


def _json_array(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, separators=(",", ":")).encode("utf-8"), np.uint8)


def _load_json(arr: np.ndarray):
    return json.loads(arr.tobytes().decode("utf-8"))


def write_version(folder: Path, record: VersionRecord) -> Path:
    """Publish ``record`` as ``folder/<id>.npz``; fail if that version already exists.

    The file is written to a temp file in ``folder`` (``.npz`` suffix), flushed and fsynced, then
    hard-linked to its final name (``os.link`` refuses to overwrite: the compare-and-swap of
    last resort), the folder is fsynced and the temp file removed. On any error the temp file (and
    a final file this call created) are removed and the error is re-raised.

    Raises
    ------
    FileExistsError
        The version already exists (another writer got there first).
    OSError
        Writing failed (disk full, permissions).
    """
    final = folder / version_name(record.id)
    fd, temp = tempfile.mkstemp(prefix=f".{record.id:08d}.", suffix=".npz", dir=folder)
    linked = False
    try:
        arrays = {"meta": _json_array(record.meta)}
        if record.box is not None:
            arrays["box"] = np.asarray(record.box, dtype=np.int64)
            arrays["before"] = np.ascontiguousarray(record.before)
            arrays["after"] = np.ascontiguousarray(record.after)
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(temp, final)
        linked = True
        fsync_dir(folder)
        os.unlink(temp)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if linked:  # published but not durable: take it back (we still hold the series lock)
            try:
                os.unlink(final)
            except OSError:
                pass
        raise
    return final


class UnreadableVersion(DamagedAnnotations):
    """A version file that exists but cannot be read: truncated, overwritten, not a version of
    this number (a disk fault or a bad copy). Versions are published complete (written, synced,
    then linked), so a writer never leaves one half-written under its final name."""

    def __init__(self, path: Path, reason: str) -> None:
        match = VERSION_RE.match(path.name)
        super().__init__(f"the annotation version file {path.name} cannot be read ({reason})",
                         file=path.name, version=int(match.group(1)) if match else 0)
        self.path, self.reason = path, reason


def _why(exc: Exception) -> str:
    """A short reason for an unreadable file, without its (absolute) path."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"{type(exc).__name__}: {str(exc)[:160]}"


def _check_meta(meta, path: Path) -> None:
    match = VERSION_RE.match(path.name)
    if not isinstance(meta, dict) or not {"id", "parent", "op", "time"} <= meta.keys():
        raise ValueError("its metadata is incomplete")
    if match and int(meta["id"]) != int(match.group(1)):
        raise ValueError(f"it holds version {meta['id']}")


def _npz(fh, path: Path):
    """``fh`` rewound, if it starts as a zip archive (an ``.npz``) does."""
    if fh.read(4) != b"PK\x03\x04":
        raise UnreadableVersion(path, "not an .npz archive: empty, cut short at its start or "
                                      "overwritten")
    fh.seek(0)
    return fh


def read_version(path: Path, *, arrays: bool = True) -> VersionRecord:
    """Read a version file (``arrays=False``: metadata only, cheaper).

    Raises FileNotFoundError when it does not exist and :class:`UnreadableVersion` when it
    exists but cannot be read.
    """
    try:
        with open(path, "rb") as fh, np.load(_npz(fh, path), allow_pickle=False) as z:
            meta = _load_json(z["meta"])
            _check_meta(meta, path)
            if not arrays or "box" not in z.files:
                return VersionRecord(meta)
            box = tuple((int(a), int(b)) for a, b in z["box"])
            before, after = z["before"], z["after"]
            if before.shape != after.shape or len(box) != 3:
                raise ValueError("its arrays do not match its box")
            return VersionRecord(meta, box, before, after)
    except (FileNotFoundError, UnreadableVersion):
        raise
    except Exception as exc:  # noqa: BLE001 - zip, zlib, JSON and numpy errors alike
        raise UnreadableVersion(path, _why(exc)) from exc


@dataclass
class History:
    """Replayable state: what a checkpoint stores and what replaying versions updates."""

    bits: np.ndarray
    version: int = 0
    slots: SlotTable = field(default_factory=dict)
    points: Points = field(default_factory=dict)
    provenance: dict[ProvKey, dict] = field(default_factory=dict)
    done: list[int] = field(default_factory=list)
    undone: list[int] = field(default_factory=list)
    texts: Texts = field(default_factory=dict)
    workflow: dict | None = None  # set by transition versions only (None: never transitioned)
    #: which ROI bits each slice holds, kept current by :meth:`apply` (derived, never stored)
    unions: SliceUnions | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.unions is None:
            self.unions = SliceUnions(self.bits)

    @classmethod
    def empty(cls, shape: tuple[int, int, int]) -> History:
        return cls(np.zeros(shape, np.uint8))

    def copy(self) -> History:
        return History(self.bits.copy(), self.version, dict(self.slots),
                       {k: [list(p) for p in v] for k, v in self.points.items()},
                       {k: dict(v) for k, v in self.provenance.items()},
                       list(self.done), list(self.undone), copy_texts(self.texts),
                       None if self.workflow is None else dict(self.workflow))

    def apply(self, rec: VersionRecord) -> None:
        """Apply one version (in place). ``rec.id`` must be ``self.version + 1``."""
        meta = rec.meta
        if rec.id != self.version + 1:
            raise ValueError(f"version {rec.id} cannot follow version {self.version}")
        slots = slots_from_json(meta.get("slots"))
        wider = widen_bits(self.bits, slots)
        if wider is not self.bits:
            self.bits, self.unions = wider, SliceUnions(wider)
        self.slots = slots
        if rec.box is not None:
            (x0, x1), (y0, y1), (z0, z1) = rec.box
            self.bits[x0:x1, y0:y1, z0:z1] = rec.after
            self.unions.changed(rec.box)
        if rec.points_changed:
            self.points = points_from_json(meta["points_after"])
        if rec.texts_changed:
            self.texts = copy_texts(meta["texts_after"])
        for plane, index, value in meta.get("prov") or ():
            if value is None:
                self.provenance.pop((plane, int(index)), None)
            else:
                self.provenance[(plane, int(index))] = dict(value)
        workflow = workflow_of(meta)
        if workflow is not None:
            self.workflow = workflow
        op, target = meta["op"], meta.get("target")
        if op == "undo":
            _remove(self.done, target)
            self.undone.append(target)
        elif op == "redo":
            _remove(self.undone, target)
            self.done.append(target)
        elif rec.undoable:
            self.done.append(rec.id)
            self.undone.clear()
        self.version = rec.id


def copy_texts(texts: dict | None) -> Texts:
    """A copy of a texts dict (lists copied too); ``None`` gives ``{}``."""
    return {str(k): list(v) if isinstance(v, list) else v for k, v in (texts or {}).items()}


def _remove(stack: list[int], item: int) -> None:
    if stack and stack[-1] == item:
        stack.pop()
    elif item in stack:
        stack.remove(item)


def write_checkpoint(folder: Path, hist: History) -> None:
    """Write the full state after ``hist.version`` (only non-empty z-slices), atomically."""
    zs = np.flatnonzero(hist.bits.any(axis=(0, 1)))
    meta = {
        "version": hist.version, "shape": list(hist.bits.shape),
        "dtype": hist.bits.dtype.str, "slots": {str(k): v for k, v in hist.slots.items()},
        "points": points_to_json(hist.points), "texts": hist.texts, "workflow": hist.workflow,
        "done": hist.done, "undone": hist.undone,
        "provenance": [[p, i, v] for (p, i), v in hist.provenance.items()],
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=_json_array(meta), z=zs.astype(np.int64),
                        slices=np.ascontiguousarray(hist.bits[:, :, zs]))
    atomic_write_bytes(folder / version_name(hist.version), buf.getvalue())


def read_checkpoint(path: Path, shape: tuple[int, int, int]) -> History:
    """Read a checkpoint written by :func:`write_checkpoint`."""
    with np.load(path, allow_pickle=False) as z:
        meta = _load_json(z["meta"])
        if tuple(meta["shape"]) != tuple(shape):
            raise ValueError(f"checkpoint shape {meta['shape']} is not {list(shape)}")
        bits = np.zeros(shape, np.dtype(meta["dtype"]))
        bits[:, :, z["z"]] = z["slices"]
    return History(bits, int(meta["version"]), slots_from_json(meta["slots"]),
                   points_from_json(meta["points"]),
                   {(p, int(i)): dict(v) for p, i, v in meta["provenance"]},
                   [int(v) for v in meta["done"]], [int(v) for v in meta["undone"]],
                   copy_texts(meta.get("texts")), meta.get("workflow"))


def latest_workflow(folder: Path) -> dict | None:
    """The workflow state after the latest version of the annotation folder ``folder`` (None:
    never transitioned), reading only metadata: versions newest first, down to the newest
    readable checkpoint. For when ``summary.json`` is missing or stale."""
    vdir, cdir = folder / "v", folder / "c"
    versions = list_versions(vdir)
    checkpoints = list_versions(cdir) if versions else []
    for v in reversed(versions):
        while checkpoints and checkpoints[-1] > v:
            checkpoints.pop()
        if checkpoints and checkpoints[-1] == v:
            try:
                with np.load(cdir / version_name(v), allow_pickle=False) as z:
                    return _load_json(z["meta"]).get("workflow")
            except Exception:  # noqa: BLE001 - damaged checkpoint: read the versions instead
                checkpoints.pop()
        try:
            workflow = workflow_of(read_version(vdir / version_name(v), arrays=False).meta)
        except (OSError, ValueError, KeyError, UnreadableVersion):  # taken back, or damaged
            continue
        if workflow is not None:
            return workflow
    return None


def list_versions(folder: Path) -> list[int]:
    """Sorted version numbers found in ``folder`` (temp files and other names are skipped)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(VERSION_RE.match, names) if m)


def stray_temp_files(folder: Path) -> list[Path]:
    """Leftover temp files of crashed writers (names starting with a dot)."""
    try:
        return [folder / n for n in os.listdir(folder) if n.startswith(".")]
    except FileNotFoundError:
        return []


def build_record(hist: History, meta: dict, box, after, points, slots, entries, shape,
                 *, json_points: bool = False, texts: dict | None = None) -> VersionRecord:
    """The record of version ``hist.version + 1``: ``meta`` completed, ``before`` read from
    ``hist``, provenance entries with their previous values, points and texts before/after if
    given."""
    slots = dict(hist.slots if slots is None else slots)
    dtype = max(hist.bits.dtype, slots_dtype(slots), key=lambda d: d.itemsize)
    meta = {k: v for k, v in meta.items() if k not in _RESERVED}
    meta.update(id=hist.version + 1, parent=hist.version,
                time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                shape=list(shape), slots={str(int(k)): int(v) for k, v in slots.items()},
                prov=[[p, int(i), v] for p, i, v in entries],
                prov_before=[[p, int(i), hist.provenance.get((p, int(i)))] for p, i, _ in entries])
    meta.setdefault("target", None)
    if points is not None:
        meta["points_before"] = points_to_json(hist.points)
        meta["points_after"] = points if json_points else points_to_json(points)
    if texts is not None:
        meta["texts_before"] = copy_texts(hist.texts)
        meta["texts_after"] = copy_texts(texts)
    if box is None:
        return VersionRecord(meta)
    sl = tuple(slice(a, b) for a, b in box)
    return VersionRecord(meta, box, hist.bits[sl].astype(dtype), np.asarray(after).astype(dtype))


def diff_box(a: np.ndarray, b: np.ndarray) -> tuple[tuple[int, int], ...] | None:
    """Smallest half-open box holding every voxel where ``a`` and ``b`` differ (``None``: equal).

    Examples
    --------
    >>> a = np.zeros((4, 4, 4), np.uint8); b = a.copy(); b[1, 2, 3] = 1; b[2, 2, 3] = 1
    >>> diff_box(a, b), diff_box(a, a)
    (((1, 3), (2, 3), (3, 4)), None)
    """
    diff = a != b
    if not diff.any():
        return None
    return tuple((int(i[0]), int(i[-1]) + 1) for i in
                 (np.flatnonzero(diff.any(axis=ax)) for ax in ((1, 2), (0, 2), (0, 1))))


def rollback_changes(old: History, hist: History):
    """What turns ``hist`` back into ``old``: ``(box, after, points, texts, entries)`` (``None``
    for what is unchanged; ``entries`` are the provenance changes)."""
    box = diff_box(old.bits, hist.bits)
    after = None if box is None else old.bits[tuple(slice(a, b) for a, b in box)]
    entries = [[p, i, old.provenance.get((p, i))]
               for p, i in sorted(set(old.provenance) | set(hist.provenance))
               if old.provenance.get((p, i)) != hist.provenance.get((p, i))]
    return (box, after, old.points if old.points != hist.points else None,
            old.texts if old.texts != hist.texts else None, entries)


def checkpoint_quietly(folder: Path, hist: History) -> None:
    """:func:`write_checkpoint`, ignoring ``OSError`` (a checkpoint only speeds loading up)."""
    try:
        write_checkpoint(folder, hist)
    except OSError:
        pass


def replay(vdir: Path, cdir: Path, shape, version: int, label) -> History:
    """The state after ``version``: the latest usable checkpoint at or before it, then the
    versions after it (a damaged checkpoint falls back to an older one)."""
    hist = History.empty(shape)
    for c in reversed([c for c in list_versions(cdir) if c <= version]):
        try:
            hist = read_checkpoint(cdir / version_name(c), shape)
            break
        except Exception as exc:  # noqa: BLE001 - damaged checkpoint: try older ones
            _log.warning("ignoring checkpoint %s of %s: %s", c, label, exc)
    for v in range(hist.version + 1, version + 1):
        try:
            rec = read_version(vdir / version_name(v))
        except FileNotFoundError as exc:
            raise StorageError(f"version {v} of {label} is missing; the annotation folder "
                               "was damaged") from exc
        if tuple(rec.meta.get("shape") or shape) != tuple(shape):
            raise StorageError(f"the annotations of {label} were made for shape "
                               f"{rec.meta['shape']}, not {list(shape)}")
        hist.apply(rec)
    return hist


def clean_strays(folder: Path, subfolders) -> None:
    """Remove temp files of crashed writers, only while no writer holds the series lock."""
    if not any(stray_temp_files(f) for f in subfolders):
        return
    try:
        with FileLock(folder / ".lock", timeout=0):
            for f in subfolders:
                for p in stray_temp_files(f):
                    p.unlink(missing_ok=True)
    except (Timeout, OSError):
        pass
