"""Serving the proxy over stdio, the way desktop MCP clients launch it.

stdout carries JSON-RPC and nothing else: the SDK's `stdio_server` moves the protocol to private
descriptors and points fd 1 at stderr while serving, so a stray write can never corrupt the wire.
A line that is not JSON gets a `-32700` parse error, and a JSON value that is not a JSON-RPC
message gets `-32600`, then the next line is served (the SDK alone would drop such lines without
an answer). Serving ends when stdin closes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from pluggedin_proxy.proxy.server import Proxy

__all__ = ["serve_stdio"]

logger = logging.getLogger(__name__)


async def serve_stdio(proxy: Proxy) -> None:
    """Serve `proxy` on this process's stdin and stdout until stdin closes."""
    async with stdio_server() as (read, write):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_answer_bad_lines, read, send, write)
            await proxy.server.run(receive, write, proxy.server.create_initialization_options())
            tg.cancel_scope.cancel()


async def _answer_bad_lines(
    source: Any, sink: anyio.abc.ObjectSendStream[SessionMessage | Exception], write: Any
) -> None:
    async with sink:
        async for item in source:
            if isinstance(item, Exception):
                logger.warning("answering an unreadable message: %s", _summary(item))
                await write.send(SessionMessage(_error_for(item)))
            else:
                await sink.send(item)


def _error_for(exc: Exception) -> types.JSONRPCError:
    raw: Any = None
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(None, types.PARSE_ERROR, "Parse error: the message is not valid JSON")
        raw = errors[0].get("input") if errors else None
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = None
    request_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        request_id = None
    return _error(request_id, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")


def _error(request_id: int | str | None, code: int, message: str) -> types.JSONRPCError:
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


def _summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return f"{exc.error_count()} validation error(s), first: {exc.errors()[0].get('msg')}"
    return type(exc).__name__
