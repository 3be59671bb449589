"""`RemoteCatalog` against a fake plugged.in App that answers with the shapes the real one sends."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from pydantic import SecretStr

from pluggedin_proxy.catalog import app_client
from pluggedin_proxy.catalog.app_client import AppClient
from pluggedin_proxy.catalog.base import Activity, ServerListing
from pluggedin_proxy.catalog.remote import RemoteCatalog
from pluggedin_proxy.errors import CatalogUnavailable

pytestmark = pytest.mark.anyio

KEY = "pg_in_" + "a1B2c3D4" * 8
GITHUB = "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b"
CONTEXT7 = "6fa459ea-ee8a-4ca4-894e-db77e160355e"
GONE = "9c858901-8a57-4791-81fe-4c455b099bc9"

SERVERS = [
    {
        "uuid": GITHUB,
        "name": "GitHub",
        "description": None,
        "type": "STDIO",
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_example"},
        "url": None,
        "created_at": "2026-08-01T10:00:00.000Z",
        "profile_uuid": "5f0c8f1e-6a1b-4c1e-9d1a-0b6c1d2e3f40",
        "status": "ACTIVE",
        "source": "PLUGGEDIN",
        "external_id": None,
        "notes": None,
        "config": None,
        "slug": "github",
        "command_encrypted": None,
        "args_encrypted": None,
        "env_encrypted": None,
        "url_encrypted": None,
        "customInstructions": [{"role": "system", "content": "Prefer draft pull requests."}],
        "customInstructionsDescription": "House rules",
    },
    {
        "uuid": CONTEXT7,
        "name": "Context7",
        "description": "Library docs",
        "type": "STREAMABLE_HTTP",
        "command": None,
        "args": None,
        "env": None,
        "url": "https://mcp.context7.com/mcp",
        "transport": "streamable_http",
        "streamableHTTPOptions": {"headers": {"Authorization": "Bearer oauth-1"}},
        "status": "ACTIVE",
        "source": "REGISTRY",
        "slug": None,
        "registry_data": None,
    },
]
TOOLS = {
    "tools": [
        {
            "name": "github__create_issue",
            "description": "Create an issue",
            "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
            "_serverUuid": GITHUB,
            "_serverSlug": "github",
            "_serverName": "GitHub",
        },
        {
            "name": "github__search_code",
            "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
            "_serverUuid": GITHUB,
            "_serverSlug": "github",
            "_serverName": "GitHub",
        },
        {
            "name": f"{CONTEXT7}__resolve-library-id",
            "description": "Find a library",
            "inputSchema": {"type": "object"},
            "_serverUuid": CONTEXT7,
            "_serverName": "Context7",
        },
        {
            "name": "old-server__orphan",
            "inputSchema": {"type": "object"},
            "_serverUuid": GONE,
            "_serverSlug": "old-server",
            "_serverName": "Old",
        },
    ]
}
PROMPTS = [
    {"name": "review", "description": "Review a pull request", "arguments": [{"name": "pr", "required": True}]},
]
RESOURCES = [
    {"uri": "file:///README.md", "name": "README", "mimeType": "text/markdown"},
    {"uri": "docs://context7/index"},
]
TEMPLATES = [
    {"uriTemplate": "repo://{owner}/{name}", "name": "Repository", "mediaType": "application/json"},
]


class FakeApp:
    """A tiny plugged.in App: routes on path, counts requests, and can be taken down."""

    def __init__(self) -> None:
        self.down = False
        self.missing: set[str] = set()
        """Paths this App does not serve (404), as an App without tier 2 routes."""
        self.requests: list[httpx2.Request] = []
        self.activity = anyio.Event()

    def count(self, path: str) -> int:
        return Counter(r.url.path for r in self.requests)[path]

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return httpx2.Response(401, json={"error": "Unauthorized"})
        if self.down:
            return httpx2.Response(503, json={"error": "Service unavailable"})
        path, params = request.url.path, request.url.params
        if path in self.missing:
            return httpx2.Response(404, json={"error": "Not found"})
        if path == "/api/mcp-servers":
            return httpx2.Response(200, json=SERVERS)
        if path == "/api/tools":
            return httpx2.Response(200, json=TOOLS)
        if path == "/api/prompts":
            return httpx2.Response(200, json=PROMPTS)
        if path == "/api/resources":
            return httpx2.Response(200, json=RESOURCES)
        if path == "/api/resource-templates":
            return httpx2.Response(200, json=TEMPLATES)
        if path == "/api/resolve/prompt" and params.get("name") == "review":
            return httpx2.Response(200, json={"uuid": GITHUB, "name": "GitHub", "type": "STDIO", "command": "npx"})
        if path == "/api/resolve/resource" and params.get("uri") == "file:///README.md":
            return httpx2.Response(200, json={"uuid": GITHUB, "name": "GitHub", "type": "STDIO", "command": "npx"})
        if path.startswith("/api/resolve/"):
            return httpx2.Response(404, json={"error": "Not found"})
        if path == "/api/discover/all" and request.method == "POST":
            return httpx2.Response(200, json={"message": "Discovery force-initiated for all active servers."})
        if path == "/api/notifications/mcp-activity" and request.method == "POST":
            self.activity.set()
            return httpx2.Response(200, json={"success": True})
        return httpx2.Response(404, json={"error": "Not found"})


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries against the fake App happen at once; their schedule is not under test here."""
    monkeypatch.setattr(app_client, "_backoff", lambda retry_state: 0.0)


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()


