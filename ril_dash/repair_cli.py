"""``ril-dash repair PROJECT_DIR [SERIES ...]``: find and repair damaged annotation files.

Without SERIES, every annotated series is read and those with a version file that cannot be
read are listed, with what is damaged (exit status 2 when there are any, 0 when none). With
SERIES, each is rolled forward (:func:`~ril_dash.application.repairs.repair_series`): the
damaged file and the versions after it are kept aside as ``*.damaged`` and a new version equal
to the last readable one is saved, recorded in the audit log under ``--user``. A running server
notices the repair at the series' next request.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ril_dash.errors import RilDashError

__all__ = ["add_repair_parser", "repair_command"]


def add_repair_parser(sub, add_user_option) -> None:
    """Add ``repair`` to the sub-commands ``sub`` of the ``ril-dash`` parser."""
    p_repair = sub.add_parser(
        "repair", help="list or repair series whose annotation files are damaged",
        description="Without SERIES: list the series with a damaged (unreadable) annotation "
                    "version file. With SERIES: repair each one by saving a new version equal "
                    "to its last readable version; the damaged files are kept as *.damaged.")
    p_repair.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    p_repair.add_argument("series", nargs="*", metavar="SERIES",
                          help="series ids to repair, as listed without them")
    add_user_option(p_repair, "who repairs, as recorded in the audit log")


def repair_command(args: argparse.Namespace) -> None:
    """Run ``ril-dash repair`` (errors are :class:`RilDashError`, printed by the caller)."""
    from ril_dash.application.repairs import damaged_series, repair_series
    from ril_dash.cli import CliError, cli_actor, cli_services

    services = cli_services(args.project_dir)
    if not args.series:
        found = damaged_series(services)
        if not found:
            print("Every annotation file of the project can be read; nothing to repair.")
            return
        for damage in found.values():
            print(f"{damage.series}: {damage.file} cannot be read ({damage.reason}); "
                  f"last readable version {damage.readable_version}")
        names = " ".join(_quoted(s) for s in found)
        raise CliError(f"{len(found)} series have damaged annotation files (listed above). "
                       f"Repair them with: ril-dash repair {args.project_dir} {names}")
    actor, failed = cli_actor(args), []
    for series in args.series:
        try:
            done = repair_series(services, actor, series)
        except RilDashError as exc:
            print(f"{series}: not repaired: {exc}")
            failed.append(series)
            continue
        print(f"{series}: repaired as version {done.version}, equal to version "
              f"{done.restored}; kept aside: {', '.join(done.set_aside)}")
    if failed:
        raise CliError(f"{len(failed)} of {len(args.series)} series were not repaired "
                       f"(see above)")


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)
