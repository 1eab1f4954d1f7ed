"""Export a project's annotations as training data: NIfTI masks aligned with their sources,
points, the mask-value mapping and statistics tables (CSV and Excel).

Layout of ``out_dir`` (the series folders mirror the dataset)::

    masks/<series id without .nii[.gz]>/<roi name>.nii.gz   binary, one per ROI with voxels
    masks/<series id without .nii[.gz]>/combined.nii.gz     bitwise OR of the ROIs' mask values
    points.csv  mapping.json  mapping.csv  roi_statistics.csv  ril_dash_export.xlsx
    images/<series id>                                      with copy_images
    annotations/<series id>.ril/                            with copy_annotations

Masks have the source's shape (X, Y, Z, and T for a 4D series: the mask of each frame, or for a
4D series annotated before masks per frame its one mask in every frame), affine, qform/sform
codes and zooms. The statistics of a 4D series have one row per ROI and frame holding it, the
ROI named ``"<name> [frame <t>]"`` (t from 0, the index along the fourth axis, as the
viewer's frame slider shows it). Every file
is written to a temp file in its folder (named ``.<name>.ril-partial-<random><suffix>``) and
renamed, so only complete files ever carry a final name; the temp files a killed export leaves
behind are removed by :func:`remove_partial_files`, which the next export into the same folder
runs first (and the job store runs when it finds the export's process dead). Nothing is ever
written inside the images folder or the annotation store.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ril_dash.core.stats import roi_statistics
from ril_dash.core.volume import load_volume
from ril_dash.errors import ExportError, RilDashError
from ril_dash.project.annotation_store import AnnotationStore, annotated_series
from ril_dash.project.export_tables import (
    PARTIAL_TAG,
    POINT_COLUMNS,
    STAT_COLUMNS,
    Table,
    atomic_file,
    is_partial,
    mapping_table,
    write_csv,
    write_excel,
    write_mapping,
)
from ril_dash.project.frames import frame_masks, series_annotations
from ril_dash.project.history import SUFFIX
from ril_dash.project.text_values import format_text_value

__all__ = ["ExportReport", "check_output_dir", "export_project", "mask_folder_name",
           "remove_partial_files", "sanitise_name", "select_series"]

#: temp files untouched for this long are leftovers of a killed export (not one still writing)
STALE_PARTIAL = 300.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NIFTI_EXT = (".nii.gz", ".nii")


@dataclass
class ExportReport:
    """What an export did: series exported / skipped (with reasons), files written, counts."""

    out_dir: Path
    exported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    n_masks: int = 0
    n_points: int = 0
    n_stat_rows: int = 0
    cancelled: bool = False

    def summary(self) -> str:
        text = (f"exported {len(self.exported)} series ({self.n_masks} mask files, "
                f"{self.n_points} points, {self.n_stat_rows} statistics rows) to {self.out_dir}; "
                f"{len(self.files)} files written, {len(self.skipped)} series skipped")
        return text + (" (cancelled)" if self.cancelled else "")


# ------------------------------------------------------------------------ names and safety
def sanitise_name(name: str, fallback: str = "roi") -> str:
    """A file-name-safe version of ``name``: letters, digits, ``._-`` only, no leading dot.

    >>> sanitise_name("Liver / segment IV"), sanitise_name("../.."), sanitise_name("")
    ('Liver_segment_IV', 'roi', 'roi')
    """
    clean = _UNSAFE.sub("_", str(name)).strip("._")
    return clean[:120] or fallback


def mask_folder_name(series_id: str) -> str:
    """Relative folder of a series' masks: its id without ``.nii.gz`` / ``.nii``, each part
    sanitised (so it can never leave ``out_dir/masks``).

    >>> mask_folder_name("P1/ST 1/arterial.nii.gz"), mask_folder_name("../x.nii")
    ('P1/ST_1/arterial', 'series/x')
    """
    stem = series_id
    for ext in _NIFTI_EXT:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return "/".join(sanitise_name(p, "series") for p in stem.replace("\\", "/").split("/"))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_dir(project, out_dir: str | os.PathLike) -> Path:
    """Resolve ``out_dir`` and refuse an unsafe or unwritable one (raises ExportError)."""
    out = Path(out_dir).expanduser().resolve()
    images = Path(project.config.images).resolve()
    store = Path(project.config.annotations).resolve()
    for name, folder in (("images folder", images), ("annotation store", store)):
        if _inside(out, folder):
            raise ExportError(f"refusing to export into {out}: it is inside the project's "
                              f"{name} {folder}, which an export never writes to. Choose a "
                              f"folder outside it, e.g. {folder.parent / 'export'}")
        if _inside(folder, out):
            raise ExportError(f"refusing to export into {out}: it contains the project's {name} "
                              f"{folder}, so exported files would mix with the project's own. "
                              f"Choose an empty folder elsewhere, e.g. {out / 'export'}")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ExportError(f"cannot export into {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ExportError(f"cannot export into {out}: no write permission on {existing}. "
                          "Choose a folder you can write to, or fix its permissions")
    return out


def remove_partial_files(out_dir: str | os.PathLike, min_age: float = 0.0) -> list[Path]:
    """Remove the temp files and folders a killed export left in ``out_dir`` (top level and its
    ``masks/``, ``images/`` and ``annotations/`` trees, the only places an export writes) that
    were last changed ``min_age`` seconds ago or more; return what was removed. Nothing else is
    touched."""
    out = Path(out_dir)
    now = time.time()
    removed: list[Path] = []
    if not out.is_dir():
        return removed
    candidates = [p for p in out.iterdir() if is_partial(p.name)]
    for tree in ("masks", "images", "annotations"):
        if (out / tree).is_dir() and not (out / tree).is_symlink():
            for folder, dirs, files in os.walk(out / tree):
                candidates += [Path(folder, n) for n in files + dirs if is_partial(n)]
                dirs[:] = [d for d in dirs if not is_partial(d)]
    for path in candidates:
        try:
            if now - path.lstat().st_mtime < min_age:
                continue  # maybe another export into this folder, still writing it
        except OSError:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def select_series(project, series: str | Iterable[str] = "all") -> tuple[list[str], list]:
    """Series ids to export (``"all"``, a glob on the ids, or a list of ids) and the unknown
    ids of a list as ``(id, reason)`` pairs."""
    ids = [s.id for s in project.series]
    if isinstance(series, str):
        return (ids if series == "all" else fnmatch.filter(ids, series)), []
    known = set(ids)
    wanted = list(dict.fromkeys(series))
    return ([s for s in wanted if s in known],
            [(s, "not a series of the project") for s in wanted if s not in known])


# ------------------------------------------------------------------------ writing
def _mask_header(src_header, shape, dtype):
    """A NIfTI-1 header with the source's geometry (affines, codes, zooms, units)."""
    hdr = nib.Nifti1Header()
    qform, qcode = src_header.get_qform(coded=True)
    sform, scode = src_header.get_sform(coded=True)
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    zooms = tuple(float(z) for z in src_header.get_zooms())
    hdr.set_zooms((zooms + (1.0,) * len(shape))[:len(shape)])
    hdr.set_xyzt_units(*src_header.get_xyzt_units())
    if qcode:
        hdr.set_qform(qform, int(qcode))
    else:
        hdr.set_qform(src_header.get_qform(), 0)  # keeps pixdim / quatern as in the source
    hdr.set_sform(sform if scode else src_header.get_sform(), int(scode))
    hdr["descrip"] = b"ril_dash export"
    return hdr


