"""A lean HTTP/1.1 client for callback POSTs to plain ``http://`` webhooks.

Why not aiohttp's client for these: a day of retries for 10,000 failing callbacks is
100,000 POSTs, and aiohttp's general-purpose request machinery (cookies, tracing, redirects,
proxies, happy eyeballs) is about 90% of the emulator's time in that storm. A webhook POST
needs none of it: write one request on a kept-alive connection, read the status line,
the headers and a Content-Length, chunked or close-delimited body. ``https://`` webhooks
and URLs with credentials in them still go through aiohttp (see :mod:`emulator.delivery.dispatcher`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from yarl import URL

MAX_HEAD = 64 * 1024


class Disconnected(ConnectionError):
    """The webhook closed the connection before a complete answer."""


class BadResponse(Exception):
    """The webhook's answer is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    head: bytes  # request line and fixed headers, up to (not including) Content-Length
    family: int | None  # AF_INET/AF_INET6 for an IP literal; None for a name to resolve


@lru_cache(maxsize=1024)
def target(url: str, user_agent: str, content_type: str) -> Target | None:
    """The fast path's view of a URL, or None when aiohttp must handle it."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    if parsed.scheme != "http" or not parsed.host or parsed.user or parsed.password:
        return None
    host = parsed.host
    port = parsed.port or 80
    host_header = f"[{host}]" if ":" in host else host
    if port != 80:
        host_header += f":{port}"
    path = parsed.raw_path_qs or "/"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {user_agent}\r\n"
        f"Content-Type: {content_type}\r\nAccept: */*\r\n"
    ).encode("latin-1", "strict")
    try:
        family: int | None = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = None
    return Target(host, port, head, family)


class _Connection(asyncio.Protocol):
    """One TCP connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bool, bool]] | None = None
        self.closed = False
        self.received = False
        self._eof = False

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.buffer += data
        self._parse()

    def eof_received(self) -> bool:
        self._eof = True
        self._parse()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof = True
        self._parse()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(Disconnected("server disconnected"))

    # -- exchange -------------------------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bool, bool]]:
        """Send one request; the future gives (status, challenged, keep_alive)."""
        assert self.transport is not None
        self.buffer.clear()
        self.received = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _parse(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            result = self._parse_response()
        except BadResponse as exc:
            self.close()
            waiter.set_exception(exc)
            return
        if result is not None:
            self.waiter = None
            waiter.set_result(result)

    def _parse_response(self) -> tuple[int, bool, bool] | None:
        buf = self.buffer
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise BadResponse("response head too large")
                return None
            lines = bytes(buf[:end]).split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise BadResponse(f"bad status line {lines[0][:80]!r}")
            status = int(parts[1])
            if 100 <= status < 200 and status != 101:
                del buf[: end + 4]  # an interim answer (100 Continue): the real one follows
                continue
            break
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise BadResponse(f"bad header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        keep_alive = parts[0] == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
        challenged = status == 401 and b"www-authenticate" in headers
        body = end + 4
        if status in (204, 304):
            return status, challenged, keep_alive
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            done = self._chunked_end(body)
            if done is None:
                if self._eof:
                    raise BadResponse("truncated chunked body")
                return None
            return status, challenged, keep_alive
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                raise BadResponse("bad Content-Length")
            if len(buf) - body < int(length):
                return None
            return status, challenged, keep_alive
        # No length: the body runs until the server closes the connection.
        return (status, challenged, False) if self._eof else None

    def _chunked_end(self, pos: int) -> int | None:
        buf = self.buffer
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            try:
                size = int(bytes(buf[pos:line_end]).split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadResponse("bad chunk size") from None
            pos = line_end + 2
            if size == 0:
                # Optional trailers, then an empty line.
                while True:
                    line_end = buf.find(b"\r\n", pos)
                    if line_end < 0:
                        return None
                    if line_end == pos:
                        return pos + 2
                    pos = line_end + 2
            if len(buf) < pos + size + 2:
                return None
            pos += size + 2


class Pool:
    """Kept-alive connections by (host, port)."""

    def __init__(self, max_idle: int = 100) -> None:
        self._idle: defaultdict[tuple[str, int], list[_Connection]] = defaultdict(list)
        self._max_idle = max_idle

    async def post(self, t: Target, body: bytes, authorization: str | None) -> tuple[int, bool]:
        """POST and wait for the whole answer: (status, challenged). Raises OSError,
        Disconnected, BadResponse; the caller bounds the time."""
        data = t.head + b"Content-Length: %d\r\n" % len(body)
        if authorization:
            data += b"Authorization: " + authorization.encode("latin-1") + b"\r\n"
        data += b"\r\n" + body
        key = (t.host, t.port)
        idle = self._idle[key]
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            try:
                return await self._exchange(key, conn, data)
            except Disconnected:
                # The server dropped a kept-alive connection while it sat idle: a fresh
                # connection, as any HTTP client would, unless the server had started answering.
                if conn.received:
                    raise
        return await self._exchange(key, await self._connect(t), data)

    async def _connect(self, t: Target) -> _Connection:
        loop = asyncio.get_running_loop()
        if t.family is None:
            _, conn = await loop.create_connection(_Connection, t.host, t.port)
            return conn
        # An IP literal (the usual 127.0.0.1 webhook): connect the socket ourselves. Refused
        # connections are the common case in a retry storm, and create_connection's error
        # path leaves reference cycles that make the garbage collector a third of the cost.
        sock = socket.socket(t.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, (t.host, t.port))
        except BaseException:
            sock.close()
            raise
        _, conn = await loop.create_connection(_Connection, sock=sock)
        return conn

    async def _exchange(self, key: tuple[str, int], conn: _Connection, data: bytes) -> tuple[int, bool]:
        try:
            status, challenged, keep_alive = await conn.request(data)
        except BaseException:
            conn.close()
            raise
        idle = self._idle[key]
        if keep_alive and not conn.closed and len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.close()
        return status, challenged

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
