"""HTTP mode at its edges: legacy SSE, CORS preflight, idle expiry, session cap, rate limits, oversized bodies.

Every test runs the real CLI as a subprocess and talks to it over real sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client

from tests.http.conftest import (
    HEADERS,
    KEY1,
    KEY2,
    call_request,
    initialize,
    running_proxy,
    session_headers,
    tool_text,
)

pytestmark = pytest.mark.anyio

AUTH = ("--require-api-auth", "--http-api-key", KEY1, "--http-api-key", KEY2)
ORIGIN = "https://app.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
# Just over the default 4 MiB body limit.
OVERSIZED = 5 * 1024 * 1024


async def _sse_round_trip(url: str, text: str, **headers: str) -> str:
    """Initialize, list and call `echo__echo` over the legacy SSE transport."""
    async with sse_client(f"{url}/sse", headers=headers) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        assert "echo__echo" in [t.name for t in tools.tools]
        return tool_text(await session.call_tool("echo__echo", {"text": text}))


async def _health(client: httpx2.AsyncClient) -> dict[str, Any]:
    response = await client.get("/health")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _assert_rate_limited(response: httpx2.Response, per: str) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["code"] == -32029
    assert per in body["error"]["message"]
    assert body["error"]["data"] == {"retryAfter": retry_after}


class TestLegacySse:
    async def test_sse_client_initializes_lists_and_calls_through_the_proxy(self, echo_config: Path) -> None:
        """The SDK's SSE client gets the aggregated tools and a tool's answer over `/sse` + `/messages`."""
        async with running_proxy(echo_config) as url:
            with anyio.fail_after(30):
                assert await _sse_round_trip(url, "over sse") == "over sse"

    async def test_health_counts_open_sse_streams(self, echo_config: Path) -> None:
        """While an SSE stream is open, `/health` counts it among the sessions."""
        async with (
            running_proxy(echo_config) as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
            sse_client(f"{url}/sse") as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            health = await _health(client)
            assert health["sseSessions"] == 1
            assert health["sessions"] == 1

    async def test_sse_is_offered_in_stateless_mode(self, echo_config: Path) -> None:
        """`--stateless` drops Streamable HTTP sessions, but an SSE stream is a session by nature and still works."""
        async with running_proxy(echo_config, "--stateless") as url:
            with anyio.fail_after(30):
                assert await _sse_round_trip(url, "stateless sse") == "stateless sse"

    async def test_sse_needs_a_key_and_its_session_answers_only_that_key(self, echo_config: Path) -> None:
        """No key → 401 on `/sse` and `/messages`; another valid key posting to the session → 404."""
        session_ids: list[str] = []
        async with (
            running_proxy(echo_config, *AUTH) as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
        ):
            assert (await client.get("/sse")).status_code == 401
            assert (await client.post("/messages?session_id=00", json=call_request("x"))).status_code == 401

            owner = {"Authorization": f"Bearer {KEY1}"}
            with anyio.fail_after(30):
                async with (
                    sse_client(f"{url}/sse", headers=owner, on_session_created=session_ids.append) as (read, write),
                    ClientSession(read, write) as session,
                ):
                    await session.initialize()
                    (session_id,) = session_ids
                    messages = f"/messages?session_id={session_id}"
                    hijack = await client.post(messages, json=call_request("hijacked"), headers={"X-Api-Key": KEY2})
                    assert hijack.status_code == 404, hijack.text
                    anonymous = await client.post(messages, json=call_request("anonymous"))
                    assert anonymous.status_code == 401, anonymous.text
                    # The owner's session is untouched by both attempts.
                    assert tool_text(await session.call_tool("echo__echo", {"text": "owner"})) == "owner"

    async def test_sse_refuses_a_foreign_host_on_a_loopback_bind(self, echo_config: Path) -> None:
        """DNS-rebinding protection covers `/sse` as it covers `/mcp`."""
        async with running_proxy(echo_config) as url, httpx2.AsyncClient(base_url=url, timeout=30) as client:
            response = await client.get("/sse", headers={"Host": "attacker.example"})
            assert response.status_code == 421, response.text


class TestHostCheck:
    async def test_health_and_metrics_refuse_a_foreign_host_on_a_loopback_bind(self, echo_config: Path) -> None:
        """A page using DNS rebinding must not read which servers run here."""
        async with running_proxy(echo_config) as url, httpx2.AsyncClient(base_url=url, timeout=30) as client:
            for path in ("/health", "/metrics"):
                refused = await client.get(path, headers={"Host": "evil.example.com"})
                assert refused.status_code == 421, path
                assert (await client.get(path)).status_code == 200, path


class TestKeysAlone:
    async def test_giving_http_api_keys_turns_the_check_on(self, echo_config: Path) -> None:
        async with (
            running_proxy(echo_config, "--http-api-key", KEY1) as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
        ):
            assert (await initialize(client)).status_code == 401
            assert (await initialize(client, **{"X-Api-Key": KEY1})).status_code == 200


class TestCorsPreflight:
    async def test_an_allowed_origin_gets_cors_headers_and_another_does_not(self, echo_config: Path) -> None:
        """With `--cors-origin`, a preflight from that origin is allowed; from any other origin, it is not."""
        async with (
            running_proxy(echo_config, "--cors-origin", ORIGIN, *AUTH) as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
        ):
            allowed = await client.options("/mcp", headers={"Origin": ORIGIN, **PREFLIGHT})
            assert allowed.status_code == 200, allowed.text
            assert allowed.headers["access-control-allow-origin"] == ORIGIN
            assert "POST" in allowed.headers["access-control-allow-methods"]
            assert "content-type" in allowed.headers["access-control-allow-headers"].lower()

            other = await client.options("/mcp", headers={"Origin": "https://evil.example", **PREFLIGHT})
            assert other.status_code == 400, other.text
            assert "access-control-allow-origin" not in other.headers

    async def test_no_cors_headers_without_a_cors_origin(self, echo_config: Path) -> None:
        """Without `--cors-origin`, a preflight gets no CORS headers at all."""
        async with running_proxy(echo_config) as url, httpx2.AsyncClient(base_url=url, timeout=30) as client:
            response = await client.options("/mcp", headers={"Origin": ORIGIN, **PREFLIGHT})
            assert not [name for name in response.headers if name.lower().startswith("access-control-")]


class TestSessions:
    async def test_an_idle_session_expires_after_session_timeout(self, echo_config: Path) -> None:
        """With `--session-timeout 1`, an unused session is gone within seconds and its id gets 404."""
        async with (
            running_proxy(echo_config, "--session-timeout", "1") as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
        ):
            opened = await initialize(client)
            assert opened.status_code == 200, opened.text
            assert (await _health(client))["sessions"] == 1
            with anyio.fail_after(10):
                while (await _health(client))["sessions"]:  # noqa: ASYNC110  # the state lives in another process
                    await anyio.sleep(0.1)
            expired = await client.post("/mcp", json=call_request("late"), headers=session_headers(opened))
            assert expired.status_code == 404, expired.text

    async def test_max_sessions_refuses_one_more_session_with_503(self, echo_config: Path) -> None:
        """With `--max-sessions 2`, a third Streamable HTTP session gets 503 and says why."""
        async with (
            running_proxy(echo_config, "--max-sessions", "2") as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
        ):
            for _ in range(2):
                assert (await initialize(client)).status_code == 200
            refused = await initialize(client)
            assert refused.status_code == 503, refused.text
            assert "Too many open sessions" in refused.json()["error"]["message"]

    async def test_max_sessions_caps_sse_streams_too(self, echo_config: Path) -> None:
        """With `--max-sessions 2`, a third SSE stream gets 503 while two are open."""
        async with (
            running_proxy(echo_config, "--max-sessions", "2") as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
            sse_client(f"{url}/sse"),
            sse_client(f"{url}/sse"),
        ):
            refused = await client.get("/sse")
            assert refused.status_code == 503, refused.text
            assert "Too many open sessions" in refused.json()["error"]["message"]


class TestRateLimit:
    async def test_each_key_has_its_own_budget(self, echo_config: Path) -> None:
        """After N requests with one key the next gets 429 with `Retry-After`; another key is not throttled."""
        async with (
            running_proxy(echo_config, "--http-rate-limit", "3", *AUTH) as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
        ):
            for _ in range(3):
                assert (await initialize(client, Authorization=f"Bearer {KEY1}")).status_code == 200
            _assert_rate_limited(await initialize(client, Authorization=f"Bearer {KEY1}"), "per API key")
            assert (await initialize(client, Authorization=f"Bearer {KEY2}")).status_code == 200

    async def test_without_auth_each_client_address_has_a_budget(self, echo_config: Path) -> None:
        """With authentication off, requests are counted per client address; `/health` is not limited."""
        async with (
            running_proxy(echo_config, "--http-rate-limit", "3") as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
        ):
            for _ in range(3):
                assert (await initialize(client)).status_code == 200
            _assert_rate_limited(await initialize(client), "per client address")
            _assert_rate_limited(await client.get("/sse"), "per client address")
            await _health(client)

    async def test_failed_authentications_are_limited_per_address_without_spending_a_keys_budget(
        self, echo_config: Path
    ) -> None:
        """A flood of bad keys turns from 401 into 429; a valid key from the same address still gets through."""
        async with (
            running_proxy(echo_config, "--http-rate-limit", "3", *AUTH) as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as client,
        ):
            for _ in range(3):
                assert (await initialize(client, Authorization="Bearer wrong-key")).status_code == 401
            _assert_rate_limited(await initialize(client, Authorization="Bearer wrong-key"), "failed authentications")
            assert (await initialize(client, Authorization=f"Bearer {KEY1}")).status_code == 200


class TestBodyLimit:
    async def test_an_oversized_body_gets_a_json_413_and_the_proxy_keeps_serving(self, echo_config: Path) -> None:
        """A client that uploads a whole 5 MiB body (Content-Length) reads the JSON 413, not a reset."""
        async with running_proxy(echo_config) as url, httpx2.AsyncClient(base_url=url, timeout=30) as client:
            refused = await client.post("/mcp", content=b"x" * OVERSIZED, headers=HEADERS)
            assert refused.status_code == 413, refused.text
            assert refused.json()["error"]["code"] == -32600
            assert (await initialize(client)).status_code == 200

    async def test_an_oversized_chunked_body_gets_a_json_413(self, echo_config: Path) -> None:
        """A body without Content-Length is counted as it streams in and refused once past the limit."""

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(OVERSIZED // 65536):
                yield b"x" * 65536

        async with running_proxy(echo_config) as url, httpx2.AsyncClient(base_url=url, timeout=30) as client:
            refused = await client.post("/mcp", content=chunks(), headers=HEADERS)
            assert "content-length" not in refused.request.headers
            assert refused.status_code == 413, refused.text
            assert refused.json()["error"]["code"] == -32600
            assert (await initialize(client)).status_code == 200
