"""Serving the proxy over stdio, the way desktop MCP clients launch it.

stdout carries JSON-RPC and nothing else: the SDK's `stdio_server` moves the protocol to private
descriptors and points fd 1 at stderr while serving, so a stray write can never corrupt the wire.
A line that is not JSON gets a `-32700` parse error, and a JSON value that is not a JSON-RPC
message (or is nested too deeply to parse) gets `-32600`, then the next line is served (the SDK
alone would drop such lines without an answer). So does a request whose `id` is neither a string
nor an integer (`null`, `1.5`, `true`, an array or object): the SDK reads it as a notification and
would never answer. An error carries the request's `id` when it could be read, else `null`, as
JSON-RPC 2.0 asks. When stdin closes, the requests already read are still answered (for at most
`EOF_GRACE` seconds) before serving ends, so `echo '{...}' | pluggedin-mcp` gets its answer.
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import mcp_types as types
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from pluggedin_proxy.proxy.passthrough import Passthrough
from pluggedin_proxy.proxy.server import Proxy

__all__ = ["serve_stdio"]

logger = logging.getLogger(__name__)

# Bytes read from stdin at a time.
STDIN_CHUNK = 1 << 16
# How long requests read before stdin closed may still take to be answered.
EOF_GRACE = 30.0

# The answer to a request whose id JSON-RPC does not allow (that id cannot be echoed, so the answer's is null).
BAD_ID = "Invalid Request: the id must be a string or an integer"
# What `_loads` returns for a line that is not JSON, and for JSON too deeply nested to parse (a `RecursionError`).
_NOT_JSON = object()
_TOO_DEEP = object()


async def serve_stdio(proxy: Proxy) -> None:
    """Serve `proxy` on this process's stdin and stdout until stdin closes."""
    with _RecordedLines(0) as stdin, _Wire(1) as stdout:
        await _serve(proxy, stdin, stdout)


async def _serve(proxy: Proxy, stdin: _RecordedLines, stdout: _Wire) -> None:
    # Both are async files to the SDK: an async line iterator, and `write`/`flush`.
    async with stdio_server(stdin=stdin, stdout=stdout) as (read, write):  # type: ignore[arg-type]
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        pending = _Pending(write)
        async with anyio.create_task_group() as tg:
            passthrough = Passthrough(
                proxy, tg, stdout.write_bytes, on_request=pending.add, on_answered=pending.answered
            )
            stdin.intercept = passthrough.offer
            tg.start_soon(_answer_bad_lines, read, send, pending, stdin.lines)
            await proxy.server.run(receive, pending, proxy.server.create_initialization_options())
            tg.cancel_scope.cancel()


