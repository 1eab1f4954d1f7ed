"""Export and import: masks and tables out for training, masks made elsewhere back in.

:func:`export_series` lets an actor export the series their rights allow (all of them for an
admin or without a workflow; otherwise those in a pool that grants ``export``), into a folder
that :func:`export_folder` checks; :func:`import_mask_folder` is for admins. Both take the
``progress`` and ``cancel`` callables of a job, and record an audit line with what was done —
also when they run from the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ril_dash.application import policy, rights
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import ExportError, PermissionDenied
from ril_dash.project.export import ExportReport, export_project, select_series
from ril_dash.project.import_masks import ImportReport, import_masks
from ril_dash.project.workflow_state import exportable_series

#: the folder of a project that receives exports when users log in
EXPORTS = "exports"
#: the export options and their defaults (see :func:`ril_dash.project.export.export_project`)
EXPORT_OPTIONS = {"per_roi": True, "combined": True, "points": True, "mapping": True,
                  "tables": True, "excel": True, "copy_images": False,
                  "copy_annotations": False}
#: the longest folder name (one path component) and whole path accepted, in UTF-8 bytes, as
#: common file systems allow (NAME_MAX and PATH_MAX on Linux)
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4095


def check_folder_name(typed: str) -> None:
    """Refuse a folder path the file system cannot create: a NUL or other control character,
    a name longer than :data:`MAX_NAME_BYTES` or a path longer than :data:`MAX_PATH_BYTES`.

    Raises ExportError saying what to change, so no export job starts with it.

    >>> check_folder_name("exports/my-export")
    >>> check_folder_name("a" * 300)
    Traceback (most recent call last):
    ...
    ril_dash.errors.ExportError: The folder name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…' is \
300 bytes long; use at most 255 bytes for each folder name.
    """
    bad = sorted({f"U+{ord(c):04X}" for c in typed if ord(c) < 32 or ord(c) == 127})
    if bad:
        raise ExportError(f"The output folder contains control characters ({', '.join(bad)}); "
                          f"type a plain folder name.")
    if len(typed.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise ExportError(f"The output folder path is longer than {MAX_PATH_BYTES} bytes; "
                          f"choose a shorter path.")
    for name in Path(typed).parts:
        size = len(name.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            raise ExportError(f"The folder name {name[:40] + '…'!r} is {size} bytes long; use at "
                              f"most {MAX_NAME_BYTES} bytes for each folder name.")


def export_folder(services: Services, typed: str | os.PathLike, *, confined: bool) -> Path:
    """Where an export named ``typed`` goes. ``confined`` (logins on): a new folder inside the
    project's ``exports/`` — nothing else on the server can be written; else any folder.

    Raises ExportError for an empty name, one that leaves ``exports/`` or one that
    :func:`check_folder_name` refuses."""
    typed = str(typed).strip()
    check_folder_name(typed)
    if not confined:
        if not typed:
            raise ExportError("Choose an output folder.")
        out = Path(typed).expanduser()
        check_folder_name(str(out.absolute()))
        return out
    base = (services.project.dir / EXPORTS).resolve()
    out = (base / typed).resolve()
    check_folder_name(str(out))
    if not typed or out == base or not out.is_relative_to(base):
        raise ExportError(f"Name a new folder inside {EXPORTS}/ of the project (like "
                          f"'my-export'), not {typed[:80]!r}.")
    return out


def exportable(services: Services, actor: Actor, series: str | list[str] = "all"
               ) -> str | list[str]:
    """The series of ``series`` (a glob, "all" or ids) that ``actor`` may export now: as
    given when every series is allowed, else the allowed ids. Raises PermissionDenied when
    the actor may export nothing at all."""
    project, workflow = services.project, services.workflow
    if not policy.export_any(workflow, actor):
        raise PermissionDenied(f"{actor.user} may not export: none of their pools has the "
                               f"export right; ask an administrator.")
    rules = None if policy.is_admin(workflow, actor) else workflow
    allowed = exportable_series(project.config.annotations, [s.id for s in project.series],
                                rules, actor.user)
    if allowed is None:
        return series
    if not allowed:
        raise PermissionDenied(f"{actor.user} may export no series now: no series is in a pool "
                               f"whose members may export.")
    chosen = set(select_series(project, series)[0])
    return [s for s in allowed if s in chosen]


def export_series(services: Services, actor: Actor, out_dir: str | os.PathLike, *,
                  series: str | list[str] = "all",
                  progress: Callable[[int, int, str], None] | None = None,
                  cancel: Callable[[], bool] | None = None, **options: bool) -> ExportReport:
    """Export what ``actor`` may of ``series`` into ``out_dir`` (see
    :func:`ril_dash.project.export.export_project` for ``options``) and audit it."""
    unknown = set(options) - set(EXPORT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown export options {sorted(unknown)}")
    chosen = exportable(services, actor, series)
    report = export_project(services.project, out_dir, series=chosen, progress=progress,
                            cancel=cancel, **{**EXPORT_OPTIONS, **options})
    services.audit.record(actor.user, "export", None, {
        "folder": str(report.out_dir), "series": len(report.exported), "masks": report.n_masks,
        "cancelled": report.cancelled})
    return report


def import_mask_folder(services: Services, actor: Actor, masks_dir: str | os.PathLike, *,
                       mapping: str | os.PathLike | None = None,
                       progress: Callable[[int, int, str], None] | None = None,
                       cancel: Callable[[], bool] | None = None) -> ImportReport:
    """Import the masks under ``masks_dir`` (admins only) as one version per series, in the
    actor's name, and audit it (see :func:`ril_dash.project.import_masks.import_masks`)."""
    rights.require_admin(services, actor, "import masks")
    report = import_masks(services.project, masks_dir, mapping=mapping, user=actor.user,
                          progress=progress, cancel=cancel)
    services.audit.record(actor.user, "import", None, {"folder": str(masks_dir),
                                                       "series": len(report.imported),
                                                       "cancelled": report.cancelled})
    return report
