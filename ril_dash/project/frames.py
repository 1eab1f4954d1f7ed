"""Masks per frame of a 4D series: the frames stacked along Z in one annotation history.

A 3D series keeps one canonical (X, Y, Z) bits array, as always. A 4D series of ``T`` frames is
annotated *per frame*: its annotation store holds one (X, Y, Z·T) bits array, frame ``t``
being the slab ``[:, :, t·Z:(t+1)·Z]``. Everything the store does (versions holding only the
changed box, undo, redo, rollback, checkpoints of non-empty Z slices, the workflow state, text
values) works on it unchanged, and an edit of one frame is a box inside that frame's slab.

Projects made before masks per frame stored one (X, Y, Z) mask for a 4D series, shared by all
its frames. Such a series stays *shared*: its history's first version records shape (X, Y, Z),
and :func:`series_annotations` opens it with that shape; an edit on any frame changes the one
mask, and an export repeats it in every frame. A 4D series without annotations, or whose first
version records (X, Y, Z·T), is per frame.

:class:`FrameAnnotations` shows one frame of a per-frame series as a 3D series (what the editor,
overlays, statistics and the slice indicator use): its ``bits`` are a view of the frame's slab,
its commits are shifted into that slab, and the per-slice provenance of frame ``t`` is kept
under the planes ``"axial@t"`` (...) so each frame has its own. Undo, redo, rollback, the
history and the workflow state are the series' (one history for all its frames).
:func:`copy_roi_to_frames` copies an ROI of one frame to others as one version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from ril_dash.core.mask_slots import widen_bits
from ril_dash.core.paint import Rules, make_delta, replace_roi
from ril_dash.errors import EditRefused
from ril_dash.project.annotation_store import (
    AnnotationState,
    AnnotationStore,
    Guard,
    SeriesAnnotations,
)
from ril_dash.project.history import UnreadableVersion, read_version, version_name

__all__ = ["FrameAnnotations", "copy_roi_to_frames", "frame_masks", "is_per_frame",
           "series_annotations", "stack_frames", "stacked_shape"]


def stacked_shape(shape: tuple[int, int, int], n_frames: int) -> tuple[int, int, int]:
    """The store shape of a per-frame series of canonical ``shape`` and ``n_frames`` frames.

    Examples
    --------
    >>> stacked_shape((4, 5, 6), 3)
    (4, 5, 18)
    """
    x, y, z = (int(n) for n in shape)
    return (x, y, z * int(n_frames))


def stack_frames(masks: np.ndarray) -> np.ndarray:
    """A canonical (X, Y, Z, T) array as the (X, Y, Z·T) store layout (frame-major along Z).

    Examples
    --------
    >>> m = np.zeros((1, 1, 2, 3), np.uint8); m[0, 0, 1, 2] = 1
    >>> np.flatnonzero(stack_frames(m)).tolist()   # frame 2, slice 1 → 2·2 + 1
    [5]
    """
    x, y, z, t = masks.shape
    return np.ascontiguousarray(masks.transpose(0, 1, 3, 2)).reshape(x, y, t * z)


def frame_masks(bits: np.ndarray, shape: tuple[int, int, int], n_frames: int) -> np.ndarray:
    """The canonical (X, Y, Z, T) masks of a series' bits: the per-frame slabs of a stacked
    array, or a shared (X, Y, Z) array repeated in every frame (a read-only broadcast).

    Examples
    --------
    >>> bits = np.arange(8, dtype=np.uint8).reshape(1, 1, 8)
    >>> frame_masks(bits, (1, 1, 4), 2)[0, 0].T.tolist()
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    >>> frame_masks(bits[:, :, :4], (1, 1, 4), 2)[0, 0].T.tolist()
    [[0, 1, 2, 3], [0, 1, 2, 3]]
    """
    x, y, z = shape
    if bits.shape == (x, y, z):
        return np.broadcast_to(bits[..., None], (x, y, z, n_frames))
    if bits.shape != stacked_shape(shape, n_frames):
        raise ValueError(f"annotations of shape {bits.shape} fit neither {shape} nor "
                         f"{n_frames} frames of it")
    return bits.reshape(x, y, n_frames, z).transpose(0, 1, 3, 2)


def _recorded_shape(store: AnnotationStore, series_id: str) -> tuple[int, ...] | None:
    """The shape the first version of a series records (None: no versions yet)."""
    path = store.folder_for(series_id) / "v" / version_name(1)
    try:
        meta = read_version(path, arrays=False).meta
    except (FileNotFoundError, UnreadableVersion):
        return None
    shape = meta.get("shape")
    return None if shape is None else tuple(int(n) for n in shape)


def series_annotations(store: AnnotationStore, series_id: str, shape: tuple[int, int, int],
                       n_frames: int) -> SeriesAnnotations:
    """The whole annotation history of a series of canonical ``shape`` and ``n_frames``:
    (X, Y, Z) for a 3D series and for a 4D series whose history was started with a mask shared
    by all frames; (X, Y, Z·T) for a per-frame 4D series (every new one).

    The first version's file is read once a history exists (its shape never changes after).
    """
    shape = tuple(int(n) for n in shape)
    if n_frames <= 1:
        return store.series(series_id, shape)
    decided = store.frame_layouts.get(series_id)
    if decided is None or decided[0] != (shape, n_frames):
        recorded = _recorded_shape(store, series_id)
        if recorded is None:  # nothing saved yet: per frame (decided at the first save)
            return store.series(series_id, stacked_shape(shape, n_frames))
        decided = ((shape, n_frames), recorded)
        store.frame_layouts[series_id] = decided
    return store.series(series_id, decided[1])


def is_per_frame(annotations: SeriesAnnotations, shape: tuple[int, int, int]) -> bool:
    """Whether ``annotations`` hold one mask per frame (not one shared (X, Y, Z) mask)."""
    return tuple(annotations.shape) != tuple(int(n) for n in shape)


@dataclasses.dataclass(frozen=True)
class _Shifted:
    box: tuple
    before: np.ndarray
    after: np.ndarray


def _frame_plane(plane: str, frame: int) -> str:
    return f"{plane}@{frame}"


class FrameAnnotations:
    """One frame of a per-frame series, with the interface of a 3D
    :class:`~ril_dash.project.series_annotations.SeriesAnnotations` (other attributes are the
    series'; see the module docstring).

    Examples
    --------
    >>> import tempfile, pathlib, types
    >>> whole = AnnotationStore(pathlib.Path(tempfile.mkdtemp())).series("c.nii", (2, 2, 6))
    >>> f2 = FrameAnnotations(whole, 2, 3)
    >>> delta = types.SimpleNamespace(box=((0, 1), (0, 1), (1, 2)),
    ...                               before=np.zeros((1, 1, 1), np.uint8),
    ...                               after=np.ones((1, 1, 1), np.uint8))
    >>> f2.commit(0, delta, {"user": "a", "op": "paint", "roi": 1}, slots={1: 0})
    1
    >>> f2.shape, np.flatnonzero(whole.load().bits[0, 0]).tolist(), int(f2.load().bits.sum())
    ((2, 2, 2), [5], 1)
    >>> int(FrameAnnotations(whole, 1, 3).load().bits.sum())
    0
    """

    def __init__(self, series: SeriesAnnotations, frame: int, n_frames: int) -> None:
        x, y, zt = series.shape
        if n_frames < 1 or zt % n_frames:
            raise ValueError(f"annotations of shape {series.shape} do not hold {n_frames} frames")
        if not 0 <= frame < n_frames:
            raise EditRefused(f"Frame {frame} is outside 0..{n_frames - 1}.")
        self.series, self.frame, self.n_frames = series, int(frame), int(n_frames)
        self.depth = zt // n_frames
        self.shape = (x, y, self.depth)
        self._z0 = self.frame * self.depth

    def __getattr__(self, name: str) -> Any:  # the series' history, workflow, damage, ...
        return getattr(self.series, name)

    def view(self, state: AnnotationState) -> AnnotationState:
        """This frame of a state of the whole series."""
        suffix = f"@{self.frame}"
        provenance = {(plane[:-len(suffix)], index): record
                      for (plane, index), record in state.provenance.items()
                      if plane.endswith(suffix)}
        return dataclasses.replace(state, bits=state.bits[:, :, self._z0:self._z0 + self.depth],
                                   provenance=provenance)

    def load(self) -> AnnotationState:
        return self.view(self.series.load())

    def refresh(self) -> AnnotationState:
        return self.view(self.series.refresh())

    def state_at(self, version: int) -> AnnotationState:
        return self.view(self.series.state_at(version))

    def commit(self, parent: int, delta, meta: dict[str, Any], points=None, slots=None,
               texts=None, *, guard: Guard | None = None) -> int:
        """:meth:`SeriesAnnotations.commit` of a change of this frame (box in frame coordinates;
        ``meta["slices"]`` name this frame's slices)."""
        if delta is not None:
            (x0, x1), (y0, y1), (z0, z1) = (tuple(int(v) for v in ab) for ab in delta.box)
            if not 0 <= z0 < z1 <= self.depth:
                raise ValueError(f"delta box {delta.box} is not inside the frame {self.shape}")
            delta = _Shifted(((x0, x1), (y0, y1), (z0 + self._z0, z1 + self._z0)),
                             delta.before, delta.after)
        meta = dict(meta, slices=[dict(s, plane=_frame_plane(s["plane"], self.frame))
                                  for s in meta.get("slices") or ()])
        if delta is not None:  # a voxel edit (not text values or points): made on this frame
            meta["frame"] = self.frame
        return self.series.commit(parent, delta, meta, points=points, slots=slots, texts=texts,
                                  guard=guard)


def copy_roi_to_frames(series: SeriesAnnotations, shape: tuple[int, int, int], n_frames: int,
                       value: int, source: int, targets: Iterable[int], rules: Rules, user: str,
                       *, parent: int | None = None, guard: Guard | None = None) -> int | None:
    """Copy area ROI ``value`` of frame ``source`` to the frames ``targets`` of a per-frame
    series of canonical ``shape``, as one version (op ``copy_frames``; one undo takes it back).

    In each target frame the ROI's voxels become those of the source frame (its old voxels
    there are cleared), under the overlap ``rules`` (locked ROIs are never written over).
    Returns the new version, or None when nothing changed.

    Raises
    ------
    EditRefused
        The series is not per frame, a frame is out of range, or the ROI has no voxels in the
        source frame (nothing to copy).
    """
    if n_frames <= 1:
        raise EditRefused("This series has one frame: there is nothing to copy between frames.")
    if not is_per_frame(series, shape):
        raise EditRefused("This series has one mask for all its frames (annotated before masks "
                          "per frame existed): there is nothing to copy between frames.")
    view = FrameAnnotations(series, source, n_frames)
    targets = sorted({int(t) for t in targets} - {int(source)})
    bad = [t for t in targets if not 0 <= t < n_frames]
    if bad or not targets:
        raise EditRefused(f"Copy to frames needs target frames within 0..{n_frames - 1} other "
                          f"than the source frame {source}.")
    state = series.refresh()  # a stale ``parent`` is refused under the lock (VersionConflict)
    if value not in state.slots:
        raise EditRefused(f"ROI {value} has no voxels in frame {source}: nothing to copy.")
    bit, depth = state.slots[value], view.depth
    bits = widen_bits(np.array(state.bits), state.slots)
    one = bits.dtype.type(1 << bit)
    mask = (bits[:, :, view._z0:view._z0 + depth] & one) != 0
    if not mask.any():
        raise EditRefused(f"ROI {value} has no voxels in frame {source}: nothing to copy.")
    new = bits.copy()
    for t in targets:
        slab = slice(t * depth, (t + 1) * depth)
        new[:, :, slab] = replace_roi(bits[:, :, slab], bit, mask, rules)[0]
    delta = make_delta(bits, tuple((0, n) for n in bits.shape), new)
    if delta is None:
        return None
    slices = [{"plane": _frame_plane("axial", t), "index": int(z), "roi": value}
              for t in targets for z in np.flatnonzero(mask.any(axis=(0, 1)))]
    meta = {"user": user, "op": "copy_frames", "tool": "copy_frames", "roi": int(value),
            "frame": int(source), "frames": targets,
            "provenance": {"kind": "manual", "model": None}, "slices": slices}
    return series.commit(state.version if parent is None else parent, delta, meta, guard=guard)
