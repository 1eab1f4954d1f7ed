"""A small HTTP/1.1 client on asyncio streams for load generators that run many simulated users.

``bench_multiuser.py`` simulates up to 100 annotators on the same 2-core machine as the server;
one ``requests`` session per user process cost 100 Python processes and about a millisecond of
client CPU per request. Here one event loop keeps one kept-alive connection per user, with
its own cookies, and does only what the benchmark needs: GET and POST (form or JSON bodies),
``Content-Length`` or chunked replies, ``Set-Cookie`` (name and value), and a reconnection
when the server has closed an idle connection (as ``requests`` does). No redirects are
followed.

Example (inside a coroutine)::

    http = AsyncHttp("127.0.0.1", 8050)
    status, headers, body = await http.request("POST", "/login", form={"user": "ana", ...})
    status, headers, body = await http.request("GET", "/ril/api/slice", params={"index": 3})
    await http.close()
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode


class AsyncHttp:
    """One kept-alive connection to ``host:port`` with its own cookie jar."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, *, params: dict | None = None,
                      json_body=None, form: dict | None = None) -> tuple[int, dict, bytes]:
        """Send one request; return (status, headers with lower-case names, body)."""
        target = path + ("?" + urlencode(params) if params else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 "Accept-Encoding: identity"]
        body = b""
        if json_body is not None:
            body = json.dumps(json_body).encode()
            lines.append("Content-Type: application/json")
        elif form is not None:
            body = urlencode(form).encode()
            lines.append("Content-Type: application/x-www-form-urlencoded")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for _attempt in range(2):
            if self._writer is None or self._reader.at_eof():
                await self._connect()
            try:
                self._writer.write(message)
                await self._writer.drain()
                status_line = await self._reader.readline()
            except ConnectionError:
                status_line = b""
            if status_line:
                break
            await self.close()  # closed while idle: send it again on a new connection
        else:
            raise ConnectionError(f"{method} {path}: the server closed the connection")
        return await self._reply(status_line)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass
        self._reader = self._writer = None

    # -- internals ---------------------------------------------------------------------------
    async def _connect(self) -> None:
        await self.close()
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def _reply(self, status_line: bytes) -> tuple[int, dict, bytes]:
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = (await self._reader.readline()).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookie, _, _ = value.partition(";")
                key, _, val = cookie.partition("=")
                self.cookies[key.strip()] = val.strip()
            headers[name] = value
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        elif "content-length" in headers:
            body = await self._reader.readexactly(int(headers["content-length"]))
        else:
            body = await self._reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, body

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0], 16)
            if size == 0:
                while (await self._reader.readline()) not in (b"\r\n", b""):
                    pass
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
