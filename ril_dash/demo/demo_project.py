"""Create (once) the demo project that ships with ril_dash: phantom CTs plus the MNI152 brain.

:func:`ensure_demo_project` builds, in a temp folder beside its destination, three synthetic
patients × four CT contrast phases (:mod:`ril_dash.demo.phantom`) with their exact label maps, a
copy of the MNI152 T1 with its grey/white-matter maps, ``project.yaml`` and ``metadata.csv``; it
then renames the folder into place. A stamp file written last (``.ril-dash-demo``) says which
version made it, so an interrupted run never leaves a half-made demo, and a newer ril_dash
rebuilds an outdated one (keeping whatever is in its ``annotations/`` folder). A file lock beside
the folder lets several processes call it at once: one builds, the others wait and reuse it.

Layout::

    demo-project/
      .ril-dash-demo  project.yaml  metadata.csv  NOTICE-MNI152.md
      workflow.yaml                                        (example: --workflow workflow.yaml)
      images/PHANTOM-00N/CT-2026-01-14/<phase>.nii.gz      (int16 HU, LAS affine)
      images/MNI152/T1-2009a/t1.nii.gz
      ground_truth/<same relpath as images>                (uint8 label maps) + labels.json
      ground_truth/MNI152/T1-2009a/gm.nii.gz, wm.nii.gz    (probability maps, 0–255)
      annotations/                                         (empty annotation store)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
from filelock import FileLock

from ril_dash.demo.phantom import (
    DEFAULT_SHAPE,
    DEFAULT_SPACING,
    LABELS,
    PHASES,
    make_phantom,
)
from ril_dash.settings import data_home

DEMO_VERSION = "ril_dash demo project v2"
STAMP_NAME = ".ril-dash-demo"
DEMO_DIRNAME = "demo-project"
#: (patient id, seed, study date) of the phantom patients
DEMO_PATIENTS = (("PHANTOM-001", 101, "2026-01-14"), ("PHANTOM-002", 202, "2026-01-14"),
                 ("PHANTOM-003", 303, "2026-01-14"))
MNI_SERIES = "MNI152/T1-2009a/t1.nii.gz"
#: gzip level for the written NIfTI files: fast, and noisy int16 hardly compresses better anyway
COMPRESS_LEVEL = 2
_MNI_DIR = Path(__file__).resolve().parent.parent / "data" / "mni152"
_MNI_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
_FOV_MM = tuple(n * s for n, s in zip(DEFAULT_SHAPE, DEFAULT_SPACING))

#: The example workflow (analysts → reviewers → scientists), used with
#: ``ril-dash serve DEMO --login --workflow DEMO/workflow.yaml`` once the users exist.
WORKFLOW_YAML = """\
# Example workflow: analysts draw, reviewers approve or send back, scientists export.
# Serve with:  ril-dash serve PROJECT --login --workflow PROJECT/workflow.yaml
# after adding the users:  ril-dash users PROJECT add ana   (and bob, rita, sam, root --admin)
workflow:
  start_pool: analysts            # where new series start
  pools:
    analysts:
      users: [ana, bob]
      rights: [annotate]
      assign_to: [reviewers]
    reviewers:
      users: [rita]
      rights: [review, annotate]
      assign_to: [analysts, scientists]
      approve_to: scientists
      send_back_to: analysts
    scientists:
      users: [sam]
      rights: [read, export]
      assign_to: [reviewers]
  admins: [root]                  # may do anything, break locks, read the audit log
"""

PROJECT_YAML = """\
name: ril_dash demo project
images: images
annotations: annotations
hierarchy: [Patient, Study, Series]
metadata:
  file: metadata.csv
  path_column: series      # series path relative to images, posix, with extension
settings:
  overlap: one_roi_per_voxel
rois:
  - {name: Liver, radlex: RID58, color: "#c8763c", value: 1, type: area, locked: false}
  - {name: Spleen, radlex: RID86, color: "#9b59b6", value: 2, type: area}
  - {name: Right kidney, radlex: RID29663, color: "#e74c3c", value: 3, type: area}
  - {name: Left kidney, radlex: RID29662, color: "#3498db", value: 4, type: area}
  - {name: Aorta, radlex: RID480, color: "#f1c40f", value: 5, type: area}
  - {name: Lesion centre, radlex: RID38780, color: "#2ecc71", value: 6, type: point}
text_fields:
  - {name: Contrast phase, type: choice, values: [non-contrast, arterial, portal-venous, delayed], required: true}
  - {name: Image quality, type: choice, values: [good, acceptable, poor]}
  - {name: Comment, type: text}
