"""Upstreams reached over Streamable HTTP and SSE, through the proxy running as a stdio subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import everything_server, http_echo, proxy_session

pytestmark = pytest.mark.anyio


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _free_port() -> int:
    # For a third-party server that cannot take a bound socket: ask the kernel, then hand the number over.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_streamable_http_upstream_is_listed_and_called(write_config: Any) -> None:
    """A Streamable HTTP upstream's tools are prefixed and callable, with the configured headers accepted."""
    with http_echo() as server:
        url = f"http://127.0.0.1:{server.port}/mcp"
        config = write_config({"web": {"type": "streamable-http", "url": url, "headers": {"X-Test": "1"}}})
        async with proxy_session(config) as session:
            assert "web__echo" in [t.name for t in (await session.list_tools()).tools]
            assert _text(await session.call_tool("web__echo", {"text": "over http"})) == "over http"


async def test_restarted_http_upstream_is_reconnected_on_next_use(write_config: Any) -> None:
    """When an HTTP upstream restarts and forgets the session, the proxy reconnects.

    A read-only tool is simply sent again to the new session; a tool that may change something is not,
    and the client is told the server restarted.
    """
    with http_echo() as server:
        config = write_config({"web": {"type": "http", "url": f"http://127.0.0.1:{server.port}/mcp"}})
        async with proxy_session(config) as session:
            assert _text(await session.call_tool("web__whoami", {})) == "web"
            server.stop()
            server.name = "web-again"
            server.start()
            assert _text(await session.call_tool("web__whoami", {})) == "web-again"
            server.stop()
            server.start()
            with pytest.raises(MCPError) as caught:
                await session.call_tool("web__sleep", {"seconds": 0})
            assert "restarted" in caught.value.error.message
            assert caught.value.error.data == {"server": "web", "retryable": True}
            assert _text(await session.call_tool("web__sleep", {"seconds": 0})) == "slept"


@contextmanager
def everything_over_sse() -> Iterator[int]:
    """server-everything in its SSE mode; yields its port once it says it is running."""
    port = _free_port()
    command = everything_server()["command"]
    proc = subprocess.Popen([command, "sse"], env={**os.environ, "PORT": str(port)}, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "running on port" in line:
                yield port
                return
        pytest.fail("server-everything exited before listening")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_sse_upstream_from_server_everything_is_listed_and_called(write_config: Any) -> None:
    """The legacy HTTP+SSE transport works as an upstream (server-everything in SSE mode)."""
    with everything_over_sse() as port:
        config = write_config({"legacy": {"url": f"http://127.0.0.1:{port}/sse"}})
        async with proxy_session(config) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            assert "legacy__echo" in names
            assert "hello sse" in _text(await session.call_tool("legacy__echo", {"message": "hello sse"}))


async def test_no_prefix_passes_a_single_server_through_unchanged(write_config: Any) -> None:
    """With `--no-prefix`, a single server's names reach the client exactly as the server lists them."""
    config = write_config({"everything": everything_server()})
    async with proxy_session(config, "--no-prefix") as session:
        names = [t.name for t in (await session.list_tools()).tools]
        assert "echo" in names and not any(n.startswith("everything__") for n in names)
        assert "hi" in _text(await session.call_tool("echo", {"message": "hi"}))
        prompts = [p.name for p in (await session.list_prompts()).prompts]
        assert "simple-prompt" in prompts
