"""The catalog interface: which servers exist and what each offers.

The MCP layer depends on this interface only. A backend (the local config file, the plugged.in
App) yields `ServerSpec`s and a `ServerListing` per server with the server's own, unprefixed names;
naming and routing happen above it. Items a backend lists without saying who owns them (the
App's prompts, resources and templates) are "shared": each kind is fetched on its own, only to
list that kind, and their owners are resolved when used. `version` grows whenever anything
changes, so callers rebuild derived views only when something moved. A catalog is an async
context manager: it may own background work.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

import mcp_types as types

from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["Activity", "Catalog", "DiscoveryResult", "ServerListing"]


@dataclass(frozen=True, slots=True)
class ServerListing:
    """Everything one server offers, as it last told us."""

    tools: tuple[types.Tool, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    templates: tuple[types.ResourceTemplate, ...] = ()
    instructions: str | None = None
    """The server's own `instructions` from its `initialize` result."""
    error: str | None = None
    """Why discovery failed; the lists are then empty (or the last good ones)."""
    discovered_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        def dump(items: Sequence[Any]) -> list[dict[str, Any]]:
            return [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items]

        return {
            "tools": dump(self.tools),
            "prompts": dump(self.prompts),
            "resources": dump(self.resources),
            "templates": dump(self.templates),
            "instructions": self.instructions,
            "error": self.error,
            "discovered_at": self.discovered_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerListing:
        return cls(
            tools=tuple(types.Tool.model_validate(t) for t in data.get("tools", ())),
            prompts=tuple(types.Prompt.model_validate(p) for p in data.get("prompts", ())),
            resources=tuple(types.Resource.model_validate(r) for r in data.get("resources", ())),
            templates=tuple(types.ResourceTemplate.model_validate(t) for t in data.get("templates", ())),
            instructions=data.get("instructions"),
            error=data.get("error"),
            discovered_at=float(data.get("discovered_at", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class Activity:
    """One served call, for the App's activity log."""

    action: str
    """`tool_call`, `prompt_get` or `resource_read`."""
    server_name: str
    server_uuid: str
    item_name: str
    """The original tool name, the prompt name or the URI."""
    success: bool
    execution_ms: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "action": self.action,
            "serverName": self.server_name,
            "serverUuid": self.server_uuid,
            "itemName": self.item_name,
            "success": self.success,
            "executionTime": self.execution_ms,
        }
        if self.error:
            body["errorMessage"] = self.error[:1000]
        return body


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """The outcome of discovering one server, for people and the discovery tool."""

    server: ServerSpec
    listing: ServerListing

    @property
    def ok(self) -> bool:
        return self.listing.error is None


class Catalog(Protocol):
    """Where the proxy learns which servers exist and what they offer."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    @property
    def version(self) -> int:
        """Grows whenever a server or a listing changes."""
        ...

    async def servers(self) -> Sequence[ServerSpec]:
        """Every configured server, in a stable order."""
        ...

    async def listings(self) -> Mapping[str, ServerListing]:
        """The listing of every server, by server id, discovering what is not known yet."""
        ...

    async def discover(self, server_ids: Sequence[str] | None = None) -> list[DiscoveryResult]:
        """Discover again now (all servers, or the given ones) and report per server."""
        ...

    async def reload(self) -> None:
        """Read the source's lists again now instead of when they go stale (after the source re-discovered)."""
        ...

    def invalidate(self, server_id: str | None = None) -> None:
        """Forget one server's listing (or all) so the next `listings` discovers it afresh."""
        ...

    def update(self, server_id: str, listing: ServerListing) -> bool:
        """Take a fresher listing read from the live server; return whether anything changed."""
        ...

    async def shared_prompts(self) -> tuple[types.Prompt, ...]:
        """Prompts listed without their owner (none for catalogs that always know the owner)."""
        ...

    async def shared_resources(self) -> tuple[types.Resource, ...]:
        """Resources listed without their owner."""
        ...

    async def shared_templates(self) -> tuple[types.ResourceTemplate, ...]:
        """Resource templates listed without their owner."""
        ...

    async def owner_of_prompt(self, name: str) -> str | None:
        """The id of the server owning a shared prompt, if any."""
        ...

    async def owner_of_resource(self, uri: str) -> str | None:
        """The id of the server owning a shared resource URI, if any."""
        ...

    def record(self, activity: Activity) -> None:
        """Note a served call in the catalog's activity log, without waiting (a no-op where there is none)."""
        ...
