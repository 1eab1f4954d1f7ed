"""Damaged annotation files: find them, and let an admin repair a series.

A series whose version file cannot be read opens read-only as of its last readable version
(:attr:`~ril_dash.project.series_annotations.SeriesAnnotations.damage`). Repairing rolls it
forward: the damaged file (and the versions after it, which build on it) are kept aside as
``*.damaged`` and a new version equal to the last readable one is saved, so the series can be
edited again and nothing is deleted. The repair is recorded in the audit log (``repair``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ril_dash.application import rights
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import RilDashError
from ril_dash.project.annotation_store import Damage, annotated_series


@dataclass(frozen=True)
class Repair:
    """The outcome of :func:`repair_series`: the new version, equal to ``restored``, and the
    names of the files set aside."""

    series: str
    version: int
    restored: int
    set_aside: tuple[str, ...]


def damaged_series(services: Services) -> dict[str, Damage]:
    """``{series id: damage}`` for every annotated series of the project that has a damaged
    version file (reads each annotated series' history: a maintenance scan)."""
    found = {}
    known = {record.id for record in services.project.series}
    for series in sorted(annotated_series(services.project.config.annotations) & known):
        damage = services.annotations(series).damage
        if damage is not None:
            found[series] = damage
    return found


def repair_series(services: Services, actor: Actor, series: str) -> Repair:
    """Roll ``series`` forward past its damaged version files (admins only).

    Raises PermissionDenied for a user who is not an admin, and RilDashError when nothing of
    the series is damaged.
    """
    rights.require_admin(services, actor, "repair damaged annotations")
    services.project.get_series(series)
    annotations = services.annotations(series)
    done = annotations.repair(actor.user)
    if done is None:
        raise RilDashError(f"Nothing to repair: every annotation file of {series} can be read.")
    version, aside = done
    restored = version - 1
    services.audit.record(actor.user, "repair", series,
                          {"version": version, "restored": restored, "set_aside": aside})
    return Repair(series, version, restored, tuple(aside))
