"""The proxy served over HTTP: Streamable HTTP on `/mcp` (and `/`), legacy SSE on `/sse`, `/health`.

Every HTTP session gets its own MCP session (the SDK's session manager mints the ids, expires idle
sessions and caps their number); `stateless` answers each request on its own. Both protocol eras
are served on the same endpoint; older clients use the HTTP+SSE transport (`http/sse.py`). Middleware
order, outermost first: CORS, body size, API-key auth; then each MCP endpoint counts the request
against its credential's rate limit before anything reads the body. With Prometheus metrics, `/metrics`
(`http/metrics.py`) is guarded by the same keys as the MCP paths.
"""

from __future__ import annotations

import contextlib
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
from pluggedin_proxy.http.events import MemoryEventStore
from pluggedin_proxy.http.limits import BodyLimit, RateLimit
from pluggedin_proxy.http.metrics import METRICS_PATH, metrics_route
from pluggedin_proxy.http.sse import LegacySse
from pluggedin_proxy.metrics import PrometheusMetrics
from pluggedin_proxy.proxy.limits import SlidingWindow
from pluggedin_proxy.proxy.server import Proxy

__all__ = ["HttpOptions", "create_http_app"]

MCP_PATHS = ("/mcp", "/")
SSE_PATHS = ("/sse", "/messages")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOOPBACK_HOST_NAMES = ("127.0.0.1", "localhost", "[::1]")
# How long a client waits before reconnecting a dropped SSE stream (the `retry:` field), in ms.
SSE_RETRY_MS = 1000


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
    """Most Streamable HTTP sessions open at once, and (counted apart) most legacy SSE streams."""
    session_idle_timeout: float = 30 * 60
    """Seconds a Streamable HTTP session may stay idle before it expires; 0: never."""
    rate_limit: int = 0
    """Requests per minute to the MCP paths per API key (per client address without keys); 0: no limit."""


def create_http_app(proxy: Proxy, options: HttpOptions) -> Starlette:
    """The ASGI app serving `proxy`; its lifespan runs the MCP session manager."""
    manager = StreamableHTTPSessionManager(
        app=proxy.server,
        json_response=options.json_response,
        stateless=options.stateless,
        security_settings=_transport_security(options),
        max_request_body_size=options.max_body_bytes,
        session_idle_timeout=None if options.stateless else options.session_idle_timeout or None,
        max_sessions=None if options.stateless else options.max_sessions,
        # Handshake-era SSE streams can be resumed after a dropped connection (`Last-Event-ID`).
        event_store=None if options.stateless else MemoryEventStore(),
        retry_interval=None if options.stateless else SSE_RETRY_MS,
    )

    sse = LegacySse(
        proxy.server,
        security=_transport_security(options),
        max_body_bytes=options.max_body_bytes,
        max_sessions=options.max_sessions,
    )
    requests = SlidingWindow(options.rate_limit)
    mcp = RateLimit(manager.handle_request, requests)

    async def health(request: Request) -> JSONResponse:
        sessions = 0 if options.stateless else len(manager._server_instances)
        body: dict[str, Any] = {
            "status": "ok",
            "transport": "streamable-http",
            "sessions": sessions + sse.sessions,
            "sseSessions": sse.sessions,
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
                    **proxy.pool.status(spec),
                    "error": listing.error if (listing := listings.get(spec.id)) is not None else None,
                }
                for spec in servers
            ]
            if (pins := proxy.router.pins) is not None:
                changed = view.changed_tools if view is not None else {}
                body["pinning"] = {
                    "enforced": pins.enforce,
                    "changedTools": [
                        {"name": name, "server": change.server_name, "withheld": pins.enforce}
                        for name, change in changed.items()
                    ],
                }
        return JSONResponse(body, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    middleware = [Middleware(BodyLimit, max_bytes=options.max_body_bytes)]
    if options.host in LOOPBACK:
        # The MCP paths check Host themselves (the SDK); /health and /metrics name servers too.
        middleware.insert(0, Middleware(LoopbackHostOnly, paths=("/health", METRICS_PATH)))
    if options.api_keys:
        failures = SlidingWindow(options.rate_limit)
        guarded = MCP_PATHS + SSE_PATHS + (METRICS_PATH,)
        middleware.append(Middleware(ApiKeyAuth, keys=options.api_keys, paths=guarded, failures=failures))
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
    if isinstance(proxy.metrics, PrometheusMetrics):

        def sessions() -> dict[str, int]:
            return {"streamable-http": 0 if options.stateless else len(manager._server_instances), "sse": sse.sessions}

        routes.append(metrics_route(proxy, proxy.metrics, sessions))
    routes += [Route(path, mcp, methods=["GET", "POST", "DELETE"]) for path in MCP_PATHS]
    routes += [
        Route("/sse", RateLimit(sse.stream, requests), methods=["GET"]),
        Route("/messages", RateLimit(sse.post, requests), methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


class LoopbackHostOnly:
    """Refuse requests to `paths` whose Host is not a loopback name: a web page must not read them.

    A page on another site can make a browser send requests to 127.0.0.1 under its own host name
    (DNS rebinding); the Host header gives that away.
    """

    def __init__(self, app: ASGIApp, paths: Sequence[str]) -> None:
        self.app = app
        self.paths = tuple(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") in self.paths:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOOPBACK_HOST_NAMES:
                await JSONResponse({"error": "Invalid Host header"}, status_code=421)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _transport_security(options: HttpOptions) -> TransportSecuritySettings | None:
    """DNS-rebinding protection for loopback binds (a web page must not reach a local proxy)."""
    if options.host not in LOOPBACK:
        return None
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *options.cors_origins]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)
