"""The pipes of a stdio upstream: JSON-RPC lines to and from the child, for two users at once.

The SDK's `ClientSession` gets the usual pair of message streams over the child's stdin and stdout.
Beside it, a `Lane` sends requests the proxy already holds as JSON (a client's `tools/call`) straight
to the child's stdin and hands the answer back as JSON, so a forwarded call is parsed once and never
turned into models and back. The lane's request ids are strings under a prefix the session never
uses (the session counts integers), so the two cannot collide; a line from the child that carries
one of them (an answer, or progress for one of the lane's tokens) goes to the lane, every other
line to the session, validated as the SDK's own transport would.

Shutdown follows the MCP lifecycle as the SDK's transport does: stdin closed, a grace period to exit,
then SIGTERM and SIGKILL to the child's process group (the child leads a session of its own). POSIX
only; `connect.py` uses the SDK's transport on Windows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from pluggedin_proxy.jsonlines import compact, loads_or_none
from pluggedin_proxy.upstream.child import Child

__all__ = ["Lane", "LaneAnswer", "StdioChild", "open_stdio_child"]

logger = logging.getLogger(__name__)

# The lane's request ids and progress tokens: `<prefix><n>`.
LANE_PREFIX = "pluggedin-lane-"
_LANE_MARK = LANE_PREFIX.encode()
# Grace for the child to exit once its stdin is closed, then after SIGTERM (seconds), as the SDK allows.
EXIT_GRACE = 2.0
KILL_GRACE = 2.0
# Time for messages already accepted from the session to be written before stdin closes.
FLUSH_TIMEOUT = 0.5
EXIT_POLL_INTERVAL = 0.01
READ_CHUNK = 1 << 16

ProgressFn = Callable[[dict[str, Any]], Awaitable[None]]
"""Called with the `params` of each progress notification for a lane request."""


@dataclass(slots=True)
class _Waiting:
    done: anyio.Event
    answer: LaneAnswer | None = None
    progress: ProgressFn | None = None


@dataclass(frozen=True, slots=True)
class LaneAnswer:
    """A child's answer to a lane request."""

    message: dict[str, Any]
    """The JSON-RPC response object."""
    size: int
    """The length of its line, in bytes."""
    raw_result: bytes | None
    """Its `result` exactly as the child wrote it, when the line has one of the usual shapes (else None)."""


