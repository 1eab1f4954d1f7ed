"""The text-annotation HTTP API (``GET``/``POST /ril/api/texts``) of a real server process.

A temp project with one text field of every type; values are read back from the store in this
process; bad values give 422, stale parents 409, malformed requests a JSON 4xx (never a 500).
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import requests

from ril_dash.project.annotation_store import AnnotationStore

pytestmark = pytest.mark.browser

SERIES = "P1/ct.nii.gz"
SHAPE = (12, 10, 4)
PROJECT_YAML = """\
name: Text API test
images: {images}
rois:
  - {{name: Liver, color: "#c8763c", value: 1}}
text_fields:
  - {{name: Phase, type: choice, values: [arterial, venous], required: true}}
  - {{name: Findings, type: multi_choice, values: [cyst, mass, stone]}}
  - {{name: Comment, type: text}}
  - {{name: Size, type: number, required: true}}
  - {{name: Contrast, type: yes_no}}
"""
FIELDS = [{"name": "Phase", "type": "choice", "values": ["arterial", "venous"], "required": True},
          {"name": "Findings", "type": "multi_choice", "values": ["cyst", "mass", "stone"],
           "required": False},
          {"name": "Comment", "type": "text", "values": [], "required": False},
          {"name": "Size", "type": "number", "values": [], "required": True},
          {"name": "Contrast", "type": "yes_no", "values": [], "required": False}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from support import RunningServer  # tests/support.py

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("text-api")
    images = root / "images"
    (images / "P1").mkdir(parents=True)
    data = np.random.default_rng(3).integers(0, 100, SHAPE).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), images / SERIES)
    project = init_project(root / "project", images)
    (root / "project" / "project.yaml").write_text(PROJECT_YAML.format(images=images))
    srv = RunningServer(["serve", str(project.dir)])
    srv.store = AnnotationStore(project.dir / "annotations")
    srv.http = requests.Session()
    yield srv
    srv.http.close()
    srv.stop()


def post(server, body=None, *, data=None, headers=None):
    if data is None:
        data = json.dumps(body)
        headers = {"Content-Type": "application/json"}
    r = server.http.post(f"{server.url}/ril/api/texts", data=data, headers=headers, timeout=60)
    return r.status_code, r.json()


def get(server, **params):
    r = server.http.get(f"{server.url}/ril/api/texts", params=params, timeout=60)
    return r.status_code, r.json()


def stored(server):
    return server.store.series(SERIES, SHAPE).refresh()


def test_get_empty(server):
    status, body = get(server, series=SERIES)
    assert status == 200
    assert body["version"] == 0 and body["texts"] == {}
    assert body["missing_required"] == ["Phase", "Size"] and body["fields"] == FIELDS


def test_post_values_of_every_type_then_undo(server):
    v0 = get(server, series=SERIES)[1]["version"]
    values = {"Phase": "venous", "Findings": ["stone", "cyst"], "Comment": "  fine ",
              "Size": "4.5", "Contrast": "yes"}
    status, body = post(server, {"series": SERIES, "parent": v0, "values": values})
    assert status == 200, body
    want = {"Phase": "venous", "Findings": ["stone", "cyst"], "Comment": "fine", "Size": 4.5,
            "Contrast": True}
    assert body["changed"] and body["version"] == v0 + 1 and body["texts"] == want
    assert body["missing_required"] == [] and body["fields"] == FIELDS
    state = stored(server)
    assert state.version == v0 + 1 and state.texts == want
    assert server.store.series(SERIES, SHAPE).versions(1)[0].op == "text"
    # the same values again: nothing changes
    status, body = post(server, {"series": SERIES, "parent": v0 + 1, "values": {"Size": 4.5}})
    assert status == 200 and not body["changed"] and body["version"] == v0 + 1
    # clearing a required field
    status, body = post(server, {"series": SERIES, "parent": v0 + 1,
                                 "values": {"Size": None, "Comment": ""}})
    assert status == 200 and body["missing_required"] == ["Size"]
    assert "Size" not in body["texts"] and "Comment" not in body["texts"]
    # undo through the generic history route restores the previous values
    r = server.http.post(f"{server.url}/ril/api/undo", json={"series": SERIES,
                                                             "parent": v0 + 2}, timeout=60)
    assert r.status_code == 200 and r.json()["changed"]
    status, body = get(server, series=SERIES)
    assert body["texts"] == want and body["version"] == v0 + 3


@pytest.mark.parametrize("values, words", [
    ({"Phase": "late"}, ["Phase", "arterial", "venous"]),
    ({"Findings": ["cyst", "cyst"]}, ["Findings"]),
    ({"Findings": ["bone"]}, ["Findings", "cyst"]),
    ({"Size": "big"}, ["Size"]),
    ({"Size": "nan"}, ["Size"]),
    ({"Contrast": "perhaps"}, ["Contrast"]),
    ({"Comment": "x" * 2001}, ["Comment", "2000"]),
    ({"Nope": "x"}, ["Nope", "Phase"]),
    ({"Phase": "arterial", "Unknown": 1}, ["Unknown"]),
])
def test_bad_values_are_422_and_save_nothing(server, values, words):
    before = stored(server)
    status, body = post(server, {"series": SERIES, "parent": before.version, "values": values})
    assert status == 422, body
    assert all(w in body["error"] for w in words), body["error"]
    after = stored(server)
    assert after.version == before.version and after.texts == before.texts


def test_stale_parent_is_409(server):
    v = stored(server).version
    assert v >= 1
    status, body = post(server, {"series": SERIES, "parent": v - 1,
                                 "values": {"Phase": "arterial"}})
    assert status == 409 and body["conflict"]
    assert stored(server).version == v


@pytest.mark.parametrize("data, headers", [
    ("{not json", {"Content-Type": "application/json"}),
    ("[1, 2]", {"Content-Type": "application/json"}),
    ('{"series": "P1/ct.nii.gz", "parent": 0, "values": {"Phase": "venous"}}',
     {"Content-Type": "text/plain"}),
    (json.dumps({"parent": 0, "values": {}}), {"Content-Type": "application/json"}),
    (json.dumps({"series": SERIES, "parent": "x", "values": {}}),
     {"Content-Type": "application/json"}),
    (json.dumps({"series": SERIES, "parent": True, "values": {}}),
     {"Content-Type": "application/json"}),
    (json.dumps({"series": SERIES, "parent": 0, "values": ["Phase"]}),
     {"Content-Type": "application/json"}),
    (json.dumps({"series": SERIES, "parent": 0}), {"Content-Type": "application/json"}),
    (json.dumps({"series": "P1/none.nii.gz", "parent": 0, "values": {}}),
     {"Content-Type": "application/json"}),
    (json.dumps({"series": "../etc", "parent": 0, "values": {}}),
     {"Content-Type": "application/json"}),
])
def test_malformed_requests_are_4xx(server, data, headers):
    status, body = post(server, data=data, headers=headers)
    assert 400 <= status < 500 and body["error"]


def test_get_errors_are_4xx(server):
    assert get(server)[0] == 400
    assert 400 <= get(server, series="P1/none.nii.gz")[0] < 500
