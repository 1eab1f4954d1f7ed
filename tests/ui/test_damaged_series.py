"""A truncated newest annotation file, seen through two ``ril-dash serve --login`` processes on
one project: every API answer is JSON naming the damaged file (never an HTML 500), edits are
refused, the voxels shown are the last good version's, both processes agree, and an admin's
repair (through the lease API, and with Repair in the viewer) makes the series editable again
with its whole history kept and the repair in the audit log."""

from __future__ import annotations

import pytest
import requests
from support import RunningServer, login_session, project_copy

from ril_dash.project.audit import AuditLog
from ril_dash.project.users import UsersFile

pytestmark = pytest.mark.slow  # starts two server processes

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22"}
SERIES = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
FOLDER = SERIES + ".ril/v/"


@pytest.fixture(scope="module")
def servers(demo_home, tmp_path_factory):
    project = project_copy(demo_home, tmp_path_factory.mktemp("damaged") / "project",
                           [("bob", PASSWORDS["bob"], False)])
    UsersFile.for_project(project).add("alice", PASSWORDS["alice"], admin=True)
    env = {"RIL_DASH_HOME": str(demo_home)}
    first = RunningServer(["serve", str(project), "--login"], env=env)
    second = RunningServer(["serve", str(project), "--login"], env=env)
    first.project = project
    yield first, second
    first.stop()
    second.stop()


def login(url: str, user: str) -> requests.Session:
    return login_session(url, user, PASSWORDS[user])


def stroke(http, url: str, parent: int, x: int = 100) -> requests.Response:
    return http.post(url + "/ril/api/edit", timeout=30, json={
        "series": SERIES, "roi": 1, "plane": "axial", "index": 20, "frame": 0, "tool": "brush",
        "path": f"M{x},100L{x + 20},110", "brush": 5, "brush_unit": "vox", "depth": 0,
        "parent": parent})