@pytest.fixture
def catalog(app: FakeApp) -> RemoteCatalog:
    client = AppClient("https://plugged.in", SecretStr(KEY), transport=httpx2.MockTransport(app))
    return RemoteCatalog(client)


def tool_names(listing: ServerListing) -> list[str]:
    return [t.name for t in listing.tools]


def tools_by_server(listings: Mapping[str, ServerListing]) -> dict[str, tuple[types.Tool, ...]]:
    """What the listings offer, without the time they were assembled."""
    return {server_id: listing.tools for server_id, listing in listings.items()}


# Servers and listings


async def test_servers_are_specs_from_the_app(catalog: RemoteCatalog) -> None:
    """`/api/mcp-servers` becomes one spec per server, in the App's order."""
    async with catalog:
        github, context7 = await catalog.servers()
    assert (github.id, github.slug, github.transport, github.command) == (GITHUB, "github", "stdio", "npx")
    assert github.env == (("GITHUB_PERSONAL_ACCESS_TOKEN", "ghp_example"),)
    assert github.instructions is not None and github.instructions.text == "Prefer draft pull requests."
    assert (context7.id, context7.slug, context7.transport) == (CONTEXT7, CONTEXT7, "streamable-http")
    assert context7.url == "https://mcp.context7.com/mcp"
    assert context7.headers == (("Authorization", "Bearer oauth-1"),)


async def test_servers_are_fetched_once_while_fresh(catalog: RemoteCatalog, app: FakeApp) -> None:
    """Asking again within the TTL does not call the App again."""
    async with catalog:
        first = await catalog.servers()
        second = await catalog.servers()
    assert first == second
    assert app.count("/api/mcp-servers") == 1


async def test_listings_group_tools_by_server_with_original_names(catalog: RemoteCatalog) -> None:
    """Each server's listing holds its tools under the names the upstream knows."""
    async with catalog:
        listings = await catalog.listings()
    assert set(listings) == {GITHUB, CONTEXT7}
    assert tool_names(listings[GITHUB]) == ["create_issue", "search_code"]
    assert tool_names(listings[CONTEXT7]) == ["resolve-library-id"]
    assert listings[GITHUB].tools[0].input_schema == TOOLS["tools"][0]["inputSchema"]


async def test_tools_naming_an_unknown_server_are_dropped(catalog: RemoteCatalog) -> None:
    """A tool whose `_serverUuid` is not an active server appears in no listing."""
    async with catalog:
        listings = await catalog.listings()
    assert GONE not in listings
    assert "orphan" not in [t.name for listing in listings.values() for t in listing.tools]


async def shared(catalog: RemoteCatalog) -> tuple[tuple[Any, ...], ...]:
    return (await catalog.shared_prompts(), await catalog.shared_resources(), await catalog.shared_templates())


async def test_shared_lists_prompts_resources_and_templates(catalog: RemoteCatalog) -> None:
    """Prompts, resources and templates are listed without owners, templates with `mimeType`."""
    async with catalog:
        prompts, resources, templates = await shared(catalog)
    (prompt,) = prompts
    assert prompt.name == "review"
    assert [(a.name, a.required) for a in prompt.arguments or []] == [("pr", True)]
    assert [(r.uri, r.name) for r in resources] == [
        ("file:///README.md", "README"),
        ("docs://context7/index", "docs://context7/index"),
    ]
    (template,) = templates
    assert (template.uri_template, template.mime_type) == ("repo://{owner}/{name}", "application/json")


async def test_an_app_without_a_prompt_route_still_lists_tools(catalog: RemoteCatalog, app: FakeApp) -> None:
    """A 404 on `/api/prompts` fails only the prompt list; servers, tools and resources are unaffected."""
    app.missing.add("/api/prompts")
    async with catalog:
        with pytest.raises(CatalogUnavailable):
            await catalog.shared_prompts()
        assert tools_by_server(await catalog.listings())
        assert await catalog.shared_resources()


# Owners


