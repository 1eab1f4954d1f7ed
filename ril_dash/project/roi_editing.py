"""Editing the dataset-level ROI list of a project's project.yaml, safely.

Every change (:func:`add_roi`, :func:`update_roi`, :func:`move_roi`, :func:`delete_roi`) is a
read-modify-write of project.yaml under a :class:`filelock.FileLock`
(``<project>/.project.yaml.lock``) that optionally compares the file's SHA-256 with the one the
caller saw (``expected_sha256=``, from :func:`read_project_yaml`; a mismatch raises
:class:`~ril_dash.errors.VersionConflict`), validates the new text (``dump_project_yaml`` →
``parse_project_yaml``) *before* writing, so an invalid result is never written, and writes it
atomically. Rewriting the file drops its comments and normalises its layout (every setting is
kept); the ROI manager page says so.

The mask value and type of an ROI are fixed once created: masks store the value, so changing it
would silently re-label them. Deleting an ROI with annotations first commits, in each affected
series, a version (op ``"delete_roi"``) clearing its voxels and points -- the history keeps
them, so rollback or undo restores them -- then removes it from project.yaml; it is refused
unless ``confirm_series_count`` equals the count :func:`series_using_roi` finds (the number the
user was shown).

Developer notes::

    read_project_yaml ─► (config, sha) ─► UI ─► add/update/move/delete(expected_sha256=sha)
    edit_project_yaml: lock ─► read ─► CAS ─► change ─► dump ─► parse ─► [before_write] ─► write
    delete_roi's before_write: series_using_roi ─► confirm? ─► commit "delete_roi" per series
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import atomic_write_text
from ril_dash.core.paint import Rules, erase_all
from ril_dash.errors import EditRefused, InvalidProject, StorageError, VersionConflict
from ril_dash.project.annotation_store import AnnotationStore, annotated_series
from ril_dash.project.history import SUFFIX, read_version, version_name
from ril_dash.project.named_items import (
    added,
    check_fixed,
    check_offset,
    clean_bool,
    clean_name,
    find_index,
    moved,
    removed,
    updated,
)
from ril_dash.project.project_yaml_writer import dump_project_yaml
from ril_dash.project.schema import (
    MAX_MASK_VALUE,
    PROJECT_FILE,
    ROI_TYPES,
    ProjectConfig,
    RoiDef,
    parse_project_yaml,
)

LOCK_FILE = ".project.yaml.lock"
LOCK_TIMEOUT = 10.0
_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_RADLEX_RE = re.compile(r"^RID[0-9]+$")
_LINE_PREFIX = re.compile(r"^\S*project\.yaml line \d+: (rois\[\d+\]\.\w+: )?")


class DeleteNeedsConfirmation(EditRefused):
    """Deleting an ROI that has annotations needs ``confirm_series_count`` = ``len(series)``."""

    def __init__(self, message: str, series: list[str]) -> None:
        super().__init__(message)
        self.series = series


def _project_file(project_dir) -> Path:
    return Path(project_dir).expanduser().resolve() / PROJECT_FILE


def _load(path: Path) -> tuple[ProjectConfig, str]:
    """The validated config of ``path`` and the SHA-256 of its bytes."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidProject(f"no {PROJECT_FILE} in {path.parent}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidProject(f"{path} cannot be read ({exc}); fix the file") from None
    config = parse_project_yaml(text, project_dir=path.parent, source_name=str(path))
    return replace(config, source=path), hashlib.sha256(data).hexdigest()


def read_project_yaml(project_dir: str | os.PathLike) -> tuple[ProjectConfig, str]:
    """The validated project.yaml and the SHA-256 of its bytes (pass it as ``expected_sha256``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "project.yaml").write_text("name: P\\nimages: imgs\\n")
    >>> config, sha = read_project_yaml(d)
    >>> config.rois, len(sha)
    ((), 64)
    """
    return _load(_project_file(project_dir))


# ---------------------------------------------------------------- validation of user input


def _clean_radlex(radlex) -> str | None:
    if radlex is None or (isinstance(radlex, str) and not radlex.strip()):
        return None
    text = str(radlex).strip().upper()
    text = "RID" + text if text.isdigit() else text
    if not _RADLEX_RE.match(text):
        raise InvalidProject(f"{str(radlex)[:40]!r} is not a RadLex ID; use 'RID' followed by "
                             f"digits, e.g. RID58 (liver), or leave it empty.")
    return text


def _clean_colour(color) -> str:
    if not isinstance(color, str) or not _COLOUR_RE.match(color.strip()):
        raise InvalidProject(f"{str(color)[:40]!r} is not a colour; use #rrggbb, e.g. #a0522d.")
    return color.strip().lower()


