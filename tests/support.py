"""Helpers shared by the tests and the benchmarks: a real ril-dash server process, Chromium.

Servers run as real ``python -m ril_dash`` subprocesses on a free loopback port. Browser tests
drive Debian's Chromium through Playwright (``RIL_DASH_CHROMIUM`` overrides the executable).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

CHROMIUM = os.environ.get("RIL_DASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PRELOAD_CALLBACK = {  # the body Dash's renderer posts for the preload callback of app.py
    "output": "plotly-preload.children",
    "outputs": {"id": "plotly-preload", "property": "children"},
    "inputs": [{"id": "plotly-preload-timer", "property": "n_intervals", "value": 1}],
    "changedPropIds": ["plotly-preload-timer.n_intervals"],
    "state": [],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """A server subprocess (``python -m ril_dash`` by default) on a free loopback port."""

    def __init__(self, args: list[str], env: dict | None = None, timeout: float = 120,
                 command: list[str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = dict(os.environ, **(env or {}))
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "ril_dash"]), *args, "--port", str(self.port)],
            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.proc.stdout.read()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def rss_mb(self) -> float:
        """Resident memory of the server process in MB (Linux)."""
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


def serving(args: list[str], **kw):
    """For a fixture (``yield from serving([...])``): a :class:`RunningServer`, stopped after."""
    server = RunningServer(args, **kw)
    try:
        yield server
    finally:
        server.stop()


def serving_with_model_worker(project_dir, worker_dir):
    """For a fixture: ``ril-dash serve project_dir`` with its own model worker in
    ``worker_dir``; the server and then the worker stopped after."""
    from ril_dash.models.worker_client import ModelWorker

    try:
        yield from serving(["serve", str(project_dir)],
                           env={"RIL_DASH_WORKER_DIR": str(worker_dir)})
    finally:
        ModelWorker(worker_dir).shutdown()


def tree_digest(*roots) -> dict[str, str]:
    """Everything under ``roots``: relative path → sha256 (files), 'link -> target' (symlinks)
    or 'folder'; hidden files included. Equal digests mean nothing was written there."""
    import hashlib
    from pathlib import Path

    digest = {}
    for root in map(Path, roots):
        for folder, dirs, files in os.walk(root, followlinks=False):
            for name in dirs + files:
                path = os.path.join(folder, name)
                key = os.path.relpath(path, root.parent)
                if os.path.islink(path):
                    digest[key] = "link -> " + os.readlink(path)
                elif os.path.isfile(path):
                    with open(path, "rb") as fh:
                        digest[key] = hashlib.sha256(fh.read()).hexdigest()
                else:
                    digest[key] = "folder"
    return digest


# -- a logged-in user talking to the app as the Dash renderer does -------------------------------
def dash_id(component_id) -> str:
    """A component id as Dash writes it in prop ids (dict ids: sorted compact JSON)."""
    import json

    if isinstance(component_id, str):
        return component_id
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


class DashUser:
    """A ``requests`` session logged in as ``user`` that posts callbacks like the browser.

    ``callback(output, inputs, state)`` posts ``/_dash-update-component`` with the body Dash's
    renderer sends: ``output`` is the callback's output key without the ``@hash`` suffixes of
    ``allow_duplicate`` outputs (``"..a.children...b.data.."`` for several outputs); inputs and
    state are ``(id, property, value)`` triples, or lists of them for a pattern-matching ALL.
    Background callbacks are polled (``cacheKey`` / ``job``) until they answer.
    """

    def __init__(self, url: str, user: str, password: str, *, origin: bool = False) -> None:
        import requests

        self.url, self.user = url, user
        self.http = requests.Session()
        if origin:
            self.http.headers["Origin"] = url
        reply = self.http.post(url + "/login", allow_redirects=False, timeout=30,
                               data={"user": user, "password": password, "next": "/"})
        if reply.status_code != 303:
            raise AssertionError(f"login of {user} failed: {reply.status_code} {reply.text}")
        self._outputs: dict[str, str] | None = None

    def get(self, path: str, **kw):
        return self.http.get(self.url + path, timeout=60, **kw)

    def post(self, path: str, **kw):
        return self.http.post(self.url + path, timeout=60, **kw)

    def output_key(self, output: str) -> str:
        """The callback map key of ``output`` (with the ``@hash`` suffixes Dash added)."""
        import re

        if self._outputs is None:
            deps = self.get("/_dash-dependencies").json()
            self._outputs = {re.sub(r"@[0-9a-f]{64}", "", d["output"]): d["output"]
                             for d in deps}
        return self._outputs[output]

    def callback(self, output: str, inputs, state=(), changed=None, params=None,
                 outputs=None):
        """Post the callback of ``output``; ``outputs`` overrides the output specs sent
        (needed for pattern-matching outputs, which the renderer sends resolved)."""
        import json

        key = self.output_key(output)
        multi = key.startswith("..")
        if outputs is None:
            outputs = []
            for part in (key[2:-2].split("...") if multi else [key]):
                cid, _, prop = part.rpartition(".")
                outputs.append({"id": json.loads(cid) if cid.startswith("{") else cid,
                                "property": prop.split("@")[0]})

        def spec(item):
            if isinstance(item, list):
                return [spec(x) for x in item]
            cid, prop, value = item
            return {"id": cid, "property": prop, "value": value}

        if changed is None:
            first = inputs[0][0] if isinstance(inputs[0], list) else inputs[0]
            changed = [f"{dash_id(first[0])}.{first[1]}"]
        body = {"output": key, "outputs": outputs if multi else outputs[0],
                "inputs": [spec(x) for x in inputs], "state": [spec(x) for x in state],
                "changedPropIds": changed}
        return self.post("/_dash-update-component", json=body, params=params)

    def background(self, output: str, inputs, state=(), timeout: float = 120):
        """Run a background callback to its end; return the last reply."""
        reply = self.callback(output, inputs, state)
        if reply.status_code != 200 or "cacheKey" not in reply.json():
            return reply
        handles = reply.json()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.callback(output, inputs, state, params={
                "cacheKey": handles["cacheKey"], "job": handles["job"]})
            if reply.status_code != 200 or "response" in reply.json():
                return reply
            time.sleep(0.2)
        raise AssertionError(f"the background callback {output} did not finish")

    def page(self, path: str, search: str = ""):
        """The layout Dash's pages callback sends for ``path`` + ``search`` (JSON)."""
        reply = self.callback(".._pages_content.children..._pages_store.data..",
                              [("_pages_location", "pathname", path),
                               ("_pages_location", "search", search)])
        assert reply.status_code == 200, reply.text
        return reply.json()["response"]["_pages_content"]["children"]


