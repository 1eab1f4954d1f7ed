"""Crafted request bodies on a served app get a 400 with a reason, never a 500.

JSON nested far too deep (100,000 levels raised ``RecursionError`` in the parser), bodies that
are not JSON, and Dash callback bodies of the wrong shape (no ``output``, an unknown output,
``inputs`` not a list) are sent over HTTP to a real ``ril-dash`` server process; a well-formed
callback still answers 200 afterwards.
"""

from __future__ import annotations

import pytest
import requests
from support import PRELOAD_CALLBACK as PRELOAD

from ril_dash.ui.request_checks import MAX_JSON_DEPTH, json_depth

pytestmark = pytest.mark.slow  # uses the session's demo server process

JSON_ROUTES = ["/ril/api/edit", "/ril/api/undo", "/ril/api/redo", "/ril/api/rollback",
               "/ril/api/lease", "/_dash-update-component"]


def post(server, path, data, content_type="application/json"):
    return requests.post(server.url + path, data=data, timeout=60,
                         headers={"Content-Type": content_type})


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_json_nested_100000_deep_is_refused(demo_server, path):
    reply = post(demo_server, path, "[" * 100_000 + "]" * 100_000)
    assert reply.status_code == 400, reply.text
    assert "nests too deeply" in reply.json()["error"]
    # just over the limit is refused the same way
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert post(demo_server, path, deep).status_code == 400


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_a_body_that_is_not_json_is_refused(demo_server, path):
    reply = post(demo_server, path, '{"series": ')
    assert reply.status_code == 400
    assert "not valid JSON" in reply.json()["error"]


@pytest.mark.parametrize("change, words", [
    ({"output": None}, "needs 'output'"),
    ({"output": "no-such-thing.children"}, "unknown output"),
    ({"inputs": {"id": "plotly-preload-timer", "property": "n_intervals"}}, "'inputs' must"),
    ({"inputs": ["plotly-preload-timer.n_intervals"]}, "'inputs' must"),
    ({"inputs": []}, "'inputs' must"),
    ({"state": "x"}, "'state' must"),
    ({"outputs": 5}, "'outputs' must"),
    ({"changedPropIds": "plotly-preload-timer.n_intervals"}, "'changedPropIds' must"),
])
def test_malformed_callback_bodies_are_refused(demo_server, change, words):
    body = {k: v for k, v in {**PRELOAD, **change}.items() if v is not None}
    reply = requests.post(demo_server.url + "/_dash-update-component", json=body, timeout=60)
    assert reply.status_code == 400, reply.text
    assert words in reply.json()["error"]


def test_callback_bodies_that_are_not_objects_are_refused(demo_server):
    for body in ([PRELOAD], "plotly-preload.children", None):
        reply = requests.post(demo_server.url + "/_dash-update-component", json=body, timeout=60)
        assert reply.status_code == 400, reply.text
    reply = post(demo_server, "/_dash-update-component", "output=x", "text/plain")
    assert reply.status_code == 400


def test_a_well_formed_callback_still_answers(demo_server):
    reply = requests.post(demo_server.url + "/_dash-update-component", json=PRELOAD, timeout=60)
    assert reply.status_code in (200, 204), reply.text


def test_json_depth_counts_levels():
    assert json_depth([]) == 1
    assert json_depth({"a": [[], {"b": [1]}]}) == 4
    assert json_depth("text") == 0
