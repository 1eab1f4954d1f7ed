"""A project on disk: its validated project.yaml, its series and their metadata.

:class:`Project` is what the UI and the CLI hold. It never writes inside the images folder;
:func:`init_project` writes only project.yaml and creates the annotation folder.

Series ids come from the UI (a URL, a store); :meth:`Project.get_series` looks them up in the
discovered series only, which is the guard against path traversal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ril_dash.core.atomic_io import atomic_write_bytes, atomic_write_text
from ril_dash.errors import InvalidProject, SeriesNotFound
from ril_dash.project.checked_paths import CheckedPaths
from ril_dash.project.discovery import (SeriesRecord, build_folder_tree, check_inside_images,
                                        scan_series)
from ril_dash.project.metadata import load_metadata
from ril_dash.project.project_yaml_writer import default_project_yaml
from ril_dash.project.schema import PROJECT_FILE, ProjectConfig, load_project_config


#: the folder listings of the last scan of the images (in the project folder; see
#: :func:`~ril_dash.project.discovery.scan_series`)
SERIES_INDEX = ".series-index.json"


class Project:
    """An opened project: ``dir``, ``config``, ``series`` (list) and ``metadata`` (dict).

    Use :meth:`Project.open`; call :meth:`rescan` after files were added to the images folder.
    """

    def __init__(self, project_dir: Path, config: ProjectConfig) -> None:
        self.dir = project_dir
        self.config = config
        self.series: list[SeriesRecord] = []
        self.metadata: dict[str, dict[str, str]] = {}
        self._by_id: dict[str, SeriesRecord] = {}
        self._tree: dict[str, dict] | None = None
        #: the series files found inside the images folder (see :meth:`series_path`)
        self._checked = CheckedPaths(with_ctime=True)

    @classmethod
    def open(cls, project_dir: str | os.PathLike) -> "Project":
        """Load project.yaml, check the folders, discover series and read metadata.

        Raises
        ------
        InvalidProject
            No project.yaml, an invalid one, a missing images folder or metadata problems.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / "images" / "P1").mkdir(parents=True)
        >>> _ = (d / "images" / "P1" / "t1.nii.gz").write_bytes(b"")
        >>> _ = (d / "project.yaml").write_text("name: Demo\\nimages: images\\n")
        >>> project = Project.open(d)
        >>> [s.id for s in project.series], project.series_path("P1/t1.nii.gz").name
        (['P1/t1.nii.gz'], 't1.nii.gz')
        """
        project_dir = Path(project_dir).expanduser().resolve()
        if not project_dir.is_dir():
            raise InvalidProject(f"project folder {project_dir} does not exist; create it with "
                                 f"`ril-dash init {project_dir} --images DIR`")
        project = cls(project_dir, load_project_config(project_dir))
        project.rescan()
        return project

    def _where(self, field: str) -> str:
        source = self.config.source or (self.dir / PROJECT_FILE)
        line = self.config.line_of(field)
        return f"{source} line {line}: {field}" if line else f"{source}: {field}"

    def _load_metadata(self) -> dict[str, dict[str, str]]:
        meta = self.config.metadata
        if meta is None:
            return {}
        if not meta.file.is_file():
            raise InvalidProject(f"{self._where('metadata.file')}: the metadata file "
                                 f"{meta.file} does not exist; create it or fix the path")
        return load_metadata(meta.file, meta.path_column)

    def _scan(self, images: Path) -> list[SeriesRecord]:
        """Discover the series, reusing the listings of unchanged folders kept in
        ``SERIES_INDEX`` by the previous scan (100,000 series: about a third of the time);
        the index is written again when a folder changed (never fails the scan)."""
        index_file = self.dir / SERIES_INDEX
        try:
            stored = json.loads(index_file.read_bytes())
            previous = stored["folders"] if stored.get("images") == str(images) else {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            previous = {}
        series, index = scan_series(images, previous)
        if index != previous:
            try:
                atomic_write_bytes(index_file, json.dumps(
                    {"images": str(images), "folders": index}, separators=(",", ":")).encode())
            except OSError:
                pass  # a read-only project folder: scan in full next time
        return series

    def rescan(self) -> list[SeriesRecord]:
        """Rediscover the series and reload the metadata; return the new series list."""
        images = self.config.images
        if not images.is_dir():
            raise InvalidProject(f"{self._where('images')}: the images folder {images} does "
                                 f"not exist; fix the path or mount the share")
        series = self._scan(images)
        metadata = self._load_metadata()
        # swap whole objects so a concurrent reader sees either the old or the new state
        self._by_id = {record.id: record for record in series}
        self.series = series
        self.metadata = metadata
        self._tree = None
        return series

    @property
    def name(self) -> str:
        """The project's display name."""
        return self.config.name

    def get_series(self, series_id: str) -> SeriesRecord:
        """Return the discovered series ``series_id``; raise SeriesNotFound if it is unknown.

        Only ids found by discovery are accepted, so ``../`` tricks cannot reach other files.
        """
        record = self._by_id.get(series_id) if isinstance(series_id, str) else None
        if record is None:
            raise SeriesNotFound(f"series {str(series_id)[:200]!r} is not in project "
                                 f"{self.config.name!r}; "
                                 f"pick one from the series list, or rescan if it was just "
                                 f"added")
        return record

    def series_path(self, series_id: str) -> Path:
        """Return the absolute path of a discovered series file.

        Checked at each call (i.e. each time the file is opened): SeriesNotFound if the file
        now resolves outside the images folder (e.g. replaced by a symbolic link since
        discovery). The full check resolves every folder of the path, which a request asks a
        dozen times; it is skipped while the path still leads to the very file (device, inode,
        ctime) that passed it last time: a file or folder swapped for a link since leads to
        another file, which is checked again.
        """
        record = self.get_series(series_id)
        images = self.config.images
        path = images / record.id
        self._checked.ensure(record.id, path, lambda: check_inside_images(images, record.id),
                             context=(str(images),))
        return path

    def folder_tree(self) -> dict[str, dict]:
        """Return :func:`~ril_dash.project.discovery.build_folder_tree` of the series."""
        if self._tree is None:
            self._tree = build_folder_tree(self.series)
        return self._tree

    def __repr__(self) -> str:
        return f"Project({str(self.dir)!r}, {len(self.series)} series)"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _stored(path: Path, project_dir: Path) -> str:
    try:
        return path.relative_to(project_dir).as_posix() or "."
    except ValueError:
        return str(path)


