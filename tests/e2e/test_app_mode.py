"""App mode end to end: the proxy subprocess gets its catalog from the self-hosted App over loopback HTTP.

The App runs as a real subprocess. Faults are injected by a small HTTP front, also on loopback, that
forwards to the App until a test tells it to misbehave; nothing in these tests mocks HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
import uvicorn
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import KEY, REPO, echo_server, proxy_command, proxy_session, selfhosted_app

pytestmark = pytest.mark.anyio

TTL = "0.5"


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


@dataclass
class Faults:
    """What the front does with the next requests: forward them, or fail in one way."""

    mode: str = "forward"
    times: int | None = None
    """Fail only this many requests, then forward again (`None`: until told otherwise)."""
    seen: list[str] = field(default_factory=list)
    servers_patch: dict[str, Any] | None = None
    """Extra `env` merged into every server of `/api/mcp-servers` (a config change in the App)."""


class _AnnouncingServer(uvicorn.Server):
    """uvicorn that sets `ready` once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@asynccontextmanager
async def faulty_front(app_url: str) -> AsyncIterator[tuple[str, Faults]]:
    """An HTTP front on loopback that forwards to the App unless told to fail."""
    faults = Faults()
    client = httpx2.AsyncClient(base_url=app_url, timeout=30)

    async def handle(request: Request) -> Response:
        faults.seen.append(f"{request.method} {request.url.path}")
        mode = faults.mode
        if faults.times is not None:
            if faults.times <= 0:
                mode = "forward"
            faults.times -= 1
        if mode == "flap":  # every other request fails
            mode = "503" if len(faults.seen) % 2 else "forward"
        if mode == "401":
            return Response('{"error": "Invalid API key"}', 401, media_type="application/json")
        if mode == "429-short":
            return Response('{"error": "slow down"}', 429, {"Retry-After": "1"}, media_type="application/json")
        if mode == "429-long":
            return Response('{"error": "slow down"}', 429, {"Retry-After": "120"}, media_type="application/json")
        if mode == "500":
            return Response(
                '{"error": "boom", "details": "secret-internal-detail"}', 500, media_type="application/json"
            )
        if mode == "503":
            return Response('{"error": "down"}', 503, media_type="application/json")
        if mode == "malformed":
            return Response("<html>not json", 200, media_type="application/json")
        if mode == "slow":
            await anyio.sleep(5)
        upstream = await client.request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")},
        )
        body = upstream.content
        if request.url.path == "/api/mcp-servers" and faults.servers_patch and upstream.status_code == 200:
            servers = upstream.json()
            for server in servers:
                server["env"] = {**(server.get("env") or {}), **faults.servers_patch}
            body = json.dumps(servers).encode()
        return Response(body, upstream.status_code, media_type="application/json")

    app = Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "PATCH", "DELETE"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off")
    server = _AnnouncingServer(config)
    async with client, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            await server.ready.wait()
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}", faults
        finally:
            server.should_exit = True


def app_proxy(url: str, *extra: str, **options: Any) -> Any:
    """A client session with the proxy in App mode against `url`."""
    args = ("--pluggedin-api-key", KEY, "--pluggedin-api-base-url", url, "--cache-ttl", TTL, "--app-timeout", "1")
    return proxy_session(None, *args, *extra, **options)


async def _names(session: ClientSession) -> list[str]:
    return [t.name for t in (await session.list_tools()).tools]


async def _eventually(check: Any, timeout: float = 10) -> None:
    """Poll another process's state until `check` holds; there is nothing in this process to wait on."""
    with anyio.fail_after(timeout):
        while not await check():  # noqa: ASYNC110  # the state lives in another process
            await anyio.sleep(0.05)