"""

METADATA_COLUMNS = ("series", "patient", "study_date", "modality", "phase", "description")


def phantom_series() -> list[str]:
    """Relative paths (under ``images/``) of the phantom series, patient by patient, phase by phase.

    Examples
    --------
    >>> phantom_series()[0]
    'PHANTOM-001/CT-2026-01-14/non-contrast.nii.gz'
    >>> len(phantom_series())
    12
    """
    return [f"{pid}/CT-{date}/{phase}.nii.gz" for pid, _, date in DEMO_PATIENTS for phase in PHASES]


def demo_home_hint() -> str:
    """One sentence telling the user where the demo project lives and how to move it.

    Examples
    --------
    >>> "RIL_DASH_HOME" in demo_home_hint()
    True
    """
    return (
        f"The demo project lives in {data_home() / DEMO_DIRNAME} (built on first use). "
        "Set the environment variable RIL_DASH_HOME to keep it, and ril_dash's other data, "
        "in another folder; delete the folder to have it rebuilt."
    )


def _stamp_text(shape) -> str:
    return f"{DEMO_VERSION}\nshape: {'x'.join(str(int(n)) for n in shape)}\n"


def _stamp_matches(root: Path, expected: str) -> bool:
    try:
        return (root / STAMP_NAME).read_text(encoding="utf-8") == expected
    except OSError:
        return False


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, descrip: str,
                *, intent: str | None = None) -> None:
    """Write ``data`` unscaled (slope 1, intercept 0) as gzip-compressed NIfTI-1 at ``path``.

    qform and sform both hold ``affine`` (code 1, scanner), units are mm; the gzip stream is
    written at :data:`COMPRESS_LEVEL` with a zero timestamp, so equal inputs give equal bytes.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, nibabel as nib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.nii.gz"
    >>> write_nifti(p, np.zeros((2, 2, 2), np.int16), np.eye(4), "test")
    >>> img = nib.load(p)
    >>> float(img.dataobj.slope), float(img.dataobj.inter), img.get_data_dtype() == np.int16
    (1.0, 0.0, True)
    """
    img = nib.Nifti1Image(data, affine)
    header = img.header
    header.set_data_dtype(data.dtype)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = descrip.encode("ascii", "replace")[:79]
    if intent:
        header.set_intent(intent)
    header.set_slope_inter(1.0, 0.0)
    raw = img.to_bytes()
    with open(path, "wb") as fh:
        with gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=COMPRESS_LEVEL,
                           mtime=0) as gz:
            gz.write(raw)
        fh.flush()
        os.fsync(fh.fileno())


def _write_metadata(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METADATA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _build(folder: Path, shape, progress: Callable[[str], None]) -> None:
    """Write the whole demo project (except its stamp) into the empty ``folder``."""
    spacing = tuple(f / n for f, n in zip(_FOV_MM, shape))
    images, truth = folder / "images", folder / "ground_truth"
    for sub in (images, truth, folder / "annotations"):
        sub.mkdir(parents=True, exist_ok=True)
    rows = []
    for pid, seed, date in DEMO_PATIENTS:
        for phase in PHASES:
            rel = f"{pid}/CT-{date}/{phase}.nii.gz"
            progress(f"  {rel}")
            ph = make_phantom(seed, phase, shape=shape, spacing=spacing)
            for base in (images, truth):
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
            write_nifti(images / rel, ph.hu, ph.affine,
                        f"ril_dash synthetic abdominal CT phantom seed {seed} {phase}")
            write_nifti(truth / rel, ph.labels, ph.affine,
                        f"ril_dash phantom labels seed {seed} (see labels.json)", intent="label")
            rows.append({
                "series": rel, "patient": pid, "study_date": date, "modality": "CT",
                "phase": phase,
                "description": f"Synthetic abdominal CT phantom, {phase} phase (seed {seed})",
            })
    names = {"0": "outside body (air)"} | {str(v): n for v, n in LABELS.items()}
    (truth / "labels.json").write_text(json.dumps(names, indent=2) + "\n", encoding="utf-8")

    progress(f"  {MNI_SERIES}")
    mni_rel = Path(MNI_SERIES).parent
    (images / mni_rel).mkdir(parents=True, exist_ok=True)
    (truth / mni_rel).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_MNI_DIR / _MNI_FILES["t1"], images / MNI_SERIES)
    for key in ("gm", "wm"):
        shutil.copyfile(_MNI_DIR / _MNI_FILES[key], truth / mni_rel / f"{key}.nii.gz")
    shutil.copyfile(_MNI_DIR / "NOTICE.md", folder / "NOTICE-MNI152.md")
    rows.append({
        "series": MNI_SERIES, "patient": "MNI152", "study_date": "", "modality": "MR",
        "phase": "",
        "description": "MNI ICBM152 2009a nonlinear symmetric T1 template (1 mm); "
                       "see NOTICE-MNI152.md",
    })
    _write_metadata(folder / "metadata.csv", rows)
    (folder / "project.yaml").write_text(PROJECT_YAML, encoding="utf-8")
    (folder / "workflow.yaml").write_text(WORKFLOW_YAML, encoding="utf-8")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: what a rebuild carries over from the previous demo besides its annotations
KEPT_ON_REBUILD = ("users.yaml", ".sessions", "audit.log.jsonl")


def _has_annotations(folder: Path) -> bool:
    ann = folder / "annotations"
    return ann.is_dir() and any(ann.iterdir())


def _clean_leftovers(root: Path, progress: Callable[[str], None]) -> None:
    """Remove temp folders of interrupted runs (called with the lock held, so none is live)."""
    for stale in root.parent.glob(f".{root.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in root.parent.glob(f".{root.name}.old-*"):
        if _has_annotations(old):  # an install was interrupted: keep the user's work visible
            backup = root.parent / f"{root.name}.backup-{time.strftime('%Y%m%d-%H%M%S')}"
            os.rename(old, backup)
            progress(f"Kept annotations of an interrupted rebuild in {backup}")
        else:
            shutil.rmtree(old, ignore_errors=True)


def _install(temp: Path, root: Path, progress: Callable[[str], None]) -> None:
    """Rename the finished ``temp`` to ``root``, carrying over an older demo's annotations."""
    if not root.exists():
        os.rename(temp, root)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-{os.getpid()}-", dir=root.parent))
    os.rmdir(old)
    os.rename(root, old)
    if _has_annotations(old):
        shutil.rmtree(temp / "annotations")
        os.rename(old / "annotations", temp / "annotations")
        progress("Kept the annotations of the previous demo project")
    for name in KEPT_ON_REBUILD:  # the lab's users, sessions and audit trail
        if os.path.lexists(old / name):
            os.rename(old / name, temp / name)
    os.rename(temp, root)
    if (old / STAMP_NAME).is_file():
        shutil.rmtree(old, ignore_errors=True)
    else:  # not made by us: never delete someone's folder
        backup = root.parent / f"{root.name}.backup-{time.strftime('%Y%m%d-%H%M%S')}"
        os.rename(old, backup)
        progress(f"Moved the folder that was in the way to {backup}")