class Lane:
    """Requests sent to the child as JSON, answered as JSON."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        self._send = send
        self._count = 0
        self._waiting: dict[str, _Waiting] = {}
        self._closed = False

    async def request(self, method: str, params: dict[str, Any], progress: ProgressFn | None = None) -> LaneAnswer:
        """Send a request and return the child's answer.

        With `progress`, the request asks for progress (under a token of the lane's) and `progress` gets
        each notification's params. Cancelled, it tells the child with `notifications/cancelled`.

        Raises:
            MCPError: `CONNECTION_CLOSED` if the child's stdout closed before the answer.
        """
        if self._closed:
            raise MCPError(types.CONNECTION_CLOSED, "Connection closed")
        self._count += 1
        request_id = f"{LANE_PREFIX}{self._count}"
        waiting = _Waiting(anyio.Event(), progress=progress)
        if progress is not None:
            params = {**params, "_meta": {**(params.get("_meta") or {}), "progressToken": request_id}}
        line = _dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        self._waiting[request_id] = waiting
        try:
            try:
                await self._send(line)
            except anyio.BrokenResourceError:
                raise MCPError(types.CONNECTION_CLOSED, "Connection closed") from None
            await waiting.done.wait()
        except anyio.get_cancelled_exc_class():
            if not waiting.done.is_set() and not self._closed:
                with anyio.move_on_after(1, shield=True), contextlib.suppress(anyio.BrokenResourceError):
                    await self._send(_cancelled(request_id))
            raise
        finally:
            del self._waiting[request_id]
        if waiting.answer is None:
            raise MCPError(types.CONNECTION_CLOSED, "Connection closed")
        return waiting.answer

    async def offer(self, line: bytes) -> bool:
        """Take `line` if it is an answer or progress for a lane request; False leaves it to the session."""
        if _LANE_MARK not in line:
            return False
        try:
            message = json.loads(line)
        except UnicodeDecodeError:  # read as the SDK would, rather than leave a request unanswered
            message = loads_or_none(line.decode(errors="replace"))
        except (ValueError, RecursionError):
            return False
        if not isinstance(message, dict):
            return False
        if "method" not in message:
            request_id = message.get("id")
            waiting = self._waiting.get(request_id) if isinstance(request_id, str) else None
            if waiting is None:
                return False
            waiting.answer = LaneAnswer(message, len(line), _raw_result(line, request_id))  # type: ignore[arg-type]
            waiting.done.set()
            return True
        params = message.get("params")
        if message["method"] == "notifications/progress" and isinstance(params, dict):
            token = params.get("progressToken")
            waiting = self._waiting.get(token) if isinstance(token, str) else None
            if waiting is not None and waiting.progress is not None:
                await waiting.progress(params)
                return True
        return False

    def close(self) -> None:
        """The child's stdout ended: every open request fails with `CONNECTION_CLOSED`."""
        self._closed = True
        for waiting in self._waiting.values():
            waiting.done.set()


@dataclass(frozen=True, slots=True)
class StdioChild:
    """A running stdio upstream: the session's streams, and the lane."""

    read: Any
    write: Any
    lane: Lane


@contextlib.asynccontextmanager
async def open_stdio_child(child: Child) -> AsyncIterator[StdioChild]:
    """Serve the pipes of a started `child`; on exit, stop it (its stderr pipe stays the caller's)."""
    process = child.process
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin.fileno(), process.stdout.fileno()
    os.set_blocking(stdin, False)
    os.set_blocking(stdout, False)
    to_session, read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write, from_session = anyio.create_memory_object_stream[SessionMessage](0)
    lock = anyio.Lock(fast_acquire=True)

    async def send(data: bytes) -> None:
        view = memoryview(data)
        async with lock:  # one line at a time, should the pipe fill mid-line
            while view:
                try:
                    view = view[os.write(stdin, view) :]
                except BlockingIOError:
                    await anyio.wait_writable(stdin)
                except OSError as exc:  # EPIPE: the child closed its stdin or exited
                    raise anyio.BrokenResourceError from exc

    lane = Lane(send)
    writer_done = anyio.Event()

    async def read_stdout() -> None:
        buffer = b""
        delivering = True
        try:
            while True:
                try:
                    await anyio.wait_readable(stdout)
                    chunk = os.read(stdout, READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                if not delivering:
                    continue  # drained, so a child writing at shutdown is not stuck on a full pipe
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    if not line.strip() or await lane.offer(line):
                        continue
                    try:
                        await to_session.send(_parse(line))
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        delivering = False  # the session is gone
                        break
        finally:
            lane.close()
            to_session.close()

    writer_scope = anyio.CancelScope()

    async def write_stdin() -> None:
        try:
            with writer_scope:
                async with from_session:
                    async for item in from_session:
                        data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                        await send(data.encode(errors="replace") + b"\n")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            to_session.close()  # the child may live on; the session must still see the end
        finally:
            writer_done.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_stdout)
            tg.start_soon(write_stdin)
            try:
                yield StdioChild(read, write, lane)
            finally:
                with anyio.CancelScope(shield=True):
                    read.close()
                    write.close()
                    with anyio.move_on_after(FLUSH_TIMEOUT):
                        await writer_done.wait()
                    writer_scope.cancel()  # a child not reading its stdin: give up writing before closing it
                    await writer_done.wait()
                    await _stop(process)
                tg.cancel_scope.cancel()
    finally:
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


async def _stop(process: subprocess.Popen[bytes]) -> None:
    """Close stdin, give the child `EXIT_GRACE` to exit, then SIGTERM its group and SIGKILL it after `KILL_GRACE`."""
    assert process.stdin is not None
    with contextlib.suppress(OSError):
        process.stdin.close()
    if not await _exited(process, EXIT_GRACE):
        _signal(process.pid, signal.SIGTERM)
        if not await _exited(process, KILL_GRACE):
            _signal(process.pid, signal.SIGKILL)
            if not await _exited(process, KILL_GRACE):
                logger.warning("stdio server process %d survived SIGKILL; abandoning it", process.pid)


async def _exited(process: subprocess.Popen[bytes], timeout: float) -> bool:
    # Polled: nothing here is told of a child's exit, and `wait()` would block the loop.
    deadline = anyio.current_time() + timeout
    while process.poll() is None:
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(EXIT_POLL_INTERVAL)
    return True


def _signal(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line.decode(errors="replace"), by_name=False))
    except ValueError as exc:
        logger.warning("a stdio server wrote a line that is not a JSON-RPC message: %s", str(exc)[:200])
        return exc


def _raw_result(line: bytes, request_id: str) -> bytes | None:
    """The `result` value in `line` as written, if the line is `{"jsonrpc":"2.0","id":ID,"result":…}` or
    `{"result":…,"jsonrpc":"2.0","id":ID}` written compactly (how the SDKs write), else None."""
    line = line.rstrip()
    quoted = json.dumps(request_id).encode()
    head = b'{"jsonrpc":"2.0","id":' + quoted + b',"result":'
    if line.startswith(head) and line.endswith(b"}"):
        return line[len(head) : -1]
    tail = b',"jsonrpc":"2.0","id":' + quoted + b"}"
    if line.startswith(b'{"result":') and line.endswith(tail):
        return line[len(b'{"result":') : -len(tail)]
    return None


def _dumps(message: dict[str, Any]) -> bytes:
    return compact(message) + b"\n"


def _cancelled(request_id: str) -> bytes:
    params = {"requestId": request_id, "reason": "the client cancelled the request"}
    return _dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})