class _Pending:
    """The outgoing stream, noting which requests read from stdin still await their answer."""

    def __init__(self, write: Any) -> None:
        self._write = write
        self._ids: set[types.RequestId] = set()
        self._idle = anyio.Event()
        self._idle.set()

    def add(self, request_id: types.RequestId) -> None:
        self._ids.add(request_id)
        if self._idle.is_set():
            self._idle = anyio.Event()

    async def drained(self) -> None:
        await self._idle.wait()

    def answered(self, request_id: types.RequestId) -> None:
        if self._ids:
            self._ids.discard(request_id)
            if not self._ids:
                self._idle.set()

    async def send(self, item: SessionMessage) -> None:
        message = item.message
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) and message.id is not None:
            self.answered(message.id)
        await self._write.send(item)

    async def aclose(self) -> None:
        await self._write.aclose()

    async def __aenter__(self) -> _Pending:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _RecordedLines:
    """stdin as an async iterator of lines that remembers each line until its message is handled.

    The SDK's reader turns every line into exactly one item, in order, so the filter can pair an
    unreadable item with the line it came from and answer with that line's request id. Reads wait
    on the descriptor instead of blocking a worker thread, so a signal can stop the proxy at once
    (a descriptor that cannot be polled, such as a regular file, is read in an abandonable thread).
    """

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._scanned = 0
        self._eof = False
        self._was_blocking = os.get_blocking(fd)
        self._pollable = True
        self.lines: collections.deque[str] = collections.deque()
        self.intercept: Callable[[str], bool] | None = None
        """Offered each line first; a line it takes (returns True for) never reaches the SDK."""

    def __enter__(self) -> _RecordedLines:
        os.set_blocking(self._fd, False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.set_blocking(self._fd, self._was_blocking)

    def __aiter__(self) -> _RecordedLines:
        return self

    async def __anext__(self) -> str:
        while True:
            line = await self._next_line()
            if self.intercept is None or not self.intercept(line):
                self.lines.append(line)
                return line

    async def _next_line(self) -> str:
        while (end := self._buffer.find(b"\n", self._scanned)) < 0:
            self._scanned = len(self._buffer)
            if self._eof:
                if not self._buffer:
                    raise StopAsyncIteration
                end = len(self._buffer)
                break
            chunk = await self._read()
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        line = self._buffer[:end].decode("utf-8", errors="replace")
        del self._buffer[: end + 1]
        self._scanned = 0
        return line

    async def _read(self) -> bytes:
        while self._pollable:
            try:
                await anyio.wait_readable(self._fd)
            except OSError:  # epoll refuses regular files
                self._pollable = False
                os.set_blocking(self._fd, True)
                break
            try:
                return os.read(self._fd, STDIN_CHUNK)
            except BlockingIOError:
                continue
        return await anyio.to_thread.run_sync(os.read, self._fd, STDIN_CHUNK, abandon_on_cancel=True)


class _Wire:
    """stdout for the protocol alone, written without a worker thread.

    While serving, fd 1 points at stderr, so a stray `print` or a library's chatter can never
    corrupt the wire; the protocol goes to a private duplicate of the original stdout, written in
    non-blocking mode (waiting on the descriptor when the pipe is full) rather than through a
    thread per message as the SDK's default does. Leaving restores fd 1.
    """

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd
        self._wire = -1
        self._lock = anyio.Lock(fast_acquire=True)  # one line at a time, should the pipe fill mid-line

    def __enter__(self) -> _Wire:
        self._wire = fcntl.fcntl(self._fd, fcntl.F_DUPFD_CLOEXEC, 3)
        os.dup2(2, self._fd)
        self._was_blocking = os.get_blocking(self._wire)
        os.set_blocking(self._wire, False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.set_blocking(self._wire, self._was_blocking)
        os.dup2(self._wire, self._fd)
        os.close(self._wire)

    async def write(self, text: str) -> None:
        await self.write_bytes(text.encode())

    async def write_bytes(self, data: bytes | memoryview) -> None:
        data = memoryview(data)
        async with self._lock:
            while data:
                try:
                    data = data[os.write(self._wire, data) :]
                except BlockingIOError:
                    await anyio.wait_writable(self._wire)

    async def flush(self) -> None:
        """Nothing is buffered."""


async def _answer_bad_lines(
    source: Any,
    sink: anyio.abc.ObjectSendStream[SessionMessage | Exception],
    pending: _Pending,
    lines: collections.deque[str],
) -> None:
    async with sink:
        async for item in source:
            line = lines.popleft() if lines else ""
            if isinstance(item, Exception):
                logger.warning("answering an unreadable message: %s", _summary(item))
                await pending.send(SessionMessage(_error_for(item, line)))
                continue
            if isinstance(item.message, types.JSONRPCRequest):
                pending.add(item.message.id)
            elif isinstance(item.message, types.JSONRPCNotification) and _has_id(line):
                logger.warning("answering a request whose id is not a string or an integer")
                await pending.send(SessionMessage(_error(None, types.INVALID_REQUEST, BAD_ID)))
                continue
            await sink.send(item)
        # stdin closed: answer what was asked before ending the session (which cancels the rest).
        with anyio.move_on_after(EOF_GRACE) as grace:
            await pending.drained()
        if grace.cancelled_caught:
            logger.warning("stdin closed; %g s passed with requests still unanswered, ending anyway", EOF_GRACE)


def _has_id(line: str) -> bool:
    """Whether the JSON object on `line`, which the SDK read as a notification, has an `id` member after all."""
    raw = _loads(line)  # notifications are few and small; `"id"` may be spelled with escapes, so no substring test
    return isinstance(raw, dict) and "id" in raw


def _loads(line: str) -> Any:
    """The JSON value on `line`; `_NOT_JSON` when it is not JSON, `_TOO_DEEP` when nested past the parser's stack."""
    try:
        return json.loads(line)
    except ValueError:
        return _NOT_JSON
    except RecursionError:
        return _TOO_DEEP


def _error_for(exc: Exception, line: str) -> types.JSONRPCError:
    raw = _loads(line)
    if raw is _NOT_JSON:
        return _error(None, types.PARSE_ERROR, "Parse error: the message is not valid JSON")
    if raw is _TOO_DEEP:
        return _error(None, types.INVALID_REQUEST, "Invalid Request: the message is nested too deeply")
    request_id = _answerable_id(raw.get("id")) if isinstance(raw, dict) else None
    return _error(request_id, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")


def _answerable_id(value: object) -> int | str | None:
    """`value` if an answer may carry it as its id, else `None`.

    `None` for the types JSON-RPC forbids, and for a string UTF-8 cannot carry: a lone surrogate (`"\\ud800"`)
    parses, but the SDK would fail to write the answer and the session would end.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return None
    return value


def _error(request_id: int | str | None, code: int, message: str) -> types.JSONRPCError:
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


def _summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return f"{exc.error_count()} validation error(s), first: {exc.errors()[0].get('msg')}"
    return type(exc).__name__
