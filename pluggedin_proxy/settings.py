"""Resolved settings for one run of the proxy, built by the CLI and handed to everything else."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pluggedin_proxy.credentials import Credentials

if TYPE_CHECKING:
    from pluggedin_proxy.upstream.policy import UpstreamPolicy

__all__ = ["Mode", "Settings"]

Mode = Literal["local", "app", "unconfigured"]
"""Where the catalog comes from: a local config file, the plugged.in App, or nowhere yet."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line, the environment and the credential stores asked for."""

    config_path: Path
    """The local catalog file (`mcpServers` format)."""
    credentials: Credentials
    mode: Mode = "local"
    transport: Literal["stdio", "streamable-http"] = "stdio"
    host: str = "127.0.0.1"
    port: int = 12006
    stateless: bool = False
    require_api_auth: bool = False
    """HTTP: require an API key (the plugged.in key or one of `http_api_keys`) on every MCP request."""
    http_api_keys: tuple[str, ...] = ()
    json_response: bool = False
    """HTTP: answer POSTs with plain JSON instead of an SSE stream."""
    cors_origins: tuple[str, ...] = ()
    http_rate_limit: int = 0
    """HTTP: requests per minute per API key (per client address without auth) to the MCP paths; 0: none."""
    session_timeout: float = 1800.0
    """HTTP: seconds an idle Streamable HTTP session lives; 0: until the client ends it."""
    max_sessions: int = 10_000
    """HTTP: most Streamable HTTP sessions open at once (and, counted apart, legacy SSE streams)."""
    prefix: bool = True
    """Expose names as `<server>__<name>`; off (`--no-prefix`) passes a single server through unchanged."""
    discovery_timeout: float = 30.0
    """Seconds one server may take to start and list its offer during discovery."""
    startup_timeout: float = 60.0
    """Seconds one server may take to start and finish its handshake."""
    cache_ttl: float = 60.0
    """Seconds the App's listings stay fresh (server configs: twice that)."""
    app_timeout: float = 10.0
    """Seconds one call to the App may take."""
    rate_limit: int = 60
    """Tool calls per minute per downstream session; 0 disables the limit."""
    call_timeout: float = 300.0
    """Seconds a forwarded request may go without an answer or progress (a server's `timeout` overrides it)."""
    max_result_size: int = 1024 * 1024
    """Characters of content a tool result may have before it is cut (the whole is kept as a resource); 0: no limit."""
    upstream_policy: UpstreamPolicy | None = None
    """Checked before each upstream connects (`--allow-command`, `--block-private-upstreams`); `None`: nothing."""
    pin_tools: bool = False
    """Withhold a tool whose definition changed since it was approved (changes are logged either way)."""
