"""One process's access to a project: :class:`Services`, shared by all its requests and jobs.

It owns the open :class:`~ril_dash.project.project.Project`, its annotation store, series
leases and audit log, the workflow in force, and the shared caches of decoded volumes and
thumbnail stacks. The application layer's commands take it as their first argument; the web
layer keeps one per app (see :func:`ril_dash.ui.services.get_services`), the command line and
job workers open their own. No per-user state is kept here.

The workflow in force is decided here and only here: the file given at run time
(``--workflow``), else ``workflow:`` of project.yaml, else none; both are followed when they
change on disk (:meth:`Services.refresh_config`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from ril_dash.core.cache import ByteBudgetLRU
from ril_dash.core.render import (
    probe,
    render_slice_png,
    render_thumbnails,
    viewer_geometry,
)
from ril_dash.core.volume import Volume, canonical_shape, frame_count, load_volume
from ril_dash.errors import RilDashError
from ril_dash.models.registry import ModelRegistry
from ril_dash.project.annotation_store import (
    AnnotationState,
    AnnotationStore,
    SeriesAnnotations,
)
from ril_dash.project.audit import AuditLog
from ril_dash.project.editing import SeriesEditor
from ril_dash.project.frames import FrameAnnotations, is_per_frame, series_annotations
from ril_dash.project.project import Project
from ril_dash.project.schema import PROJECT_FILE, load_project_config
from ril_dash.project.series_locks import SeriesLocks
from ril_dash.workflow.schema import Workflow, load_workflow_file, workflow_from_project

log = logging.getLogger(__name__)


def load_workflow(project: Project, workflow_file: Path | None = None) -> Workflow | None:
    """The workflow in force: ``workflow_file`` (``--workflow``) if given, else project.yaml's
    ``workflow:``, else None. Raises InvalidWorkflow (file, line, field) when it is malformed."""
    if workflow_file is not None:
        return load_workflow_file(workflow_file)
    return workflow_from_project(project.config)


def _label(series_id: str) -> str:
    """How image errors name a series to users: its id, never the absolute path."""
    return f"series {series_id!r}"


def _stamp(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Services:
    """Cached access to one project for one process (a server, the CLI or a job worker).

    Parameters
    ----------
    project : Project
        The opened project.
    workflow_file : Path, optional
        A workflow file given at run time; default: project.yaml's ``workflow:``.
    lease_seconds : float
        How long an open series stays reserved for its editor without activity.
    background_checkpoints : bool
        Write the store's checkpoints in a thread (servers) rather than inline (the CLI).
    """

    def __init__(self, project: Project, *, workflow_file: Path | None = None,
                 volume_cache_bytes: int = 3 * 1024**3,
                 thumbnail_cache_bytes: int = 256 * 1024**2, lease_seconds: float = 120.0,
                 background_checkpoints: bool = True, plugin_dirs=()) -> None:
        self.project = project
        self.workflow_file = None if workflow_file is None else Path(workflow_file)
        #: the model bundles this project can use: its plugins/ folder, the lab's folders
        #: (``--plugins``, ``RIL_DASH_PLUGINS``) and the examples shipped with ril_dash
        self.models = ModelRegistry(project.dir, tuple(Path(d) for d in plugin_dirs))
        #: the workflow in force (None: no pools; every user may do everything but admin tasks)
        self.workflow: Workflow | None = load_workflow(project, self.workflow_file)
        self.store = AnnotationStore(project.config.annotations,
                                     background_checkpoints=background_checkpoints)
        #: series leases, shared with every server on this project (in the annotation store)
        self.locks = SeriesLocks(project.config.annotations, lease_seconds=lease_seconds)
        self.audit = AuditLog.for_project(project.dir, rotate_mb=project.config.audit_rotate_mb)
        self._config_mutex = threading.Lock()
        self._config_seen = self._config_stamps()
        self.old_states = ByteBudgetLRU(512 * 1024**2, sizeof=lambda s: s.bits.nbytes)
        self.volumes = ByteBudgetLRU(volume_cache_bytes, sizeof=lambda v: v.nbytes)
        self.thumbs = ByteBudgetLRU(thumbnail_cache_bytes, sizeof=lambda t: sum(map(len, t[1])))
        self.geometry = ByteBudgetLRU(4096 * 1024, sizeof=lambda g: 1024)

    # -- project.yaml and the workflow file -------------------------------------------------
    def _config_stamps(self) -> tuple:
        workflow = None if self.workflow_file is None else _stamp(self.workflow_file)
        return (_stamp(self.project.dir / PROJECT_FILE), workflow)

    def refresh_config(self) -> None:
        """Use project.yaml (and the workflow file) as they are on disk now if they changed
        (another server process, or another server on the share, edited the ROIs, text fields
        or workflow). A stat or two per request; an invalid file on disk keeps the last valid
        definitions (the editors refuse to write one, so someone edited it by hand) and is
        logged."""
        stamps = self._config_stamps()
        if stamps[0] is None or stamps == self._config_seen:
            return
        with self._config_mutex:
            if stamps == self._config_seen:
                return
            try:
                config = load_project_config(self.project.dir)
                if self.workflow_file is None:
                    self.workflow = workflow_from_project(config)
                else:
                    self.workflow = load_workflow_file(self.workflow_file)
                self.project.config = config
            except RilDashError as exc:
                log.error("project.yaml or the workflow file changed but is invalid; keeping "
                          "the last valid definitions: %s", exc)
            self._config_seen = stamps

    def reload_config(self) -> None:
        """Use project.yaml as it is on disk now (after this process changed it)."""
        self.project.config = load_project_config(self.project.dir)
        if self.workflow_file is None:
            self.workflow = workflow_from_project(self.project.config)

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
        return self.volumes.get_or_load(key, lambda: load_volume(self.series_path(series_id),
                                                                 label=_label(series_id)))

    def geometry_of(self, series_id: str) -> dict:
        """JSON description of a series for the slice viewer (see ``viewer_geometry``)."""
        key = self._key(series_id)
        modality = self.declared_modality(series_id)
        return self.geometry.get_or_load((*key, modality), lambda: viewer_geometry(
            self.volume(series_id), modality))

    def declared_modality(self, series_id: str) -> str | None:
        """The series' ``Modality`` metadata column (any case of the column name), else the
        project's ``settings.modality`` unless ``auto``; ``None``: guess from the values."""
        row = self.project.metadata.get(series_id) or {}
        for column, value in row.items():
            if column.strip().casefold() == "modality" and str(value).strip():
                return str(value).strip()
        modality = self.project.config.modality
        return None if modality == "auto" else modality

    # -- annotations ---------------------------------------------------------------------------
    def annotations(self, series_id: str,
                    frame: int = 0) -> SeriesAnnotations | FrameAnnotations:
        """The annotations of a series as a 3D series (shared by all requests of this process):
        its history itself, or for a 4D series with masks per frame the view of ``frame``
        (see :mod:`ril_dash.project.frames`)."""
        shape, frames = self._layout(series_id)
        whole = series_annotations(self.store, series_id, shape, frames)
        if not is_per_frame(whole, shape):
            return whole
        return FrameAnnotations(whole, int(frame), frames)

    def whole_annotations(self, series_id: str) -> SeriesAnnotations:
        """The whole annotation history of a series: (X, Y, Z), or (X, Y, Z·T) for a 4D series
        with masks per frame."""
        return series_annotations(self.store, series_id, *self._layout(series_id))

    def shape_of(self, series_id: str) -> tuple[int, int, int]:
        """The canonical (X, Y, Z) shape of a series, from its header only (cached)."""
        return self._shape(series_id, self._key(series_id))

    def frames_of(self, series_id: str) -> int:
        """The number of frames of a series (1 for a 3D one), from its header only (cached)."""
        return self._frames(series_id, self._key(series_id))

    def _layout(self, series_id: str) -> tuple[tuple[int, int, int], int]:
        """(shape, frames) of a series under one look at its file (see :meth:`_key`)."""
        key = self._key(series_id)
        return self._shape(series_id, key), self._frames(series_id, key)

    def _shape(self, series_id: str, key: tuple) -> tuple[int, int, int]:
        return self.geometry.get_or_load(("shape", *key), lambda: canonical_shape(
            self.series_path(series_id), label=_label(series_id)))

    def _frames(self, series_id: str, key: tuple) -> int:
        return self.geometry.get_or_load(("frames", *key), lambda: frame_count(
            self.series_path(series_id), label=_label(series_id)))

    def state(self, series_id: str, version: int | None = None,
              frame: int = 0) -> AnnotationState:
        """The latest annotations (picking up other processes' saves), or those of ``version``,
        of ``frame`` for a series with masks per frame."""
        annotations = self.annotations(series_id, frame)
        if version is None:
            return annotations.refresh()
        # keyed by the version file's identity too: a repair saves a new file of that number
        key = (series_id, version, annotations.version_stamp(version))
        whole = self.old_states.get_or_load(key, lambda: self.whole_annotations(
            series_id).state_at(version))
        return annotations.view(whole) if isinstance(annotations, FrameAnnotations) else whole

    def editor(self, series_id: str, user: str, guard=None, frame: int = 0) -> SeriesEditor:
        """An editor of ``series_id`` (of ``frame`` for a series with masks per frame) for
        ``user``; ``guard`` is checked under the store's lock when each change is saved (see
        :func:`ril_dash.application.leases.edit_guard`)."""
        return SeriesEditor(self.project.config, self.volume(series_id),
                            self.annotations(series_id, frame), user, guard=guard)

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
