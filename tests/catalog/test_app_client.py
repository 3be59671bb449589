"""Talking to the plugged.in App: authentication, retries, and errors that never leak the key or a body."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest
from pydantic import SecretStr

from pluggedin_proxy.catalog import app_client
from pluggedin_proxy.catalog.app_client import AppClient, RateLimited
from pluggedin_proxy.catalog.base import Activity
from pluggedin_proxy.errors import CatalogAuthError, CatalogError, CatalogUnavailable

pytestmark = pytest.mark.anyio

BASE = "https://plugged.in"
KEY = "pg_in_" + "K3yS3cr3t" * 7 + "x"
BODY_SECRET = "body-secret-d41d8cd98f00"
UUID = "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b"

Handler = Callable[[httpx2.Request], httpx2.Response]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries happen at once: the number of attempts is under test here, not the backoff schedule."""
    monkeypatch.setattr(app_client, "_backoff", lambda retry_state: 0.0)


def client_for(handler: Handler) -> AppClient:
    return AppClient(BASE, SecretStr(KEY), transport=httpx2.MockTransport(handler))


def assert_clean(error: BaseException) -> None:
    """The error names neither the key nor anything the App put in the body."""
    assert KEY not in str(error)
    assert BODY_SECRET not in str(error)


def tools_body() -> dict[str, object]:
    return {
        "tools": [
            {
                "name": "github__create_issue",
                "description": "Create an issue",
                "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}},
                "_serverUuid": UUID,
                "_serverSlug": "github",
                "_serverName": "GitHub",
            }
        ]
    }


# Requests


async def test_every_request_carries_the_bearer_key() -> None:
    """Lists, resolution, discovery and the activity log all send `Authorization: Bearer <key>`."""
    seen: list[str | None] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("Authorization"))
        if request.url.path == "/api/tools":
            return httpx2.Response(200, json={"tools": []})
        if request.url.path.startswith("/api/resolve/"):
            return httpx2.Response(200, json={"uuid": UUID})
        if request.method == "POST":
            return httpx2.Response(200, json={"message": "ok", "success": True})
        return httpx2.Response(200, json=[])

    async with client_for(handler) as client:
        await client.servers()
        await client.tools()
        await client.prompts()
        await client.resources()
        await client.templates()
        await client.resolve_prompt("review")
        await client.resolve_resource("file:///a")
        await client.discover()
        await client.log_activity(Activity("tool_call", "GitHub", UUID, "create_issue", True, 12))
    assert len(seen) == 9
    assert set(seen) == {f"Bearer {KEY}"}