def init_project(project_dir: str | os.PathLike, images_dir: str | os.PathLike,
                 annotations_dir: str | os.PathLike | None = None, *,
                 name: str | None = None) -> Project:
    """Create a project: write project.yaml and the annotation folder, then open it.

    Parameters
    ----------
    project_dir : path-like
        Folder for project.yaml (created if missing).
    images_dir : path-like
        Existing folder of NIfTI series; relative paths are taken from the working folder.
        Nothing is ever written inside it.
    annotations_dir : path-like, optional
        Annotation store; default ``<project_dir>/annotations``.
    name : str, optional
        Display name; default the project folder's name.

    Paths inside ``project_dir`` are stored relative to it, others as absolute paths.

    Raises
    ------
    InvalidProject
        If project.yaml exists, the images folder is missing, or the project or annotation
        folder would lie inside the images folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "scans").mkdir()
    >>> project = init_project(d / "proj", d / "scans", name="Liver study")
    >>> project.config.name, project.config.annotations.name, project.series
    ('Liver study', 'annotations', [])
    """
    project_dir = Path(project_dir).expanduser().resolve()
    images = Path(images_dir).expanduser().resolve()
    annotations = (Path(annotations_dir).expanduser().resolve() if annotations_dir is not None
                   else project_dir / "annotations")
    target = project_dir / PROJECT_FILE
    if target.exists():
        raise InvalidProject(f"{target} already exists; edit it, or choose another folder")
    if not images.is_dir():
        raise InvalidProject(f"the images folder {images} does not exist; give an existing "
                             f"folder of NIfTI series with --images")
    if _inside(annotations, images):
        raise InvalidProject(f"the annotation folder {annotations} is inside the images folder "
                             f"{images}; images are read-only, so choose a folder outside it")
    if _inside(images, annotations):
        raise InvalidProject(f"the images folder {images} is inside the annotation folder "
                             f"{annotations}; keep the two folders apart")
    if _inside(project_dir, images):
        raise InvalidProject(f"the project folder {project_dir} is inside the images folder "
                             f"{images}; images are read-only, so put the project elsewhere")
    text = default_project_yaml(name or project_dir.name, _stored(images, project_dir),
                                _stored(annotations, project_dir))
    project_dir.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return Project.open(project_dir)
