"""Progress of the loop, per model: validation score against round and training-set size.

Each version of a bundle trained in the tool carries its provenance (``training.json``, see
:mod:`ril_dash.application.training_bundle`). :func:`loop_rounds` reads it for every trained
version of the project's plugins roots and gives one :class:`Round` per version, the rounds of
a bundle id numbered 1, 2, … in version order: how many series it was trained and validated
on, and its validation figures (Dice per ROI, or slice accuracy for a classifier).
:func:`loop_series` groups them per model and figure, ready to plot. Versions without a
``training.json`` (bundles trained elsewhere) are not rounds of the loop and are left out.
Nothing here writes, and only counts of series are given, never their names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ril_dash.application.services import Services
from ril_dash.application.training_bundle import read_provenance
from ril_dash.models.manifest import version_key

__all__ = ["Round", "loop_rounds", "loop_series"]


@dataclass(frozen=True)
class Round:
    """One trained version: ``model`` (the bundle id), ``version``, ``round`` (1 = its first
    trained version), the series it learned from and was validated on, the parent it was
    fine-tuned from (None: an example architecture) and ``validation`` (figure → value, e.g.
    ``{"dice Liver": 0.93}`` or ``{"slice accuracy": 0.88}``)."""

    model: str
    version: str
    round: int
    train_series: int
    validation_series: int
    parent: str | None
    validation: dict

    def as_dict(self) -> dict:
        return asdict(self)


def _count(value) -> int:
    return len(value) if isinstance(value, (dict, list)) else 0


def _figures(value) -> dict:
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def loop_rounds(services: Services) -> list[Round]:
    """Every trained version of the project's bundles, by model id then version."""
    found: dict[str, list] = {}
    for entry in services.models.entries():
        if entry.manifest is None or not entry.version:
            continue
        provenance = read_provenance(entry.folder)
        if provenance is not None:
            found.setdefault(entry.id, []).append((entry.version, provenance))
    rounds = []
    for model in sorted(found):
        versions = sorted(found[model], key=lambda item: version_key(item[0]))
        for number, (version, data) in enumerate(versions, start=1):
            parent = data.get("parent")
            rounds.append(Round(model, version, number, _count(data.get("train_series")),
                                _count(data.get("validation_series")),
                                parent if isinstance(parent, str) else None,
                                _figures(data.get("validation"))))
    return rounds


def loop_series(rounds: list[Round]) -> list[dict]:
    """One line per model and validation figure: ``{"model", "figure", "versions", "rounds",
    "train_series", "values"}`` (lists in round order; a round without that figure is left
    out of its line).

    >>> r = [Round("seg", "1.0.0", 1, 4, 1, None, {"dice Liver": 0.8}),
    ...      Round("seg", "1.1.0", 2, 8, 2, "seg@1.0.0", {"dice Liver": 0.9})]
    >>> line = loop_series(r)[0]
    >>> line["figure"], line["rounds"], line["train_series"], line["values"]
    ('dice Liver', [1, 2], [4, 8], [0.8, 0.9])
    """
    lines: dict[tuple[str, str], dict] = {}
    for r in rounds:
        for figure, value in r.validation.items():
            line = lines.setdefault((r.model, figure), {
                "model": r.model, "figure": figure, "versions": [], "rounds": [],
                "train_series": [], "values": []})
            line["versions"].append(r.version)
            line["rounds"].append(r.round)
            line["train_series"].append(r.train_series)
            line["values"].append(value)
    return [lines[key] for key in sorted(lines)]