def login_session(url: str, user: str, password: str):
    """A ``requests`` session logged in as ``user`` on the server at ``url`` (asserts 303)."""
    import requests

    http = requests.Session()
    reply = http.post(url + "/login", data={"user": user, "password": password, "next": "/"},
                      allow_redirects=False, timeout=30)
    assert reply.status_code == 303, reply.text
    return http


def layout_texts(node) -> list[str]:
    """Every text child in a Dash layout (JSON), in order."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [t for item in node for t in layout_texts(item)]
    if isinstance(node, dict):
        return layout_texts(node.get("props", {}).get("children"))
    return []


def project_copy(demo_home, target, users=()):
    """A private copy of the demo project at ``target``: an empty annotation store, none of the
    original's users, sessions or audit log, and ``users`` as ``(name, password, admin)``."""
    import shutil
    from pathlib import Path

    from ril_dash.project.users import UsersFile

    target = Path(target)
    shutil.copytree(Path(demo_home) / "demo-project", target, ignore=shutil.ignore_patterns(
        "annotations", "users.yaml", ".sessions", "audit.log.jsonl"))
    (target / "annotations").mkdir()
    users_file = UsersFile.for_project(target)
    for name, password, admin in users:
        users_file.add(name, password, admin=admin)
    return target


def project_with_workflow(demo_home, root, users=()):
    """:func:`project_copy` at ``root/project`` with the demo's example workflow written
    beside it (``root/workflow.yaml``, to serve with ``--workflow``)."""
    from pathlib import Path

    import yaml

    target = project_copy(demo_home, Path(root) / "project", users)
    workflow = yaml.safe_load((target / "workflow.yaml").read_text())
    (Path(root) / "workflow.yaml").write_text(yaml.safe_dump(workflow, sort_keys=False))
    return target


