"""Who answers: the aggregate view of every server's offer, and resolution of names and URIs.

`Router.view()` returns a `CatalogView` built from the catalog's listings: the exposed tools and
prompts (renamed `<slug>__<name>`), resources and templates, with the exact indexes that map every
exposed name or URI back to its server. A view is rebuilt only when the catalog's version moved,
so listing and routing cost a dictionary lookup. Items the catalog lists without an owner (the
App's prompts, resources and templates) are not part of the view: they are fetched only to
list their own kind, exposed as they are named, and resolved through the catalog when used, so
a failing prompt list never gets in the way of a tool call. A name that misses is resolved once
more after re-discovering the servers that failed, since a client may call what it listed before
a restart.

With a `PinStore`, each view is also checked against the tools' pins when it is built (never per
call): new tools are recorded, changed ones collected in `CatalogView.changed_tools`, and, when
the store is enforced, left out of the view, so they are neither listed nor routed; calling one
raises `ToolWithheld` instead of `UnknownName`. While a tool is withheld, each view checks whether
another process (`pluggedin-mcp tools --approve`) wrote the pins, and rebuilds if so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from pluggedin_proxy.catalog.base import Catalog, ServerListing
from pluggedin_proxy.catalog.pins import OfferedTool, PinStore, ToolChange
from pluggedin_proxy.errors import ToolWithheld, UnknownName
from pluggedin_proxy.naming import NamedEntry, NameIndex
from pluggedin_proxy.proxy.instructions import METADATA_KEY, tool_metadata
from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["CatalogView", "Route", "Router"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes: the server and the name or URI it knows."""

    server: ServerSpec
    name: str


@dataclass(frozen=True, slots=True)
class CatalogView:
    """Everything the proxy exposes at one catalog version."""

    version: int
    """Grows with every rebuild (the catalog changed, or approved tools came back): caches key on it."""
    catalog_version: int
    """The catalog's `version` this view was built at."""
    servers: Mapping[str, ServerSpec]
    listings: Mapping[str, ServerListing]
    tools: tuple[types.Tool, ...]
    tool_wire: tuple[dict[str, Any], ...]
    """`tools` as `tools/list` sends them, with the custom instructions of their servers."""
    tools_by_name: Mapping[str, types.Tool]
    """Every exposed tool by its exposed and full names."""
    tool_index: NameIndex
    prompts: tuple[types.Prompt, ...]
    prompt_index: NameIndex
    resources: tuple[types.Resource, ...]
    resource_owners: Mapping[str, str]
    templates: tuple[types.ResourceTemplate, ...]
    template_owners: tuple[tuple[UriTemplate, str], ...]
    changed_tools: Mapping[str, ToolChange] = field(default_factory=dict)
    """Tools whose definition changed since it was approved, by exposed name (withheld or not)."""
    withheld: Mapping[str, ToolChange] = field(default_factory=dict)
    """The changed tools left out of this view because pinning is enforced, by exposed and full names."""

    def route_tool(self, name: str) -> Route | None:
        return self._route(self.tool_index.resolve(name))

    def route_prompt(self, name: str) -> Route | None:
        return self._route(self.prompt_index.resolve(name))

    def route_resource(self, uri: str) -> Route | None:
        server_id = self.resource_owners.get(uri)
        if server_id is None:
            server_id = next((sid for tpl, sid in self.template_owners if tpl.match(uri) is not None), None)
        if server_id is None:
            return None
        return Route(self.servers[server_id], uri)

    def route_template(self, uri_template: str) -> Route | None:
        for tpl, server_id in self.template_owners:
            if str(tpl) == uri_template:
                return Route(self.servers[server_id], uri_template)
        return self.route_resource(uri_template)

    def _route(self, entry: NamedEntry | None) -> Route | None:
        if entry is None:
            return None
        return Route(self.servers[entry.server_id], entry.original)


