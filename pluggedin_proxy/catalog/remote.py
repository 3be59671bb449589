"""The remote catalog: servers and listings from the plugged.in App, cached with TTLs.

Each listing kind (server configs, tools, prompts, resources, templates) is a `Cached` value: fresh
values come from memory, stale ones are served while one background refresh runs, and when the
App is down the last good value keeps serving (stale-if-error), so a warmed-up proxy keeps
listing, calling, getting and reading while the App is away. Server configs come from
`/api/mcp-servers` on its own, longer TTL, never per call. The owners of prompts and resources,
which the App lists without saying who serves them, are resolved through `/api/resolve/*` and
remembered for a while. A live server's own listing (read after it connects or announces
`list_changed`) overrides the App's tools for that server until the next discovery, since the App
only stores names, descriptions and schemas.

What the App last said is also summarised on disk (server ids, names, transports and tool counts,
with when each was fetched; never connection details or secrets), so `doctor` can show how old the
proxy's view is when the App cannot be reached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import cachetools
import mcp_types as types

from pluggedin_proxy.catalog.app_client import AppClient
from pluggedin_proxy.catalog.base import Activity, DiscoveryResult, ServerListing
from pluggedin_proxy.catalog.cache import Cached
from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["RemoteCatalog", "read_app_snapshot"]

logger = logging.getLogger(__name__)

# Listings change when someone edits the App; a minute keeps the proxy current without chatter.
DEFAULT_LISTING_TTL = 60.0
# Server configs change rarely, and a change may mean a respawn: check them less often.
DEFAULT_SERVERS_TTL = 120.0
# Resolved owners of prompts and resources, and how many of them to remember.
OWNER_TTL = 300.0
OWNER_CACHE_SIZE = 4096


class RemoteCatalog:
    """Servers and their offer as the plugged.in App describes them."""

    def __init__(
        self,
        client: AppClient,
        *,
        listing_ttl: float = DEFAULT_LISTING_TTL,
        servers_ttl: float = DEFAULT_SERVERS_TTL,
        snapshot_dir: Path | None = None,
    ) -> None:
        self.client = client
        self._snapshot_file = snapshot_path(client.base_url, snapshot_dir)
        self._version = 0
        bump = self._bump
        self.servers_cache: Cached[tuple[ServerSpec, ...]] = Cached(
            "server list", self._fetch_servers, ttl=servers_ttl, on_change=bump
        )
        self.tools_cache: Cached[tuple[tuple[str, Any], ...]] = Cached(
            "tool list", self._fetch_tools, ttl=listing_ttl, on_change=bump
        )
        self.prompts_cache: Cached[tuple[types.Prompt, ...]] = Cached(
            "prompt list", self._fetch_prompts, ttl=listing_ttl, on_change=bump
        )
        self.resources_cache: Cached[tuple[types.Resource, ...]] = Cached(
            "resource list", self._fetch_resources, ttl=listing_ttl, on_change=bump
        )
        self.templates_cache: Cached[tuple[types.ResourceTemplate, ...]] = Cached(
            "template list", self._fetch_templates, ttl=listing_ttl, on_change=bump
        )
        self._owners: cachetools.TTLCache[tuple[str, str], str] = cachetools.TTLCache(OWNER_CACHE_SIZE, OWNER_TTL)
        self._overrides: dict[str, ServerListing] = {}
        self._grouped: tuple[int, dict[str, ServerListing]] | None = None
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def caches(self) -> list[Cached[Any]]:
        return [self.servers_cache, self.tools_cache, self.prompts_cache, self.resources_cache, self.templates_cache]

    async def __aenter__(self) -> RemoteCatalog:
        self._stack = AsyncExitStack()
        await self._stack.enter_async_context(self.client)
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        for cache in self.caches:
            cache.bind(self._tg)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._stack is not None and self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._stack.aclose()

    @property
    def version(self) -> int:
        return self._version

    def _bump(self) -> None:
        self._version += 1
        self._write_snapshot()

    def _write_snapshot(self) -> None:
        servers = self.servers_cache.peek() or ()
        tools = self.tools_cache.peek() or ()
        counts: dict[str, int] = {}
        for server_id, _ in tools:
            counts[server_id] = counts.get(server_id, 0) + 1
        now = time.time()
        snapshot = {
            "base_url": self.client.base_url,
            "fetched": {c.name: now - c.age for c in self.caches if c.age is not None},
            "servers": [
                {"id": s.id, "name": s.name, "transport": s.transport, "tools": counts.get(s.id, 0)} for s in servers
            ],
        }
        try:
            self._snapshot_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._snapshot_file.parent, prefix=".app-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(snapshot, f)
            os.replace(tmp, self._snapshot_file)
        except OSError as exc:
            logger.debug("could not save the App snapshot: %s", exc)

    async def servers(self) -> Sequence[ServerSpec]:
        return await self.servers_cache.get()

    async def listings(self) -> Mapping[str, ServerListing]:
        specs = await self.servers()
        tools = await self.tools_cache.get()
        if self._grouped is not None and self._grouped[0] == self._version:
            return self._grouped[1]
        known = {spec.id for spec in specs}
        grouped: dict[str, list[Any]] = {spec.id: [] for spec in specs}
        unroutable = 0
        for server_id, tool in tools:
            if server_id in known:
                grouped[server_id].append(tool)
            else:
                unroutable += 1
        if unroutable:
            logger.warning("%d tool(s) from the App name no active server and cannot be called", unroutable)
        result = {sid: self._overrides.get(sid) or ServerListing(tools=tuple(items)) for sid, items in grouped.items()}
        self._grouped = (self._version, result)
        return result

    async def shared_prompts(self) -> tuple[types.Prompt, ...]:
        return await self.prompts_cache.get()

    async def shared_resources(self) -> tuple[types.Resource, ...]:
        return await self.resources_cache.get()

    async def shared_templates(self) -> tuple[types.ResourceTemplate, ...]:
        return await self.templates_cache.get()

    async def owner_of_prompt(self, name: str) -> str | None:
        return await self._owner("prompt", name)

    async def owner_of_resource(self, uri: str) -> str | None:
        return await self._owner("resource", uri)

    async def _owner(self, kind: str, key: str) -> str | None:
        cached = self._owners.get((kind, key))
        if cached is not None:
            return cached
        resolve = self.client.resolve_prompt if kind == "prompt" else self.client.resolve_resource
        owner = await resolve(key)
        if owner is not None:
            self._owners[(kind, key)] = owner
        return owner

    async def discover(self, server_ids: Sequence[str] | None = None) -> list[DiscoveryResult]:
        targets: list[str | None] = list(server_ids) if server_ids else [None]
        for target in targets:
            message = await self.client.discover(target, force=True)
            logger.info("plugged.in App discovery: %s", message)
        for server_id in server_ids or list(self._overrides):
            self._overrides.pop(server_id, None)
        await self.reload()
        listings = await self.listings()
        specs = await self.servers()
        wanted = set(server_ids) if server_ids else {s.id for s in specs}
        return [DiscoveryResult(server=s, listing=listings[s.id]) for s in specs if s.id in wanted]

    async def reload(self) -> None:
        self._owners.clear()
        for cache in self.caches:
            await cache.refresh()  # each bumps the version if its value changed

    def invalidate(self, server_id: str | None = None) -> None:
        if server_id is None:
            self._overrides.clear()
            self._owners.clear()
            for cache in self.caches:
                cache.invalidate()
        else:
            self._overrides.pop(server_id, None)
            self.tools_cache.invalidate()
        self._bump()

    def update(self, server_id: str, listing: ServerListing) -> bool:
        # Only tools are taken: the App lists prompts and resources itself, without owners.
        fresh = ServerListing(tools=listing.tools, instructions=listing.instructions)
        current = self._grouped[1].get(server_id) if self._grouped else None
        if current is not None and current.tools == fresh.tools:
            return False
        self._overrides[server_id] = fresh
        self._bump()
        return True

    def record(self, activity: Activity) -> None:
        if self._tg is not None:
            self._tg.start_soon(self.client.log_activity, activity)

    async def _fetch_servers(self) -> tuple[ServerSpec, ...]:
        servers = await self.client.servers()
        specs: list[ServerSpec] = []
        for server in servers:
            spec = server.to_spec()
            if spec.transport != "stdio" and not spec.url:
                logger.warning("skipping server %r from the App: it has no URL", spec.name)
                continue
            if spec.transport == "stdio" and not spec.command:
                logger.warning("skipping server %r from the App: it has no command", spec.name)
                continue
            specs.append(spec)
        return tuple(specs)

    async def _fetch_tools(self) -> tuple[tuple[str, Any], ...]:
        return tuple((t.server_uuid or "", t.to_tool()) for t in await self.client.tools())

    async def _fetch_prompts(self) -> tuple[types.Prompt, ...]:
        return tuple(p.to_prompt() for p in await self.client.prompts())

    async def _fetch_resources(self) -> tuple[types.Resource, ...]:
        return tuple(r.to_resource() for r in await self.client.resources())

    async def _fetch_templates(self) -> tuple[types.ResourceTemplate, ...]:
        return tuple(t.to_template() for t in await self.client.templates())


def snapshot_path(base_url: str, directory: Path | None = None) -> Path:
    """Where the summary of what one App last said is kept."""
    from pluggedin_proxy.catalog.local import default_cache_dir

    digest = hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:16]
    return (directory or default_cache_dir()) / f"app-{digest}.json"


def read_app_snapshot(base_url: str, directory: Path | None = None) -> dict[str, Any] | None:
    """The summary a proxy saved of what the App at `base_url` last said, if any."""
    try:
        data = json.loads(snapshot_path(base_url, directory).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
