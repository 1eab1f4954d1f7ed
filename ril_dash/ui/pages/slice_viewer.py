"""Slice viewer page (``/view?series=ID``): scroll through a series as in a desktop viewer.

The page layout is built on the server with the series' geometry (so the first slice needs no
extra round trip). Everything that must feel instant runs in the browser script
``assets/ril_viewer.js``: slice switching from a cache of prefetched full-resolution slices and
low-resolution thumbnails, keyboard and mouse-wheel navigation, right-drag window/level and the
cursor read-out. The Models panel (:mod:`ril_dash.ui.components.model_panel`) drafts
annotations with a model. The slider is only ever moved by the browser, so it never jumps
back. The page's root element carries the component ids the scripts use (``data-ril-config``, from
:data:`ril_dash.ui.ids.BROWSER`); the scripts' listeners live as long as that element
(``assets/ril.js``).

Developer notes::

    layout(series=…) ─► VIEWER_META (geometry, or an error message)
    META / plane / frame / window ─clientside configure─► figure (one trace per layer), slider
    slider value ─clientside show─► Plotly.restyle(image source) + position text
    keys / wheel / right-drag (ril_viewer.js) ─► set_props(slider | window inputs)
    first slice on screen (ril_viewer.js) ─► VIEWER_SECTIONS_WANTED ─► the closed sections
    VIEWER_PREVIEW (the first slice as an <img>) ─ril_viewer.js─► shown until the graph draws
"""

from __future__ import annotations

import json

import dash
from dash import (
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
)

from ril_dash.core.contour_params import preset_for
from ril_dash.core.png import png_data_url
from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.components.annotation_panel import annotation_panel
from ril_dash.ui.components.compare_panel import compare_panel
from ril_dash.ui.components.disagreement_panel import disagreement_panel
from ril_dash.ui.components.explain_panel import explain_section
from ril_dash.ui.components.model_panel import models_section
from ril_dash.ui.services import get_services

PLANE_LABELS = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}
AUTO = "auto"

SHORTCUTS = [
    ("B / E / L / F / P / N", "brush / eraser / lasso / fill / point / navigate"),
    ("[  ]", "smaller / larger brush"),
    ("S / A / I", "snap contour / auto-contour / fill between slices (the selected ROI)"),
    ("1 – 9", "choose an ROI"),
    ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo"),
    ("↑ / → / wheel up", "next slice"),
    ("↓ / ← / wheel down", "previous slice"),
    ("PageUp / PageDown", "10 slices"),
    ("Home / End", "first / last slice"),
    ("Right-drag", "window (←→ width, ↑↓ level)"),
    ("Double-click", "reset zoom"),
]


def register() -> None:
    dash.register_page(__name__, path="/view", name="Viewer", title="ril_dash – viewer",
                       layout=layout)


def _error_page(message: str) -> html.Div:
    return html.Div(className="ril-viewer-page", children=[
        html.Div([html.Strong("This series cannot be shown. "), html.Span(message),
                  html.Div(dcc.Link("← Back to the project", href="/"))],
                 id=ids.VIEWER_ERROR, className="ril-alert ril-alert-error", role="alert"),
    ])


def initial_window(geometry: dict) -> tuple[float, float]:
    """The window the page opens with, as its Level and Width boxes hold it."""
    center, width = geometry["window"]
    return round(center, 2), round(width, 2)


def _window_controls(geometry: dict) -> html.Div:
    presets = [{"label": "Automatic", "value": AUTO}]
    presets += [{"label": name.capitalize(), "value": name} for name in geometry["presets"]]
    center, width = initial_window(geometry)
    return html.Div(className="ril-control", children=[
        html.Label("Window", htmlFor=ids.WINDOW_PRESET),
        dcc.Dropdown(id=ids.WINDOW_PRESET, options=presets,
                     value="soft tissue" if geometry["is_ct"] else AUTO, clearable=False),
        html.Div(className="ril-wl-inputs", children=[
            html.Label(["Level", dcc.Input(id=ids.WINDOW_CENTER, type="number",
                                           value=center, debounce=True)]),
            html.Label(["Width", dcc.Input(id=ids.WINDOW_WIDTH, type="number", min=1e-6,
                                           value=width, debounce=True)]),
        ]),
    ])