class Router:
    """Builds views of the catalog and resolves what a request names."""

    def __init__(self, catalog: Catalog, *, prefix: bool = True, pins: PinStore | None = None) -> None:
        """Route over `catalog`; with `pins`, check every tool against its pin when a view is built."""
        self.catalog = catalog
        self.prefix = prefix
        self.pins = pins
        self._view: CatalogView | None = None
        self._builds = 0

    @property
    def current(self) -> CatalogView | None:
        """The last view built, without asking the catalog (which may discover)."""
        return self._view

    async def view(self) -> CatalogView:
        """The current view, rebuilt if the catalog changed (or, while a tool is withheld, the pins)."""
        listings = await self.catalog.listings()
        view = self._view
        if view is None or view.catalog_version != self.catalog.version or self._approved_meanwhile(view):
            servers = await self.catalog.servers()
            self._builds += 1
            view = self._view = _build_view(
                self._builds, self.catalog.version, servers, listings, self.prefix, self.pins
            )
        return view

    def _approved_meanwhile(self, view: CatalogView) -> bool:
        # A stat per request, and only while something is withheld: approvals apply without a restart.
        return bool(view.withheld) and self.pins is not None and self.pins.reload_if_changed()

    async def prompts(self) -> tuple[types.Prompt, ...]:
        """Every exposed prompt: the servers' own, then the catalog's shared ones."""
        view = await self.view()
        shared = await self.catalog.shared_prompts()
        if not shared:
            return view.prompts
        return view.prompts + tuple(p for p in shared if view.prompt_index.resolve(p.name) is None)

    async def resources(self) -> tuple[types.Resource, ...]:
        """Every exposed resource, each URI once."""
        view = await self.view()
        shared = await self.catalog.shared_resources()
        if not shared:
            return view.resources
        return view.resources + tuple(r for r in shared if r.uri not in view.resource_owners)

    async def templates(self) -> tuple[types.ResourceTemplate, ...]:
        """Every exposed resource template."""
        view = await self.view()
        return view.templates + await self.catalog.shared_templates()

    async def tool(self, name: str) -> Route:
        """The server and original name of an exposed tool name.

        Raises:
            ToolWithheld: the tool changed since it was approved, and pinning is enforced.
            UnknownName: no server offers that tool, even after re-discovering failed servers.
        """
        view = await self.view()
        route = view.route_tool(name)
        if route is None and (change := view.withheld.get(name)) is not None:
            raise ToolWithheld(change.exposed, server_name=change.server_name)
        route = route or (await self._after_retry()).route_tool(name)
        if route is None:
            raise UnknownName("tool", name)
        return route

    async def prompt(self, name: str) -> Route:
        """The server and original name of an exposed prompt name."""
        view = await self.view()
        route = view.route_prompt(name) or await self._owned_by(view, await self.catalog.owner_of_prompt(name), name)
        route = route or (await self._after_retry()).route_prompt(name)
        if route is None:
            raise UnknownName("prompt", name)
        return route

    async def resource(self, uri: str) -> Route:
        """The server owning a resource URI, by exact match, then by template, then by asking the catalog."""
        view = await self.view()
        route = view.route_resource(uri) or await self._owned_by(view, await self.catalog.owner_of_resource(uri), uri)
        route = route or (await self._after_retry()).route_resource(uri)
        if route is None:
            raise UnknownName("resource", uri)
        return route

    async def _owned_by(self, view: CatalogView, server_id: str | None, name: str) -> Route | None:
        if server_id is None:
            return None
        server = view.servers.get(server_id)
        if server is None:
            logger.warning("the catalog says %r belongs to server %r, which is not active", name, server_id)
            return None
        return Route(server, name)

    async def _after_retry(self) -> CatalogView:
        view = await self.view()
        failed = [sid for sid, listing in view.listings.items() if listing.error is not None]
        if failed:
            await self.catalog.discover(failed)
        return await self.view()


