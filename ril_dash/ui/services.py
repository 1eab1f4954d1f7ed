"""Glue between the web layer and the domain: one :class:`Services` per server process.

It owns the open :class:`~ril_dash.project.project.Project` and the shared caches of decoded
volumes and thumbnail stacks. Routes and callbacks reach it with :func:`get_services` (through
Flask's ``current_app``), never through a module global, so several apps can live in one
process (tests) and no per-user state is kept here.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from flask import current_app

from ril_dash.core.cache import ByteBudgetLRU
from ril_dash.core.render import (
    probe,
    render_slice_png,
    render_thumbnails,
    viewer_geometry,
)
from ril_dash.core.volume import Volume, canonical_shape, load_volume
from ril_dash.errors import RilDashError
from ril_dash.project.annotation_store import (
    AnnotationState,
    AnnotationStore,
    SeriesAnnotations,
)
from ril_dash.project.audit import AuditLog
from ril_dash.project.editing import SeriesEditor
from ril_dash.project.project import Project
from ril_dash.project.schema import PROJECT_FILE, load_project_config
from ril_dash.project.series_locks import SeriesLocks
from ril_dash.workflow.schema import Workflow, workflow_from_project

EXTENSION_KEY = "ril_dash"
log = logging.getLogger(__name__)


class Services:
    """Cached access to the project's series for one server process."""

    def __init__(self, project: Project, volume_cache_bytes: int = 3 * 1024**3,
                 thumbnail_cache_bytes: int = 256 * 1024**2,
                 workflow: Workflow | None = None, lease_seconds: float = 120.0,
                 workflow_from_project: bool = False) -> None:
        self.project = project
        #: the workflow in force (None: no pools; every user may do everything but admin tasks)
        self.workflow = workflow
        #: the workflow is project.yaml's (so it follows edits of the file), not --workflow's
        self.workflow_from_project = workflow_from_project
        self.store = AnnotationStore(project.config.annotations, background_checkpoints=True)
        #: series leases, shared with every server on this project (in the annotation store)
        self.locks = SeriesLocks(project.config.annotations, lease_seconds=lease_seconds)
        self.audit = AuditLog.for_project(project.dir)
        self._config_mutex = threading.Lock()
        self._config_seen = self._config_stamp()
        self.old_states = ByteBudgetLRU(512 * 1024**2, sizeof=lambda s: s.bits.nbytes)
        self.volumes = ByteBudgetLRU(volume_cache_bytes, sizeof=lambda v: v.nbytes)
        self.thumbs = ByteBudgetLRU(thumbnail_cache_bytes, sizeof=lambda t: sum(map(len, t[1])))
        self.geometry = ByteBudgetLRU(4096 * 1024, sizeof=lambda g: 1024)

    # -- project.yaml -----------------------------------------------------------------------
    def _config_stamp(self) -> tuple | None:
        try:
            st = os.stat(self.project.dir / PROJECT_FILE)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh_config(self) -> None:
        """Use project.yaml as it is on disk now if it changed (another server process, or
        another server on the share, edited the ROIs or text fields). One stat per request; an
        invalid file on disk keeps the last valid definitions (the editor refused to write it,
        so someone edited it by hand) and is logged."""
        stamp = self._config_stamp()
        if stamp is None or stamp == self._config_seen:
            return
        with self._config_mutex:
            if stamp == self._config_seen:
                return
            try:
                config = load_project_config(self.project.dir)
                if self.workflow_from_project:
                    self.workflow = workflow_from_project(config)
                self.project.config = config
            except RilDashError as exc:
                log.error("project.yaml changed but is invalid; keeping the last valid "
                          "definitions: %s", exc)
            self._config_seen = stamp

    # -- series and volumes ------------------------------------------------------------------
    def series_path(self, series_id: str) -> Path:
        """Absolute path of a known series (raises SeriesNotFound for anything else)."""
        return self.project.series_path(series_id)

    def _key(self, series_id: str) -> tuple:
        path = self.series_path(series_id)
        try:
            st = os.stat(path)
        except OSError:
            return (series_id, None, None)
        return (series_id, st.st_mtime_ns, st.st_size)

    def volume(self, series_id: str) -> Volume:
        """Decoded volume of a series, loaded once per file version."""
        key = self._key(series_id)
        return self.volumes.get_or_load(key, lambda: load_volume(self.series_path(series_id)))

    def geometry_of(self, series_id: str) -> dict:
        """JSON description of a series for the slice viewer (see ``viewer_geometry``)."""
        key = self._key(series_id)
        return self.geometry.get_or_load(key, lambda: viewer_geometry(self.volume(series_id)))

    # -- annotations ---------------------------------------------------------------------------
    def annotations(self, series_id: str) -> SeriesAnnotations:
        """The annotation history of a series (shared by all requests of this process)."""
        return self.store.series(series_id, self.shape_of(series_id))

    def shape_of(self, series_id: str) -> tuple[int, int, int]:
        """The canonical (X, Y, Z) shape of a series, from its header only (cached)."""
        key = ("shape", *self._key(series_id))
        return self.geometry.get_or_load(key, lambda: canonical_shape(self.series_path(series_id)))

    def state(self, series_id: str, version: int | None = None) -> AnnotationState:
        """The latest annotations (picking up other processes' saves), or those of ``version``."""
        annotations = self.annotations(series_id)
        if version is None:
            return annotations.refresh()
        return self.old_states.get_or_load((series_id, version),
                                           lambda: annotations.state_at(version))

    def editor(self, series_id: str, user: str, guard=None) -> SeriesEditor:
        """An editor of ``series_id`` for ``user``; ``guard`` is checked under the store's lock
        when each change is saved (see :func:`ril_dash.ui.access.edit_guard`)."""
        return SeriesEditor(self.project.config, self.volume(series_id),
                            self.annotations(series_id), user, guard=guard)

    def release_leases_of(self, user: str) -> int:
        """Give up every lease ``user`` holds (at logout); returns how many."""
        released = 0
        for lease in self.locks.all():
            if lease.user == user:
                self.locks.release(lease)
                self.audit.record(user, "unlock", lease.series_id, {"reason": "logout"})
                released += 1
        return released

    # -- images --------------------------------------------------------------------------------
    def slice_png(self, series_id: str, plane: str, index: int, frame: int,
                  center: float, width: float) -> bytes:
        return render_slice_png(self.volume(series_id), plane, index, frame, center, width)

    def thumbnails(self, series_id: str, plane: str, frame: int, center: float,
                   width: float) -> tuple[int, list[bytes]]:
        key = (self._key(series_id), plane, frame, round(center, 3), round(width, 3))
        return self.thumbs.get_or_load(
            key, lambda: render_thumbnails(self.volume(series_id), plane, frame, center, width))

    def probe(self, series_id: str, plane: str, index: int, row: int, col: int,
              frame: int) -> dict:
        return probe(self.volume(series_id), plane, index, row, col, frame)


def get_services() -> Services:
    """The :class:`Services` of the app serving the current request."""
    return current_app.extensions[EXTENSION_KEY]