def _controls(geometry: dict) -> html.Aside:
    n_frames = geometry["n_frames"]
    return html.Aside(className="ril-viewer-controls", children=[
        html.Div(className="ril-control", children=[
            html.Label("Plane"),
            dcc.RadioItems(id=ids.PLANE, value=geometry["default_plane"], inline=True,
                           options=[{"label": v, "value": k} for k, v in PLANE_LABELS.items()]),
            # a toggle handled in the browser (assets/ril_planes.js), remembered by the browser
            html.Button("Three planes", id=ids.THREE_PLANES, className="ril-button ril-toggle",
                        title="Show the two other planes beside the image, linked by a cursor",
                        **{"aria-pressed": "false"}),
        ]),
        html.Div(id=ids.FRAME_BOX, className="ril-control",
                 style={} if n_frames > 1 else {"display": "none"}, children=[
            html.Label(f"Frame (of {n_frames})"),
            dcc.Slider(id=ids.FRAME, min=0, max=max(n_frames - 1, 1), step=1, value=0,
                       marks=None, tooltip={"placement": "bottom"}),
        ]),
        _window_controls(geometry),
        html.Div(className="ril-control", children=[
            html.Label("Cursor"),
            html.Div("–", id=ids.VIEWER_READOUT, className="ril-readout"),
        ]),
        # the closed sections come once the first slice is on screen (assets/ril_viewer.js
        # asks for them): their ~130 components would otherwise delay it by about 100 ms
        html.Div(id=ids.VIEWER_SECTIONS, className="ril-later-sections"),
        dcc.Store(id=ids.VIEWER_SECTIONS_WANTED),
    ])


def later_sections(services) -> list:
    """The closed sections of the controls: Models, What the model sees, the keyboard and
    mouse shortcuts, Check first (disagreements) and Compare."""
    return [
        models_section(),
        explain_section(),
        html.Details(className="ril-control ril-help", children=[
            html.Summary("Keyboard and mouse"),
            html.Table([html.Tr([html.Td(html.Kbd(k)), html.Td(v)]) for k, v in SHORTCUTS]),
        ]),
        disagreement_panel(),
        compare_panel(services.project.config),
    ]


def lease_banner(editing: dict) -> html.Div:
    """"Read only: being edited by X since T", with Try again (and Break lock for admins), or
    "Read only: the annotation file F is damaged", with Repair for admins.

    The buttons are handled by ``assets/ril_annotate.js`` (POST /ril/api/lease)."""
    hidden = editing["editable"]
    return html.Div(id=ids.LEASE_BANNER, hidden=hidden, role="status",
                    className="ril-alert ril-alert-warning ril-lease-banner", children=[
        html.Span(editing["reason"] or "", className="ril-lease-reason"),
        html.Button("Try again", id=ids.LEASE_RETRY, className="ril-button"),
        html.Button("Break lock", id=ids.LEASE_BREAK, className="ril-button ril-danger",
                    hidden=not editing["can_break"],
                    title="End the other user's editing session (admins only)"),
        html.Button("Repair", id=ids.LEASE_REPAIR, className="ril-button ril-danger",
                    hidden=not editing.get("can_repair"),
                    title="Save a new version equal to the last readable one; the damaged "
                          "file is kept aside (admins only)"),
    ])


def _first_slice(services, series: str, geometry: dict) -> dict:
    """The middle slice of the default view, sent with the page so it shows on the first plot
    (in the window of the page's Level and Width boxes, so the viewer can use it as it is)."""
    plane = geometry["default_plane"]
    index = (geometry["planes"][plane]["n"] - 1) // 2
    center, width = initial_window(geometry)
    png = services.slice_png(series, plane, index, 0, center, width)
    return {"plane": plane, "index": index, "window": [center, width],
            "src": png_data_url(png)}


def _preview(series: str, first: dict, geometry: dict) -> html.Img:
    """The first slice as a plain image over the graph, placed by CSS where the figure puts it
    (centred, as large as the viewport allows at the physical aspect ratio of the pixels). The
    browser shows it as soon as the page is there, about 100 ms before the graph has drawn the
    figure; ``assets/ril_viewer.js`` shows it only when it is what the viewer will show, and
    hides it once the graph shows the slice."""
    plane = geometry["planes"][first["plane"]]
    aspect = plane["cols"] * plane["col_mm"] / (plane["rows"] * plane["row_mm"])
    view = {"series": series, **{key: first[key] for key in ("plane", "index", "window")}}
    return html.Img(id=ids.VIEWER_PREVIEW, className="ril-preview", src=first["src"], alt="",
                    hidden=True, style={"--ril-aspect": f"{aspect:.6f}"},
                    **{"data-ril-view": json.dumps(view, separators=(",", ":"))})


def browser_config() -> str:
    """What the browser scripts read from the page (``data-ril-config``): the component ids."""
    return json.dumps({"ids": ids.BROWSER}, separators=(",", ":"))