def next_free_value(config: ProjectConfig) -> int:
    """The smallest unused mask value (a power of two in ``multi_label`` mode).

    Examples
    --------
    >>> from ril_dash.project.schema import parse_project_yaml
    >>> text = "name: P\\nimages: i\\nrois:\\n- {name: A, color: '#000000', value: 1}\\n"
    >>> next_free_value(parse_project_yaml(text, project_dir="/p"))
    2
    >>> multi = text.replace("images: i", "images: i\\nsettings: {overlap: multi_label}")
    >>> next_free_value(parse_project_yaml(multi.replace("value: 1", "value: 2"),
    ...                                    project_dir="/p"))
    1
    """
    used = {r.value for r in config.rois}
    if config.overlap == "multi_label":
        for bit in range(31):
            if (1 << bit) not in used:
                return 1 << bit
        raise InvalidProject("All 31 multi_label mask values (1, 2, 4, … 2^30) are used; "
                             "delete an ROI first.")
    value = 1
    while value in used:
        value += 1
    return value


# ---------------------------------------------------------------- the read-modify-write
def edit_project_yaml(project_dir, expected_sha256: str | None,
          change: Callable[[ProjectConfig], ProjectConfig],
          before_write: Callable[[ProjectConfig, ProjectConfig], None] | None = None,
          ) -> ProjectConfig:
    """Lock, read, compare-and-swap, apply ``change``, validate the new text, write it."""
    path = _project_file(project_dir)
    try:
        with FileLock(path.parent / LOCK_FILE, timeout=LOCK_TIMEOUT):
            old, sha = _load(path)
            if expected_sha256 is not None and sha != expected_sha256:
                raise VersionConflict("project.yaml was changed by someone else; reload the ROI "
                                      "list and make your change again.")
            text = dump_project_yaml(change(old), path.parent)
            try:
                checked = parse_project_yaml(text, project_dir=path.parent,
                                             source_name=PROJECT_FILE)
            except InvalidProject as exc:
                raise InvalidProject("The change was not saved: "
                                     + _LINE_PREFIX.sub("", str(exc))) from None
            if before_write is not None:
                before_write(old, checked)
            try:
                atomic_write_text(path, text)
            except OSError as exc:
                raise StorageError(f"could not write {path} ({exc}); nothing was changed, fix "
                                   f"the permissions or free space and try again") from exc
            return replace(checked, source=path)
    except Timeout:
        raise StorageError(f"{path} is being changed by another process for more than "
                           f"{LOCK_TIMEOUT:g} s; try again") from None


def add_roi(project_dir, name: str, radlex: str | None, color: str, value: int | None = None,
            type: str = "area", locked: bool = False, *,
            expected_sha256: str | None = None) -> ProjectConfig:
    """Append an ROI; ``value=None`` picks :func:`next_free_value`. Returns the new config.

    Raises
    ------
    InvalidProject
        Empty, too long or duplicate (case-insensitive) name, bad RadLex ID or colour, a value
        that is taken, out of range or (multi_label) not a power of two, an unknown type.
    VersionConflict
        ``expected_sha256`` is not the file's current hash.
    """
    name = clean_name(name, "ROI", "Liver")
    radlex = _clean_radlex(radlex)
    color = _clean_colour(color)
    locked = clean_bool(locked, "locked")
    if type not in ROI_TYPES:
        raise InvalidProject(f"{type!r} is not an ROI type; use one of {', '.join(ROI_TYPES)}.")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                              or not 1 <= value <= MAX_MASK_VALUE):
        raise InvalidProject(f"{value!r} is not a valid mask value; use a whole number from 1 "
                             f"to {MAX_MASK_VALUE} (0 means background), or leave it empty.")

    def change(config: ProjectConfig) -> ProjectConfig:
        v = next_free_value(config) if value is None else int(value)
        other = next((r.name for r in config.rois if r.value == v), None)
        if other is not None:
            raise InvalidProject(f"Mask value {v} is already used by {other!r}; give each ROI "
                                 f"its own value, or leave the value empty.")
        return replace(config, rois=added(config.rois, RoiDef(name, radlex, color, v, type,
                                                              locked), "ROI"))

    return edit_project_yaml(project_dir, expected_sha256, change)


_UNSET = object()


def update_roi(project_dir, old_name: str, *, name: str | None = None,
               radlex: str | None | object = _UNSET, color: str | None = None,
               locked: bool | None = None, value: int | None = None, type: str | None = None,
               expected_sha256: str | None = None) -> ProjectConfig:
    """Rename or recolour an ROI, change its RadLex ID (``""`` clears it) or its lock.

    ``value`` and ``type`` are accepted only to refuse a change with a clear message: the mask
    value and kind of an ROI are fixed once created (existing masks would be re-labelled).
    ``radlex=None`` (like every other ``None``) leaves the field as it is.
    """
    new_name = None if name is None else clean_name(name, "ROI", "Liver")
    new_radlex = _UNSET if radlex is _UNSET or radlex is None else _clean_radlex(radlex)
    new_color = None if color is None else _clean_colour(color)
    new_locked = None if locked is None else clean_bool(locked, "locked")

    def change_roi(roi: RoiDef, final_name: str) -> RoiDef:
        check_fixed(roi, "mask value", "value", value, "existing masks store it, so changing "
                    "it would silently re-label them. Add a new ROI instead.")
        check_fixed(roi, "type", "type", type, f"existing annotations were made as {roi.type}s "
                    f"and would be silently re-interpreted. Add a new ROI instead.")
        return replace(roi, name=final_name,
                       radlex=roi.radlex if new_radlex is _UNSET else new_radlex,
                       color=roi.color if new_color is None else new_color,
                       locked=roi.locked if new_locked is None else new_locked)

    return edit_project_yaml(project_dir, expected_sha256, lambda config: replace(
        config, rois=updated(config.rois, old_name, new_name, "ROI", "reload the ROI list",
                             change_roi)))