def _save_mask(path: Path, arr: np.ndarray, src_header) -> Path:
    hdr = _mask_header(src_header, arr.shape, arr.dtype)
    img = nib.Nifti1Image(np.asfortranarray(arr), None, hdr)  # NIfTI order: no re-copy
    return atomic_file(path, lambda temp: nib.save(img, os.fspath(temp)))


def _file_order(volume, bits: np.ndarray) -> np.ndarray:
    """The series' bits in the file's voxel order: (X, Y, Z) for a 3D series, (X, Y, Z, T) for
    a 4D one (its masks per frame, or its shared mask in every frame)."""
    if volume.n_frames == 1:
        return volume.to_file_order(bits)
    masks = frame_masks(bits, volume.data.shape[:3], volume.n_frames)
    return np.stack([volume.to_file_order(masks[..., t]) for t in range(volume.n_frames)], -1)


def _value_dtype(max_value: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def _combined(bits: np.ndarray, slots: dict[int, int]) -> np.ndarray:
    """Voxel value = bitwise OR of the mask values of the slots set there."""
    total = 0
    for value in slots:
        total |= int(value)
    dtype = _value_dtype(total)
    if bits.dtype.itemsize <= 2:  # one lookup instead of a pass per ROI
        codes = np.arange(1 << (8 * bits.dtype.itemsize), dtype=np.uint64)
        lut = np.zeros(codes.shape, np.uint64)
        for value, bit in slots.items():
            lut[(codes >> np.uint64(bit)) & np.uint64(1) == 1] |= np.uint64(value)
        return lut.astype(dtype)[bits]
    out = np.zeros(bits.shape, dtype)
    for value, bit in slots.items():
        out[(bits >> bits.dtype.type(bit)) & bits.dtype.type(1) != 0] |= dtype.type(value)
    return out


def _roi_files(rois, slots) -> dict[int, str]:
    """Mask value → file stem for every value in use, unique and never 'combined'."""
    names: dict[int, str] = {}
    by_value = {int(r.value): r for r in rois}
    for value in sorted(slots):
        roi = by_value.get(int(value))
        stem = sanitise_name(roi.name) if roi else f"value_{value}"
        if stem.lower() == "combined" or stem.lower() in {n.lower() for n in names.values()}:
            stem = f"{stem}_{value}"
        names[int(value)] = stem
    return names


def _text_cell(value):
    """A text annotation as a table cell: a ``number`` field's value stays a number (a CSV
    never quotes it, a workbook holds it as a number), anything else its text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return format_text_value(value)


class _Exporter:
    def __init__(self, project, out: Path, opts: dict, report: ExportReport) -> None:
        self.project, self.out, self.opts, self.report = project, out, opts, report
        self.store = AnnotationStore(project.config.annotations)
        self.rois = {int(r.value): r for r in project.config.rois}
        self.stats = Table("statistics", STAT_COLUMNS)
        self.points = Table("points", POINT_COLUMNS)
        self.texts = Table("text_annotations",
                           ("series", *(f.name for f in project.config.text_fields)))

    def _name(self, value: int) -> tuple[str, str | None]:
        roi = self.rois.get(int(value))
        return (roi.name, roi.radlex) if roi else (f"value_{value}", None)

    def series(self, series_id: str) -> None:
        path = self.project.series_path(series_id)
        volume = load_volume(path)  # InvalidImage → skipped by the caller
        header = nib.load(os.fspath(path)).header
        shape, n_frames = volume.data.shape[:3], volume.n_frames
        state = series_annotations(self.store, series_id, shape, n_frames).refresh()
        bits, slots = state.bits, {int(v): int(b) for v, b in state.slots.items()}
        folder = self.out / "masks" / mask_folder_name(series_id)
        opts, written = self.opts, []
        area = {v: b for v, b in slots.items()
                if self.rois.get(v) is None or self.rois[v].type != "point"}
        # one transposed copy in NIfTI (Fortran) order; every mask below is elementwise on it
        file_bits = np.asfortranarray(_file_order(volume, bits))
        masks = {}
        for value, bit in area.items():
            mask = (file_bits >> file_bits.dtype.type(bit)) & file_bits.dtype.type(1)
            if mask.any():
                masks[value] = mask.astype(np.uint8, copy=False)
        present = {v: area[v] for v in masks}
        if opts["per_roi"] or opts["combined"]:
            stems = _roi_files(self.rois.values(), present)
            for value in masks if opts["per_roi"] else ():
                written.append(_save_mask(folder / f"{stems[value]}.nii.gz", masks[value],
                                          header))
            if opts["combined"] and present:
                combined = _combined(file_bits.T, present).T  # C-order lookup → Fortran
                written.append(_save_mask(folder / "combined.nii.gz", combined, header))
            self.report.n_masks += len(written)
            self._remove_stale(folder, written)
        if opts["tables"]:
            for value, mask in masks.items():
                for frame in range(n_frames):
                    in_frame = mask if n_frames == 1 else mask[..., frame]
                    if n_frames > 1 and not in_frame.any():
                        continue
                    image = volume.to_file_order(volume.data[..., frame])  # a view, as masks
                    s = roi_statistics(image, in_frame.view(bool), volume.spacing)  # ∏spacing
                    name = self._name(value)[0]
                    name = name if n_frames == 1 else f"{name} [frame {frame}]"
                    self.stats.rows.append([series_id, name, *(s[k] for k in STAT_COLUMNS[2:])])
            if self.project.config.text_fields:
                self.texts.rows.append([series_id, *(_text_cell(state.texts.get(name))
                                                     for name in self.texts.columns[1:])])
        if opts["points"]:
            self._points(series_id, volume, state.points)
        if opts["copy_images"]:
            written.append(atomic_file(self._within(self.out / "images" / series_id),
                                       lambda temp: shutil.copyfile(path, temp)))
        if opts["copy_annotations"]:
            self._copy_annotations(series_id)
        self.report.files.extend(written)

    def _within(self, path: Path) -> Path:
        if not _inside(path.resolve(), self.out) or path.resolve() == self.out:
            raise ExportError(f"refusing to write {path}: it is outside the export folder")
        return path

    def _points(self, series_id, volume, points) -> None:
        to_file = np.linalg.inv(volume.affine) @ volume.canonical_affine
        for value in sorted(points):
            name, radlex = self._name(int(value))
            for p in points[value]:
                c = np.array([*map(float, p[:3]), 1.0])
                ijk = np.rint(to_file @ c)[:3].astype(int)
                xyz = volume.affine @ np.array([*ijk, 1.0])
                self.points.rows.append([series_id, name, radlex, *map(int, ijk),
                                         *(round(float(v), 4) for v in xyz[:3])])
                self.report.n_points += 1

    def _remove_stale(self, folder: Path, written: list[Path]) -> None:
        """A rerun overwrites: drop masks of ROIs that are no longer annotated."""
        if not folder.is_dir():
            return
        keep = {p.name for p in written}
        for old in folder.glob("*.nii.gz"):
            if old.name not in keep and old.is_file():
                old.unlink()

    def _copy_annotations(self, series_id: str) -> None:
        src = self.store.folder_for(series_id)
        if not src.is_dir():
            return
        dest = self._within(self.out / "annotations" / f"{series_id}{SUFFIX}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.{PARTIAL_TAG}{uuid.uuid4().hex[:8]}.tmp")
        trash = dest.with_name(f".{dest.name}.{PARTIAL_TAG}{uuid.uuid4().hex[:8]}.old")
        try:
            shutil.copytree(src, temp, ignore=shutil.ignore_patterns(".lock", ".*.tmp*"))
            if dest.exists():
                dest.rename(trash)
            temp.rename(dest)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
            shutil.rmtree(trash, ignore_errors=True)
        self.report.files.append(dest)

    def finish(self) -> None:
        files, opts = self.report.files, self.opts
        if opts["mapping"]:
            files.extend(write_mapping(self.out, self.project.config.rois))
        tables = []
        if opts["points"]:
            files.append(write_csv(self.out / "points.csv", self.points))
            tables.append(self.points)
        if opts["tables"]:
            files.append(write_csv(self.out / "roi_statistics.csv", self.stats))
            tables.insert(0, self.stats)
            self.report.n_stat_rows = len(self.stats.rows)
            if self.project.config.text_fields:
                files.append(write_csv(self.out / "text_annotations.csv", self.texts))
                tables.insert(1, self.texts)
        if opts["mapping"]:
            tables.append(mapping_table(self.project.config.rois))
        if opts["excel"] and tables:
            files.append(write_excel(self.out / "ril_dash_export.xlsx", tables))


def export_project(project, out_dir: str | os.PathLike, *,
                   series: str | Iterable[str] = "all", per_roi: bool = True,
                   combined: bool = True, points: bool = True, mapping: bool = True,
                   copy_images: bool = False, copy_annotations: bool = False,
                   tables: bool = True, excel: bool = True,
                   progress: Callable[[int, int, str], None] | None = None,
                   cancel: Callable[[], bool] | None = None) -> ExportReport:
    """Export the annotated series of ``project`` (a :class:`~ril_dash.project.project.Project`)
    into ``out_dir``; see the module docstring for the layout.

    ``progress(done, total, series_id)`` is called after each series; ``cancel()`` is asked
    before each series and, when it returns True, the export stops there (the tables then
    cover the series exported so far and ``report.cancelled`` is True). Series without
    annotations, unknown ids and unreadable images are skipped and listed in
    ``report.skipped``; they do not stop the export.

    Raises
    ------
    ExportError
        ``out_dir`` is inside (or contains) the images folder or the annotation store, or is
        not writable.
    """
    out = check_output_dir(project, out_dir)
    ids, skipped = select_series(project, series)
    report = ExportReport(out, skipped=list(skipped))
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_partial_files(out, min_age=STALE_PARTIAL)  # left by a killed export
    except OSError as exc:
        raise ExportError(f"cannot create the export folder {out}: {exc}") from exc
    annotated = annotated_series(project.config.annotations)
    opts = {"per_roi": per_roi, "combined": combined, "points": points, "mapping": mapping,
            "copy_images": copy_images, "copy_annotations": copy_annotations,
            "tables": tables, "excel": excel}
    exporter = _Exporter(project, out, opts, report)
    todo = [s for s in ids if s in annotated]
    report.skipped += [(s, "no annotations") for s in ids if s not in annotated]
    for done, series_id in enumerate(todo, start=1):
        if cancel is not None and cancel():
            report.cancelled = True
            break
        try:
            exporter.series(series_id)
        except RilDashError as exc:
            report.skipped.append((series_id, str(exc)))
        else:
            report.exported.append(series_id)
        if progress is not None:
            progress(done, len(todo), series_id)
    exporter.finish()
    return report
