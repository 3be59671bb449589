"""The proxy served over Streamable HTTP: `/mcp` (and `/`), `/health`, with auth, CORS and limits.

Every HTTP session gets its own MCP session (the SDK's session manager mints the ids, expires idle
sessions and caps their number); `stateless` answers each request on its own. Both protocol eras
are served on the same endpoint. Middleware order, outermost first: CORS, body size, API-key auth.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pluggedin_proxy.errors import CatalogError
from pluggedin_proxy.http.auth import ApiKeyAuth
from pluggedin_proxy.proxy.server import Proxy

__all__ = ["HttpOptions", "create_http_app"]

MCP_PATHS = ("/mcp", "/")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How the HTTP endpoint behaves."""

    host: str = "127.0.0.1"
    stateless: bool = False
    json_response: bool = False
    api_keys: Sequence[str] = ()
    """Accepted keys; empty means no authentication."""
    cors_origins: Sequence[str] = ()
    max_body_bytes: int = 4 * 1024 * 1024
    max_sessions: int = 10_000
    session_idle_timeout: float = 30 * 60


def create_http_app(proxy: Proxy, options: HttpOptions) -> Starlette:
    """The ASGI app serving `proxy`; its lifespan runs the MCP session manager."""
    manager = StreamableHTTPSessionManager(
        app=proxy.server,
        json_response=options.json_response,
        stateless=options.stateless,
        security_settings=_transport_security(options),
        max_request_body_size=options.max_body_bytes,
        session_idle_timeout=None if options.stateless else options.session_idle_timeout,
        max_sessions=None if options.stateless else options.max_sessions,
    )

    mcp = _SessionManagerApp(manager)

    async def health(request: Request) -> JSONResponse:
        sessions = 0 if options.stateless else len(manager._server_instances)
        body: dict[str, Any] = {
            "status": "ok",
            "transport": "streamable-http",
            "sessions": sessions,
            "maxSessions": 0 if options.stateless else options.max_sessions,
            "mode": proxy.mode,
        }
        status = 200
        try:
            servers = await proxy.catalog.servers()
        except CatalogError as exc:
            body["status"] = "unavailable"
            body["catalog"] = {"error": str(exc)}
            status = 503
        else:
            # What is known now: a health check must never start servers or wait on discovery.
            view = proxy.router.current
            listings = view.listings if view is not None else {}
            body["catalog"] = {"servers": len(servers), "version": proxy.catalog.version}
            body["upstreams"] = [
                {
                    "server": spec.name,
                    "live": len(proxy.pool.live(spec.id)),
                    "error": listing.error if (listing := listings.get(spec.id)) is not None else None,
                }
                for spec in servers
            ]
        return JSONResponse(body, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    middleware = [Middleware(BodyLimit, max_bytes=options.max_body_bytes)]
    if options.api_keys:
        middleware.append(Middleware(ApiKeyAuth, keys=options.api_keys, paths=MCP_PATHS))
    if options.cors_origins:
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=list(options.cors_origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=["Content-Type", "Authorization", "X-Api-Key", "Mcp-Session-Id", "Mcp-Protocol-Version"],
                expose_headers=["Mcp-Session-Id", "Mcp-Protocol-Version"],
            ),
        )
    routes = [Route("/health", health, methods=["GET"])]
    routes += [Route(path, mcp, methods=["GET", "POST", "DELETE"]) for path in MCP_PATHS]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _transport_security(options: HttpOptions) -> TransportSecuritySettings | None:
    """DNS-rebinding protection for loopback binds (a web page must not reach a local proxy)."""
    if options.host not in LOOPBACK:
        return None
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *options.cors_origins]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class _SessionManagerApp:
    """The session manager as an ASGI endpoint (a class, so starlette routes raw ASGI calls to it)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)


class BodyLimit:
    """Refuse a request whose declared body is larger than `max_bytes`, with a JSON-RPC error and 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                error = {"code": -32600, "message": f"Request body too large (limit {self.max_bytes} bytes)"}
                payload = json.dumps({"jsonrpc": "2.0", "error": error, "id": None}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
        await self.app(scope, receive, send)
