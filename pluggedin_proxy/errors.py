"""The proxy's exceptions, one tree.

```
ProxyError
├── ConfigError                 a config file or setting is wrong
├── CredentialsError            an API key or credential store is wrong or unusable
├── CatalogError                the catalog could not answer
│   ├── CatalogUnavailable      its source is down or unreachable
│   └── CatalogAuthError        its source rejected our credentials
├── UnknownName                 no server offers the requested tool, prompt or resource
├── ToolWithheld                a tool changed since it was approved, and pinning withholds it
└── UpstreamError               an upstream MCP server could not serve the request
    ├── UpstreamStartFailed     it could not be started or connected
    │   └── UpstreamRefused     a security policy forbids starting or connecting it
    ├── UpstreamUnavailable     it is known to be down right now
    └── UpstreamGone            it died or dropped its session during the request
```

Messages never carry secrets, `env` values or full command lines.
"""

from __future__ import annotations

__all__ = [
    "CatalogAuthError",
    "CatalogError",
    "CatalogUnavailable",
    "ConfigError",
    "CredentialsError",
    "ProxyError",
    "ToolWithheld",
    "UnknownName",
    "UpstreamError",
    "UpstreamGone",
    "UpstreamRefused",
    "UpstreamStartFailed",
    "UpstreamUnavailable",
]


class ProxyError(Exception):
    """Raised for every failure the proxy itself diagnoses."""


class ConfigError(ProxyError):
    """Raised when a config file or setting is invalid; the message names the file, server and field."""

    def __init__(self, message: str, *, path: str | None = None, server: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.server = server


class CredentialsError(ProxyError):
    """Raised when an API key is malformed or a credential store cannot be used."""


class CatalogError(ProxyError):
    """Raised when the catalog cannot answer."""


class CatalogUnavailable(CatalogError):
    """Raised when the catalog's source is down, slow or unreachable."""


class CatalogAuthError(CatalogError):
    """Raised when the catalog's source rejects our credentials."""


class UnknownName(ProxyError):
    """Raised when no server offers the requested tool, prompt or resource."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"unknown {kind}: {name!r}")
        self.kind = kind
        self.name = name


class ToolWithheld(ProxyError):
    """Raised when a tool changed since it was approved and `--pin-tools` withholds it until approved again."""

    def __init__(self, name: str, *, server_name: str) -> None:
        super().__init__(
            f"tool {name!r} of server {server_name!r} changed since it was approved and is withheld; "
            f"review it, then run `pluggedin-mcp tools --approve {name}` to allow it"
        )
        self.name = name
        self.server_name = server_name


class UpstreamError(ProxyError):
    """Raised when an upstream MCP server cannot serve a request."""

    def __init__(self, message: str, *, server_name: str) -> None:
        super().__init__(message)
        self.server_name = server_name


class UpstreamStartFailed(UpstreamError):
    """Raised when an upstream cannot be started (stdio) or connected (HTTP, SSE)."""


class UpstreamRefused(UpstreamStartFailed):
    """Raised when a security policy (`--allow-command`, `--block-private-upstreams`) forbids an upstream."""


class UpstreamUnavailable(UpstreamError):
    """Raised when an upstream is known to be down and is not retried yet."""


class UpstreamGone(UpstreamError):
    """Raised when an upstream died or lost its session while a request was in flight."""


class UpstreamTimeout(UpstreamError):
    """Raised when an upstream did not answer (or report progress) within the request timeout."""
