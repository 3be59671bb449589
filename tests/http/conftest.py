"""HTTP-mode helpers: the proxy as a real `--transport streamable-http` subprocess, and raw-request pieces."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import types

from tests.conftest import REPO, echo_server, proxy_command

KEY1 = "test-key-one-0123456789"
KEY2 = "test-key-two-9876543210"
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)/mcp")
STARTUP_TIMEOUT = 30.0
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def call_request(text: str, id: int = 2) -> dict[str, Any]:
    """A JSON-RPC `tools/call` of `echo__echo` with `text`."""
    return {
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": {"name": "echo__echo", "arguments": {"text": text}},
    }


def tool_text(result: types.CallToolResult) -> str:
    """The one text block of a successful tool result."""
    assert not result.is_error, result
    (content,) = result.content
    assert isinstance(content, types.TextContent)
    return content.text


async def initialize(client: httpx2.AsyncClient, path: str = "/mcp", **headers: str) -> httpx2.Response:
    """POST a handshake-era `initialize` (opening a session in stateful mode)."""
    return await client.post(path, json=INITIALIZE, headers={**HEADERS, **headers})


def session_headers(response: httpx2.Response, **extra: str) -> dict[str, str]:
    """Headers for a follow-up request on the session `response` opened."""
    session_id = response.headers.get("mcp-session-id")
    assert session_id, response.headers
    return {**HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25", **extra}


class _Stderr:
    """Drains a process's stderr on a daemon thread (the pipe never fills) and spots the listening line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.url: str | None = None
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._drain, args=(process,), daemon=True)
        self._thread.start()

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.lines.append(line)
            if self.url is None and (match := LISTENING.search(line)):
                self.url = match.group(1)
                self.ready.set()
        self.ready.set()  # EOF: the process is gone; the waiter sees `url is None`

    def text(self) -> str:
        return "".join(self.lines[-50:])


@asynccontextmanager
async def running_proxy(config: Path | None, *extra: str) -> AsyncIterator[str]:
    """`pluggedin-mcp --transport streamable-http --port 0 …` as a subprocess; yields its base URL.

    Without `config`, `extra` says where the catalog comes from (`--pluggedin-api-key …` for App mode).
    """
    config_args = ("--config", str(config)) if config is not None else ()
    command = proxy_command(
        *config_args, "--transport", "streamable-http", "--port", "0", "--log-level", "info", *extra
    )
    process = subprocess.Popen(  # noqa: ASYNC220 - needs a plain pipe for the draining thread
        command,
        cwd=str(REPO),
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = _Stderr(process)
    try:
        ready = await anyio.to_thread.run_sync(stderr.ready.wait, STARTUP_TIMEOUT)
        if not ready or stderr.url is None:
            pytest.fail(f"the proxy did not start listening (exit {process.poll()}):\n{stderr.text()}")
        yield stderr.url
    finally:
        process.terminate()
        try:
            await anyio.to_thread.run_sync(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await anyio.to_thread.run_sync(process.wait)


@pytest.fixture
def echo_config(write_config: Callable[..., Path]) -> Path:
    """A config with one upstream, the echo test server (`echo__echo`)."""
    return write_config({"echo": echo_server()})
