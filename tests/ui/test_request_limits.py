"""Requests refused before they are read: foreign ``Host`` names (DNS rebinding) and bodies
larger than their route allows (ril_dash.ui.request_limits), on real server processes."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from support import DashUser, RunningServer, project_copy

from ril_dash.ui.request_limits import BODY_BYTES, UPLOAD_BODY_BYTES, host_allowed

pytestmark = pytest.mark.slow  # starts server processes

SERIES = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
EDIT = {"series": SERIES, "roi": 1, "plane": "axial", "index": 20, "frame": 0,
        "tool": "brush", "path": "M100,100L120,110", "brush": 5, "brush_unit": "vox",
        "depth": 0, "parent": 0}
SLICE = {"series": SERIES, "plane": "axial", "index": 5, "wc": 40, "ww": 400}
BIG = 50 * 1024**2


def big_json_body() -> bytes:
    """A well-formed 50 MB edit: parsing it would cost the server several times its size."""
    return json.dumps(dict(EDIT, path="M1,1" + "L2,2" * (BIG // 4))).encode()


def test_host_names_served():
    names = frozenset({"localhost", "lab.example.org"})
    for host in ("127.0.0.1:8050", "localhost:8050", "LOCALHOST", "[::1]:8050",
                 "192.168.1.20:8050", "lab.example.org", "lab.example.org.:443"):
        assert host_allowed(host, names), host
    for host in ("evil.example:8050", "localhost.evil.example", "127.0.0.1.nip.io:8050", "",
                 None, "[::1"):
        assert not host_allowed(host, names), host


def test_upload_bound_holds_the_largest_model_file():
    from ril_dash.models.wizard_files import MAX_UPLOAD_BYTES as wizard
    from ril_dash.ui.pages.models_page import MAX_UPLOAD_BYTES as bundle

    assert UPLOAD_BODY_BYTES >= len(base64.b64encode(bytes(max(wizard, bundle) // 1000))) * 1000
    assert BODY_BYTES == 4 * 1024**2


@pytest.fixture(scope="module")
def local_server(demo_home, tmp_path_factory):
    project = project_copy(demo_home, tmp_path_factory.mktemp("checks") / "project")
    server = RunningServer(["serve", str(project), "--allowed-host", "lab.example.org"],
                           env={"RIL_DASH_HOME": str(demo_home)})
    server.project = project
    yield server
    server.stop()


def test_a_foreign_host_is_refused_on_the_default_server(local_server):
    url = local_server.url
    foreign = f"evil.example:{local_server.port}"
    headers = {"Host": foreign, "Origin": f"http://{foreign}"}
    reply = requests.get(url + "/ril/api/slice", params=SLICE, headers=headers, timeout=30)
    assert reply.status_code == 400
    assert "does not answer to the name 'evil.example:" in reply.json()["error"]
    assert "--allowed-host" in reply.json()["error"]
    reply = requests.post(url + "/ril/api/edit", json=EDIT, headers=headers, timeout=30)
    assert reply.status_code == 400
    start = {"output": "export-result.children", "outputs": {"id": "export-result",
             "property": "children"}, "inputs": [{"id": "export-start", "property": "n_clicks",
                                                   "value": 1}],
             "state": [], "changedPropIds": ["export-start.n_clicks"]}
    reply = requests.post(url + "/_dash-update-component", json=start, headers=headers,
                          timeout=30)
    assert reply.status_code == 400
    assert requests.get(url + "/", headers=headers, timeout=30).status_code == 400
    assert not list((local_server.project / "annotations").rglob("*.npz"))  # nothing painted

    for host in (f"127.0.0.1:{local_server.port}", f"localhost:{local_server.port}",
                 "lab.example.org"):
        reply = requests.get(url + "/ril/api/slice", params=SLICE, headers={"Host": host},
                             timeout=30)
        assert reply.status_code == 200 and reply.text.startswith("data:image/png"), host
    reply = requests.post(url + "/ril/api/edit", json=EDIT, timeout=30)
    assert reply.status_code == 200, reply.text
    assert list((local_server.project / "annotations").rglob("*.npz"))


def peak_mb(server: RunningServer) -> float:
    """The most resident memory the server process has had (Linux VmHWM), in MB."""
    with open(f"/proc/{server.proc.pid}/status") as fh:
        return int(fh.read().split("VmHWM:")[1].split()[0]) / 1024


def post_timed(url: str, **kw) -> tuple[requests.Response, float]:
    start = time.monotonic()
    reply = requests.post(url, timeout=60, **kw)
    return reply, time.monotonic() - start


def test_large_bodies_are_refused_unread(local_server):
    before = peak_mb(local_server)
    body = big_json_body()
    for _ in range(3):
        reply, seconds = post_timed(local_server.url + "/ril/api/edit", data=body,
                                    headers={"Content-Type": "application/json"})
        assert reply.status_code == 413, reply.text[:300]
        assert "larger than this server accepts here (4 MB)" in reply.json()["error"]
        assert seconds < 10
    assert peak_mb(local_server) - before < 25  # the body never entered the process's memory
    # a chunked body without a length is cut at the same bound
    reply = requests.post(local_server.url + "/ril/api/edit", timeout=60,
                          data=iter([body[i:i + 2**20] for i in range(0, len(body), 2**20)]),
                          headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert peak_mb(local_server) - before < 25


def test_login_and_callback_limits_with_logins(demo_home, tmp_path):
    project = project_copy(demo_home, tmp_path / "project", [
        ("alice", "alice-secret-1", True), ("bob", "bob-secret-22", False)])
    server = RunningServer(["serve", str(project), "--login"],
                           env={"RIL_DASH_HOME": str(demo_home)})
    try:
        before = peak_mb(server)
        form = b"user=alice&password=" + b"x" * BIG
        reply, seconds = post_timed(server.url + "/login", data=form, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert reply.status_code == 413 and seconds < 10
        bob = DashUser(server.url, "bob", "bob-secret-22")
        upload = [("models-upload", "contents", "data:application/zip;base64,"
                   + "A" * (6 * 1024**2))]
        reply = bob.callback("..models-upload-result.children...models-refresh.data..",
                             upload, [("models-upload", "filename", "bundle.zip"),
                                      ("models-refresh", "data", 0)])
        assert reply.status_code == 413  # bob may not upload models: 4 MB for his callbacks
        reply = bob.post("/ril/api/edit", data=big_json_body(),
                         headers={"Content-Type": "application/json"})
        assert reply.status_code == 413
        assert peak_mb(server) - before < 40

        alice = DashUser(server.url, "alice", "alice-secret-1")
        reply = alice.callback("..models-upload-result.children...models-refresh.data..",
                               upload, [("models-upload", "filename", "bundle.zip"),
                                        ("models-refresh", "data", 0)])
        assert reply.status_code == 200, reply.text[:300]  # read: an admin's upload
        assert "bundle.zip" in reply.text
    finally:
        server.stop()
