"""The stdio fast path: a client's `tools/call` answered without the SDK's per-message machinery.

A tool call is what a client sends most, and relaying one through the SDK costs the proxy a server's
and a client's work per message: validation into models, a task and request context per side,
memory-stream hops, serialisation back. `Passthrough` takes a `tools/call` line from stdin, parses
it once, has `Proxy.call_tool_json` route it (same checks, limits, records and errors as any call,
and a stdio upstream's JSON lane rather than its SDK session), and writes the answer line itself.
Progress comes back under the client's own token; `notifications/cancelled` for a call it holds
cancels the call (the upstream is told) and, as the protocol asks, nothing is answered.

Only plain calls are taken: a handshake-era client already known to the proxy (it has listed or
called before), a well-formed request with nothing in `params` but `name`, `arguments` and `_meta`
(with no 2026-era keys). Everything else goes to the SDK as before, and the answer is the same
either way.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from pluggedin_proxy.jsonlines import compact, loads_or_none
from pluggedin_proxy.proxy.server import Proxy

__all__ = ["Passthrough"]

# A line with at most this many brackets is read by the SDK's parser whatever its shape.
_FEW_BRACKETS = 100
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_PARAM_KEYS = frozenset({"name", "arguments", "_meta"})
_MODERN_META_KEYS = frozenset(
    {types.PROTOCOL_VERSION_META_KEY, types.CLIENT_INFO_META_KEY, types.CLIENT_CAPABILITIES_META_KEY}
)


class Passthrough:
    """Takes plain `tools/call` requests (and their cancellations) off the stdin line stream."""

    def __init__(
        self,
        proxy: Proxy,
        tg: anyio.abc.TaskGroup,
        write: Callable[[bytes], Awaitable[None]],
        *,
        on_request: Callable[[types.RequestId], None],
        on_answered: Callable[[types.RequestId], None],
    ) -> None:
        """Serve calls in `tg`, writing each answer line with `write`.

        `on_request` and `on_answered` are told when a request is taken and when it is settled
        (answered, or cancelled and so never answered).
        """
        self._proxy = proxy
        self._tg = tg
        self._write = write
        self._on_request = on_request
        self._on_answered = on_answered
        self._running: dict[types.RequestId, anyio.CancelScope] = {}

    def offer(self, line: str) -> bool:
        """Take `line` if it is a plain tool call or cancels one taken; False leaves it to the SDK."""
        if '"tools/call"' in line:
            return self._take_call(line)
        if self._running and '"notifications/cancelled"' in line:
            return self._take_cancel(line)
        return False

    def _take_call(self, line: str) -> bool:
        if not _sdk_would_read(line):
            return False  # the SDK's answer to it (an error) is the right one
        message = loads_or_none(line)
        if not isinstance(message, dict) or message.get("method") != "tools/call" or message.get("jsonrpc") != "2.0":
            return False
        request_id = message.get("id")
        params = message.get("params")
        if not _plain_id(request_id) or request_id in self._running or not isinstance(params, dict):
            return False
        if not _PARAM_KEYS.issuperset(params) or not isinstance(params.get("name"), str):
            return False
        if not isinstance(params.get("arguments", {}), dict):
            return False
        meta = params.get("_meta")
        token = None
        if meta is not None:
            if not isinstance(meta, dict) or not _MODERN_META_KEYS.isdisjoint(meta):
                return False
            token = meta.get("progressToken")
            if token is not None and not _plain_id(token):
                return False
        sessions = self._proxy.downstreams.sessions()
        if len(sessions) != 1:
            return False  # not initialized and seen yet: the SDK knows what to answer
        assert isinstance(request_id, int | str)
        self._on_request(request_id)
        self._running[request_id] = anyio.CancelScope()
        self._tg.start_soon(self._call, sessions[0], request_id, params, token)
        return True

    def _take_cancel(self, line: str) -> bool:
        message = loads_or_none(line)
        if not isinstance(message, dict) or message.get("method") != "notifications/cancelled":
            return False
        params = message.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        scope = self._running.get(request_id) if _plain_id(request_id) else None  # type: ignore[arg-type]
        if scope is None:
            return False
        scope.cancel()
        return True

    async def _call(self, session: Any, request_id: types.RequestId, params: dict[str, Any], token: Any) -> None:
        answer: bytes | None = None
        try:
            with self._running[request_id]:
                progress = self._progress(token) if token is not None else None
                try:
                    result = await self._proxy.call_tool_json(session, request_id, params, progress)
                    if result.raw is not None:  # as the server wrote it: nothing to encode again
                        answer = b'{"jsonrpc":"2.0","id":%s,"result":%s}\n' % (compact(request_id), result.raw)
                    else:
                        answer = compact({"jsonrpc": "2.0", "id": request_id, "result": result.value}) + b"\n"
                except MCPError as exc:
                    error = exc.error.model_dump(by_alias=True, mode="json", exclude_none=True)
                    answer = compact({"jsonrpc": "2.0", "id": request_id, "error": error}) + b"\n"
            if answer is not None:
                await self._write(answer)
        finally:
            del self._running[request_id]
            self._on_answered(request_id)

    def _progress(self, token: types.ProgressToken) -> ProgressFnT:
        async def report(progress: float, total: float | None, message: str | None) -> None:
            params: dict[str, Any] = {"progressToken": token, "progress": progress}
            if total is not None:
                params["total"] = total
            if message is not None:
                params["message"] = message
            await self._write(compact({"jsonrpc": "2.0", "method": "notifications/progress", "params": params}) + b"\n")

        return report


def _sdk_would_read(line: str) -> bool:
    """Whether the SDK reads `line` as a message, as a server behind the lane (also on the SDK) must.

    Its parser refuses nesting about 200 deep, which Python's accepts; a line with few brackets cannot
    be that deep, and only others are checked in full. Escaped surrogates are left to the SDK too.
    """
    if "\\u" in line and _SURROGATE_ESCAPE.search(line):
        return False
    if line.count("{") + line.count("[") <= _FEW_BRACKETS:
        return True
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError:
        return False
    return True


def _plain_id(value: object) -> bool:
    """Whether `value` is an id (or token) JSON-RPC allows and an answer can carry: an integer or a UTF-8 string."""
    if type(value) is int:
        return True
    if type(value) is not str:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
