"""The slice viewer's closed sections (Models, What the model sees, the shortcuts, Check first,
Compare) are not in the page: the viewer script asks for them once the first slice is on
screen, and Dash adds them to the page (``slice_viewer.later_sections``).

Dash calls a callback whose input is added to a page later, prevent_initial_call or not, when
one of its outputs was on the page before: such a callback of a section would act on its own
each time a viewer opens (a model run started by opening the viewer). These tests read the
callbacks of a running server and the sections' components: none may do that, except the
callbacks that only hand a value on and do nothing while it is empty (:data:`HAND_ON`).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import requests
from dash.development.base_component import Component

from ril_dash.ui import ids

pytestmark = pytest.mark.slow  # starts a server

SERIES = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
#: (input, output) of the callbacks that hand a section's value on to the page (clientside,
#: no_update while the value is empty)
HAND_ON = {(ids.RUN_VERSION, ids.ANNOT_VERSION)}


def component_ids(component) -> set[str]:
    """The ids in a component tree (a pattern-matching id by its type)."""
    found, stack = set(), [component]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, Component):
            name = getattr(item, "id", None)
            if isinstance(name, dict):
                name = name.get("type")
            if name:
                found.add(name)
            stack.append(getattr(item, "children", None))
    return found


def callback_id(text: str) -> str:
    """``compare-plot.figure@hash`` or ``{"type":…}.n_clicks`` → the id (or its type)."""
    name = text.split("@")[0].rsplit(".", 1)[0]
    return json.loads(name).get("type") if name.startswith("{") else name


def outputs_of(callback: dict) -> list[str]:
    """The output ids of a callback of ``/_dash-dependencies``."""
    output = callback["output"]
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [callback_id(part) for part in parts]


@pytest.fixture
def sections(monkeypatch):
    """The ids of the sections as a project with an enabled 2D model shows them."""
    from ril_dash.ui.components import explain_panel, model_panel
    from ril_dash.ui.pages import slice_viewer

    model = SimpleNamespace(ref="kidney@1.0.0", id="kidney", name="Kidney", version="1.0.0",
                            task="segmentation", dimension=2)
    for module in (model_panel, explain_panel):
        monkeypatch.setattr(module, "runnable", lambda _services: [model])
        monkeypatch.setattr(module, "get_services", lambda: None)
    config = SimpleNamespace(rois=[SimpleNamespace(name="Liver", value=1, type="area")])
    return component_ids(slice_viewer.later_sections(SimpleNamespace(
        project=SimpleNamespace(config=config))))


def viewer_layout(url: str, series: str) -> str:
    """The viewer page's layout as the server sends it (JSON text)."""
    callbacks = requests.get(url + "/_dash-dependencies", timeout=30).json()
    key = next(cb["output"] for cb in callbacks if "_pages_content.children" in cb["output"])
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1].split("@")[0]}
               for part in key[2:-2].split("...")]
    reply = requests.post(url + "/_dash-update-component", timeout=60, json={
        "output": key, "outputs": outputs, "changedPropIds": ["_pages_location.pathname"],
        "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/view"},
                   {"id": "_pages_location", "property": "search",
                    "value": "?series=" + series}], "state": []})
    assert reply.status_code == 200, reply.text
    return reply.text


def test_the_sections_come_after_the_page_with_their_controls(sections, demo_server):
    for name in (ids.RUN_START, ids.RUN_MODEL, ids.RUN_VERSION, ids.EXPLAIN_MODEL,
                 ids.EXPLAIN_START, ids.COMPARE_RUN, ids.DISAGREE_LIST):
        assert name in sections
    page = viewer_layout(demo_server.url, SERIES)
    assert f'"{ids.VIEWER_SECTIONS}"' in page and f'"{ids.VIEWER_SECTIONS_WANTED}"' in page
    assert f'"{ids.VIEWER_GRAPH}"' in page and "Keyboard and mouse" not in page
    assert not [name for name in sections if f'"{name}"' in page]


def test_no_callback_of_a_section_acts_when_the_section_is_added(sections, demo_server):
    callbacks = requests.get(demo_server.url + "/_dash-dependencies", timeout=30).json()
    starters = [cb for cb in callbacks
                if any(callback_id(f"{i['id']}.{i['property']}") == ids.RUN_START
                       for i in cb["inputs"])]
    assert starters, "the Models panel's Run is a callback input"  # the check sees them
    acting = []
    for cb in callbacks:
        inputs = {callback_id(f"{i['id']}.{i['property']}") for i in cb["inputs"]}
        outside = set(outputs_of(cb)) - sections
        if inputs & sections and outside:
            if not {(i, o) for i in inputs & sections for o in outside} <= HAND_ON:
                acting.append(cb["output"])
    assert acting == []
