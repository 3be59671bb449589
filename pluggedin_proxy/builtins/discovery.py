"""`pluggedin_discover_tools`: what the servers behind the proxy offer, and discovering it again.

With the App: a summary of what the App has when it has anything; otherwise the App discovers and
the answer says what it did. `force_refresh` asks the App to re-discover in the background and
answers at once; when it is done, the proxy forgets its cached lists and tells clients they
changed. In local mode the proxy is the discoverer: `force_refresh` re-discovers the servers now
and reports each one's result, errors included. `server_uuid` narrows everything to one server
(in local mode its name works too).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import mcp_types as types

from pluggedin_proxy.builtins.base import (
    ActivitySource,
    BuiltinHost,
    BuiltinTool,
    ToolCall,
    ToolFailure,
    hints,
    text,
    zod_schema,
)
from pluggedin_proxy.catalog.base import ServerListing
from pluggedin_proxy.errors import CatalogError
from pluggedin_proxy.upstream.spec import ServerSpec

if TYPE_CHECKING:
    from pluggedin_proxy.catalog.app_client import AppClient

__all__ = ["TOOLS"]

logger = logging.getLogger(__name__)

DISCOVERY = "Discovery System"
CACHE = ActivitySource(DISCOVERY, "pluggedin_discovery_cache")
CACHE_ERROR = ActivitySource(DISCOVERY, "pluggedin_discovery_cache_error")
BACKGROUND = ActivitySource(DISCOVERY, "pluggedin_discovery_bg")
SYNC = ActivitySource(DISCOVERY, "pluggedin_discovery")

# Seconds for a discovery the caller waits on, and for one started in the background.
WAITED_TIMEOUT = 30.0
BACKGROUND_TIMEOUT = 60.0


async def _discover_tools(call: ToolCall) -> types.CallToolResult:
    target: str | None = call.arguments.get("server_uuid")
    force: bool = call.arguments["force_refresh"]
    if call.host.mode == "app":
        return await _app_discovery(call, call.require_app(), target, force)
    return await _local_discovery(call, target, force)


# The App


async def _app_discovery(call: ToolCall, app: AppClient, target: str | None, force: bool) -> types.CallToolResult:
    host = call.host
    scope = f"server {target}" if target else "all servers"
    if force:
        call.activity = BACKGROUND
        host.start_soon(lambda: _discover_in_background(host, app, target))
        try:
            summary = await _summary(host, target)
        except CatalogError as exc:
            summary = f"(The current lists could not be read: {exc}.)"
        return text(
            f"🔄 Force refresh initiated for {scope}: the plugged.in App is discovering in the background.\n"
            "When it is done, this proxy's lists are refreshed and your client is told they changed; "
            "call this tool again in 10–30 seconds to see the result.\n\n"
            f"What is known now:\n\n{summary}"
        )
    try:
        counts, summary = await _counted_summary(host, target)
    except CatalogError as exc:
        call.activity = CACHE_ERROR
        host.start_soon(lambda: _discover_in_background(host, app, target, force=False))
        return text(
            f"The plugged.in App could not be read ({exc}); a discovery was started in the background.\n\n"
            + _builtins_section(host)
        )
    if counts:
        call.activity = CACHE
        return text(f"Returning cached discovery data for {scope}.\n\n{summary}")
    call.activity = SYNC
    reply = await app.send(
        "POST", f"/api/discover/{target or 'all'}", json={"force_refresh": False}, timeout=WAITED_TIMEOUT
    )
    if not reply.ok:
        error = reply.field("error") or reply.field("message") or "no details"
        raise ToolFailure(f"Failed to trigger discovery via API: API Error ({reply.status}): {error}")
    await _reload_and_announce(host)
    message = reply.field("message") or "Discovery started."
    return text(
        f"No cached dynamic data found. {message}\n\n"
        "Call pluggedin_discover_tools again in a few seconds to see what the servers offer."
    )


async def _discover_in_background(host: BuiltinHost, app: AppClient, target: str | None, force: bool = True) -> None:
    try:
        reply = await app.send(
            "POST", f"/api/discover/{target or 'all'}", json={"force_refresh": force}, timeout=BACKGROUND_TIMEOUT
        )
    except CatalogError as exc:
        logger.warning("background discovery failed: %s", exc)
        return
    if not reply.ok:
        logger.warning("background discovery failed: the plugged.in App answered HTTP %d", reply.status)
        return
    await _reload_and_announce(host)


async def _reload_and_announce(host: BuiltinHost) -> None:
    try:
        await host.catalog.reload()
    except CatalogError as exc:
        logger.warning("could not read the App's lists after its discovery: %s", exc)
    await host.announce_list_changed()


# Local servers


async def _local_discovery(call: ToolCall, target: str | None, force: bool) -> types.CallToolResult:
    host = call.host
    servers = list(await host.catalog.servers())
    if target is not None:
        chosen = [s for s in servers if target in (s.id, s.name, s.slug)]
        if not chosen:
            known = ", ".join(s.name for s in servers) or "none"
            raise ToolFailure(f"No server {target!r} in this proxy's config (servers: {known}).")
        servers = chosen
    if not force:
        call.activity = CACHE
        _, summary = await _counted_summary(host, target and servers[0].id)
        return text(f"What the configured servers offer:\n\n{summary}")
    call.activity = SYNC
    results = await host.catalog.discover([s.id for s in servers])
    await host.announce_list_changed()
    lines = ["Discovered again:"]
    for result in results:
        listing = result.listing
        if result.ok:
            lines.append(f"- {result.server.name}: ok — {_counts(listing)}")
        else:
            lines.append(f"- {result.server.name}: failed — {listing.error}")
    _, summary = await _counted_summary(host, target and servers[0].id)
    return text("\n".join(lines) + "\n\n" + summary)


# Summaries


async def _summary(host: BuiltinHost, target: str | None) -> str:
    return (await _counted_summary(host, target))[1]


async def _counted_summary(host: BuiltinHost, target: str | None) -> tuple[int, str]:
    """Markdown of what is offered (for one server, or all) and how many items that is."""
    view = await host.router.view()
    prompts = await host.router.prompts()
    resources = await host.router.resources()
    templates = await host.router.templates()
    entries = [
        (tool, entry)
        for tool, entry in zip(view.tools, view.tool_index, strict=True)
        if target is None or entry.server_id == target
    ]
    if target is not None:
        # Shared App lists do not say their owner; a per-server summary shows tools only.
        prompts, resources, templates = (), (), ()
    specs = [s for s in view.servers.values() if target is None or s.id == target]
    sections = [_builtins_section(host)]
    sections.append(
        _section(f"Tools of the servers ({len(entries)})", [_item(t.name, t.description) for t, _ in entries])
    )
    if prompts:
        sections.append(_section(f"Prompts ({len(prompts)})", [_item(p.name, p.description) for p in prompts]))
    if resources:
        sections.append(
            _section(
                f"Resources ({len(resources)})",
                [_item(r.name, (r.description + " " if r.description else "") + f"({r.uri})") for r in resources],
            )
        )
    if templates:
        sections.append(
            _section(
                f"Resource templates ({len(templates)})", [_item(t.uri_template, t.description) for t in templates]
            )
        )
    failures = _failures(specs, view.listings)
    if failures:
        sections.append(_section("Servers that could not be listed", failures))
    instructed = [s for s in specs if s.instructions is not None]
    if instructed:
        sections.append(
            _section(
                "Server instructions (attached to their tools; also prompts `<server>__instructions`)",
                [_item(s.name, s.instructions.text if s.instructions else None) for s in instructed],
            )
        )
    count = len(entries) + len(prompts) + len(resources) + len(templates)
    return count, "\n\n".join(sections)


def _builtins_section(host: BuiltinHost) -> str:
    names = host.builtin_names()
    return _section(f"Built-in tools ({len(names)})", [f"- `{n}`" for n in names])


def _failures(specs: Sequence[ServerSpec], listings: Mapping[str, ServerListing]) -> list[str]:
    return [
        f"- {spec.name}: {listing.error}"
        for spec in specs
        if (listing := listings.get(spec.id)) is not None and listing.error is not None
    ]


def _section(title: str, lines: list[str]) -> str:
    return f"## {title}\n" + ("\n".join(lines) if lines else "(none)")


def _item(name: str, description: str | None) -> str:
    first = (description or "").strip().splitlines()
    return f"- `{name}`: {first[0]}" if first else f"- `{name}`"


def _counts(listing: ServerListing) -> str:
    return (
        f"{len(listing.tools)} tools, {len(listing.prompts)} prompts, "
        f"{len(listing.resources)} resources, {len(listing.templates)} templates"
    )


DISCOVER_TOOLS = BuiltinTool(
    name="pluggedin_discover_tools",
    description=(
        "List what the MCP servers behind this proxy offer (tools, prompts, resources, templates), "
        "or discover them again. Set force_refresh to re-discover; server_uuid to look at one server."
    ),
    input_schema=zod_schema(
        "Options for discovering the servers' tools",
        {
            # No `format: uuid`: a local server is named by its config key.
            "server_uuid": {
                "type": "string",
                "description": "Only this server (its UUID; in local mode its name also works).",
            },
            "force_refresh": {
                "type": "boolean",
                "default": False,
                "description": "Discover again instead of answering from what is already known.",
            },
        },
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=False),
    handler=_discover_tools,
    needs_app=False,
    activity=CACHE,
)

TOOLS: tuple[BuiltinTool, ...] = (DISCOVER_TOOLS,)
