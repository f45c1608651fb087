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
import errno
import ipaddress
import os
import socket
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from yarl import URL

MAX_HEAD = 64 * 1024
# How much of an answer's body is read (and dropped) before the rest is given up on: nobody
# reads a webhook's body, and a huge or endless one must cost nothing (docs/callbacks.md,
# 'Timeout').
MAX_BODY = 64 * 1024


# Status codes as shared ints: each journaled attempt holds one (docs/callbacks.md, 'Time, scale
# and shutdown'), and an int above 256 is otherwise a fresh 28-byte object per attempt.
_STATUSES: dict[bytes, int] = {}


def _status(digits: bytes) -> int:
    status = _STATUSES.get(digits)
    if status is None:
        status = int(digits)
        if len(digits) == 3:  # at most 1,000 of them, whatever a webhook answers
            _STATUSES[digits] = status
    return status


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
    """One TCP connection carrying one request at a time.

    The answer is parsed as it arrives, each byte looked at once, and only the head is kept:
    body bytes are counted and dropped. A body longer than :data:`MAX_BODY` is not read
    further: the status is the outcome and the connection is closed (docs/callbacks.md,
    'Timeout').
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bool, bool]] | None = None
        self.closed = False
        self.received = False
        self._eof = False
        self._reset()

    def _reset(self) -> None:
        self._scanned = 0  # how far the head has been searched for its end
        self._head: tuple[int, bool, bool] | None = None  # (status, challenged, keep_alive) once read
        self._mode = ""  # body framing: "length", "chunked" or "close"
        self._remaining = 0  # body bytes still due ("length"), or of the current chunk ("chunked")
        self._chunk_state = "size"  # "size" line, "data", "crlf" after data, "trailer" lines
        self._body_read = 0

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.waiter is None or self.waiter.done():
            return  # nothing asked: an unsolicited answer is dropped, not kept
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
        self._reset()
        self.received = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def expire(self) -> None:
        """The attempt's time is up before its answer: the connection goes."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(TimeoutError())
            self.close()

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
            self.buffer.clear()
            waiter.set_result(result)

    def _parse_response(self) -> tuple[int, bool, bool] | None:
        if self._head is None and not self._parse_head():
            return None
        head = self._head
        assert head is not None
        if self._body_done():
            return head
        if self._body_read > MAX_BODY:
            # Enough of a body nobody reads: the status stands, the rest is not waited for.
            self.close()
            return head[0], head[1], False
        if self._eof:
            if self._mode == "close":
                return head[0], head[1], False
            raise BadResponse("truncated body")
        return None

    def _parse_head(self) -> bool:
        buf = self.buffer
        while True:
            end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise BadResponse("response head too large")
                self._scanned = len(buf)
                return False
            lines = bytes(buf[:end]).split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise BadResponse(f"bad status line {lines[0][:80]!r}")
            status = _status(parts[1])
            del buf[: end + 4]
            self._scanned = 0
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer (100 Continue): the real one follows
            break
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise BadResponse(f"bad header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        keep_alive = parts[0] == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
        challenged = status == 401 and b"www-authenticate" in headers
        self._head = (status, challenged, keep_alive)
        length = headers.get(b"content-length")
        if status in (204, 304):
            self._mode, self._remaining = "length", 0
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            self._mode = "chunked"
        elif length is not None:
            if not length.isdigit():
                raise BadResponse("bad Content-Length")
            self._mode, self._remaining = "length", int(length)
        else:
            self._mode = "close"  # no length: the body runs until the server closes the connection
        return True

    def _body_done(self) -> bool:
        """Consume the body bytes in the buffer; True once the whole body is in."""
        buf = self.buffer
        if self._mode == "length":
            taken = min(len(buf), self._remaining)
            self._remaining -= taken
            self._body_read += len(buf)
            buf.clear()
            return self._remaining == 0
        if self._mode == "close":
            self._body_read += len(buf)
            buf.clear()
            return False
        return self._chunked_done()

    def _chunked_done(self) -> bool:
        buf = self.buffer
        pos = 0
        try:
            while pos < len(buf):
                state = self._chunk_state
                if state == "data":
                    taken = min(len(buf) - pos, self._remaining)
                    self._remaining -= taken
                    self._body_read += taken
                    pos += taken
                    if self._remaining == 0:
                        self._chunk_state = "crlf"
                    continue
                line_end = buf.find(b"\r\n", pos)
                if line_end < 0:
                    if len(buf) - pos > MAX_HEAD:
                        raise BadResponse("chunk line too long")
                    return False
                line = bytes(buf[pos:line_end])
                pos = line_end + 2
                if state == "crlf":
                    if line:
                        raise BadResponse("bad chunk end")
                    self._chunk_state = "size"
                elif state == "size":
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise BadResponse("bad chunk size") from None
                    if size < 0:
                        raise BadResponse("bad chunk size")
                    self._remaining = size
                    self._chunk_state = "data" if size else "trailer"
                elif not line:  # the empty line after the trailers: the end of the body
                    return True
            return False
        finally:
            del buf[:pos]


# The journal's words for a refused connection, shared by both transports (docs/callbacks.md).
REFUSED = "connection refused"


def _connect_error(err: int) -> str:
    return REFUSED if err == errno.ECONNREFUSED else f"connection error: {os.strerror(err)}"


class Pool:
    """Kept-alive connections by (host, port)."""

    def __init__(self, max_idle: int = 100) -> None:
        self._idle: defaultdict[tuple[str, int], list[_Connection]] = defaultdict(list)
        self._max_idle = max_idle

    async def post(self, t: Target, body: bytes, authorization: str | None, timeout: float) -> tuple[int, bool] | str:
        """POST and wait for the whole answer: (status, challenged), or the error text of a
        connection that failed at once (e.g. "connection refused"). Raises TimeoutError once
        ``timeout`` seconds have passed, from connecting to the end of the answer, and
        OSError, Disconnected, BadResponse."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (t.host, t.port)
        idle = self._idle[key]
        data: bytes | None = None
        while True:
            conn = None
            while idle and conn is None:
                conn = idle.pop()
                if conn.closed:
                    conn = None
            fresh = conn is None
            if conn is None:
                sock = self._dial(t)
                if isinstance(sock, str):
                    return sock
                async with asyncio.timeout_at(deadline):
                    conn = await self._connect(t, sock)
            # The request is made once there is a connection to send it on (none when refused).
            if data is None:
                data = t.head + b"Content-Length: %d\r\n" % len(body)
                if authorization:
                    data += b"Authorization: " + authorization.encode("latin-1") + b"\r\n"
                data += b"\r\n" + body
            # The deadline is a timer that fails the answer's future: cheaper than a
            # cancel-scope (asyncio.timeout) per request, with the same outcome.
            waiter = conn.request(data)
            timer = loop.call_at(deadline, conn.expire)
            try:
                status, challenged, keep_alive = await waiter
            except Disconnected:
                conn.close()
                # The server dropped a kept-alive connection while it sat idle: a fresh
                # connection, as any HTTP client would, unless the server had started answering.
                if fresh or conn.received:
                    raise
                continue
            except BaseException:
                conn.close()
                raise
            finally:
                timer.cancel()
            if keep_alive and not conn.closed and len(idle) < self._max_idle:
                idle.append(conn)
            else:
                conn.close()
            return status, challenged

    @staticmethod
    def _dial(t: Target) -> socket.socket | str | None:
        """Start connecting to an IP literal (the usual 127.0.0.1 webhook) without waiting.

        Every attempt really connects: one connect() per attempt, as Bandwidth's would. On
        loopback a closed port's refusal is already known when connect() returns, so a
        refused attempt costs the socket, the connect() and one getsockopt(): no exception,
        no future, no poller registration (docs/callbacks.md, 'Time, scale and shutdown').
        Returns the connecting socket, the error text of a connection that failed at once,
        or None for a host name (resolved and connected by the event loop)."""
        if t.family is None:
            return None
        sock = socket.socket(t.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            err = sock.connect_ex((t.host, t.port))
            if err == errno.EINPROGRESS:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except BaseException:
            sock.close()
            raise
        if err:
            sock.close()
            return _connect_error(err)
        return sock

    async def _connect(self, t: Target, sock: socket.socket | None) -> _Connection:
        loop = asyncio.get_running_loop()
        if sock is None:
            _, conn = await loop.create_connection(_Connection, t.host, t.port)
            return conn
        try:
            await self._writable(loop, sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))  # ConnectionRefusedError for ECONNREFUSED
            _, conn = await loop.create_connection(_Connection, sock=sock)
        except BaseException:
            sock.close()
            raise
        return conn

    @staticmethod
    async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        """Wait until a connecting socket is connected or has failed."""
        fd = sock.fileno()
        done: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_writer(fd, ready)
        try:
            await done
        finally:
            loop.remove_writer(fd)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
