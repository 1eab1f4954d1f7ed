"""``ril-dash import-masks`` and ``ril-dash export``: masks into the annotation store, and
masks, points and tables out of it (:mod:`ril_dash.application.transfer`), from the command
line, audited under ``--user``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_transfer_parsers", "export_command", "import_masks_command"]


def add_transfer_parsers(sub, add_user_option) -> None:
    """Add ``import-masks`` and ``export`` to the sub-commands ``sub`` of the ``ril-dash``
    parser."""
    p_imp = sub.add_parser("import-masks", help="import NIfTI masks as annotation versions",
                           description="Import per-ROI masks, combined bitwise masks or label "
                                       "maps found under --masks (laid out like the images "
                                       "folder) as one new annotation version per series.")
    p_imp.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    p_imp.add_argument("--masks", type=Path, required=True, metavar="DIR",
                       help="folder of masks: <series id without .nii.gz>/<ROI>.nii.gz, "
                            "<series id without .nii.gz>/combined.nii.gz or <series id>")
    p_imp.add_argument("--mapping", type=Path, metavar="FILE",
                       help="value → ROI name mapping (mapping.json of an export, or a CSV "
                            "with columns value,name); default: the project's mask values")
    add_user_option(p_imp, "author of the new versions and of the audit line")

    p_export = sub.add_parser("export", help="export masks, points and tables for training",
                              description="Write NIfTI masks aligned with their source images, "
                                          "points, the mask-value mapping and statistics "
                                          "tables (CSV and Excel) into --out.")
    p_export.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    p_export.add_argument("--out", type=Path, required=True, metavar="DIR",
                          help="output folder (outside the images folder and annotation store)")
    p_export.add_argument("--series", default="all", metavar="GLOB",
                          help="only series whose id matches GLOB, e.g. 'P1/*' (default: all)")
    p_export.add_argument("--no-per-roi", dest="per_roi", action="store_false",
                          help="skip the binary mask of each ROI")
    p_export.add_argument("--no-combined", dest="combined", action="store_false",
                          help="skip combined.nii.gz (bitwise OR of the mask values)")
    p_export.add_argument("--copy-images", action="store_true",
                          help="also copy the source images into DIR/images")
    p_export.add_argument("--copy-annotations", action="store_true",
                          help="also copy the annotation folders into DIR/annotations")
    p_export.add_argument("--no-excel", dest="excel", action="store_false",
                          help="skip ril_dash_export.xlsx (the CSV tables are still written)")
    add_user_option(p_export, "who exports, as recorded in the audit log")


def export_command(args: argparse.Namespace) -> None:
    """``ril-dash export``: :func:`~ril_dash.application.transfer.export_series` with progress."""
    from ril_dash.application.transfer import export_series
    from ril_dash.cli import cli_actor, cli_services

    def progress(done: int, total: int, series_id: str) -> None:
        print(f"[{done}/{total}] {series_id}", flush=True)

    report = export_series(cli_services(args.project_dir), cli_actor(args), args.out,
                           series=args.series, per_roi=args.per_roi, combined=args.combined,
                           copy_images=args.copy_images,
                           copy_annotations=args.copy_annotations, excel=args.excel,
                           progress=progress)
    for series_id, reason in report.skipped:
        print(f"skipped {series_id}: {reason}", flush=True)
    print(report.summary(), flush=True)


def import_masks_command(args: argparse.Namespace) -> None:
    """``ril-dash import-masks``: :func:`~ril_dash.application.transfer.import_mask_folder`."""
    from ril_dash.application.transfer import import_mask_folder
    from ril_dash.cli import CliError, cli_actor, cli_services

    report = import_mask_folder(cli_services(args.project_dir), cli_actor(args), args.masks,
                                mapping=args.mapping)
    for result in report.series:
        if result.source is not None or result.error is not None:
            print(result.describe(), file=sys.stderr if result.error else sys.stdout)
    if not report.imported:
        refused = len(report.errors)
        raise CliError(f"nothing was imported from {args.masks}: " + (
            f"{refused} series refused (see above)" if refused else
            "no masks matched a series of the project (expected <series id without "
            ".nii.gz>/<ROI>.nii.gz, .../combined.nii.gz or a label map at <series id>)"))
    print(f"Imported masks into {len(report.imported)} series; {len(report.errors)} "
          f"refused, {len(report.missing)} without masks.")