async def test_tools_asks_the_app_to_prefix_names() -> None:
    """`tools()` sends `prefix_tools=true`."""
    params: list[dict[str, str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        params.append(dict(request.url.params))
        return httpx2.Response(200, json=tools_body())

    async with client_for(handler) as client:
        (tool,) = await client.tools()
    assert params == [{"prefix_tools": "true"}]
    assert tool.original_name() == "create_issue"


# Authentication


async def test_rejected_key_raises_auth_error_naming_app_and_status() -> None:
    """A 401 raises `CatalogAuthError` naming the App and the status, not the key."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"error": f"Invalid API key {KEY} {BODY_SECRET}"})

    async with client_for(handler) as client:
        with pytest.raises(CatalogAuthError) as raised:
            await client.servers()
    message = str(raised.value)
    assert BASE in message
    assert "401" in message
    assert_clean(raised.value)


async def test_rejected_key_is_not_retried() -> None:
    """A 401 is final: one call."""
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(401, json={"error": "Unauthorized"})

    async with client_for(handler) as client:
        with pytest.raises(CatalogAuthError):
            await client.tools()
    assert calls == 1


# Rate limits


async def test_short_retry_after_is_waited_for_and_retried() -> None:
    """A 429 with `Retry-After: 0` is retried, and the retry's answer is returned."""
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx2.Response(
                429, headers={"Retry-After": "0"}, json={"error": "Too many requests", "code": "RATE_LIMIT_EXCEEDED"}
            )
        return httpx2.Response(200, json=tools_body())

    async with client_for(handler) as client:
        tools = await client.tools()
    assert calls == 2
    assert [t.name for t in tools] == ["github__create_issue"]


async def test_long_retry_after_is_reported_without_retrying() -> None:
    """A 429 with `Retry-After: 120` raises `RateLimited` carrying 120 seconds, after one call."""
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(429, headers={"Retry-After": "120"}, json={"error": BODY_SECRET, "retryAfter": 120})

    async with client_for(handler) as client:
        with pytest.raises(RateLimited) as raised:
            await client.tools()
    assert calls == 1
    assert raised.value.retry_after == 120
    assert isinstance(raised.value, CatalogUnavailable)
    assert_clean(raised.value)


# Failures


async def test_server_error_on_a_get_is_retried_then_reported() -> None:
    """A GET answered 500 is tried three times, then raises `CatalogUnavailable` naming the status."""
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(500, json={"error": "Internal server error", "details": BODY_SECRET})

    async with client_for(handler) as client:
        with pytest.raises(CatalogUnavailable) as raised:
            await client.prompts()
    assert calls == 3
    assert "500" in str(raised.value)
    assert_clean(raised.value)


async def test_server_error_after_a_failure_recovers_on_retry() -> None:
    """A 503 followed by a 200 returns the 200's list."""
    answers = [httpx2.Response(503, text="upstream down"), httpx2.Response(200, json=[{"name": "review"}])]

    def handler(request: httpx2.Request) -> httpx2.Response:
        return answers.pop(0)

    async with client_for(handler) as client:
        prompts = await client.prompts()
    assert [p.name for p in prompts] == ["review"]


async def test_discover_is_not_retried_on_server_error() -> None:
    """A POST is not idempotent: a 500 on discover is one call, then `CatalogUnavailable`."""
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(500, json={"error": "Internal server error", "details": BODY_SECRET})

    async with client_for(handler) as client:
        with pytest.raises(CatalogUnavailable) as raised:
            await client.discover(force=True)
    assert calls == 1
    assert_clean(raised.value)


async def test_malformed_json_is_reported_as_malformed() -> None:
    """A body that is not JSON raises `CatalogUnavailable` saying the response was malformed."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, text=f"<html>{BODY_SECRET}</html>", headers={"Content-Type": "text/html"})

    async with client_for(handler) as client:
        with pytest.raises(CatalogUnavailable, match="malformed") as raised:
            await client.servers()
    assert_clean(raised.value)


async def test_json_that_is_not_a_list_is_reported_as_malformed() -> None:
    """A 200 whose JSON is neither an array nor a known envelope raises `CatalogUnavailable` saying malformed."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"error": BODY_SECRET})

    async with client_for(handler) as client:
        with pytest.raises(CatalogUnavailable, match="malformed") as raised:
            await client.resources()
    assert_clean(raised.value)


async def test_timeout_is_reported_with_the_time_waited() -> None:
    """A read timeout raises `CatalogUnavailable` saying the App did not answer within the call's timeout."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    async with client_for(handler) as client:
        with pytest.raises(CatalogUnavailable) as raised:
            await client.tools()
    message = str(raised.value)
    assert "did not answer" in message
    assert "within 10s" in message
    assert_clean(raised.value)


async def test_connect_error_is_reported_as_unavailable() -> None:
    """A refused connection raises `CatalogUnavailable` naming the App."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError(f"connection refused {BODY_SECRET}", request=request)

    async with client_for(handler) as client:
        with pytest.raises(CatalogUnavailable) as raised:
            await client.servers()
    assert BASE in str(raised.value)
    assert_clean(raised.value)


async def test_errors_are_catalog_errors() -> None:
    """Every failure the client reports is a `CatalogError`, so callers catch one class."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(403, json={"error": "Forbidden"})

    async with client_for(handler) as client:
        with pytest.raises(CatalogError):
            await client.templates()


# Resolution


async def test_resolve_miss_is_none() -> None:
    """A 404 from `/api/resolve/prompt` means no server owns the prompt."""
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(404, json={"error": "Prompt not found"})

    async with client_for(handler) as client:
        assert await client.resolve_prompt("nope") is None
    assert calls == 1


async def test_resolve_hit_is_the_owner_uuid() -> None:
    """A 200 from `/api/resolve/resource` gives the owning server's uuid, asked for by exact URI."""
    asked: list[tuple[str, dict[str, str]]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        asked.append((request.url.path, dict(request.url.params)))
        body = {"uuid": UUID, "name": "Files", "type": "STDIO", "command": "npx", "args": [], "env": {}, "url": None}
        return httpx2.Response(200, json=body)

    async with client_for(handler) as client:
        assert await client.resolve_resource("file:///a b?c=1") == UUID
    assert asked == [("/api/resolve/resource", {"uri": "file:///a b?c=1"})]


# Activity log


async def test_log_activity_posts_the_exact_body() -> None:
    """A successful call is logged with action, server, item, success and execution time, and no error field."""
    bodies: list[tuple[str, str, object]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append((request.method, request.url.path, json.loads(request.content)))
        return httpx2.Response(200, json={"success": True})

    async with client_for(handler) as client:
        await client.log_activity(Activity("tool_call", "GitHub", UUID, "create_issue", True, 42))
    assert bodies == [
        (
            "POST",
            "/api/notifications/mcp-activity",
            {
                "action": "tool_call",
                "serverName": "GitHub",
                "serverUuid": UUID,
                "itemName": "create_issue",
                "success": True,
                "executionTime": 42,
            },
        )
    ]


async def test_log_activity_sends_the_error_message_of_a_failed_call() -> None:
    """A failed call is logged with `errorMessage`."""
    bodies: list[object] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json={"success": True})

    async with client_for(handler) as client:
        await client.log_activity(Activity("prompt_get", "GitHub", UUID, "review", False, 7, error="boom"))
    assert bodies == [
        {
            "action": "prompt_get",
            "serverName": "GitHub",
            "serverUuid": UUID,
            "itemName": "review",
            "success": False,
            "executionTime": 7,
            "errorMessage": "boom",
        }
    ]


async def test_log_activity_swallows_a_server_error() -> None:
    """A 500 from the activity log is dropped after one call."""
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(500, json={"error": "Internal server error"})

    async with client_for(handler) as client:
        await client.log_activity(Activity("resource_read", "Files", UUID, "file:///a", True, 3))
    assert calls == 1


# Lists


async def test_one_malformed_entry_is_skipped_and_the_rest_returned() -> None:
    """A tool without a name is skipped; the tools around it are returned."""
    body = tools_body()
    good = body["tools"][0]  # type: ignore[index]
    body["tools"] = [good, {"description": "no name", "_serverUuid": UUID}, {**good, "name": "github__close_issue"}]

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body)

    async with client_for(handler) as client:
        tools = await client.tools()
    assert [t.original_name() for t in tools] == ["create_issue", "close_issue"]


async def test_servers_are_read_from_a_bare_array() -> None:
    """`/api/mcp-servers` answers a bare array of servers."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/api/mcp-servers"
        return httpx2.Response(200, json=[{"uuid": UUID, "name": "GitHub", "type": "STDIO", "command": "npx"}])

    async with client_for(handler) as client:
        (server,) = await client.servers()
    assert server.uuid == UUID


async def test_discover_returns_the_app_message_and_posts_force_refresh() -> None:
    """`discover(uuid, force=True)` posts `{"force_refresh": true}` to that server and returns the App's message."""
    seen: list[tuple[str, object]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx2.Response(200, json={"message": "Discovery force-initiated for 1 server."})

    async with client_for(handler) as client:
        message = await client.discover(UUID, force=True)
    assert message == "Discovery force-initiated for 1 server."
    assert seen == [(f"/api/discover/{UUID}", {"force_refresh": True})]
