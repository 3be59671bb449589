"""Building a proxy from `Settings` and running each command's job.

The composition root: the only place that decides which catalog backs the proxy and which
transport serves it. The CLI calls one of these functions through `anyio.run`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

import anyio
import anyio.abc
import mcp_types as types

from pluggedin_proxy.catalog.base import Catalog
from pluggedin_proxy.catalog.local import LocalCatalog
from pluggedin_proxy.catalog.pins import PinStore, ToolChange, app_pins_path, config_pins_path
from pluggedin_proxy.credentials import Credentials
from pluggedin_proxy.errors import ConfigError
from pluggedin_proxy.metrics import NO_METRICS, Metrics, PrometheusMetrics
from pluggedin_proxy.proxy.router import CatalogView, Router
from pluggedin_proxy.proxy.server import Proxy
from pluggedin_proxy.settings import Settings

__all__ = ["approve_tools", "build_proxy", "call_tool", "list_catalog", "pin_store", "serve", "serve_http"]

logger = logging.getLogger(__name__)

# Signals that stop serving in an orderly way (upstreams stopped, exit 0), on stdio and HTTP alike.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

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


def build_proxy(settings: Settings, metrics: Metrics = NO_METRICS) -> Proxy:
    """A proxy over the catalog `settings` selects: the local config file or the plugged.in App.

    `metrics` receives what the proxy and its App client record (nothing, by default).

    Raises:
        ConfigError: the config file is invalid, or missing although it was named explicitly.
    """
    if settings.mode == "app":
        from pluggedin_proxy.catalog.app_client import AppClient  # App mode only: a local config needs neither
        from pluggedin_proxy.catalog.remote import RemoteCatalog

        credentials = settings.credentials
        assert credentials.api_key is not None
        prefix_tools = os.environ.get("PLUGGEDIN_UUID_TOOL_PREFIXING", "").lower() != "false"
        client = AppClient(
            credentials.base_url,
            credentials.api_key,
            prefix_tools=prefix_tools,
            timeout=settings.app_timeout,
            metrics=metrics,
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
            call_timeout=settings.call_timeout,
            max_result_size=settings.max_result_size,
            policy=settings.upstream_policy,
            pins=pin_store(settings),
            metrics=metrics,
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
        call_timeout=settings.call_timeout,
        max_result_size=settings.max_result_size,
        policy=settings.upstream_policy,
        pins=pin_store(settings),
        metrics=metrics,
        **options,
    )


def pin_store(settings: Settings, *, enforce: bool | None = None, warn: bool = True) -> PinStore:
    """The tool pins of the catalog `settings` selects: one store per config file, or per App and API key.

    `enforce` (withhold changed tools) defaults to `settings.pin_tools`; `warn` logs each change once.
    """
    enforce = settings.pin_tools if enforce is None else enforce
    if settings.mode == "app":
        credentials = settings.credentials
        assert credentials.api_key is not None
        path = app_pins_path(credentials.base_url, credentials.api_key.get_secret_value())
        # The App keeps no output schemas, while a server's live listing, which replaces the App's
        # once the server is connected, has them: hashing them would flag every such tool.
        return PinStore(path, enforce=enforce, warn=warn, hash_output_schema=False, source=credentials.base_url)
    return PinStore(
        config_pins_path(settings.config_path), enforce=enforce, warn=warn, source=str(settings.config_path)
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
    """Serve MCP over Streamable HTTP until the process is told to stop.

    SIGTERM, SIGINT and SIGHUP stop uvicorn (a second SIGINT skips waiting for open connections), then the
    proxy stops every upstream, and this returns normally: the exit status is 0, as in stdio mode.
    """
    import uvicorn

    from pluggedin_proxy.http import HttpOptions, create_http_app

    keys = list(settings.http_api_keys)
    # Keys given for HTTP clients are meant to be checked, with or without --require-api-auth.
    require = settings.require_api_auth or bool(keys)
    if settings.require_api_auth and settings.credentials.api_key is not None:
        keys.append(settings.credentials.api_key.get_secret_value())
    if require and not keys:
        raise ConfigError("--require-api-auth needs a key to check: a plugged.in API key or --http-api-key")
    if not require and settings.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "serving %s without authentication: anyone who can reach this port can use every server "
            "(add --require-api-auth or --http-api-key)",
            settings.host,
        )
    options = HttpOptions(
        host=settings.host,
        stateless=settings.stateless,
        json_response=settings.json_response,
        api_keys=keys if require else (),
        cors_origins=settings.cors_origins,
        rate_limit=settings.http_rate_limit,
        session_idle_timeout=settings.session_timeout,
        max_sessions=settings.max_sessions,
    )
    async with build_proxy(settings, PrometheusMetrics()) as proxy:
        app = create_http_app(proxy, options)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on"
        )
        server = _server_class()(config)
        await server.serve()
        if server.stop_signal is not None:
            logger.info("received %s; stopping the upstreams", signal.Signals(server.stop_signal).name)


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn, saying where it listens once it does (with `--port 0`, the port it got).

        It also handles the stop signals without re-raising them afterwards: uvicorn's own
        `capture_signals` raises the caught signal again once it has shut down, which kills the proxy
        (exit 143) before its `async with` stops the upstream servers.
        """

        stop_signal: int | None = None

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield  # signal handlers can only be set from the main thread
                return
            previous = {signum: signal.signal(signum, self.handle_exit) for signum in STOP_SIGNALS}
            try:
                yield
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Runs as a signal handler: record and set flags only, uvicorn's main loop acts on them.
            if self.stop_signal is None:
                self.stop_signal = sig
            super().handle_exit(sig, frame)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            for server in self.servers:
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    shown = f"[{host}]" if ":" in host else host
                    logger.info("listening on http://%s:%d/mcp", shown, port)

    return Server


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return