def ensure_demo_project(
    root: str | os.PathLike | None = None,
    *,
    progress: Callable[[str], None] | None = print,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
) -> Path:
    """Return the demo project folder, building it first if it is missing or outdated.

    Parameters
    ----------
    root : path, optional
        Where the project lives; default ``data_home() / "demo-project"``.
    progress : callable, optional
        Called with one line of text per step (default :func:`print`; ``None`` is silent).
    shape : tuple of int
        Voxel grid of the phantom CTs. The field of view stays the same, so a small shape (as in
        tests) gives the same anatomy at a coarser spacing. Part of the stamp: another shape
        rebuilds the project.

    Returns
    -------
    pathlib.Path
        The project folder (holding ``project.yaml``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = ensure_demo_project(pathlib.Path(tempfile.mkdtemp()) / "demo", progress=None,
    ...                         shape=(32, 32, 5))
    >>> sorted(p.name for p in d.iterdir())[:4]
    ['.ril-dash-demo', 'NOTICE-MNI152.md', 'annotations', 'ground_truth']
    """
    say = progress or (lambda _msg: None)
    root = Path(root) if root is not None else data_home() / DEMO_DIRNAME
    root = root.expanduser().absolute()
    shape = tuple(int(n) for n in shape)
    expected = _stamp_text(shape)
    if _stamp_matches(root, expected):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root.parent / f".{root.name}.lock")):
        if _stamp_matches(root, expected):  # another process built it while we waited
            return root
        _clean_leftovers(root, say)
        say(f"Creating the demo project in {root} …")
        started = time.perf_counter()
        temp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-{os.getpid()}-", dir=root.parent))
        try:
            os.chmod(temp, 0o777 & ~_current_umask())  # mkdtemp makes it private (0700)
            _build(temp, shape, say)
            (temp / STAMP_NAME).write_text(expected, encoding="utf-8")
            _install(temp, root, say)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        say(f"Demo project ready in {time.perf_counter() - started:.1f} s")
    return root