def overlay(http, url: str, version: int | None = None) -> str:
    params = {"series": SERIES, "plane": "axial", "index": 20}
    if version is not None:
        params["version"] = version
    reply = http.get(url + "/ril/api/overlay", params=params, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()["overlay"]


def truncate(project, version: int) -> str:
    path = project / "annotations" / (FOLDER + f"{version:08d}.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return FOLDER + f"{version:08d}.npz"


def json_of(reply: requests.Response, status: int) -> dict:
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    assert reply.headers["Content-Type"].startswith("application/json"), reply.text[:200]
    return reply.json()


def test_a_truncated_newest_version_is_read_only_everywhere_until_repaired(servers):
    first, second = servers
    alice, bob = login(first.url, "alice"), login(second.url, "bob")
    assert json_of(stroke(alice, first.url, 0), 200)["version"] == 1
    assert json_of(stroke(alice, first.url, 1, x=140), 200)["version"] == 2
    good, newest = overlay(alice, first.url, 1), overlay(alice, first.url, 2)
    assert good != newest
    assert overlay(bob, second.url) == newest  # the second process has the series cached
    alice.post(first.url + "/ril/api/lease", json={"series": SERIES, "action": "release"})
    damaged = truncate(first.project, 2)

    for http, url in ((alice, first.url), (bob, second.url)):
        status = json_of(http.get(url + "/ril/api/lease", params={"series": SERIES}), 200)
        assert status["editable"] is False and damaged in status["reason"]
        assert status["damaged"]["file"] == damaged
        assert status["damaged"]["readable_version"] == 1
        summary = json_of(http.get(url + "/ril/api/annotations",
                                   params={"series": SERIES, "plane": "axial"}), 200)
        assert summary["version"] == 1 and summary["shown_version"] == 1
        assert summary["damaged"]["file"] == damaged and damaged in summary["damaged"]["message"]
        assert overlay(http, url) == good
        refused = json_of(stroke(http, url, 1), 423)
        assert damaged in refused["error"] and refused["damaged"]["file"] == damaged
        history = json_of(http.get(url + "/ril/api/versions", params={"series": SERIES}), 200)
        assert [v["op"] for v in history["versions"]] == ["damaged", "paint"]
        assert json_of(http.get(url + "/ril/api/texts", params={"series": SERIES}),
                       200)["version"] == 1
        assert http.get(url + "/ril/api/slice", timeout=30, params={
            "series": SERIES, "plane": "axial", "index": 20, "wc": 40, "ww": 400}
        ).status_code == 200
    assert json_of(bob.post(second.url + "/ril/api/lease", timeout=30,
                            json={"series": SERIES, "action": "repair"}), 403)["forbidden"]

    repaired = json_of(alice.post(first.url + "/ril/api/lease", timeout=30,
                                  json={"series": SERIES, "action": "repair"}), 200)
    assert repaired["repaired"] == {"version": 2, "restored": 1,
                                    "set_aside": ["00000002.npz.damaged"]}
    assert repaired["editable"] is True and repaired["damaged"] is None
    alice.post(first.url + "/ril/api/lease", json={"series": SERIES, "action": "release"})
    # the other process agrees at once: editable, the last good voxels, the history kept
    status = json_of(bob.get(second.url + "/ril/api/lease", params={"series": SERIES}), 200)
    assert status["editable"] is True and status["damaged"] is None
    assert overlay(bob, second.url) == good
    assert json_of(bob.get(second.url + "/ril/api/annotations", params={
        "series": SERIES, "plane": "axial"}), 200)["damaged"] is None
    assert json_of(stroke(bob, second.url, 2, x=60), 200)["version"] == 3
    history = json_of(alice.get(first.url + "/ril/api/versions", params={"series": SERIES}),
                      200)["versions"]
    assert [(v["id"], v["op"], v["user"]) for v in history] == [
        (3, "paint", "bob"), (2, "repair", "alice"), (1, "paint", "alice")]
    assert (first.project / "annotations" / (FOLDER + "00000002.npz.damaged")).exists()
    entries = [e for e in AuditLog.for_project(first.project).read() if e["action"] == "repair"]
    assert [(e["user"], e["series"], e["detail"]) for e in entries] == [
        ("alice", SERIES, {"version": 2, "restored": 1, "set_aside": ["00000002.npz.damaged"]})]
    bob.post(second.url + "/ril/api/lease", json={"series": SERIES, "action": "release"})


@pytest.mark.browser
def test_the_viewer_names_the_damaged_file_and_an_admin_repairs_it(servers, page):
    first, second = servers
    alice = login(first.url, "alice")
    version = json_of(alice.get(first.url + "/ril/api/annotations",
                                params={"series": SERIES, "plane": "axial"}), 200)["version"]
    # a good version of its own (the test does not lean on the module's first test), then the
    # version that is damaged
    assert json_of(stroke(alice, first.url, version, x=30), 200)["version"] == version + 1
    version += 1
    assert json_of(stroke(alice, first.url, version, x=80), 200)["version"] == version + 1
    alice.post(first.url + "/ril/api/lease", json={"series": SERIES, "action": "release"})
    damaged = truncate(first.project, version + 1)

    page.goto(second.url + "/login")
    page.fill("input[name=user]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button[type=submit]")
    page.wait_for_selector(".ril-user")
    page.goto(second.url + "/view?series=" + requests.utils.quote(SERIES, safe=""))
    page.wait_for_selector("#lease-banner:not([hidden])")
    assert damaged in page.locator(".ril-lease-reason").text_content()
    page.wait_for_function("() => !!window.rilViewer && window.rilViewer.state().shown")
    # the history lists the damaged version without View or Roll back, and the older ones
    page.click("details.ril-annot-section > summary:has-text('History')")
    row = page.locator(".ril-history-row.ril-damaged")
    row.wait_for()
    name = damaged.rsplit("/", 1)[1]
    assert row.inner_text().startswith(f"v{version + 1}") and f"{name} cannot be read" in \
        row.inner_text()
    assert row.get_by_role("button").count() == 0
    page.locator(".ril-history-row", has_text=f"v{version}").first.wait_for()
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#lease-repair")
    page.wait_for_selector("#lease-banner[hidden]", state="attached")
    after = json_of(alice.get(first.url + "/ril/api/versions", params={"series": SERIES}), 200)
    assert [v["op"] for v in after["versions"][:2]] == ["repair", "paint"]
    assert page.js_errors == []
