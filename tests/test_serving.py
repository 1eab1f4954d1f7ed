"""``ril-dash serve --workers N``: several server processes on one port (ril_dash.serving)."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests
from support import RunningServer, project_copy

pytestmark = pytest.mark.slow  # starts several server processes


def children_of(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry))
    return out


def wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_two_workers_serve_restart_and_stop(demo_home):
    project = demo_home / "demo-project"
    server = RunningServer(["serve", str(project), "--workers", "2"],
                           env={"RIL_DASH_HOME": str(demo_home)})
    try:
        workers = wait_for(lambda: (kids := children_of(server.proc.pid)) and len(kids) == 2
                           and kids)
        series = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
        for _ in range(20):  # the kernel spreads the connections over both processes
            reply = requests.get(server.url + "/ril/api/slice", params={
                "series": series, "plane": "axial", "index": 5, "wc": 40, "ww": 400})
            assert reply.status_code == 200 and reply.text.startswith("data:image/png")

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # a crashed worker is replaced; the port keeps serving
        replaced = wait_for(lambda: (kids := children_of(server.proc.pid)) and len(kids) == 2
                            and victim not in kids and kids)
        assert len(replaced) == 2
        for _ in range(5):
            assert requests.get(server.url + "/", timeout=30).status_code == 200

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        for pid in replaced:
            wait_for(lambda pid=pid: not os.path.exists(f"/proc/{pid}") or
                     open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", 30)
    finally:
        server.stop()


def test_a_background_export_and_a_lease_across_two_workers(demo_home, tmp_path):
    """Requests of one user land on both processes: the export job started by one is polled
    through either, and a lease taken through one holds in the other."""
    from support import DashUser

    project = project_copy(demo_home, tmp_path / "project", [
        ("alice", "alice-secret-1", True), ("bob", "bob-secret-22", False)])
    server = RunningServer(["serve", str(project), "--login", "--workers", "2"],
                           env={"RIL_DASH_HOME": str(demo_home)})
    try:
        wait_for(lambda: len(children_of(server.proc.pid)) == 2)
        alice = DashUser(server.url, "alice", "alice-secret-1")
        series = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
        edit = {"series": series, "roi": 1, "plane": "axial", "index": 20, "frame": 0,
                "tool": "brush", "path": "M100,100L120,110", "brush": 5, "brush_unit": "vox",
                "depth": 0, "parent": 0}
        assert alice.post("/ril/api/edit", json=edit).status_code == 200
        reply = alice.background("export-result.children", [("export-start", "n_clicks", 1)], [
            ("export-out", "value", "two-workers"), ("export-mode", "value", "all"),
            ("export-glob", "value", None), ("export-options", "value", ["per_roi"])])
        assert reply.status_code == 200, reply.text
        assert "Exported 1 series (1 mask files)" in reply.text
        masks = list((project / "exports" / "two-workers").rglob("*.nii.gz"))
        assert len(masks) == 1 and "PHANTOM-001" in str(masks[0])

        bob = DashUser(server.url, "bob", "bob-secret-22")
        for _ in range(6):  # whichever process answers, alice's lease holds
            reply = bob.post("/ril/api/edit", json=dict(edit, parent=1))
            assert reply.status_code == 423 and "being edited by alice" in reply.json()["error"]
    finally:
        server.stop()


def test_restart_on_the_same_port_at_once_after_a_crash(demo_home):
    """A supervisor restarts a killed server at once: the connections it held (now in
    TIME_WAIT / FIN_WAIT) must not block the new one from listening on the port."""
    project = demo_home / "demo-project"
    env = {"RIL_DASH_HOME": str(demo_home)}
    server = RunningServer(["serve", str(project)], env=env)
    clients = [requests.Session() for _ in range(4)]
    try:
        for client in clients:  # keep-alive connections stay open on the server side
            assert client.get(server.url + "/", timeout=30).status_code == 200
        server.proc.kill()
        server.proc.wait(10)
        again = RunningServer(["serve", str(project)], env=env, port=server.port, timeout=60)
        try:
            assert requests.get(again.url + "/", timeout=30).status_code == 200
        finally:
            again.stop()
    finally:
        for client in clients:
            client.close()
        server.stop()