async def test_owner_of_prompt_is_resolved_once_then_cached(catalog: RemoteCatalog, app: FakeApp) -> None:
    """The owner of a prompt is asked of the App once and then remembered."""
    async with catalog:
        assert await catalog.owner_of_prompt("review") == GITHUB
        assert await catalog.owner_of_prompt("review") == GITHUB
    assert app.count("/api/resolve/prompt") == 1


async def test_owner_of_resource_is_resolved_once_then_cached(catalog: RemoteCatalog, app: FakeApp) -> None:
    """The owner of a resource URI is asked of the App once and then remembered."""
    async with catalog:
        assert await catalog.owner_of_resource("file:///README.md") == GITHUB
        assert await catalog.owner_of_resource("file:///README.md") == GITHUB
    assert app.count("/api/resolve/resource") == 1


async def test_unowned_prompt_has_no_owner(catalog: RemoteCatalog) -> None:
    """A prompt the App cannot resolve has no owner."""
    async with catalog:
        assert await catalog.owner_of_prompt("nobody-has-this") is None


# The App going away


async def test_warm_catalog_keeps_serving_while_the_app_is_down(catalog: RemoteCatalog, app: FakeApp) -> None:
    """After warm-up, a 503ing App and invalidated caches still leave servers, listings and shared lists served."""
    with anyio.fail_after(5):
        async with catalog:
            servers = await catalog.servers()
            listings = tools_by_server(await catalog.listings())
            before = await shared(catalog)
            app.down = True
            catalog.invalidate()
            assert await catalog.servers() == servers
            assert tools_by_server(await catalog.listings()) == listings
            assert await shared(catalog) == before
            await anyio.wait_all_tasks_blocked()  # the background refreshes have failed by now
            assert all(cache.last_error is not None for cache in catalog.caches)
            assert await catalog.servers() == servers
            assert tools_by_server(await catalog.listings()) == listings
            assert await shared(catalog) == before
    assert app.count("/api/tools") > 1


# Live listings, activity, discovery


async def test_update_overrides_the_tools_of_that_server(catalog: RemoteCatalog) -> None:
    """A listing read from the live server replaces the App's tools for that server only."""
    live = ServerListing(tools=(types.Tool(name="create_issue", input_schema={"type": "object"}, title="Create"),))
    async with catalog:
        before = await catalog.listings()
        version = catalog.version
        assert catalog.update(GITHUB, live) is True
        after = await catalog.listings()
    assert after[GITHUB].tools == live.tools
    assert after[CONTEXT7].tools == before[CONTEXT7].tools
    assert catalog.version > version


async def test_update_with_the_same_tools_changes_nothing(catalog: RemoteCatalog) -> None:
    """A live listing equal to what is known reports no change and keeps the version."""
    async with catalog:
        listings = await catalog.listings()
        version = catalog.version
        assert catalog.update(GITHUB, ServerListing(tools=listings[GITHUB].tools)) is False
    assert catalog.version == version


async def test_record_posts_activity_in_the_background(catalog: RemoteCatalog, app: FakeApp) -> None:
    """`record` returns at once and the activity reaches `/api/notifications/mcp-activity`."""
    with anyio.fail_after(5):
        async with catalog:
            catalog.record(Activity("tool_call", "GitHub", GITHUB, "create_issue", True, 42))
            await app.activity.wait()
    (request,) = [r for r in app.requests if r.url.path == "/api/notifications/mcp-activity"]
    assert json.loads(request.content) == {
        "action": "tool_call",
        "serverName": "GitHub",
        "serverUuid": GITHUB,
        "itemName": "create_issue",
        "success": True,
        "executionTime": 42,
    }


async def test_discover_asks_the_app_to_rediscover_everything(catalog: RemoteCatalog, app: FakeApp) -> None:
    """`discover()` posts `{"force_refresh": true}` to `/api/discover/all` and reports every server."""
    async with catalog:
        results = await catalog.discover()
    (request,) = [r for r in app.requests if r.method == "POST"]
    assert request.url.path == "/api/discover/all"
    assert json.loads(request.content) == {"force_refresh": True}
    assert [r.server.id for r in results] == [GITHUB, CONTEXT7]
    assert tool_names(results[0].listing) == ["create_issue", "search_code"]
    assert all(r.ok for r in results)


async def test_discover_forgets_live_overrides(catalog: RemoteCatalog) -> None:
    """After discovery the App's tools are used again for a server that had a live listing."""
    live = ServerListing(tools=(types.Tool(name="live_only", input_schema={"type": "object"}),))
    async with catalog:
        await catalog.listings()
        catalog.update(GITHUB, live)
        await catalog.discover()
        listings = await catalog.listings()
    assert tool_names(listings[GITHUB]) == ["create_issue", "search_code"]