async def list_catalog(
    settings: Settings, refresh: bool
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]], list[tuple[str, str, str]]]:
    """The catalog for a terminal: its tools, the servers that failed, and the tools changed since approved.

    Tools are (exposed name, server, first line of the description), failures (server, error), and
    changes (exposed name, server, whole description); a changed tool is among the tools too.
    """
    _require_catalog(settings)
    async with build_proxy(settings) as proxy:
        if refresh:
            await proxy.catalog.discover()
        view = await _pinned_view(proxy, pin_store(settings, enforce=False, warn=False))
        rows = [
            (tool.name, view.servers[entry.server_id].name, _first_line(tool.description))
            for tool, entry in zip(view.tools, view.tool_index, strict=True)
        ]
        failures = [(view.servers[sid].name, lst.error) for sid, lst in view.listings.items() if lst.error]
        changed = [
            (name, change.server_name, view.tools_by_name[name].description or "")
            for name, change in view.changed_tools.items()
        ]
        return rows, failures, changed


async def approve_tools(
    settings: Settings, names: Sequence[str], approve_all: bool
) -> tuple[list[ToolChange], list[str], list[str]]:
    """Approve the current definition of changed tools: those `names` (as listed), or every one.

    Returns the approved changes, the names of tools that had not changed, and the names no server offers.
    """
    _require_catalog(settings)
    async with build_proxy(settings) as proxy:
        pins = pin_store(settings, enforce=False, warn=False)
        view = await _pinned_view(proxy, pins)
        chosen = dict(view.changed_tools) if approve_all else {}
        unchanged: list[str] = []
        unknown: list[str] = []
        for name in names:
            entry = view.tool_index.resolve(name)
            if entry is None:
                unknown.append(name)
            elif (change := view.changed_tools.get(entry.exposed)) is None:
                unchanged.append(name)
            else:
                chosen[entry.exposed] = change
        for change in chosen.values():
            pins.approve(change.server_id, change.tool, change.digest)
        return list(chosen.values()), unchanged, unknown


