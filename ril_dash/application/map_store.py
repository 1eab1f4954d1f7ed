"""Computed activation maps, kept as views beside the project (never in the annotation store).

A map set is one series seen by one model version with one method, layer, target and options
(:func:`map_key`: a hash of all of them, the model file's sha256 included, so a new version
never shows an old map). Its slices (display slices of the model's plane, float32 in the
display grid) are files ``<project>/.maps/<key>/<index>.npy`` written atomically, so a job in
another process fills the set that the web server reads; recently read slices also stay in
memory. Deleting ``.maps`` loses nothing but computing time.

:func:`map_volume` assembles a set into the series' canonical grid (slices never computed are
0); :func:`map_nifti` writes it in the source file's own voxel order and affine.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

from ril_dash.core.atomic_io import private_dir, temp_path_for
from ril_dash.core.cache import ByteBudgetLRU
from ril_dash.core.planes import stack_to_canonical

__all__ = ["FOLDER", "MapStore", "map_key", "map_nifti", "map_volume"]

FOLDER = ".maps"
SLICE_FILE = re.compile(r"^(\d+)\.npy$")
log = logging.getLogger(__name__)
_WRITER: list[ThreadPoolExecutor] = []
_WRITER_LOCK = threading.Lock()


def _writer() -> ThreadPoolExecutor:
    """The process's one map-writer thread (files are written in the order they are put)."""
    with _WRITER_LOCK:
        if not _WRITER:
            _WRITER.append(ThreadPoolExecutor(1, thread_name_prefix="ril-map-writer"))
        return _WRITER[0]


def map_key(series: str, description: dict) -> str:
    """The folder name of a map set: a hash of the series and everything that makes the map.

    >>> map_key("P1/ct.nii.gz", {"method": "gradcam"}) == map_key("P1/ct.nii.gz",
    ...                                                            {"method": "gradcam"})
    True
    """
    text = json.dumps({"series": series, **description}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class MapStore:
    """The map sets of one project (thread-safe; several processes may write)."""

    def __init__(self, project_dir: str | Path, memory_bytes: int = 256 * 1024**2):
        self.folder = Path(project_dir) / FOLDER
        self.memory = ByteBudgetLRU(memory_bytes, sizeof=lambda a: a.nbytes)
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, int], np.ndarray] = {}  # written in the background

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the maps put in the background are written (tests, shutdown)."""
        _writer().submit(lambda: None).result(timeout)

    def _path(self, key: str, index: int) -> Path:
        return self.folder / key / f"{int(index)}.npy"

    def put(self, key: str, index: int, map2d: np.ndarray, *, background: bool = False) -> None:
        """Keep a slice's map: replaced whole (a reader never sees half a file), not synced to
        disk (a map lost in a crash is computed again). ``background``: the file is written by
        this process's writer thread after the call returns (a click answered sooner); until
        then this process reads the map from memory, other processes compute it again."""
        array = np.ascontiguousarray(map2d, np.float32)
        if background:
            with self.lock:
                self.pending[(key, int(index))] = array
            _writer().submit(self._write_pending, key, int(index), array)
            return
        self._write(key, index, array)

    def _write_pending(self, key: str, index: int, array: np.ndarray) -> None:
        try:
            self._write(key, index, array)
        except OSError as exc:
            log.warning("map %s slice %d not kept (%s); it is computed again when asked",
                        key, index, exc)
        finally:
            with self.lock:
                if self.pending.get((key, index)) is array:
                    del self.pending[(key, index)]

    def _write(self, key: str, index: int, array: np.ndarray) -> None:
        folder = self.folder / key
        if not folder.is_dir():
            private_dir(self.folder)
            private_dir(folder)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        path = self._path(key, index)
        temp = temp_path_for(path)
        try:
            temp.write_bytes(buffer.getvalue())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self.memory.discard(lambda k: k == (key, int(index)))
        self.memory.get_or_load((key, int(index)), lambda: array)

    def get(self, key: str, index: int) -> np.ndarray | None:
        """The map of slice ``index`` or None when it was not computed."""
        with self.lock:
            waiting = self.pending.get((key, int(index)))
        if waiting is not None:
            return waiting
        path = self._path(key, index)
        if not path.is_file():
            return None
        return self.memory.get_or_load((key, int(index)),
                                       lambda: np.load(path, allow_pickle=False))

    def indices(self, key: str) -> list[int]:
        """The slices of a set computed so far, in order."""
        with self.lock:
            waiting = {i for k, i in self.pending if k == key}
        folder = self.folder / key
        if not folder.is_dir():
            return sorted(waiting)
        found = (SLICE_FILE.match(p.name) for p in folder.iterdir())
        return sorted(waiting | {int(m.group(1)) for m in found if m})


def map_volume(store: MapStore, key: str, plane: str, shape: tuple[int, int, int]
               ) -> np.ndarray:
    """The set as a canonical ``(X, Y, Z)`` float32 array (0 where nothing was computed)."""
    from ril_dash.core.planes import display_shape

    n = int(shape[("sagittal", "coronal", "axial").index(plane)])
    rows, cols = display_shape(shape, plane)
    stack = np.zeros((n, rows, cols), np.float32)
    for index in store.indices(key):
        if 0 <= index < n:
            stack[index] = store.get(key, index)
    return stack_to_canonical(stack, plane)


def map_nifti(volume, canonical_map: np.ndarray) -> bytes:
    """NIfTI-1 bytes of a canonical map in ``volume``'s file voxel order, with its affine."""
    data = np.ascontiguousarray(volume.to_file_order(canonical_map), np.float32)
    image = nib.Nifti1Image(data, volume.affine)
    image.header.set_xyzt_units("mm")
    return image.to_bytes()
