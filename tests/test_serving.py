"""Serving: ``ril-dash serve --workers N`` under gunicorn, a plain ``gunicorn`` command line, and
the single waitress process (ril_dash.serving, ril_dash.gunicorn_app).

Which process answered a request is read from the access log, whose lines end with the pid.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from support import DashUser, RunningServer, free_port, project_copy

pytestmark = pytest.mark.slow  # starts several server processes

SERIES = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
SLICE = {"series": SERIES, "plane": "axial", "index": 5, "wc": 40, "ww": 400}


def edit(parent: int, x: int = 100) -> dict:
    return {"series": SERIES, "roi": 1, "plane": "axial", "index": 20, "frame": 0,
            "tool": "brush", "path": f"M{x},100L{x + 20},110", "brush": 5, "brush_unit": "vox",
            "depth": 0, "parent": parent}


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


def answering_pids(access_log, request_line: str = "", status: str = "") -> set[int]:
    """The pids of the processes that logged ``request_line`` (a prefix) with ``status``."""
    pids = set()
    for line in access_log.read_text().splitlines():
        match = re.search(r'"(\S+ \S+)[^"]*" (\d{3}) .*pid<(\d+)>', line)
        if match and match[1].startswith(request_line) and match[2].startswith(status):
            pids.add(int(match[3]))
    return pids


def spread(url: str, access_log, cookies: dict | None = None) -> set[int]:
    """Slice reads on new connections, 8 at a time, until two processes have answered one."""
    def batch():
        threads = [threading.Thread(target=lambda: requests.get(
            url + "/ril/api/slice", params=SLICE, cookies=cookies, timeout=30))
            for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pids = answering_pids(access_log, "GET /ril/api/slice", "200")
        return pids if len(pids) >= 2 else None
    return wait_for(batch, 90)


def test_gunicorn_workers_serve_replace_reload_and_stop(demo_home, tmp_path):
    project = project_copy(demo_home, tmp_path / "project")
    access_log = tmp_path / "logs" / "access.log"
    access_log.parent.mkdir()
    server = RunningServer(["serve", str(project), "--workers", "2", "--threads", "4",
                            "--access-log", str(access_log)],
                           env={"RIL_DASH_HOME": str(demo_home)})
    try:
        workers = wait_for(lambda: len(kids := children_of(server.proc.pid)) == 2 and kids)
        assert access_log.stat().st_mode & 0o777 == 0o600  # URLs name series
        assert spread(server.url, access_log) == workers  # both processes answer

        # the server's own body bound: 413 before the body is read
        from ril_dash.ui.request_limits import UPLOAD_BODY_BYTES

        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain"
                         f"\r\nContent-Length: {UPLOAD_BODY_BYTES + 1}\r\n\r\nxxxx".encode())
            reply = http.client.HTTPResponse(sock)
            reply.begin()
            assert reply.status == 413
            assert "than this server accepts (687 MB)" in reply.read().decode()

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # a crashed worker is replaced; the port keeps serving
        replaced = wait_for(lambda: len(kids := children_of(server.proc.pid)) == 2
                            and victim not in kids and kids)
        assert max(workers) in replaced
        for _ in range(5):
            assert requests.get(server.url + "/", timeout=30).status_code == 200

        # graceful reload: new workers read project.yaml again; no request fails meanwhile
        yaml_file = project / "project.yaml"
        original = yaml_file.read_text()
        yaml_file.write_text(re.sub(r"(?m)^name:.*$", "name: Renamed on reload", original))
        failures, stop = [], threading.Event()

        def keep_asking():
            while not stop.is_set():
                try:
                    status = requests.get(server.url + "/ril/api/slice", params=SLICE,
                                          timeout=30).status_code
                except requests.RequestException as exc:
                    status = repr(exc)
                if status != 200:
                    failures.append(status)
        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            os.kill(server.proc.pid, signal.SIGHUP)
            reloaded = wait_for(lambda: len(kids := children_of(server.proc.pid)) == 2
                                and not kids & replaced and kids)
            time.sleep(1)
        finally:
            stop.set()
            asker.join(60)
        assert failures == []
        layout = requests.get(server.url + "/_dash-layout", timeout=30).text
        assert "Renamed on reload" in layout

        # a reload whose checks fail keeps what was served
        yaml_file.write_text("name: [unclosed\n")
        os.kill(server.proc.pid, signal.SIGHUP)
        again = wait_for(lambda: len(kids := children_of(server.proc.pid)) == 2
                         and not kids & reloaded and kids)
        assert "Renamed on reload" in requests.get(server.url + "/_dash-layout", timeout=30).text

        server.proc.send_signal(signal.SIGTERM)  # stops every process
        assert server.proc.wait(60) == 0
        for pid in again:  # no worker outlives the arbiter
            wait_for(lambda pid=pid: not os.path.exists(f"/proc/{pid}") or
                     open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", 30)
        output = server.proc.stdout.read()
        assert "Reload refused, the new workers serve the previous configuration" in output
        assert "project.yaml" in output.split("Reload refused")[1].splitlines()[0]
    finally:
        server.stop()


def test_a_background_export_and_a_lease_across_two_workers(demo_home, tmp_path):
    """Requests of one user land on both processes: the export job started by one is polled
    through either, and a lease taken through one holds in the other."""
    project = project_copy(demo_home, tmp_path / "project", [
        ("alice", "alice-secret-1", True), ("bob", "bob-secret-22", False)])
    server = RunningServer(["serve", str(project), "--login", "--workers", "2"],
                           env={"RIL_DASH_HOME": str(demo_home)})
    try:
        wait_for(lambda: len(children_of(server.proc.pid)) == 2)
        alice = DashUser(server.url, "alice", "alice-secret-1")
        assert alice.post("/ril/api/edit", json=edit(0)).status_code == 200
        reply = alice.background("export-result.children", [("export-start", "n_clicks", 1)], [
            ("export-out", "value", "two-workers"), ("export-mode", "value", "all"),
            ("export-glob", "value", None), ("export-options", "value", ["per_roi"])])
        assert reply.status_code == 200, reply.text
        assert "Exported 1 series (1 mask files)" in reply.text
        masks = list((project / "exports" / "two-workers").rglob("*.nii.gz"))
        assert len(masks) == 1 and "PHANTOM-001" in str(masks[0])

        bob = DashUser(server.url, "bob", "bob-secret-22")
        for _ in range(6):  # whichever process answers, alice's lease holds
            reply = bob.post("/ril/api/edit", json=edit(1))
            assert reply.status_code == 423 and "being edited by alice" in reply.json()["error"]
    finally:
        server.stop()


def test_plain_gunicorn_command_line(demo_home, tmp_path):
    """``python -m gunicorn -w 2 --threads 4 … ril_dash.wsgi:application``: a login, slices and
    edits answered by both processes, every edit saved once in order."""
    project = project_copy(demo_home, tmp_path / "project", [("alice", "alice-secret-1", True)])
    access_log = tmp_path / "access.log"
    command = ('exec "$0" -m gunicorn -w 2 --threads 4 -b "127.0.0.1:$2" --no-control-socket '
               '--access-logfile "$ACCESS_LOG" --access-logformat \'"%(r)s" %(s)s pid%(p)s\' '
               'ril_dash.wsgi:application')
    server = RunningServer([], command=["sh", "-c", command, sys.executable], env={
        "RIL_DASH_HOME": str(demo_home), "RIL_DASH_PROJECT": str(project),
        "ACCESS_LOG": str(access_log)})
    try:
        wait_for(lambda: len(children_of(server.proc.pid)) == 2)
        alice = DashUser(server.url, "alice", "alice-secret-1")
        cookies = alice.http.cookies.get_dict()
        version, edits = 0, 0
        while len(answering_pids(access_log, "POST /ril/api/edit", "200")) < 2:
            assert edits < 100, "one process answered every edit"
            reply = requests.post(server.url + "/ril/api/edit", json=edit(version, 60 + edits),
                                  cookies=cookies, headers={"Origin": server.url}, timeout=30)
            assert reply.status_code == 200, reply.text
            assert reply.json()["version"] == version + 1
            version, edits = version + 1, edits + 1
        assert len(spread(server.url, access_log, cookies)) == 2
        reply = requests.get(server.url + "/ril/api/slice", params=SLICE, cookies=cookies,
                             timeout=30)
        assert reply.status_code == 200 and reply.text.startswith("data:image/png")
        assert requests.get(server.url + "/ril/api/slice", params=SLICE,
                            timeout=30).status_code == 401  # no session: refused by either
        # gunicorn writes the access line after the reply has gone out: wait for it
        wait_for(lambda: answering_pids(access_log, "GET /ril/api/slice", "401"), 10)
    finally:
        server.stop()
    from ril_dash.core.volume import canonical_shape
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.project import Project

    opened = Project.open(project)
    annotations = AnnotationStore(opened.config.annotations).series(
        SERIES, canonical_shape(opened.series_path(SERIES)))
    paints = [v for v in annotations.versions() if v.op == "paint"]
    assert len(paints) == edits and {v.user for v in paints} == {"alice"}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_burst_of_first_requests_on_fresh_workers(demo_home, workers):
    """Dash sets itself up in a process's first request, not safely against concurrent ones:
    each process does it before serving, so a burst on fresh ones gets complete answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ril_dash", "serve",
                             str(demo_home / "demo-project"), "--workers", workers,
                             "--threads", "16", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ,
                                                                RIL_DASH_HOME=str(demo_home)))
    try:
        def bound():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(bound)  # no request yet: the workers are fresh
        replies = [None] * 32

        def ask(i):
            replies[i] = requests.get(f"http://127.0.0.1:{port}/_dash-dependencies", timeout=60)
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(replies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status_code for r in replies] == [200] * len(replies)
        assert len({r.text for r in replies}) == 1  # every callback, in every answer
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_worker_that_fails_at_start_stops_the_server(demo_home, tmp_path):
    """The app cannot be built in a worker: the server stops with the reason, status 2 (also
    when further workers fail while the first failure stops the server)."""
    project = project_copy(demo_home, tmp_path / "project")
    script = ("import sys, ril_dash.ui.app as app\n"
              "def broken(*args, **kw):\n"
              "    raise RuntimeError('the volume cache cannot be set up')\n"
              "app.create_app = broken\n"
              "from ril_dash.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script, "serve", str(project), "--workers", "3",
                           "--port", str(free_port())], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, RIL_DASH_HOME=str(demo_home)))
    assert done.returncode == 2, done.stderr
    assert "the volume cache cannot be set up" in done.stderr
    assert "ril-dash: error: a server process failed while starting" in done.stderr
    assert time.monotonic() - started < 60


def test_an_access_log_needs_the_gunicorn_server(demo_home, tmp_path, capsys):
    from ril_dash.cli import main

    assert main(["serve", str(demo_home / "demo-project"), "--access-log",
                 str(tmp_path / "access.log")]) == 2
    assert "--access-log needs --workers 2 or more" in capsys.readouterr().err
    assert not (tmp_path / "access.log").exists()


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
