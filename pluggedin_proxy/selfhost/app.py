"""The self-hosted plugged.in App: the App API served from a local config file.

`SelfHostedApp` reads the config when built (so a bad file fails at once) and exposes a Starlette
application, `asgi`. Its lifespan is the whole life story:

1. open the SQLite store in the data directory and record when each server was first seen;
2. open an `UpstreamPool` and a `LocalCatalog` over the config (listings persisted in the data
   directory, so a restart answers without spawning anything);
3. start discovering every server in the background; routes that need listings wait for it, while
   `/api/mcp-servers` and `/health` answer at once;
4. on shutdown, cancel discovery, close the pool (stopping any server it still runs) and the store.

Routes are thin: authentication is the `BearerAuth` middleware, the handlers live in
`catalog_routes`, `notification_routes` and `clipboard_routes`, and every error is JSON with an
`error` string.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pluggedin_proxy.catalog import LocalCatalog, load_config
from pluggedin_proxy.selfhost import catalog_routes, clipboard_routes, notification_routes
from pluggedin_proxy.selfhost.auth import BearerAuth
from pluggedin_proxy.selfhost.directory import ServerDirectory
from pluggedin_proxy.selfhost.identity import profile_uuid, server_uuid
from pluggedin_proxy.selfhost.shapes import ServerRecord
from pluggedin_proxy.selfhost.store import AppStore
from pluggedin_proxy.upstream import Upstream, UpstreamPool

__all__ = ["DB_FILE", "SelfHostedApp", "create_app"]

logger = logging.getLogger(__name__)

DB_FILE = "app.db"
HEALTH_PATH = "/health"

CatalogHandler = Callable[[Request, ServerDirectory], Awaitable[Response]]
StoreHandler = Callable[[Request, AppStore, str], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Running:
    """What exists while the lifespan runs."""

    store: AppStore
    directory: ServerDirectory


class SelfHostedApp:
    """The App API over one local config file; `asgi` is the application to serve."""

    def __init__(
        self, config_path: Path, *, api_keys: Sequence[str], data_dir: Path, discovery_timeout: float = 30.0
    ) -> None:
        """Read the config now.

        Raises:
            ConfigError: the config file is missing or invalid.
            ValueError: no API key was given.
        """
        if not api_keys:
            raise ValueError("the self-hosted App needs at least one API key")
        self.config_path = config_path.resolve()
        self.data_dir = data_dir
        self.profile_uuid = profile_uuid(self.config_path)
        self.specs = load_config(self.config_path)
        self._descriptions = _descriptions(self.config_path)
        self._discovery_timeout = discovery_timeout
        self._running: _Running | None = None
        self.asgi = Starlette(
            routes=self._routes(),
            middleware=[Middleware(BearerAuth, api_keys=list(api_keys), public_paths=[HEALTH_PATH])],
            exception_handlers={HTTPException: _http_error, Exception: _internal_error},
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self._running is not None:
            raise RuntimeError("this self-hosted App is already running")
        store = await anyio.to_thread.run_sync(AppStore, self.data_dir / DB_FILE)
        try:
            records = await self._records(store)
            async with UpstreamPool(_DiscoveryHooks()) as pool:
                catalog = LocalCatalog(
                    self.config_path,
                    pool,
                    discovery_timeout=self._discovery_timeout,
                    cache_dir=self.data_dir,
                    specs=self.specs,
                )
                async with catalog, anyio.create_task_group() as tg:
                    directory = ServerDirectory(records, catalog, pool)
                    self._running = _Running(store, directory)
                    tg.start_soon(_discover_at_start, directory)
                    try:
                        yield
                    finally:
                        self._running = None
                        tg.cancel_scope.cancel()
        finally:
            await anyio.to_thread.run_sync(store.close)

    async def _records(self, store: AppStore) -> list[ServerRecord]:
        uuids = [(server_uuid(self.config_path, spec.id), spec.id) for spec in self.specs]
        created = await anyio.to_thread.run_sync(store.first_seen, str(self.config_path), uuids)
        return [
            ServerRecord(
                spec=spec,
                uuid=uuid,
                profile_uuid=self.profile_uuid,
                created_at=created[uuid],
                description=self._descriptions.get(spec.id),
            )
            for spec, (uuid, _) in zip(self.specs, uuids, strict=True)
        ]

    def _state(self) -> _Running:
        if self._running is None:
            raise RuntimeError("the self-hosted App is not running (serve it with lifespan on)")
        return self._running

    def _routes(self) -> list[Route]:
        catalog = self._catalog_endpoint
        store = self._store_endpoint
        n = notification_routes
        c = clipboard_routes
        return [
            Route(HEALTH_PATH, self._health, methods=["GET"]),
            Route("/api/mcp-servers", catalog(catalog_routes.list_servers), methods=["GET"]),
            Route("/api/tools", catalog(catalog_routes.list_tools), methods=["GET"]),
            Route("/api/prompts", catalog(catalog_routes.list_prompts), methods=["GET"]),
            Route("/api/resources", catalog(catalog_routes.list_resources), methods=["GET"]),
            Route("/api/resource-templates", catalog(catalog_routes.list_resource_templates), methods=["GET"]),
            Route("/api/resolve/prompt", catalog(catalog_routes.resolve_prompt), methods=["GET"]),
            Route("/api/resolve/resource", catalog(catalog_routes.resolve_resource), methods=["GET"]),
            Route("/api/discover/{target}", catalog(catalog_routes.discover), methods=["POST"]),
            Route("/api/notifications/mcp-activity", store(n.report_activity), methods=["POST"]),
            Route("/api/notifications/mcp-activity", store(n.list_activity), methods=["GET"]),
            Route("/api/notifications", store(n.list_notifications), methods=["GET"]),
            Route("/api/notifications/custom", store(n.create_custom_notification), methods=["POST"]),
            Route("/api/notifications/{id}/completed", store(n.toggle_completed), methods=["PATCH"]),
            Route("/api/notifications/{id}", store(n.delete_notification), methods=["DELETE"]),
            Route("/api/clipboard", store(c.get_clipboard), methods=["GET"]),
            Route("/api/clipboard", store(c.set_clipboard), methods=["POST"]),
            Route("/api/clipboard", store(c.delete_clipboard), methods=["DELETE"]),
            Route("/api/clipboard/push", store(c.push_clipboard), methods=["POST"]),
            Route("/api/clipboard/pop", store(c.pop_clipboard), methods=["POST"]),
        ]

    def _catalog_endpoint(self, handler: CatalogHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(request, self._state().directory)

        return endpoint

    def _store_endpoint(self, handler: StoreHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(request, self._state().store, self.profile_uuid)

        return endpoint

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "servers": len(self.specs)})


def create_app(
    config_path: Path, *, api_keys: Sequence[str], data_dir: Path, discovery_timeout: float = 30.0
) -> Starlette:
    """The App API over `config_path` as an ASGI application (see `SelfHostedApp`)."""
    return SelfHostedApp(config_path, api_keys=api_keys, data_dir=data_dir, discovery_timeout=discovery_timeout).asgi


async def _discover_at_start(directory: ServerDirectory) -> None:
    try:
        listed = await directory.listings()
    except Exception:  # a discovery bug must not take the App down; the routes retry on demand
        logger.exception("discovering the configured servers failed")
        return
    failed = [record.spec.name for record, listing in listed if listing.error is not None]
    logger.info("discovered %d server(s)%s", len(listed), f"; failed: {', '.join(failed)}" if failed else "")


class _DiscoveryHooks:
    """Upstream hooks for discovery-only sessions: nothing to relay to, so requests are refused."""

    async def sampling(
        self, upstream: Upstream, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        return _refused("sampling")

    async def elicitation(
        self, upstream: Upstream, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        return _refused("elicitation")

    async def roots(self, upstream: Upstream) -> types.ListRootsResult | types.ErrorData:
        return _refused("roots")

    async def log(self, upstream: Upstream, params: types.LoggingMessageNotificationParams) -> None:
        logger.debug("server %r logged (%s): %s", upstream.spec.name, params.level, params.data)

    async def notification(self, upstream: Upstream, notification: types.ServerNotification) -> None:
        logger.debug("server %r sent %s", upstream.spec.name, type(notification).__name__)


def _refused(what: str) -> types.ErrorData:
    return types.ErrorData(code=types.METHOD_NOT_FOUND, message=f"the self-hosted App does not serve {what}")


def _descriptions(config_path: Path) -> dict[str, str]:
    """Each server's optional `description` field, which `load_config` does not keep."""
    data: Any = json.loads(config_path.read_text(encoding="utf-8"))
    servers = data.get("mcpServers", data.get("servers")) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        return {}
    return {
        key: entry["description"]
        for key, entry in servers.items()
        if isinstance(entry, dict) and isinstance(entry.get("description"), str)
    }


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises `exc` after this response, and uvicorn logs it with its traceback.
    return JSONResponse({"error": "Internal server error"}, status_code=500)
