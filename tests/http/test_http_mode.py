"""End to end over Streamable HTTP: the proxy as a real subprocess, real sockets, the SDK client and raw requests."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.http.conftest import (
    HEADERS,
    INITIALIZE,
    KEY1,
    KEY2,
    call_request,
    initialize,
    running_proxy,
    session_headers,
    tool_text,
)

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"


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


async def _sdk_round_trip(url: str, text: str, http_client: httpx2.AsyncClient | None = None) -> str:
    async with (
        streamable_http_client(f"{url}/mcp", http_client=http_client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        assert "echo__echo" in [t.name for t in tools.tools]
        return tool_text(await session.call_tool("echo__echo", {"text": text}))


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
                    text = tool_text(await client.call_tool("echo__echo", {"text": f"{mode} {i}"}))
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
        _assert_unauthorized(await initialize(client))
        _assert_unauthorized(await initialize(client, Authorization="Bearer wrong-key"))
        _assert_unauthorized(await initialize(client, **{"X-Api-Key": "wrong-key"}))
        _assert_unauthorized(await initialize(client, "/"))
        batch = [INITIALIZE, call_request("batched")]
        _assert_unauthorized(await client.post("/mcp", json=batch, headers=HEADERS))

        ok = await initialize(client, **{"X-Api-Key": KEY1})
        assert ok.status_code == 200, ok.text
        lower = await initialize(client, authorization=f"bearer {KEY1}")
        assert lower.status_code == 200, lower.text
        root = await initialize(client, "/", Authorization=f"Bearer {KEY2}")
        assert root.status_code == 200, root.text

        # A session created with KEY1 is not usable with KEY2, even though KEY2 is a valid key.
        hijack = await client.post(
            "/mcp", json=call_request("hijacked"), headers=session_headers(ok, **{"X-Api-Key": KEY2})
        )
        assert hijack.status_code == 404, hijack.text
        assert "hijacked" not in hijack.text
        # …and without any key the request does not get past auth.
        _assert_unauthorized(await client.post("/mcp", json=call_request("anonymous"), headers=session_headers(ok)))

        # The owner's key still works on the same session.
        owner = session_headers(ok, **{"X-Api-Key": KEY1})
        notified = await client.post(
            "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=owner
        )
        assert notified.status_code == 202, notified.text
        called = await client.post("/mcp", json=call_request("owner"), headers=owner)
        assert called.status_code == 200, called.text
        assert "owner" in called.text

        health = await client.get("/health")
        assert health.status_code == 200, health.text
        body = health.json()
        assert {"status", "transport", "sessions", "maxSessions"} <= body.keys()
        assert body["status"] == "ok" and body["transport"] == "streamable-http"


async def test_health_counts_sessions_delete_ends_one_and_oversized_bodies_are_refused(echo_config: Path) -> None:
    async with running_proxy(echo_config) as url, httpx2.AsyncClient(base_url=url, timeout=30) as client:
        first = await initialize(client)
        second = await initialize(client)
        assert first.status_code == second.status_code == 200
        assert first.headers["mcp-session-id"] != second.headers["mcp-session-id"]

        health = (await client.get("/health")).json()
        assert health["sessions"] >= 2, health
        assert health["maxSessions"] > 0

        deleted = await client.delete("/mcp", headers=session_headers(first))
        assert deleted.status_code in (200, 204), deleted.text
        after = await client.post("/mcp", json=call_request("after delete"), headers=session_headers(first))
        assert after.status_code == 404, after.text
        still = await client.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "ping"}, headers=session_headers(second)
        )
        assert still.status_code == 200, still.text

        # 5 MiB declared but only a prefix sent: once the client pauses, the proxy stops waiting for the rest and
        # answers from Content-Length (a client uploading the whole body: tests/http/test_http_edges.py).
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
            raw = await initialize(client)
            assert raw.status_code == 200, raw.text
            assert "mcp-session-id" not in raw.headers
            health = (await client.get("/health")).json()
            assert health["sessions"] == 0

    assert answers == {i: f"stateless {i}" for i in range(10)}
    assert statuses and session_ids == []