def password(user: str) -> str:
    """The password the tests give ``user``."""
    return f"{user}-password-1"


def workflow_server(project, demo_home) -> RunningServer:
    """``ril-dash serve PROJECT --login --workflow`` the workflow beside ``project`` (as
    :func:`project_with_workflow` writes it)."""
    return RunningServer(["serve", str(project), "--login",
                          "--workflow", str(project.parent / "workflow.yaml")],
                         env={"RIL_DASH_HOME": str(demo_home)})


# -- the list editors of the /rois page in a browser ---------------------------------------------
class EditorTable:
    """The table of the list editor ``prefix`` ("roi", "tf") of ``/rois``, driven in ``page``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def names(self, page) -> list[str]:
        return page.locator(f"#{self.prefix}-table .ril-{self.prefix}-name").all_text_contents()

    def wait_names(self, page, expected: list[str]) -> None:
        page.wait_for_function(
            "([selector, expected]) => JSON.stringify(Array.from(document.querySelectorAll("
            "selector)).map(e => e.textContent)) === JSON.stringify(expected)",
            arg=[f"#{self.prefix}-table .ril-{self.prefix}-name", expected])

    def row(self, page, name: str):
        return page.locator(f"#{self.prefix}-table .ril-{self.prefix}-row").filter(
            has=page.locator(f".ril-{self.prefix}-name", has_text=name))

    def move_to_top(self, page, name: str, expected: list[str]) -> None:
        """Click ↑ on the second row ``name``; the table lists ``expected``, and the ↑ of the
        row, first now, is disabled."""
        self.row(page, name).locator("[title='Move up']").click()
        self.wait_names(page, expected)
        assert self.row(page, name).locator("[title='Move up']").is_disabled()

    def open_delete(self, page, name: str) -> str:
        """Click Delete on the row ``name``; the text of the dialog that opens."""
        self.row(page, name).locator(f".ril-{self.prefix}-delete-button").click()
        page.wait_for_selector(f"#{self.prefix}-delete-dialog:not([hidden])")
        return page.inner_text(f"#{self.prefix}-delete-message")


def commit_roi(annotations, value: int, voxels, provenance: dict | None = None,
               user: str = "ana") -> int:
    """Commit a version of ``annotations`` (a SeriesAnnotations) in which ROI ``value`` holds
    exactly ``voxels`` (canonical index tuples); ``provenance`` e.g. ``{"kind": "model",
    "model": "kidney-seg@1.0.0"}`` (default: a manual paint). Returns the new version."""
    import types

    import numpy as np

    from ril_dash.core.mask_slots import widen_bits, with_slots

    state = annotations.refresh()
    slots = with_slots(state.slots, [value])
    before = widen_bits(np.array(state.bits), slots)
    bit = before.dtype.type(1 << slots[value])
    after = before & ~bit
    for voxel in voxels:
        after[tuple(voxel)] |= bit
    delta = types.SimpleNamespace(box=tuple((0, n) for n in annotations.shape),
                                  before=before, after=after)
    meta = {"user": user, "op": "paint" if provenance is None else "model"}
    if provenance is not None:
        meta["provenance"] = provenance
    return annotations.commit(state.version, delta, meta, slots=slots)