def _build_view(
    version: int,
    catalog_version: int,
    servers: Sequence[ServerSpec],
    listings: Mapping[str, ServerListing],
    prefix: bool,
    pins: PinStore | None = None,
) -> CatalogView:
    by_id = {spec.id: spec for spec in servers}
    present = [spec for spec in servers if spec.id in listings]

    tool_index = NameIndex(
        ((spec.id, spec.slug, tool.name) for spec in present for tool in listings[spec.id].tools), prefix=prefix
    )
    tools_by_key = {(spec.id, t.name): t for spec in present for t in listings[spec.id].tools}
    changed: dict[str, ToolChange] = {}
    withheld: dict[str, ToolChange] = {}
    if pins is not None:
        changed = pins.check(
            OfferedTool(e.server_id, by_id[e.server_id].name, e.exposed, tools_by_key[(e.server_id, e.original)])
            for e in tool_index
        )
        if pins.enforce and changed:
            # Withheld from the whole view, under names that stay theirs: no other tool moves into them.
            withheld = {n: c for e in tool_index if (c := changed.get(e.exposed)) for n in (e.exposed, e.full)}
            tool_index = tool_index.without(changed)
    tools = tuple(tools_by_key[(e.server_id, e.original)].model_copy(update={"name": e.exposed}) for e in tool_index)

    prompt_index = NameIndex(
        ((spec.id, spec.slug, p.name) for spec in present for p in listings[spec.id].prompts), prefix=prefix
    )
    prompts_by_key = {(spec.id, p.name): p for spec in present for p in listings[spec.id].prompts}
    prompts = tuple(
        prompts_by_key[(e.server_id, e.original)].model_copy(update={"name": e.exposed}) for e in prompt_index
    )

    resources: list[types.Resource] = []
    owners: dict[str, str] = {}
    for spec in present:
        for resource in listings[spec.id].resources:
            if resource.uri in owners:
                logger.warning(
                    "resource %r is offered by %r and %r; routing it to %r",
                    resource.uri,
                    owners[resource.uri],
                    spec.id,
                    owners[resource.uri],
                )
                continue
            owners[resource.uri] = spec.id
            resources.append(resource)

    templates: list[types.ResourceTemplate] = []
    template_owners: list[tuple[UriTemplate, str]] = []
    for spec in present:
        for template in listings[spec.id].templates:
            try:
                parsed = UriTemplate.parse(template.uri_template)
            except InvalidUriTemplate:
                logger.warning("server %r lists an invalid URI template %r", spec.id, template.uri_template)
                continue
            templates.append(template)
            template_owners.append((parsed, spec.id))

    metadata = {spec.id: tool_metadata(spec) for spec in present}
    tool_wire: list[dict[str, Any]] = []
    for tool, entry in zip(tools, tool_index, strict=True):
        wire = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
        # The schemas are JSON already: share them with the typed tool rather than keep a copy of each.
        if "inputSchema" in wire:
            wire["inputSchema"] = tool.input_schema
        if "outputSchema" in wire:
            wire["outputSchema"] = tool.output_schema
        if (meta := metadata[entry.server_id]) is not None:
            # Clients show descriptions to the model; `_meta` keeps the structured form for programs.
            wire["description"] = f"{wire.get('description') or ''}\n\n{meta['formattedContext']}".lstrip()
            wire["_meta"] = {**wire.get("_meta", {}), METADATA_KEY: meta}
        tool_wire.append(wire)

    return CatalogView(
        version=version,
        catalog_version=catalog_version,
        servers=by_id,
        listings=listings,
        tools=tools,
        tool_wire=tuple(tool_wire),
        tools_by_name={name: tool for tool, e in zip(tools, tool_index, strict=True) for name in (e.exposed, e.full)},
        tool_index=tool_index,
        prompts=prompts,
        prompt_index=prompt_index,
        resources=tuple(resources),
        resource_owners=owners,
        templates=tuple(templates),
        template_owners=tuple(template_owners),
        changed_tools=changed,
        withheld=withheld,
    )
