"""What the project page and the Jobs page say of a finished uncertainty job."""

from __future__ import annotations

from dash import html

from ril_dash.ui.components.job_views import uncertainty_lines


def _texts(lines) -> list[str]:
    return [line.children for line in lines if isinstance(line, html.Div)]


def test_the_result_says_what_was_scored_skipped_and_cancelled():
    result = {"model": "liver-seg@1.0.0", "series": 3, "scored": [["a", 0.1]],
              "scored_total": 1, "skipped": [["b", "ana may not annotate b"]],
              "skipped_total": 1, "cancelled": True}
    assert _texts(uncertainty_lines(result)) == [
        "liver-seg@1.0.0 scored 1 of 3 series; sort the grid by its Uncertainty column to "
        "annotate the most uncertain first (reload the page to see new scores).",
        "Skipped b: ana may not annotate b",
        "Cancelled: the series scored so far keep their scores."]