def layout(series: str | None = None, **_query) -> html.Div:
    if not series:
        return _error_page("No series was given. Open one from the project page.")
    services = get_services()
    try:
        access.require(series, "read")
        geometry = services.geometry_of(series)
        editing = access.editing_status(series, take=True)
    except RilDashError as exc:
        return _error_page(str(exc))
    first = _first_slice(services, series, geometry)
    meta = dict(geometry, series=series, first_slice=first,
                editing=dict(editing, lease_seconds=services.locks.lease_seconds))
    warnings = [html.Div(w, className="ril-alert ril-alert-warning") for w in geometry["warnings"]]
    return html.Div(className="ril-viewer-page" + ("" if editing["editable"] else
                                                   " ril-read-only"),
                    **{"data-ril-config": browser_config()}, children=[
        dcc.Store(id=ids.VIEWER_META, data=meta),
        annotation_panel(services.project.config, services.state(series).texts,
                         read_only=not editing["editable"], n_frames=services.frames_of(series),
                         contour_preset=preset_for(services.declared_modality(series),
                                                   geometry["is_ct"])),
        html.Div(className="ril-viewer-main", children=[
            html.Div(className="ril-viewer-titlebar", children=[
                html.Span(series, id=ids.VIEWER_TITLE, className="ril-series-title", title=series),
                html.Span("", id=ids.VIEWER_POSITION, className="ril-position"),
            ]),
            lease_banner(editing),
            html.Div(warnings, id=ids.VIEWER_WARNINGS),
            html.Div(className="ril-view-row", children=[
            html.Div(className="ril-viewport", id=ids.VIEWPORT, tabIndex="0", children=[
                dcc.Graph(id=ids.VIEWER_GRAPH, className="ril-graph", responsive=True,
                          config={"displaylogo": False, "scrollZoom": False,
                                  "doubleClick": "reset",
                                  "modeBarButtonsToRemove": ["toImage", "select2d", "lasso2d",
                                                             "autoScale2d"]},
                          style={"height": "100%", "width": "100%"}),
                _preview(series, first, geometry),
                *[html.Div(className=f"ril-orient ril-orient-{side}", id=orient_id)
                  for side, orient_id in (("left", ids.ORIENT_LEFT), ("right", ids.ORIENT_RIGHT),
                                          ("top", ids.ORIENT_TOP), ("bottom", ids.ORIENT_BOTTOM))],
                html.Div(id=ids.BRUSH_CURSOR, className="ril-brush-cursor"),
                # failed requests, said by the scripts (rilPage.problem) and cleared when they work
                html.Div(id=ids.VIEWER_STATUS, className="ril-viewer-status", role="status",
                         hidden=True),
                # the 3D cursor of the three-plane layout (assets/ril_planes.js)
                html.Div(id=ids.CROSSHAIR, className="ril-crosshair", hidden=True, children=[
                    html.Div(className="ril-crosshair-h"), html.Div(className="ril-crosshair-v")]),
            ]),
            # the two other planes, filled by assets/ril_planes.js when the layout is on
            html.Div(id=ids.SIDE_VIEWS, className="ril-side-views", hidden=True),
            ]),
            html.Div(className="ril-slider-row", children=[
                html.Div(id=ids.SLICE_INDICATOR, className="ril-indicator",
                         title="Slices holding each ROI (click to jump)"),
                dcc.Slider(id=ids.SLICE_SLIDER, min=0, max=1, step=1, value=0, marks=None,
                           updatemode="drag", allow_direct_input=False, className="ril-slider"),
            ]),
        ]),
        _controls(geometry),
    ])


@callback(Output(ids.VIEWER_SECTIONS, "children"), Input(ids.VIEWER_SECTIONS_WANTED, "data"),
          prevent_initial_call=True)
def fill_later_sections(_wanted):
    return later_sections(get_services())


clientside_callback(
    ClientsideFunction(namespace="ril", function_name="configure"),
    Output(ids.VIEWER_GRAPH, "figure"),
    Output(ids.SLICE_SLIDER, "max"),
    Output(ids.SLICE_SLIDER, "value"),
    Input(ids.VIEWER_META, "data"),
    Input(ids.PLANE, "value"),
    Input(ids.FRAME, "value"),
    Input(ids.WINDOW_CENTER, "value"),
    Input(ids.WINDOW_WIDTH, "value"),
)

clientside_callback(
    ClientsideFunction(namespace="ril", function_name="show"),
    Output(ids.VIEWER_POSITION, "children"),
    Input(ids.SLICE_SLIDER, "value"),
    Input(ids.SLICE_SLIDER, "drag_value"),
)

clientside_callback(
    ClientsideFunction(namespace="ril", function_name="preset"),
    Output(ids.WINDOW_CENTER, "value"),
    Output(ids.WINDOW_WIDTH, "value"),
    Input(ids.WINDOW_PRESET, "value"),
    State(ids.VIEWER_META, "data"),
    prevent_initial_call=True,
)
