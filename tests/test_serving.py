"""``ril-dash serve --workers N``: several server processes on one port (ril_dash.serving)."""

from __future__ import annotations

import os
import signal
import time

import requests
from support import RunningServer


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
