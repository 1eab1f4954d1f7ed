"""The slice viewer's "Check first" section: the slices where model and humans disagree most.

Opening the section (or changing the plane while it is open) lists, for a series a model
drafted, the slices of the viewer's plane where the latest draft and the current annotation
differ most, worst first, with their Dice (:func:`ril_dash.application.disagreements.worst_slices`,
which checks the read right). A click on a slice moves the viewer there
(``window.rilViewer.goTo``).

Developer notes::

    summary n_clicks / plane ─► worst_slices() ─► buttons {type: DISAGREE_ROW, index: slice}
    button n_clicks ─clientside─► rilViewer.goTo(index)
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, clientside_callback, html

from ril_dash.application.disagreements import worst_slices
from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.services import get_services


def disagreement_panel() -> html.Details:
    """The (closed) section; its list loads when it is opened."""
    return html.Details(className="ril-annot-section ril-disagree", open=False, children=[
        html.Summary("Check first", id=ids.DISAGREE_OPEN, n_clicks=0,
                     title="The slices where the model's draft and the humans differ most"),
        html.Div(id=ids.DISAGREE_LIST, className="ril-disagree-list"),
        html.Div(id=ids.DISAGREE_JUMP, hidden=True),
    ])


def _list(found) -> list:
    if not found.slices:
        return [html.Div(found.note, className="ril-muted")]
    head = html.Div(f"{found.roi}: draft v{found.draft} ({found.model}) vs current, "
                    "worst first", className="ril-sub")
    return [head] + [
        html.Button(f"Slice {s.index + 1} · Dice {s.dice:.2f} · {s.differing} voxels differ",
                    id={"type": ids.DISAGREE_ROW, "index": s.index}, n_clicks=0,
                    className="ril-button ril-disagree-row", title=f"Go to slice {s.index + 1}")
        for s in found.slices]


@callback(Output(ids.DISAGREE_LIST, "children"),
          Input(ids.DISAGREE_OPEN, "n_clicks"), Input(ids.PLANE, "value"),
          State(ids.VIEWER_META, "data"), prevent_initial_call=True)
def show_disagreements(clicks, plane, meta):
    if not meta or not clicks:
        return dash.no_update
    try:
        found = worst_slices(get_services(), access.actor(), meta["series"],
                             plane=plane or "axial")
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    return _list(found)


clientside_callback(
    """function (clicks) {
        var nu = window.dash_clientside.no_update;
        var trig = window.dash_clientside.callback_context.triggered[0] || {};
        if (!trig.value || !window.rilViewer) { return nu; }
        var index = JSON.parse(trig.prop_id.slice(0, trig.prop_id.lastIndexOf("."))).index;
        window.rilViewer.goTo(index);
        return String(index);
    }""",
    Output(ids.DISAGREE_JUMP, "title"),
    Input({"type": ids.DISAGREE_ROW, "index": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
