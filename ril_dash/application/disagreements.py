"""Where model and humans disagree most: the slices of a series a reviewer should look at first.

For a series a model drafted, :func:`worst_slices` compares the latest model draft with the
current version (the humans' annotation) on the ROI the draft wrote
(:func:`~ril_dash.application.compare.default_sources`), slice by slice on a plane
(:func:`~ril_dash.application.compare.compare_series`: the slices where either has voxels), and
lists the slices where they differ, worst first: lowest Dice, then most voxels in one and not
the other. Slices where both agree exactly are left out. Reading needs the ``read`` right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ril_dash.application import compare
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services

__all__ = ["Disagreements", "SlicePair", "worst_slices"]

#: at most this many slices are listed
LIMIT = 10


@dataclass(frozen=True)
class SlicePair:
    """One slice (0-based ``index`` of the plane): the draft's and the humans' voxels."""

    index: int
    dice: float
    voxels_draft: int
    voxels_human: int
    shared: int

    @property
    def differing(self) -> int:
        """Voxels in one annotation and not the other."""
        return self.voxels_draft + self.voxels_human - 2 * self.shared


@dataclass(frozen=True)
class Disagreements:
    """The worst slices of ``series`` on ``plane``; ``draft`` is the model draft's version
    (None: no model drafted the series, nothing to list) and ``note`` says why the list is
    empty when it is."""

    series: str
    plane: str
    draft: int | None = None
    model: str | None = None
    roi: str | None = None
    slices: list[SlicePair] = field(default_factory=list)
    note: str = ""


def worst_slices(services: Services, actor: Actor, series: str, *, plane: str = "axial",
                 limit: int = LIMIT) -> Disagreements:
    """The slices of ``series`` where the latest model draft and the current version differ
    most, worst first (see the module docstring). PermissionDenied without the read right."""
    draft, current = compare.default_sources(services, actor, series)
    if draft is None:
        return Disagreements(series, plane, note="No model has drafted this series.")
    result = compare.compare_series(services, actor, series, draft, current, plane=plane)
    model = next((v.model for v in compare.model_drafts(services, actor, series)
                  if v.id == draft.version), None)
    roi = next(r.name for r in services.project.config.rois if r.value == draft.roi)
    rows = [SlicePair(r["index"], float(r["dice"]), int(r["size_a"]), int(r["size_b"]),
                      int(r["intersection"])) for r in result.scores.rows()]
    differing = sorted((r for r in rows if r.differing > 0),
                       key=lambda r: (r.dice, -r.differing, r.index))
    note = "" if differing else "The humans kept the model's draft as it was on this plane."
    return Disagreements(series, plane, draft.version, model, roi, differing[:limit], note)
