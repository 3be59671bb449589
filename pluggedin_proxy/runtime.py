"""Building a proxy from `Settings` and running each command's job.

The composition root: the only place that decides which catalog backs the proxy and which
transport serves it. The CLI calls one of these functions through `anyio.run`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc
import mcp_types as types

from pluggedin_proxy.catalog.app_client import AppClient
from pluggedin_proxy.catalog.base import Catalog
from pluggedin_proxy.catalog.local import LocalCatalog
from pluggedin_proxy.catalog.remote import RemoteCatalog
from pluggedin_proxy.credentials import Credentials
from pluggedin_proxy.errors import ConfigError
from pluggedin_proxy.proxy.server import Proxy
from pluggedin_proxy.settings import Settings

__all__ = ["build_proxy", "call_tool", "list_catalog", "serve", "serve_http"]

logger = logging.getLogger(__name__)


SETUP_HINT = (
    "no servers configured: create {path} (mcpServers format) or pass --config FILE, "
    "or use your plugged.in App with --pluggedin-api-key KEY or `pluggedin-mcp login`"
)
SETUP_GUIDE = """pluggedin-mcp is running but has no MCP servers to offer yet.

To use servers from your plugged.in App, get an API key at https://plugged.in (Settings, API keys)
and either add `--pluggedin-api-key YOUR_KEY` to this server's arguments in your MCP client's
configuration, set PLUGGEDIN_API_KEY, or run `pluggedin-mcp login` once in a terminal.

To use servers without an account, list them in {path} in the mcpServers format your client
already uses, for example:

{{"mcpServers": {{"time": {{"command": "uvx", "args": ["mcp-server-time"]}}}}}}

Then restart your MCP client. `pluggedin-mcp doctor` in a terminal shows what is configured."""


def build_proxy(settings: Settings) -> Proxy:
    """A proxy over the catalog `settings` selects: the local config file or the plugged.in App.

    Raises:
        ConfigError: the config file is invalid, or missing although it was named explicitly.
    """
    if settings.mode == "app":
        credentials = settings.credentials
        assert credentials.api_key is not None
        prefix_tools = os.environ.get("PLUGGEDIN_UUID_TOOL_PREFIXING", "").lower() != "false"
        client = AppClient(
            credentials.base_url, credentials.api_key, prefix_tools=prefix_tools, timeout=settings.app_timeout
        )

        def remote(pool: Any, profile: Any) -> Catalog:
            return RemoteCatalog(client, listing_ttl=settings.cache_ttl, servers_ttl=settings.cache_ttl * 2)

        return Proxy(
            remote,
            mode="app",
            app=client,
            prefix=settings.prefix and prefix_tools,
            startup_timeout=settings.startup_timeout,
            rate_limit=settings.rate_limit,
        )

    path = settings.config_path
    specs: list[Any] | None = None
    options: dict[str, Any] = {}
    if settings.mode == "unconfigured":
        logger.warning(SETUP_HINT.format(path=path))
        specs = []
        options["instructions"] = SETUP_GUIDE.format(path=path)

    def local(pool: Any, profile: Any) -> Catalog:
        return LocalCatalog(path, pool, profile=profile, discovery_timeout=settings.discovery_timeout, specs=specs)

    return Proxy(
        local,
        mode=settings.mode,
        prefix=settings.prefix,
        startup_timeout=settings.startup_timeout,
        rate_limit=settings.rate_limit,
        **options,
    )


async def serve(settings: Settings) -> None:
    """Serve MCP until the client goes away or the process is told to stop."""
    from pluggedin_proxy.proxy.stdio import serve_stdio

    async with build_proxy(settings) as proxy, anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signal, tg.cancel_scope)
        source = settings.credentials.base_url if settings.mode == "app" else settings.config_path
        logger.info("serving the %s catalog from %s on stdio", settings.mode, source)
        await serve_stdio(proxy)
        tg.cancel_scope.cancel()


async def serve_http(settings: Settings) -> None:
    """Serve MCP over Streamable HTTP until the process is told to stop."""
    import uvicorn

    from pluggedin_proxy.http import HttpOptions, create_http_app

    keys = list(settings.http_api_keys)
    if settings.require_api_auth and settings.credentials.api_key is not None:
        keys.append(settings.credentials.api_key.get_secret_value())
    if settings.require_api_auth and not keys:
        raise ConfigError("--require-api-auth needs a key to check: a plugged.in API key or --http-api-key")
    options = HttpOptions(
        host=settings.host,
        stateless=settings.stateless,
        json_response=settings.json_response,
        api_keys=keys if settings.require_api_auth else (),
        cors_origins=settings.cors_origins,
    )
    async with build_proxy(settings) as proxy:
        app = create_http_app(proxy, options)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on"
        )
        await _server_class()(config).serve()


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn, saying where it listens once it does (with `--port 0`, the port it got)."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            for server in self.servers:
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    shown = f"[{host}]" if ":" in host else host
                    logger.info("listening on http://%s:%d/mcp", shown, port)

    return Server


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return


async def list_catalog(settings: Settings, refresh: bool) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Rows of (exposed name, server, description), and (server, error) for servers that failed."""
    _require_catalog(settings)
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
    _require_catalog(settings)
    from mcp.shared.exceptions import MCPError

    from pluggedin_proxy.errors import ProxyError

    async with build_proxy(settings) as proxy:
        try:
            route = await proxy.router.tool(name)
            if arguments is None:
                tool = (await proxy.router.view()).tools_by_name.get(name)
                schema = tool.input_schema.get("properties", {}) if tool is not None else {}
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


