"""`GET /metrics` on a real proxy process: known traffic in, exact counts out, behind the same key as `/mcp`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from prometheus_client.parser import text_string_to_metric_families

from tests.app_double import KEY as APP_KEY
from tests.app_double import app_double
from tests.conftest import echo_server
from tests.http.conftest import KEY1, running_proxy, tool_text

pytestmark = pytest.mark.anyio

ECHO_CALLS = 5
DOCUMENT_ID = "550e8400-e29b-41d4-a716-446655440000"


class Scrape:
    """One `/metrics` answer, parsed: every sample by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self._samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families.values()
            for sample in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        """The value of one sample; 0 for a series never recorded (a counter that never moved)."""
        return self._samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample called `name`, by its labels."""
        return {labels: value for (sample, labels), value in self._samples.items() if sample == name}


async def scrape(client: httpx2.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return Scrape(response.text)


@pytest.fixture
def echo_config(write_config: Callable[..., Path]) -> Path:
    return write_config({"echo": echo_server()})


async def test_requests_errors_latency_and_live_gauges_match_the_traffic(echo_config: Path) -> None:
    """N echo calls, an `isError` call, an unknown tool and a list are counted exactly, in both layers."""
    async with (
        running_proxy(echo_config, "--rate-limit", "0") as url,
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
    ):
        with anyio.fail_after(60):
            async with (
                streamable_http_client(f"{url}/mcp") as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                await session.list_tools()
                for i in range(ECHO_CALLS):
                    assert tool_text(await session.call_tool("echo__echo", {"text": f"call {i}"})) == f"call {i}"
                assert (await session.call_tool("echo__fail", {"message": "no"})).is_error
                with pytest.raises(MCPError):
                    await session.call_tool("echo__no_such_tool", {})
                during = await scrape(http)
            after = await scrape(http)

    calls = ECHO_CALLS + 2
    assert during("pluggedin_requests_total", method="tools/call") == calls
    assert during("pluggedin_requests_total", method="tools/list") == 1
    assert during("pluggedin_request_errors_total", method="tools/call", kind="jsonrpc") == 1
    assert during("pluggedin_request_errors_total", method="tools/call", kind="tool") == 1
    assert during("pluggedin_request_errors_total", method="tools/list", kind="jsonrpc") == 0
    assert during("pluggedin_request_duration_seconds_count", method="tools/call") == calls
    assert during("pluggedin_request_duration_seconds_bucket", method="tools/call", le="+Inf") == calls
    assert during("pluggedin_request_duration_seconds_sum", method="tools/call") > 0

    # The unknown tool never reached an upstream; the `isError` result did.
    assert during.series("pluggedin_upstream_requests_total") == {
        frozenset({("upstream", "echo"), ("method", "tools/call")}): ECHO_CALLS + 1
    }
    assert during("pluggedin_upstream_request_errors_total", upstream="echo", method="tools/call", kind="tool") == 1
    assert during("pluggedin_upstream_request_errors_total", upstream="echo", method="tools/call", kind="jsonrpc") == 0
    assert during("pluggedin_upstream_request_duration_seconds_count", upstream="echo") == ECHO_CALLS + 1
    upstream_time = during("pluggedin_upstream_request_duration_seconds_sum", upstream="echo")
    assert 0 < upstream_time <= during("pluggedin_request_duration_seconds_sum", method="tools/call")

    assert during("pluggedin_http_sessions", transport="streamable-http") == 1
    assert during("pluggedin_upstream_sessions", upstream="echo") == 1
    assert during("pluggedin_upstream_processes") == 1

    # The client ended its session on the way out; the proxy keeps the upstream for the next one.
    assert after("pluggedin_http_sessions", transport="streamable-http") == 0
    assert after("pluggedin_upstream_processes") == 1
    assert after("pluggedin_requests_total", method="tools/call") == calls


async def test_metrics_need_the_api_key_when_auth_is_on_and_health_does_not(echo_config: Path) -> None:
    """With `--require-api-auth`, `/metrics` (and below it) answers 401 without a key, 200 with one."""
    async with (
        running_proxy(echo_config, "--require-api-auth", "--http-api-key", KEY1) as url,
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
    ):
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics/")).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong-key"})).status_code == 401
        allowed = await http.get("/metrics", headers={"Authorization": f"Bearer {KEY1}"})
        assert allowed.status_code == 200, allowed.text
        assert "pluggedin_http_sessions" in allowed.text
        assert KEY1 not in allowed.text
        assert (await http.get("/health")).status_code == 200


async def test_app_calls_and_listing_caches_are_measured_by_path_template() -> None:
    """Every App exchange is timed under its path template (never an id, the URL or the key); caches count reads."""
    async with app_double() as app:
        app.reply("GET", "/api/prompts", {"error": "boom"}, status=500)
        args = ("--pluggedin-api-key", APP_KEY, "--pluggedin-api-base-url", app.url, "--app-timeout", "2")
        async with (
            running_proxy(None, "--rate-limit", "0", *args) as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as http,
        ):
            with anyio.fail_after(60):
                async with (
                    streamable_http_client(f"{url}/mcp") as (read, write),
                    ClientSession(read, write) as session,
                ):
                    await session.initialize()
                    await session.list_tools()
                    await session.list_tools()
                    await session.list_prompts()
                    missing = await session.call_tool("pluggedin_get_document", {"documentId": DOCUMENT_ID})
                    assert missing.is_error
                    metrics = await scrape(http)

    # Every GET was answered before the MCP request that caused it; the activity log is posted in the background.
    for path in {r.path for r in app.requests if r.method == "GET"}:
        template = "/api/documents/{id}" if path.startswith("/api/documents/") else path
        seen = len(app.seen("GET", path))
        assert metrics("pluggedin_app_request_duration_seconds_count", method="GET", path=template) == seen, path
    activity = metrics(
        "pluggedin_app_request_duration_seconds_count", method="POST", path="/api/notifications/mcp-activity"
    )
    assert activity <= len(app.activity())
    failed_prompts = len(app.seen("GET", "/api/prompts"))
    assert failed_prompts >= 1
    assert metrics("pluggedin_app_request_errors_total", method="GET", path="/api/prompts", reason="500") == (
        failed_prompts
    )
    assert metrics("pluggedin_app_request_errors_total", method="GET", path="/api/documents/{id}", reason="404") == 1
    assert metrics("pluggedin_app_request_errors_total", method="GET", path="/api/tools", reason="500") == 0

    assert metrics("pluggedin_cache_requests_total", cache="tool_list", result="miss") == 1
    assert metrics("pluggedin_cache_requests_total", cache="tool_list", result="hit") >= 1
    assert metrics("pluggedin_cache_requests_total", cache="tool_list", result="stale") == 0
    assert metrics("pluggedin_cache_refresh_errors_total", cache="prompt_list") >= 1
    assert metrics("pluggedin_cache_refresh_errors_total", cache="tool_list") == 0
    for secret in (DOCUMENT_ID, APP_KEY, app.url):
        assert secret not in metrics.text
