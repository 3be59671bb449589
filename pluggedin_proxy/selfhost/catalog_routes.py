"""The App API routes that describe servers and their offer: what the proxy aggregates.

`/api/mcp-servers`, `/api/tools`, `/api/prompts`, `/api/resources`, `/api/resource-templates`,
`/api/resolve/{prompt,resource}` and `/api/discover/{all|uuid}`, shaped as in the App (reference
§2.1–2.9). Two improvements over the App: the resolve routes answer with the owning server's complete
`/api/mcp-servers` entry (so the proxy connects to a resource's server with the same parameters as for
its tools), and `resolve/resource` also matches resource templates. Discovery covers tools, prompts,
resources and templates, and the response waits for it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pluggedin_proxy.catalog import ServerListing
from pluggedin_proxy.selfhost.directory import ServerDirectory
from pluggedin_proxy.selfhost.identity import is_uuid
from pluggedin_proxy.selfhost.shapes import prompt_item, resource_item, template_item, tool_item

__all__ = [
    "discover",
    "list_prompts",
    "list_resource_templates",
    "list_resources",
    "list_servers",
    "list_tools",
    "resolve_prompt",
    "resolve_resource",
]


async def list_servers(request: Request, directory: ServerDirectory) -> Response:
    """`GET /api/mcp-servers`: every server's connection entry, as a bare array."""
    return JSONResponse(directory.entries())


async def list_tools(request: Request, directory: ServerDirectory) -> Response:
    """`GET /api/tools[?prefix_tools=true][&status=ACTIVE|INACTIVE]`: `{"tools": [...]}`."""
    # The App keeps per-tool toggles; here every tool is active, so asking for inactive ones finds none.
    if request.query_params.get("status") == "INACTIVE":
        return JSONResponse({"tools": []})
    prefix = request.query_params.get("prefix_tools") == "true"
    listed = await directory.listings()
    body: dict[str, Any] = {
        "tools": [tool_item(tool, record, prefix=prefix) for record, listing in listed for tool in listing.tools]
    }
    failed = [f"{record.spec.name} ({listing.error})" for record, listing in listed if listing.error is not None]
    if failed:
        body["message"] = "Discovery failed for: " + "; ".join(failed)
    return JSONResponse(body)


async def list_prompts(request: Request, directory: ServerDirectory) -> Response:
    """`GET /api/prompts`: every server's prompts, unprefixed, sorted by name."""
    items = [prompt_item(prompt) for _, listing in await directory.listings() for prompt in listing.prompts]
    return JSONResponse(sorted(items, key=lambda item: item["name"]))


async def list_resources(request: Request, directory: ServerDirectory) -> Response:
    """`GET /api/resources`: every server's resources, sorted by name."""
    items = [resource_item(resource) for _, listing in await directory.listings() for resource in listing.resources]
    return JSONResponse(sorted(items, key=lambda item: item["name"]))


async def list_resource_templates(request: Request, directory: ServerDirectory) -> Response:
    """`GET /api/resource-templates`: every server's templates, sorted by name."""
    items = [template_item(template) for _, listing in await directory.listings() for template in listing.templates]
    return JSONResponse(sorted(items, key=lambda item: item.get("name", "")))


async def resolve_prompt(request: Request, directory: ServerDirectory) -> Response:
    """`GET /api/resolve/prompt?name=`: the entry of the first server offering that prompt."""
    name = request.query_params.get("name")
    if not name:
        return _error(400, "Prompt name is required (?name=)")
    record = await directory.prompt_owner(name)
    if record is None:
        return _error(404, f"Prompt not found: {name}")
    return JSONResponse(directory.entry(record.uuid))


async def resolve_resource(request: Request, directory: ServerDirectory) -> Response:
    """`GET /api/resolve/resource?uri=`: the entry of the server owning that URI or a matching template."""
    uri = request.query_params.get("uri")
    if not uri:
        return _error(400, "Resource URI is required (?uri=)")
    record = await directory.resource_owner(uri)
    if record is None:
        return _error(404, f"Resource not found: {uri}")
    return JSONResponse(directory.entry(record.uuid))


async def discover(request: Request, directory: ServerDirectory) -> Response:
    """`POST /api/discover/{all|uuid}`: discover now, answer when done with a per-server summary."""
    target = request.path_params["target"]
    if target == "all":
        records = list(directory.records)
        if not records:
            return JSONResponse({"message": "No active MCP servers to discover."})
    elif is_uuid(target):
        record = directory.record(target.lower())
        if record is None:
            return _error(404, f"Server not found: {target}")
        records = [record]
    else:
        return _error(400, "Discovery target must be 'all' or a server UUID")
    # The App reads `force_refresh` only to rate-limit; discovery here is always a fresh one.
    forced = _force_refresh(await request.body())
    listed = await directory.discover(records)
    verb = "Forced discovery" if forced else "Discovery"
    summary = "; ".join(f"{record.spec.name}: {_summary(listing)}" for record, listing in listed)
    return JSONResponse({"message": f"{verb} completed for {_count(len(listed), 'server')}. {summary}."})


def _force_refresh(raw: bytes) -> bool:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("force_refresh") is True


def _summary(listing: ServerListing) -> str:
    if listing.error is not None:
        return f"failed ({listing.error})"
    return ", ".join(
        (
            _count(len(listing.tools), "tool"),
            _count(len(listing.prompts), "prompt"),
            _count(len(listing.resources), "resource"),
            _count(len(listing.templates), "resource template"),
        )
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