async def _pinned_view(proxy: Proxy, pins: PinStore) -> CatalogView:
    """The catalog as the `tools` command shows it: every tool checked against its pin, none withheld."""
    return await Router(proxy.catalog, prefix=proxy.router.prefix, pins=pins).view()


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
            upstream = await proxy.pool.get(route.server)
            result = await upstream.session.send_request(
                types.CallToolRequest(params=types.CallToolRequestParams(name=route.name, arguments=arguments)),
                types.CallToolResult,
                request_read_timeout_seconds=route.server.timeout or settings.call_timeout,
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
    from pluggedin_proxy.catalog.app_client import AppClient

    assert credentials.api_key is not None
    async with AppClient(credentials.base_url, credentials.api_key) as client:
        return len(await client.servers())


async def check_servers(settings: Settings) -> list[str]:
    """Start every server (at once, each within its startup budget) and describe how each one is doing."""
    _require_catalog(settings)
    async with build_proxy(settings) as proxy:
        servers = await proxy.catalog.servers()

        async def start(spec: Any) -> None:
            with contextlib.suppress(Exception):  # the failure is in the server's status
                await proxy.pool.get(spec)

        async with anyio.create_task_group() as tg:
            for spec in servers:
                tg.start_soon(start, spec)
        lines = [f"servers:     {len(servers)} started and checked"]
        for spec in servers:
            status = proxy.pool.status(spec)
            lines.append(
                f"  {spec.name:<24} {status['state']:<10} restarts {status['restarts']}, "
                f"failures in a row {status['failures']}"
            )
            if status.get("lastError"):
                lines.append(f"    last error: {status['lastError']}")
            lines.extend(f"    stderr| {line}" for line in status.get("stderr", []))
        return lines


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
        f"policies:    {_describe_policy(settings)}",
    ]
    if settings.mode == "unconfigured":
        lines.append("")
        lines.append("Nothing to serve yet: " + SETUP_HINT.format(path=settings.config_path) + ".")
        return lines
    if settings.mode == "app":
        from pluggedin_proxy.catalog.app_client import AppClient

        assert creds.api_key is not None
        async with AppClient(creds.base_url, creds.api_key) as client:
            try:
                servers = await client.servers()
                latency = client.last_latency or 0.0
                tools = await client.tools()
            except CatalogError as exc:
                lines.append(f"App status:  unreachable or refusing: {exc}")
                lines.extend(_stale_view(creds.base_url))
                lines.extend(_pin_lines(settings))
                return lines
        lines.append(f"App status:  reachable, answered in {latency * 1000:.0f} ms")
        per_server: dict[str, int] = {}
        for tool in tools:
            per_server[tool.server_uuid or ""] = per_server.get(tool.server_uuid or "", 0) + 1
        lines.append(f"servers:     {len(servers)}")
        for server in servers:
            spec = server.to_spec()
            lines.append(f"  {spec.name:<24} {spec.transport:<16} {per_server.get(spec.id, 0):>4} tools  {spec.target}")
        lines.extend(_pin_lines(settings))
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
    lines.extend(_pin_lines(settings))
    return lines


def _pin_lines(settings: Settings) -> list[str]:
    """The tool pins as the last proxy left them: how many, and which tools changed since approved."""
    pins = pin_store(settings, warn=False)
    policy = "withheld (--pin-tools)" if settings.pin_tools else "logged, still served (--pin-tools withholds them)"
    lines = [f"tool pins:   {len(pins)} tools pinned in {pins.path}; changed tools are {policy}"]
    now = time.time()
    changes = pins.changes()
    lines.extend(
        f"  CHANGED     {change.exposed} (server {change.server_name}), noticed {_age(now - change.since)} ago"
        for change in changes
    )
    if changes:
        lines.append("  review them with `pluggedin-mcp tools`; approve with `pluggedin-mcp tools --approve NAME`")
    return lines


def _describe_policy(settings: Settings) -> str:
    policy = settings.upstream_policy
    parts = []
    if policy is not None and policy.allowed_commands:
        parts.append("commands limited to " + ", ".join(sorted(policy.allowed_commands)) + " (--allow-command)")
    if policy is not None and policy.block_private:
        parts.append("private addresses refused (--block-private-upstreams)")
    return "; ".join(parts) or "none (any command; private addresses allowed)"


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
