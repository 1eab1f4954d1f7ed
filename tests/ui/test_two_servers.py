"""Two server processes on one project respect each other's series leases and sessions.

Two ``ril-dash serve --login`` processes (as on two hosts sharing the project folder) serve the
same project: a user editing through one server holds the series; another user, through the
other server, is refused with who edits it, until the first leaves; a session made by one server
is valid on the other.
"""

from __future__ import annotations

import pytest
import requests
from support import RunningServer, login_session, project_copy

pytestmark = pytest.mark.slow  # starts two server processes

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22"}
SERIES = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"


class Pair(tuple):
    """The two servers, unpacking like a pair, with the project folder they share."""

    def __new__(cls, first, second, project):
        pair = super().__new__(cls, (first, second))
        pair.project = project
        return pair


@pytest.fixture(scope="module")
def servers(demo_home, tmp_path_factory):
    project = project_copy(demo_home, tmp_path_factory.mktemp("two") / "project",
                           [(name, password, False) for name, password in PASSWORDS.items()])
    env = {"RIL_DASH_HOME": str(demo_home)}
    first = RunningServer(["serve", str(project), "--login"], env=env)
    second = RunningServer(["serve", str(project), "--login"], env=env)
    yield Pair(first, second, project)
    first.stop()
    second.stop()


def login(url: str, user: str) -> requests.Session:
    return login_session(url, user, PASSWORDS[user])


def stroke(http: requests.Session, url: str, parent: int) -> requests.Response:
    return http.post(url + "/ril/api/edit", timeout=30, json={
        "series": SERIES, "roi": 1, "plane": "axial", "index": 20, "frame": 0, "tool": "brush",
        "path": "M100,100L120,110", "brush": 5, "brush_unit": "vox", "depth": 0,
        "parent": parent})


def test_a_lease_taken_on_one_server_holds_on_the_other(servers):
    first, second = servers
    alice, bob = login(first.url, "alice"), login(second.url, "bob")

    taken = alice.post(first.url + "/ril/api/lease", json={"series": SERIES, "action": "renew"})
    assert taken.status_code == 200 and taken.json()["editable"] is True
    saved = stroke(alice, first.url, 0)
    assert saved.status_code == 200 and saved.json()["version"] == 1

    seen = bob.post(second.url + "/ril/api/lease", json={"series": SERIES, "action": "renew"})
    assert seen.status_code == 200 and seen.json()["editable"] is False
    assert "being edited by alice" in seen.json()["reason"]
    assert seen.json()["holder"]["user"] == "alice" and seen.json()["can_break"] is False
    refused = stroke(bob, second.url, 1)
    assert refused.status_code == 423 and "being edited by alice" in refused.json()["error"]
    version = bob.get(second.url + "/ril/api/annotations",
                      params={"series": SERIES, "plane": "axial"}).json()["version"]
    assert version == 1  # nothing was written by bob

    left = alice.post(first.url + "/ril/api/lease", json={"series": SERIES, "action": "release"})
    assert left.json()["released"] is True
    assert stroke(bob, second.url, 1).status_code == 200


def test_a_session_from_one_server_works_on_the_other(servers):
    first, second = servers
    alice = login(first.url, "alice")
    reply = alice.get(second.url + "/ril/api/annotations",
                      params={"series": SERIES, "plane": "axial"})
    assert reply.status_code == 200
    assert requests.get(second.url + "/ril/api/annotations",
                        params={"series": SERIES, "plane": "axial"}).status_code == 401


def test_a_definition_changed_elsewhere_is_used_at_once(servers):
    """project.yaml edited by another process (the other server's ROI page): both servers use
    the new definitions from their next request on."""
    from ril_dash.project.text_field_editing import add_text_field

    first, second = servers
    alice = login(first.url, "alice")
    project = servers.project

    def fields(url):
        reply = alice.get(url + "/ril/api/texts", params={"series": SERIES})
        assert reply.status_code == 200
        return [f["name"] for f in reply.json()["fields"]]

    assert "Reader" not in fields(first.url) and "Reader" not in fields(second.url)
    add_text_field(project, "Reader", "text")
    assert fields(first.url)[-1] == "Reader" and fields(second.url)[-1] == "Reader"
