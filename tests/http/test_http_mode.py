"""End to end over Streamable HTTP: the proxy as a real subprocess, real sockets, the SDK client and raw requests."""

from __future__ import annotations

import json
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
from mcp import Client, ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import REPO, echo_server, proxy_command

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
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


def _call(text: str, id: int = 2) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": {"name": "echo__echo", "arguments": {"text": text}},
    }


def _innermost(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _raw_post(url: str, path: str, declared_length: int, body_prefix: bytes) -> tuple[int, bytes]:
    """POST over a raw socket declaring `declared_length` but sending only `body_prefix`; (status, body)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nContent-Length: {declared_length}\r\n\r\n"
    ).encode()
    chunks: list[bytes] = []
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(head + body_prefix)
        with anyio.fail_after(10):
            try:
                while True:
                    chunks.append(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
                pass
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers.lower():
        body = _dechunk(body)
    return int(status_line.split()[1]), body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def _text(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    (content,) = result.content
    assert isinstance(content, types.TextContent)
    return content.text


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
async def running_proxy(config: Path, *extra: str) -> AsyncIterator[str]:
    """`pluggedin-mcp --transport streamable-http --port 0 …` as a subprocess; yields its base URL."""
    command = proxy_command(
        "--config", str(config), "--transport", "streamable-http", "--port", "0", "--log-level", "info", *extra
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
    return write_config({"echo": echo_server()})


async def _sdk_round_trip(url: str, text: str, http_client: httpx2.AsyncClient | None = None) -> str:
    async with (
        streamable_http_client(f"{url}/mcp", http_client=http_client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        assert "echo__echo" in [t.name for t in tools.tools]
        return _text(await session.call_tool("echo__echo", {"text": text}))


async def _initialize(client: httpx2.AsyncClient, path: str = "/mcp", **headers: str) -> httpx2.Response:
    return await client.post(path, json=INITIALIZE, headers={**HEADERS, **headers})


def _session_headers(response: httpx2.Response, **extra: str) -> dict[str, str]:
    session_id = response.headers.get("mcp-session-id")
    assert session_id, response.headers
    return {**HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25", **extra}


def _assert_unauthorized(response: httpx2.Response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["code"] == -32001
    assert body["error"]["message"] == "Unauthorized: Invalid or missing API key"


async def test_fifty_concurrent_sessions_each_get_their_own_answer(echo_config: Path) -> None:
    """50 independent SDK sessions initialize, list and call at once; every answer is its own text."""
    answers: dict[int, str] = {}
    async with running_proxy(echo_config, "--rate-limit", "0") as url:

        async def one(i: int) -> None:
            answers[i] = await _sdk_round_trip(url, f"hello from session {i}")

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(50):
                    tg.start_soon(one, i)
    assert answers == {i: f"hello from session {i}" for i in range(50)}


async def test_both_protocol_eras_are_served_on_one_endpoint(echo_config: Path) -> None:
    """A handshake-era client and a 2026-07-28 client, concurrently against the same process."""
    results: dict[str, list[tuple[str | None, str]]] = {"legacy": [], MODERN: []}
    failures: dict[str, list[BaseException]] = {"legacy": [], MODERN: []}
    async with running_proxy(echo_config, "--rate-limit", "0") as url:

        async def one(mode: str, i: int) -> None:
            try:
                async with Client(f"{url}/mcp", mode=mode) as client:
                    tools = await client.list_tools()
                    assert "echo__echo" in [t.name for t in tools.tools]
                    text = _text(await client.call_tool("echo__echo", {"text": f"{mode} {i}"}))
                    results[mode].append((client.protocol_version, text))
            except Exception as exc:  # collected so that one era's failure does not hide the other's result
                failures[mode].append(exc)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(one, "legacy", i)
                    tg.start_soon(one, MODERN, i)

    assert failures["legacy"] == []
    assert sorted(text for _, text in results["legacy"]) == [f"legacy {i}" for i in range(3)]
    assert all(version is not None and version != MODERN for version, _ in results["legacy"])
    if failures[MODERN]:
        raise _innermost(failures[MODERN][0])
    assert sorted(results[MODERN]) == [(MODERN, f"{MODERN} {i}") for i in range(3)]


async def test_api_key_auth(echo_config: Path) -> None:
    """Keys guard `/mcp` and `/`; Bearer (any case) or X-Api-Key; a session is bound to its key."""
    async with (
        running_proxy(echo_config, "--require-api-auth", "--http-api-key", KEY1, "--http-api-key", KEY2) as url,
        httpx2.AsyncClient(base_url=url, timeout=30) as client,
    ):
        _assert_unauthorized(await _initialize(client))
        _assert_unauthorized(await _initialize(client, Authorization="Bearer wrong-key"))
        _assert_unauthorized(await _initialize(client, **{"X-Api-Key": "wrong-key"}))
        _assert_unauthorized(await _initialize(client, "/"))
        batch = [INITIALIZE, _call("batched")]
        _assert_unauthorized(await client.post("/mcp", json=batch, headers=HEADERS))

        ok = await _initialize(client, **{"X-Api-Key": KEY1})
        assert ok.status_code == 200, ok.text
        lower = await _initialize(client, authorization=f"bearer {KEY1}")
        assert lower.status_code == 200, lower.text
        root = await _initialize(client, "/", Authorization=f"Bearer {KEY2}")
        assert root.status_code == 200, root.text

        # A session created with KEY1 is not usable with KEY2, even though KEY2 is a valid key.
        hijack = await client.post("/mcp", json=_call("hijacked"), headers=_session_headers(ok, **{"X-Api-Key": KEY2}))
        assert hijack.status_code == 404, hijack.text
        assert "hijacked" not in hijack.text
        # …and without any key the request does not get past auth.
        _assert_unauthorized(await client.post("/mcp", json=_call("anonymous"), headers=_session_headers(ok)))

        # The owner's key still works on the same session.
        owner = _session_headers(ok, **{"X-Api-Key": KEY1})
        notified = await client.post(
            "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=owner
        )
        assert notified.status_code == 202, notified.text
        called = await client.post("/mcp", json=_call("owner"), headers=owner)
        assert called.status_code == 200, called.text
        assert "owner" in called.text

        health = await client.get("/health")
        assert health.status_code == 200, health.text
        body = health.json()
        assert {"status", "transport", "sessions", "maxSessions"} <= body.keys()
        assert body["status"] == "ok" and body["transport"] == "streamable-http"


async def test_health_counts_sessions_delete_ends_one_and_oversized_bodies_are_refused(echo_config: Path) -> None:
    async with running_proxy(echo_config) as url, httpx2.AsyncClient(base_url=url, timeout=30) as client:
        first = await _initialize(client)
        second = await _initialize(client)
        assert first.status_code == second.status_code == 200
        assert first.headers["mcp-session-id"] != second.headers["mcp-session-id"]

        health = (await client.get("/health")).json()
        assert health["sessions"] >= 2, health
        assert health["maxSessions"] > 0

        deleted = await client.delete("/mcp", headers=_session_headers(first))
        assert deleted.status_code in (200, 204), deleted.text
        after = await client.post("/mcp", json=_call("after delete"), headers=_session_headers(first))
        assert after.status_code == 404, after.text
        still = await client.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "ping"}, headers=_session_headers(second)
        )
        assert still.status_code == 200, still.text

        # 5 MiB declared. The proxy answers from Content-Length and closes without reading the body, so a client
        # that insists on uploading everything first (httpx) sees a reset; send only a prefix and read the answer.
        prefix = b'{"jsonrpc":"2.0","id":9,"method":"ping","params":{"pad":"' + b"x" * 65536
        status, body = await _raw_post(url, "/mcp", 5 * 1024 * 1024, prefix)
        assert status == 413, body
        error = json.loads(body)["error"]
        assert error["code"] == -32600

        # The process is still serving after the refusal.
        assert (await client.get("/health")).status_code == 200


async def test_stateless_mode_serves_concurrent_clients_without_sessions(echo_config: Path) -> None:
    session_ids: list[str] = []
    statuses: list[int] = []

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)
        if "mcp-session-id" in response.headers:
            session_ids.append(response.headers["mcp-session-id"])

    answers: dict[int, str] = {}
    async with running_proxy(echo_config, "--stateless", "--rate-limit", "0") as url:

        async def one(i: int) -> None:
            async with httpx2.AsyncClient(timeout=30, event_hooks={"response": [record]}) as http:
                answers[i] = await _sdk_round_trip(url, f"stateless {i}", http_client=http)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(10):
                    tg.start_soon(one, i)

        async with httpx2.AsyncClient(base_url=url, timeout=30) as client:
            raw = await _initialize(client)
            assert raw.status_code == 200, raw.text
            assert "mcp-session-id" not in raw.headers
            health = (await client.get("/health")).json()
            assert health["sessions"] == 0

    assert answers == {i: f"stateless {i}" for i in range(10)}
    assert statuses and session_ids == []