async def test_servers_defined_in_the_app_are_listed_with_the_apps_names_and_served(tmp_path: Path) -> None:
    """Tools carry the App's `<slug>__` names; tools, prompts, resources and templates all work."""
    with selfhosted_app(tmp_path, {"echo": echo_server()}) as url:
        async with app_proxy(url) as session:
            names = await _names(session)
            assert "echo__echo" in names
            assert _text(await session.call_tool("echo__echo", {"text": "from the App"})) == "from the App"
            prompts = [p.name for p in (await session.list_prompts()).prompts]
            assert "greet" in prompts
            greeting = await session.get_prompt("greet", {"name": "Ada"})
            assert isinstance(greeting.messages[0].content, types.TextContent)
            assert greeting.messages[0].content.text == "Hello, Ada!"
            static = await session.read_resource("echo://static")
            assert isinstance(static.contents[0], types.TextResourceContents)
            assert static.contents[0].text == "static resource"
            templates = (await session.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["echo://item/{id}"]


async def test_the_app_going_down_after_warm_up_does_not_break_lists_calls_gets_or_reads(tmp_path: Path) -> None:
    """With the App answering 503 past the TTL, listings, calls, prompt gets and reads come from cache."""
    with selfhosted_app(tmp_path, {"echo": echo_server()}) as app_url:
        async with faulty_front(app_url) as (url, faults), app_proxy(url) as session:
            assert "echo__echo" in await _names(session)
            await session.get_prompt("greet", {"name": "a"})
            await session.read_resource("echo://static")
            await session.list_resources()
            faults.mode = "503"
            before = len(faults.seen)
            await anyio.sleep(float(TTL) * 2)  # let every cached listing go stale
            assert "echo__echo" in await _names(session)
            assert _text(await session.call_tool("echo__echo", {"text": "still"})) == "still"
            assert isinstance((await session.get_prompt("greet", {"name": "b"})).messages[0].content, types.TextContent)
            assert (await session.read_resource("echo://static")).contents
            assert [r.uri for r in (await session.list_resources()).resources] == ["echo://static"]
            assert len(faults.seen) > before  # the proxy did try the App, and fell back
            doctor = await anyio.run_process(
                [*proxy_command("--pluggedin-api-key", KEY, "--pluggedin-api-base-url", url), "doctor"],
                check=False,
                cwd=REPO,
            )
    report = doctor.stdout.decode()
    assert "unreachable" in report and "STALE" in report and "echo" in report
    assert KEY not in report


async def test_a_flapping_app_never_fails_a_client_request(tmp_path: Path) -> None:
    """With every other App request failing across many cache lifetimes, every list and call succeeds."""
    with selfhosted_app(tmp_path, {"echo": echo_server()}) as app_url:
        async with faulty_front(app_url) as (url, faults), app_proxy(url) as session:
            assert "echo__echo" in await _names(session)
            faults.mode = "flap"
            before = len(faults.seen)
            for i in range(12):
                await anyio.sleep(float(TTL) / 2)
                assert "echo__echo" in await _names(session)
                assert _text(await session.call_tool("echo__echo", {"text": str(i)})) == str(i)
            assert len(faults.seen) - before >= 4  # the App was asked, and failed, many times


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("401", "rejected the API key"),
        ("500", "HTTP 500"),
        ("slow", "did not answer"),
        ("malformed", "malformed"),
        ("429-long", "retry after 120s"),
    ],
)
async def test_an_app_failure_is_a_clear_error_without_secrets_and_the_proxy_keeps_serving(
    tmp_path: Path, mode: str, expected: str
) -> None:
    """A failing App still leaves the built-ins listed; a server's tool gets a clear error naming the problem,
    never the key; later requests work."""
    with selfhosted_app(tmp_path, {"echo": echo_server()}) as app_url:
        async with faulty_front(app_url) as (url, faults):
            faults.mode = mode
            async with app_proxy(url) as session:
                names = await _names(session)
                assert "pluggedin_discover_tools" in names and "echo__echo" not in names
                with pytest.raises(MCPError) as caught:
                    await session.call_tool("echo__echo", {"text": "x"})
                message = caught.value.error.message
                assert expected in message
                assert KEY not in message and "secret-internal-detail" not in message
                faults.mode = "forward"
                await _eventually(lambda: _lists_echo(session))


async def _lists_echo(session: ClientSession) -> bool:
    try:
        return "echo__echo" in await _names(session)
    except MCPError:
        return False


async def test_a_short_retry_after_is_honoured_within_the_request(tmp_path: Path) -> None:
    """A 429 with `Retry-After: 1` is waited out and retried, so the client sees a normal answer."""
    with selfhosted_app(tmp_path, {"echo": echo_server()}) as app_url:
        async with faulty_front(app_url) as (url, faults):
            faults.mode, faults.times = "429-short", 1
            async with app_proxy(url) as session:
                assert "echo__echo" in await _names(session)


async def test_an_unchanged_config_never_respawns_and_a_changed_one_does_within_the_ttl(tmp_path: Path) -> None:
    """Re-reading identical server configs keeps the upstream; a changed env reaches it after the TTL."""
    with selfhosted_app(tmp_path, {"echo": echo_server()}) as app_url:
        async with faulty_front(app_url) as (url, faults), app_proxy(url) as session:
            first = _text(await session.call_tool("echo__pid", {}))
            for _ in range(3):
                await anyio.sleep(float(TTL) * 2)
                assert _text(await session.call_tool("echo__pid", {})) == first
            faults.servers_patch = {"CHANGED": "1"}

            async def respawned() -> bool:
                return _text(await session.call_tool("echo__pid", {})) != first

            await _eventually(respawned)


async def test_each_call_get_and_read_is_logged_in_the_apps_activity_log(tmp_path: Path) -> None:
    """Calls, prompt gets and resource reads reach `mcp-activity` with the original names and real success."""
    with selfhosted_app(tmp_path, {"echo": echo_server()}) as url:
        async with app_proxy(url) as session:
            await session.call_tool("echo__echo", {"text": "x"})
            await session.call_tool("echo__fail", {"message": "nope"})
            await session.get_prompt("greet", {"name": "a"})
            await session.read_resource("echo://static")

            async with httpx2.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as app:

                async def logged() -> list[dict[str, Any]]:
                    response = await app.get("/api/notifications/mcp-activity")
                    return list(response.json()["activity"])

                async def all_four() -> bool:
                    return len(await logged()) >= 4

                await _eventually(all_four)
                entries = {(e["action"], e["itemName"]): e for e in await logged()}
    assert entries[("tool_call", "echo")]["success"] is True
    assert entries[("tool_call", "echo")]["serverName"] == "echo"
    assert entries[("tool_call", "fail")]["success"] is False
    assert entries[("prompt_get", "greet")]["success"] is True
    assert entries[("resource_read", "echo://static")]["success"] is True
    assert all(isinstance(e["executionTime"], int | float) and e["executionTime"] >= 0 for e in entries.values())