def _require_catalog(settings: Settings) -> None:
    if settings.mode == "unconfigured":
        raise ConfigError(SETUP_HINT.format(path=settings.config_path))


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


async def check_app(credentials: Credentials) -> int:
    """Ask the App for its servers with these credentials; return how many it has.

    Raises:
        CatalogError: the App rejected the key or could not be reached.
    """
    assert credentials.api_key is not None
    async with AppClient(credentials.base_url, credentials.api_key) as client:
        return len(await client.servers())


async def doctor(settings: Settings) -> list[str]:
    """Lines describing what is configured, where each setting came from, and what is reachable."""
    from pluggedin_proxy import __version__
    from pluggedin_proxy.catalog.config import load_config
    from pluggedin_proxy.catalog.local import read_persisted_listings
    from pluggedin_proxy.errors import CatalogError

    creds = settings.credentials
    config_state = "found" if settings.config_path.exists() else "not found"
    lines = [
        f"pluggedin-mcp {__version__}",
        f"mode:        {settings.mode}",
        f"config file: {settings.config_path} ({config_state})",
        f"API key:     {creds.redacted_key} (from {creds.key_source})",
        f"App:         {creds.base_url} (from {creds.base_url_source})",
    ]
    if settings.mode == "unconfigured":
        lines.append("")
        lines.append("Nothing to serve yet: " + SETUP_HINT.format(path=settings.config_path) + ".")
        return lines
    if settings.mode == "app":
        assert creds.api_key is not None
        async with AppClient(creds.base_url, creds.api_key) as client:
            try:
                servers = await client.servers()
                latency = client.last_latency or 0.0
                tools = await client.tools()
            except CatalogError as exc:
                lines.append(f"App status:  unreachable or refusing: {exc}")
                lines.extend(_stale_view(creds.base_url))
                return lines
        lines.append(f"App status:  reachable, answered in {latency * 1000:.0f} ms")
        per_server: dict[str, int] = {}
        for tool in tools:
            per_server[tool.server_uuid or ""] = per_server.get(tool.server_uuid or "", 0) + 1
        lines.append(f"servers:     {len(servers)}")
        for server in servers:
            spec = server.to_spec()
            lines.append(f"  {spec.name:<24} {spec.transport:<16} {per_server.get(spec.id, 0):>4} tools  {spec.target}")
        return lines
    specs = load_config(settings.config_path)
    persisted = read_persisted_listings(settings.config_path)
    lines.append(f"servers:     {len(specs)}")
    now = time.time()
    for spec in specs:
        saved = persisted.get(spec.id)
        if saved is None:
            state = "not discovered yet"
        elif saved.error:
            state = f"FAILED {_age(now - saved.discovered_at)} ago: {saved.error}"
        else:
            state = f"{len(saved.tools)} tools, listed {_age(now - saved.discovered_at)} ago"
        lines.append(f"  {spec.name:<24} {spec.transport:<16} {state}")
    return lines


def _stale_view(base_url: str) -> list[str]:
    from pluggedin_proxy.catalog.remote import read_app_snapshot

    snapshot = read_app_snapshot(base_url)
    if not snapshot:
        return ["cache:       nothing cached from this App yet"]
    now = time.time()
    fetched = snapshot.get("fetched", {})
    newest = max(fetched.values(), default=None)
    lines = [
        f"cache:       STALE: the proxy's last good answer from this App is {_age(now - newest)} old"
        if newest is not None
        else "cache:       STALE",
    ]
    lines.extend(f"  {name:<14} fetched {_age(now - when)} ago" for name, when in sorted(fetched.items()))
    lines.append(f"servers:     {len(snapshot.get('servers', []))} (as last seen)")
    lines.extend(
        f"  {server['name']:<24} {server['transport']:<16} {server['tools']:>4} tools"
        for server in snapshot.get("servers", [])
    )
    return lines


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"
