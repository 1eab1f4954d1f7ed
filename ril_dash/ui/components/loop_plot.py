"""The loop's progress as a figure: validation score per model against round and training set.

Two panels with a shared score axis: on the left against the round (1 = the model's first
version trained in ril_dash), on the right against the number of series it was trained on; one
line per model and validation figure (Dice per ROI, or slice accuracy), the same colour in both
panels, each point naming its version (:func:`ril_dash.application.loop_progress.loop_series`).
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

__all__ = ["loop_figure"]

EMPTY_TEXT = ("No model version was trained in ril_dash yet: train one on the Models page "
              "(or with ril-dash train) and each round's validation score shows here.")


def _label(line: dict) -> str:
    figure = line["figure"]
    name = figure[5:] if figure.startswith("dice ") else figure
    return f"{line['model']}: {name}"


def loop_figure(lines: list[dict]) -> go.Figure:
    """The figure of ``lines`` (an empty figure saying what to do when there are none)."""
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("by round", "by training-set size"))
    colours = qualitative.Plotly
    for k, line in enumerate(lines):
        colour, label = colours[k % len(colours)], _label(line)
        text = [f"{line['model']}@{v}" for v in line["versions"]]
        score = "Dice" if line["figure"].startswith("dice ") else line["figure"]
        hover = (f"%{{text}}<br>{score} %{{y:.3f}}<br>%{{customdata}} training series"
                 "<extra></extra>")
        for col, x in ((1, line["rounds"]), (2, line["train_series"])):
            fig.add_trace(go.Scatter(
                x=x, y=line["values"], text=text, customdata=line["train_series"],
                mode="lines+markers", name=label, legendgroup=label, showlegend=col == 1,
                line={"color": colour}, hovertemplate=hover), row=1, col=col)
    fig.update_xaxes(title_text="round", dtick=1, row=1, col=1)
    fig.update_xaxes(title_text="series in the training set", row=1, col=2)
    fig.update_yaxes(title_text="validation score", range=[0, 1.02], row=1, col=1)
    fig.update_layout(height=320, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      legend={"orientation": "h", "y": -0.3}, template="plotly_white")
    if not lines:
        fig.add_annotation(text=EMPTY_TEXT, xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False)
    return fig
