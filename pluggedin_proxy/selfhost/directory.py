"""The configured servers as the App knows them: identities, JSON entries and discovered listings.

`ServerDirectory` pairs each `ServerRecord` with the `LocalCatalog` listing of its server and answers
the questions the routes ask (which server offers this prompt, owns this URI). Discovery runs one at a
time under a lock. The App needs only the listings, so once a discovery round ends every upstream it
started is retired: no server keeps running between rounds, as in the App, which connects afresh each
time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from pluggedin_proxy.catalog import LocalCatalog, ServerListing
from pluggedin_proxy.selfhost.shapes import ServerRecord, server_entry
from pluggedin_proxy.upstream import UpstreamPool

__all__ = ["Listed", "ServerDirectory"]

logger = logging.getLogger(__name__)

Listed = list[tuple[ServerRecord, ServerListing]]
"""Servers in config order, each with its listing (servers never discovered are left out)."""


class ServerDirectory:
    """Every configured server with its App identity, its `/api/mcp-servers` entry and its listing."""

    def __init__(self, records: Sequence[ServerRecord], catalog: LocalCatalog, pool: UpstreamPool) -> None:
        self.records = tuple(records)
        self._by_uuid = {record.uuid: record for record in self.records}
        # Built once, so every response carries the very same objects and therefore the same bytes.
        self._entries = {record.uuid: server_entry(record) for record in self.records}
        self._catalog = catalog
        self._pool = pool
        self._lock = anyio.Lock()

    def entries(self) -> list[dict[str, Any]]:
        """Every server's `/api/mcp-servers` item, in config order."""
        return list(self._entries.values())

    def entry(self, server_uuid: str) -> dict[str, Any]:
        return self._entries[server_uuid]

    def record(self, server_uuid: str) -> ServerRecord | None:
        return self._by_uuid.get(server_uuid)

    async def listings(self) -> Listed:
        """Each server's listing, discovering the servers not known yet."""
        async with self._lock:
            try:
                found = await self._catalog.listings()
            finally:
                self._stop_upstreams()
        return [(record, found[record.spec.id]) for record in self.records if record.spec.id in found]

    async def discover(self, records: Sequence[ServerRecord]) -> Listed:
        """Discover the given servers again now and return their fresh listings."""
        async with self._lock:
            try:
                results = await self._catalog.discover([record.spec.id for record in records])
            finally:
                self._stop_upstreams()
        fresh = {result.server.id: result.listing for result in results}
        return [(record, fresh[record.spec.id]) for record in records if record.spec.id in fresh]

    async def prompt_owner(self, name: str) -> ServerRecord | None:
        """The first server (in config order) offering a prompt called `name`."""
        for record, listing in await self.listings():
            if any(prompt.name == name for prompt in listing.prompts):
                return record
        return None

    async def resource_owner(self, uri: str) -> ServerRecord | None:
        """The server listing resource `uri`, else the first whose template `uri` matches (or is)."""
        listed = await self.listings()
        for record, listing in listed:
            if any(str(resource.uri) == uri for resource in listing.resources):
                return record
        for record, listing in listed:
            if any(_matches(template.uri_template, uri) for template in listing.templates):
                return record
        return None

    def _stop_upstreams(self) -> None:
        for upstream in self._pool.live():
            self._pool.retire(upstream.spec.id)


def _matches(template: str, uri: str) -> bool:
    if template == uri:
        return True
    try:
        return UriTemplate.parse(template).match(uri) is not None
    except InvalidUriTemplate:
        return False
