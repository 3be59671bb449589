"""Building a proxy from `Settings` and running each command's job.

The composition root: the only place that decides which catalog backs the proxy and which
transport serves it. The CLI calls one of these functions through `anyio.run`.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc
import mcp_types as types

from pluggedin_proxy.catalog.local import LocalCatalog
from pluggedin_proxy.errors import ConfigError
from pluggedin_proxy.proxy.server import Proxy
from pluggedin_proxy.settings import Settings

__all__ = ["build_proxy", "call_tool", "list_catalog", "serve"]

logger = logging.getLogger(__name__)


def build_proxy(settings: Settings) -> Proxy:
    """A proxy over the local catalog `settings` names.

    Raises:
        ConfigError: the config file is invalid, or missing although it was named explicitly.
    """
    path = settings.config_path
    specs: list[Any] | None = None
    if not path.exists() and not settings.config_explicit:
        logger.warning(
            "no servers configured: %s does not exist. Create it (mcpServers format) or pass --config FILE.", path
        )
        specs = []

    def catalog(pool: Any, profile: Any) -> LocalCatalog:
        return LocalCatalog(path, pool, profile=profile, discovery_timeout=settings.discovery_timeout, specs=specs)

    return Proxy(catalog, prefix=settings.prefix, startup_timeout=settings.startup_timeout)


async def serve(settings: Settings) -> None:
    """Serve MCP until the client goes away or the process is told to stop."""
    from pluggedin_proxy.proxy.stdio import serve_stdio

    async with build_proxy(settings) as proxy, anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signal, tg.cancel_scope)
        servers = await proxy.catalog.servers()
        logger.info("serving %d server(s) from %s on stdio", len(servers), settings.config_path)
        await serve_stdio(proxy)
        tg.cancel_scope.cancel()


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return


async def list_catalog(settings: Settings, refresh: bool) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Rows of (exposed name, server, description), and (server, error) for servers that failed."""
    if not settings.config_path.exists():
        raise ConfigError(f"{settings.config_path}: config file not found", path=str(settings.config_path))
    async with build_proxy(settings) as proxy:
        if refresh:
            await proxy.catalog.discover()
        view = await proxy.router.view()
        rows = [
            (tool.name, view.servers[entry.server_id].name, _first_line(tool.description))
            for tool, entry in zip(view.tools, view.tool_index, strict=True)
        ]
        failures = [(view.servers[sid].name, lst.error) for sid, lst in view.listings.items() if lst.error]
        return rows, failures


async def call_tool(
    settings: Settings, name: str, arguments: dict[str, Any] | None, pairs: Sequence[tuple[str, str]]
) -> tuple[str, bool]:
    """Call one tool and render its result for a terminal; the flag says whether it is an error."""
    if not settings.config_path.exists():
        raise ConfigError(f"{settings.config_path}: config file not found", path=str(settings.config_path))
    from mcp.shared.exceptions import MCPError

    from pluggedin_proxy.errors import ProxyError

    async with build_proxy(settings) as proxy:
        try:
            route = await proxy.router.tool(name)
            if arguments is None:
                schema = _schema_of(await proxy.router.view(), name)
                arguments = {key: _coerce(value, schema.get(key)) for key, value in pairs}
            upstream = await proxy.forwarder.upstream(route.server, frozenset())
            result = await upstream.session.send_request(
                types.CallToolRequest(params=types.CallToolRequestParams(name=route.name, arguments=arguments)),
                types.CallToolResult,
                request_read_timeout_seconds=route.server.timeout,
            )
        except MCPError as exc:
            raise ProxyError(f"the server answered with error {exc.code}: {exc.error.message}") from exc
        return _render(result), bool(result.is_error)


def _schema_of(view: Any, name: str) -> dict[str, Any]:
    entry = view.tool_index.resolve(name)
    for tool, indexed in zip(view.tools, view.tool_index, strict=True):
        if indexed is entry:
            props = tool.input_schema.get("properties", {})
            return props if isinstance(props, dict) else {}
    return {}


def _coerce(value: str, schema: Any) -> Any:
    wants = schema.get("type") if isinstance(schema, dict) else None
    if wants == "string" or (isinstance(wants, list) and "string" in wants):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _render(result: types.CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
        elif isinstance(block, types.EmbeddedResource):
            inner = block.resource
            text = getattr(inner, "text", None)
            parts.append(text if text is not None else f"[resource: {inner.uri}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, indent=2))
    return "\n".join(parts)


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]