def move_roi(project_dir, name: str, offset: int, *,
             expected_sha256: str | None = None) -> ProjectConfig:
    """Move an ROI ``offset`` places (−1 up, +1 down), clamped to the list's ends."""
    check_offset(offset)
    return edit_project_yaml(project_dir, expected_sha256, lambda config: replace(
        config, rois=moved(config.rois, name, offset, "ROI", "reload the ROI list")))


# ---------------------------------------------------------------- deleting
def _series_shape(root: Path, series_id: str) -> tuple[int, int, int]:
    meta = read_version(root / (series_id + SUFFIX) / "v" / version_name(1), arrays=False).meta
    return tuple(int(n) for n in meta["shape"])


def _uses(state, value: int) -> bool:
    bit, bits = state.slots.get(value), state.bits
    return bool(state.points.get(value)) or (
        bit is not None and bool(np.any(bits & bits.dtype.type(1 << int(bit)))))


def series_using_roi(project, value: int, *, store: AnnotationStore | None = None) -> list[str]:
    """Sorted ids of the series whose latest annotations hold voxels or points of ``value``.

    ``project`` is a :class:`~ril_dash.project.project.Project` or a
    :class:`~ril_dash.project.schema.ProjectConfig` (only its annotation folder is used).
    """
    root = Path(getattr(project, "config", project).annotations)
    store = store or AnnotationStore(root)
    found = []
    for series_id in sorted(annotated_series(root)):
        try:
            state = store.series(series_id, _series_shape(root, series_id)).refresh()
        except (OSError, KeyError, ValueError) as exc:
            raise StorageError(f"the annotations of {series_id} cannot be read ({exc}); fix or "
                               f"move that annotation folder before deleting ROIs") from exc
        if _uses(state, int(value)):
            found.append(series_id)
    return found


def _clear_roi(store: AnnotationStore, root: Path, series_id: str, value: int,
               user: str) -> int | None:
    """Commit one ``delete_roi`` version clearing ``value`` in a series (retries conflicts)."""
    series = store.series(series_id, _series_shape(root, series_id))
    for attempt in range(5):
        state = series.refresh()
        if not _uses(state, value):
            return None
        bit = state.slots.get(value)
        delta = (None if bit is None else  # erasing ignores the overlap mode; no locks apply
                 erase_all(np.asarray(state.bits), bit, Rules("multi_label")))
        points = ({k: v for k, v in state.points.items() if k != value}
                  if state.points.get(value) else None)
        meta = {"user": user, "op": "delete_roi", "roi": int(value)}
        try:
            return series.commit(state.version, delta, meta, points=points)
        except VersionConflict:
            if attempt == 4:
                raise
    return None


def delete_roi(project_dir, name: str, *, confirm_series_count: int | None = None,
               expected_sha256: str | None = None, user: str = "ril_dash") -> ProjectConfig:
    """Remove an ROI; its annotations are cleared first, as a new version of each series.

    Raises
    ------
    DeleteNeedsConfirmation
        The ROI has annotations in N series and ``confirm_series_count`` is not N (show the
        user N, then pass it); ``exc.series`` lists them.
    EditRefused
        The ROI is locked (unlock it first).
    """

    def change(config: ProjectConfig) -> ProjectConfig:
        rois, roi = removed(config.rois, name, "ROI", "reload the ROI list")
        if roi.locked:
            raise EditRefused(f"{roi.name!r} is locked; unlock it before deleting it.")
        return replace(config, rois=rois)

    def before_write(old: ProjectConfig, new: ProjectConfig) -> None:
        roi = old.rois[find_index(list(old.rois), name, "ROI", "reload the ROI list")]
        root = old.annotations
        store = AnnotationStore(root)
        using = series_using_roi(old, roi.value, store=store)
        if using and confirm_series_count != len(using):
            where = ("" if confirm_series_count is None else
                     f" (you confirmed {confirm_series_count}; it changed meanwhile)")
            raise DeleteNeedsConfirmation(
                f"{roi.name} has annotations in {len(using)} series{where}; deleting it removes "
                f"them from the current masks (they stay in each series' history). Confirm with "
                f"the number of series.", using)
        for series_id in using:
            _clear_roi(store, root, series_id, roi.value, user)

    return edit_project_yaml(project_dir, expected_sha256, change, before_write)
