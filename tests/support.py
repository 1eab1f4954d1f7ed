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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """A server subprocess (``python -m ril_dash`` by default) on a free loopback port."""

    def __init__(self, args: list[str], env: dict | None = None, timeout: float = 120,
                 command: list[str] | None = None) -> None:
        self.port = free_port()
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
