"""Import masks made elsewhere (another tool, a model, an earlier export) as annotation versions.

For the series ``P1/ST1/arterial.nii.gz`` the masks are looked up under ``masks_dir`` in this
order (the first that exists is used):

1. ``P1/ST1/arterial/combined.nii.gz`` — a combined mask: in ``multi_label`` projects each voxel
   holds the bitwise OR of the mask values of its ROIs; in ``one_roi_per_voxel`` projects it holds
   the one ROI's value (a label map);
2. ``P1/ST1/arterial/<ROI name>.nii.gz`` — one binary mask per ROI (nonzero = inside); the file
   name is the ROI name, sanitised with :func:`sanitise_name` (or verbatim), case-insensitive;
3. ``P1/ST1/arterial.nii.gz`` — a label map (same relative path as the series), one integer
   label per voxel.

Values map to ROIs through ``mapping`` (JSON ``{"rois": [{"value": 1, "name": "Liver"}]}``, the
``mapping.json`` an export writes, or a CSV with columns ``value,name``) or, without one, through
the project's own mask values. Every mask must have the series' shape (first three dimensions;
for a 4D series either those, a mask for all frames, or all four, a mask per frame) and affine
(within ``atol``); it is re-ordered from the file's voxel order to canonical order with
:meth:`ril_dash.core.volume.Volume.to_canonical`.

Each series becomes one new annotation version (op ``import``, provenance kind ``import``, tool
``import-masks``) that replaces the voxels of the imported ROIs and follows the overlap rule.
Locked ROIs are never changed: their imported data is skipped (and reported), and in
``one_roi_per_voxel`` projects other ROIs are not written over their voxels. A series whose
masks are refused gets no version at all; the other series are still imported.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ril_dash.core.mask_slots import widen_bits, with_slots
from ril_dash.core.paint import make_delta, replace_roi
from ril_dash.core.volume import load_volume
from ril_dash.errors import ImportRefused, RilDashError
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.editing import rules_for
from ril_dash.project.export_tables import csv_cell_text
from ril_dash.project.frames import frame_masks, is_per_frame, series_annotations, stack_frames
from ril_dash.project.schema import RoiDef

__all__ = ["ImportReport", "SeriesImport", "import_masks", "load_mapping", "sanitise_name",
           "series_stem"]

COMBINED = "combined"
MAX_POINTS = 10_000
_NIFTI_SUFFIXES = (".nii.gz", ".nii")


def sanitise_name(name: str) -> str:
    """File-name form of an ROI name: runs of characters other than letters, digits, ``.``,
    ``_`` and ``-`` become ``_``.

    Examples
    --------
    >>> sanitise_name("Left kidney"), sanitise_name("T2/FLAIR lesion"), sanitise_name("..")
    ('Left_kidney', 'T2_FLAIR_lesion', 'roi')
    """
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return text[:120] or "roi"


def series_stem(series_id: str) -> str:
    """The series id without its ``.nii.gz`` / ``.nii`` extension.

    >>> series_stem("P1/ST1/arterial.nii.gz"), series_stem("P2/t1.nii")
    ('P1/ST1/arterial', 'P2/t1')
    """
    for suffix in _NIFTI_SUFFIXES:
        if series_id.lower().endswith(suffix):
            return series_id[: -len(suffix)]
    return series_id


def _nifti_stem(path: Path) -> str | None:
    for suffix in _NIFTI_SUFFIXES:
        if path.name.lower().endswith(suffix):
            return path.name[: -len(suffix)]
    return None


@dataclass
class SeriesImport:
    """What happened to one series: ``version`` is the new version (``None`` if nothing was
    written), ``error`` why it was refused, ``source`` the file or folder the masks came from."""

    series_id: str
    source: str | None = None
    layout: str | None = None  # "combined" | "per_roi" | "label_map"
    rois: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    version: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.source is not None

    def describe(self) -> str:
        """One line for the command line."""
        if self.error is not None:
            return f"{self.series_id}: REFUSED: {self.error}"
        if self.source is None:
            return f"{self.series_id}: no masks found"
        rois = ", ".join(self.rois) or "no ROIs"
        done = (f"version {self.version}" if self.version is not None
                else "unchanged (already identical)")
        text = f"{self.series_id}: imported {rois} from {self.source} ({self.layout}) -> {done}"
        if self.skipped:
            text += "; skipped: " + "; ".join(self.skipped)
        return text


@dataclass
class ImportReport:
    """Per-series results of :func:`import_masks`; ``cancelled`` when it stopped early (then
    ``series`` holds only the series looked at before, out of ``total``)."""

    series: list[SeriesImport]
    total: int | None = None
    cancelled: bool = False

    @property
    def imported(self) -> list[SeriesImport]:
        """Series whose masks were accepted (a new version, or already identical)."""
        return [s for s in self.series if s.ok]

    @property
    def errors(self) -> list[SeriesImport]:
        return [s for s in self.series if s.error is not None]

    @property
    def missing(self) -> list[SeriesImport]:
        return [s for s in self.series if s.source is None and s.error is None]

    def by_id(self, series_id: str) -> SeriesImport:
        return next(s for s in self.series if s.series_id == series_id)


# --------------------------------------------------------------------------- mapping
def _roi_by_name(rois, name: str) -> RoiDef | None:
    key = str(name).strip().casefold()
    for roi in rois:
        if roi.name.casefold() == key or sanitise_name(roi.name).casefold() == key:
            return roi
    return None


def load_mapping(path: str | os.PathLike, rois) -> dict[int, RoiDef]:
    """Read a value → ROI mapping (JSON or CSV); raise ImportRefused naming the file if it
    cannot be read or names ROIs the project does not have."""
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"mapping file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportRefused(f"mapping file {path} cannot be read ({exc})") from None
    pairs: list[tuple[object, object]] = []
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ImportRefused(f"mapping file {path} is not valid JSON ({exc})") from None
        entries = doc.get("rois") if isinstance(doc, dict) else doc
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ImportRefused(f'mapping file {path} must look like {{"rois": [{{"value": 1, '
                                f'"name": "Liver"}}, ...]}}')
        pairs = [(e.get("value"), e.get("name")) for e in entries]
    else:
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or not {"value", "name"} <= {str(k).strip().lower() for k in rows[0]}:
            raise ImportRefused(f"mapping file {path} must be a CSV with columns value,name")
        for row in rows:
            row = {str(k).strip().lower(): v for k, v in row.items()}
            pairs.append((row.get("value"), row.get("name")))
    mapping: dict[int, RoiDef] = {}
    unknown = []
    for value, name in pairs:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ImportRefused(f"mapping file {path}: value {value!r} (for {name!r}) is not "
                                f"a whole number") from None
        if number <= 0:
            raise ImportRefused(f"mapping file {path}: value {number} must be positive "
                                f"(0 is the background)")
        # an exported mapping.csv quotes names that start like a formula ("'=Liver")
        text = str(name or "")
        roi = _roi_by_name(rois, text) or _roi_by_name(rois, csv_cell_text(text))
        if roi is None:
            unknown.append(str(name))
            continue
        if number in mapping and mapping[number] != roi:
            raise ImportRefused(f"mapping file {path}: value {number} is given twice")
        mapping[number] = roi
    if unknown:
        known = ", ".join(r.name for r in rois) or "none"
        raise ImportRefused(f"mapping file {path} names ROIs that are not in the project: "
                            f"{', '.join(unknown)} (project ROIs: {known})")
    if not mapping:
        raise ImportRefused(f"mapping file {path} maps no values")
    return mapping


# --------------------------------------------------------------------------- reading
def _find_source(masks_dir: Path, series_id: str) -> tuple[Path, str] | None:
    folder = masks_dir / series_stem(series_id)
    if not folder.is_dir():  # an export sanitises each part of the folder name
        parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("._")[:120] or "series"
                 for p in series_stem(series_id).split("/")]
        folder = masks_dir.joinpath(*parts)
    if folder.is_dir():
        for suffix in _NIFTI_SUFFIXES:
            if (folder / (COMBINED + suffix)).is_file():
                return folder / (COMBINED + suffix), "combined"
        return folder, "per_roi"
    file = masks_dir / series_id
    if file.exists():
        return file, "label_map"
    return None


def _read_mask(path: Path, file_shape, affine, atol: float, n_frames: int = 1) -> np.ndarray:
    """The voxels of ``path`` in file order after the geometry checks: (X, Y, Z), or
    (X, Y, Z, T) when the series has ``n_frames`` > 1 frames and the mask one per frame."""
    try:
        img = nib.load(str(path))
        shape = tuple(int(n) for n in img.shape)
        img_affine = np.asarray(img.affine, float)
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes a message
        raise ImportRefused(f"{path} is not a readable NIfTI file ({type(exc).__name__}: "
                            f"{exc})") from None
    extra = tuple(n for n in shape[3:] if n != 1)
    if len(shape) < 3 or shape[:3] != tuple(file_shape) or extra not in ((), (n_frames,)):
        series = tuple(file_shape) + ((n_frames,) if n_frames > 1 else ())
        raise ImportRefused(f"{path} has shape {shape} but the series is {series}; masks must "
                            f"have the series' voxel grid"
                            + (" (or its first three dimensions)" if n_frames > 1 else ""))
    if not np.allclose(img_affine, affine, atol=atol, rtol=0):
        worst = float(np.max(np.abs(img_affine - affine)))
        raise ImportRefused(f"{path} has a different affine from the series (largest "
                            f"difference {worst:.4g} > {atol:g}); mask affine "
                            f"{np.round(img_affine, 4).tolist()}, series affine "
                            f"{np.round(affine, 4).tolist()}")
    try:
        data = np.asarray(img.dataobj).reshape(shape[:3] + extra)
    except Exception as exc:  # noqa: BLE001
        raise ImportRefused(f"{path} is truncated or corrupt ({type(exc).__name__}: "
                            f"{exc})") from None
    if data.dtype.kind not in "biuf":
        raise ImportRefused(f"{path} stores {data.dtype} voxels; masks must be numbers")
    return data


def _labels(path: Path, data: np.ndarray) -> np.ndarray:
    """Integer labels of ``data``; refuse negative, fractional or non-finite values."""
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data) | (data != np.round(data))
        if bad.any():
            raise ImportRefused(f"{path} holds values that are not whole numbers (e.g. "
                                f"{data[bad].flat[0]!r}); label maps must hold integer labels")
    if data.dtype.kind in "if" and (data < 0).any():
        raise ImportRefused(f"{path} holds negative values (e.g. {data[data < 0].flat[0]!r}); "
                            f"labels must be 0 (background) or positive")
    return data.astype(np.uint64, copy=False)


def _values_text(values) -> str:
    values = [int(v) for v in values]
    text = ", ".join(map(str, values[:20]))
    return text + (f", … ({len(values)} in all)" if len(values) > 20 else "")


def _decode(path: Path, layout: str, data, table: dict[int, RoiDef], overlap: str,
            mapped: bool) -> dict[RoiDef, np.ndarray]:
    labels = _labels(path, data)
    present = np.unique(labels)
    present = present[present != 0]
    how = "the mapping file" if mapped else "the project's ROI mask values"
    out: dict[RoiDef, np.ndarray] = {}
    if layout == "combined" and overlap == "multi_label":
        known = 0
        for value in table:
            if value & (value - 1):
                raise ImportRefused(f"{path} is a bitwise combined mask but value {value} of "
                                    f"{how} is not a power of two")
            known |= value
        stray = present[(present & ~np.uint64(known)) != 0]
        if stray.size:
            raise ImportRefused(f"{path} holds values {_values_text(stray)} with bits that no "
                                f"ROI has in {how}; give a --mapping that covers them")
        for value, roi in table.items():
            if (present & np.uint64(value)).any():
                out[roi] = (labels & np.uint64(value)) != 0
            else:
                out[roi] = np.zeros(labels.shape, bool)
        return out
    stray = [v for v in present if int(v) not in table]
    if stray:
        raise ImportRefused(f"{path} holds values {_values_text(stray)} that map to no ROI in "
                            f"{how}; give a --mapping that covers them")
    for value, roi in table.items():
        mask = labels == np.uint64(value)
        out[roi] = mask | out[roi] if roi in out else mask
    return out


def _per_roi(folder: Path, rois, file_shape, affine, atol,
             n_frames: int) -> dict[RoiDef, np.ndarray]:
    files = sorted(p for p in folder.iterdir() if _nifti_stem(p) is not None)
    if not files:
        raise ImportRefused(f"{folder} holds no .nii.gz / .nii masks")
    out: dict[RoiDef, np.ndarray] = {}
    unknown = []
    for path in files:
        roi = _roi_by_name(rois, _nifti_stem(path))
        suffixed = re.fullmatch(r"(.+)_(\d+)", _nifti_stem(path))
        if roi is None and suffixed:  # an export's "value_8" / "Liver_8" (names made unique)
            roi = next((r for r in rois if r.value == int(suffixed.group(2)) and (
                suffixed.group(1) == "value" or _roi_by_name([r], suffixed.group(1)))), None)
        if roi is None:
            unknown.append(path.name)
        elif roi in out:
            raise ImportRefused(f"{folder} holds two masks for ROI {roi.name}")
        else:
            out[roi] = (path, None)
    if unknown:
        known = ", ".join(sanitise_name(r.name) + ".nii.gz" for r in rois) or "none"
        raise ImportRefused(f"{folder}: {', '.join(unknown)} name no ROI of the project "
                            f"(expected files: {known})")
    for roi, (path, _) in list(out.items()):
        data = _read_mask(path, file_shape, affine, atol, n_frames)
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            raise ImportRefused(f"{path} holds NaN or infinite values")
        out[roi] = data != 0
    return out


# --------------------------------------------------------------------------- writing
def _canonical(source: Path, volume, mask: np.ndarray, per_frame: bool) -> np.ndarray:
    """A file-order mask in the layout of the series' annotations: (X, Y, Z), or (X, Y, Z·T)
    for a series with masks per frame (a 3D mask is then set in every frame)."""
    n_frames = volume.n_frames
    if mask.ndim == 3:
        canonical = np.ascontiguousarray(volume.to_canonical(mask))
        return np.concatenate([canonical] * n_frames, axis=2) if per_frame else canonical
    if not per_frame:
        raise ImportRefused(f"{source} has a mask per frame, but this series was annotated with "
                            "one mask for all its frames; import a 3D mask")
    return stack_frames(np.stack([volume.to_canonical(mask[..., t]) for t in range(n_frames)],
                                 axis=-1))


def _import_series(project, store: AnnotationStore, series_id: str, masks_dir: Path,
                   mapping: dict[int, RoiDef] | None, user: str, atol: float,
                   result: SeriesImport) -> None:
    found = _find_source(masks_dir, series_id)
    if found is None:
        return
    source, layout = found
    result.source, result.layout = str(source), layout
    rois = project.config.rois
    volume = load_volume(project.series_path(series_id))
    shape = tuple(int(n) for n in volume.data.shape[:3])
    file_shape = volume.to_file_order(np.empty(shape, bool)).shape
    n_frames = volume.n_frames
    if layout == "per_roi":
        masks = _per_roi(source, rois, file_shape, volume.affine, atol, n_frames)
    else:
        table = mapping if mapping is not None else {r.value: r for r in rois}
        data = _read_mask(source, file_shape, volume.affine, atol, n_frames)
        masks = _decode(source, layout, data, table, project.config.overlap,
                        mapping is not None)
    annotations = series_annotations(store, series_id, shape, n_frames)
    per_frame = is_per_frame(annotations, shape)
    masks = {roi: _canonical(source, volume, m, per_frame) for roi, m in masks.items()}
    state = annotations.refresh()
    points = {k: [list(p) for p in v] for k, v in state.points.items()}
    area: dict[RoiDef, np.ndarray] = {}
    for roi in [r for r in rois if r in masks]:  # project order
        mask = masks[roi]
        if roi.locked:
            result.skipped.append(f"{roi.name} is locked (its annotations were kept)")
            continue
        if roi.type == "point":
            coords = np.argwhere(frame_masks(mask, shape, n_frames).any(axis=3)
                                 if per_frame else mask)
            if len(coords) > MAX_POINTS:
                raise ImportRefused(f"{source}: point ROI {roi.name} has {len(coords)} voxels "
                                    f"set, more than {MAX_POINTS} points")
            if coords.size:
                points[roi.value] = [[int(c) for c in p] for p in coords]
            else:
                points.pop(roi.value, None)
        else:
            area[roi] = mask
        result.rois.append(roi.name)

    overlap = project.config.overlap
    if overlap == "one_roi_per_voxel":
        names = list(area)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                n = int(np.count_nonzero(area[a] & area[b]))
                if n:
                    raise ImportRefused(f"{source}: ROIs {a.name} and {b.name} overlap in {n} "
                                        f"voxels, but the project allows one ROI per voxel")
    slots = with_slots(state.slots, [roi.value for roi in area])
    old = widen_bits(state.bits, slots)
    rules = rules_for(project.config, slots)
    new = old
    slices = []
    for roi, mask in area.items():
        new, written = replace_roi(new, slots[roi.value], mask, rules)
        blocked = int(np.count_nonzero(mask)) - int(np.count_nonzero(written))
        if blocked:
            result.skipped.append(f"{blocked} voxels of {roi.name} lie in locked ROIs "
                                  f"and were not imported")
        zs = np.flatnonzero(written.any(axis=(0, 1)))
        depth = shape[2]
        slices += [{"plane": f"axial@{z // depth}" if per_frame else "axial",
                    "index": int(z % depth), "roi": roi.value} for z in zs]
    full = tuple((0, n) for n in old.shape)
    delta = make_delta(old, full, new)
    points_arg = points if points != state.points else None
    slots_arg = slots if slots != state.slots else None
    if delta is None and points_arg is None and slots_arg is None:
        return
    meta = {"user": user, "op": "import", "tool": "import-masks",
            "provenance": {"kind": "import", "model": None}, "slices": slices,
            "source": str(source)}
    result.version = annotations.commit(state.version, delta, meta, points=points_arg,
                                        slots=slots_arg)


def import_masks(project, masks_dir: str | os.PathLike, *, mapping=None, user: str = "import",
                 atol: float = 1e-3, series: list[str] | None = None,
                 progress: Callable[[int, int, str], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> ImportReport:
    """Import the masks under ``masks_dir`` into ``project`` (one new version per series).

    Parameters
    ----------
    project : ril_dash.project.project.Project
    masks_dir : path-like
        Folder laid out like the images folder (see the module docstring).
    mapping : path-like, optional
        JSON or CSV value → ROI name mapping for label maps and combined masks.
    user : str
        Recorded as the author of the new versions.
    atol : float
        Largest allowed difference between a mask's affine and the series' affine.
    series : list of str, optional
        Only these series ids (default: every series of the project).
    progress : callable, optional
        ``progress(done, total, series_id)`` after each series.
    cancel : callable, optional
        Asked before each series; when it returns True the import stops there
        (``report.cancelled``): the series imported so far keep their new version, each
        complete, and the others are not looked at.

    Returns
    -------
    ImportReport
        One :class:`SeriesImport` per series looked at; refused series have ``error`` set and
        no version was written for them.

    Raises
    ------
    ImportRefused
        ``masks_dir`` is not a folder, or the mapping file is unreadable or names unknown ROIs.
    """
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise ImportRefused(f"the masks folder {masks_dir} does not exist or is not a folder")
    table = load_mapping(mapping, project.config.rois) if mapping is not None else None
    store = AnnotationStore(project.config.annotations)
    ids = [s.id for s in project.series] if series is None else list(series)
    report = ImportReport([], total=len(ids))
    for done, series_id in enumerate(ids, start=1):
        if cancel is not None and cancel():
            report.cancelled = True
            break
        result = SeriesImport(series_id)
        try:
            _import_series(project, store, series_id, masks_dir, table, user, atol, result)
        except RilDashError as exc:
            result.error, result.version = str(exc), None
        except (OSError, ValueError, MemoryError) as exc:
            result.error, result.version = f"{type(exc).__name__}: {exc}", None
        report.series.append(result)
        if progress is not None:
            progress(done, len(ids), series_id)
    return report
