"""Processes of the job tier for the tests and the benchmark: a private Redis server on a free
loopback port (no persistence, in a temp folder) and ``ril-dash worker`` processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from support import free_port

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """``redis-server`` on a free port of 127.0.0.1, its files in ``folder``."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder, self.port = Path(folder), port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=open(self.folder / "redis.log", "ab"), stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start: "
                                       f"{(self.folder / 'redis.log').read_text()[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class Worker:
    """``ril-dash worker PROJECT --broker URL ...`` as a subprocess, its log in a file."""

    def __init__(self, project: Path, broker: str, *args: str, log: Path,
                 env: dict | None = None, wait: bool = True) -> None:
        self.log = Path(log)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ril_dash", "worker", str(project), "--broker", broker,
             *args], stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, start_new_session=True)
        if wait:
            self.wait_ready()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.text()[-3000:]}")
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)

    def children(self) -> list[int]:
        return [p.pid for p in psutil.Process(self.process.pid).children(recursive=False)]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
