"""Forwarding one request upstream, and relaying what upstreams send back.

Requests. `Forwarder.send` sends a downstream request to the upstream that owns it, awaiting it
inline so a downstream cancel cancels the upstream call. Reserved connection-level `_meta` keys are
dropped (the upstream session stamps its own), progress is relayed to the caller's token, and the
upstream's `serverInfo` stamp is removed from the result. Upstream JSON-RPC errors pass through
with their code, message and data; a connection that dies mid-request retires the upstream so the
next request reconnects, and the caller gets a clear error.

Relays. Sampling, elicitation and roots requests from an upstream, and its log messages, go to the
downstream request that is waiting on that upstream (the newest one if several are), on that
request's stream. `list_changed` notifications refresh the catalog and are announced to every
downstream session; `resources/updated` is passed on.

Errors. `to_mcp_error` is the one place a failure becomes a JSON-RPC error.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.abc
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, TypeAdapter

from pluggedin_proxy.errors import ProxyError, UnknownName, UpstreamError, UpstreamGone
from pluggedin_proxy.upstream.pool import DEFAULT_STARTUP_TIMEOUT, Profile, Upstream, UpstreamPool
from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["Downstreams", "Forwarder", "clean_meta", "client_of", "profile_of", "to_mcp_error"]

logger = logging.getLogger(__name__)

ResultT = TypeVar("ResultT", bound=BaseModel)

# Connection-level keys the upstream session sets itself; forwarding ours would mislead it.
_CONNECTION_META_KEYS = frozenset(
    {
        types.PROTOCOL_VERSION_META_KEY,
        types.CLIENT_INFO_META_KEY,
        types.CLIENT_CAPABILITIES_META_KEY,
        "progress_token",
        "progressToken",
    }
)
_SESSION_GONE_MESSAGES = ("session terminated", "session not found")


def clean_meta(meta: Any) -> Any:
    """`_meta` without the reserved connection-level keys; user keys and trace context stay."""
    if not meta:
        return meta
    cleaned = {k: v for k, v in dict(meta).items() if k not in _CONNECTION_META_KEYS}
    return cleaned or None


def strip_server_info(result: ResultT) -> ResultT:
    """The result without the upstream's `serverInfo` stamp (the proxy stamps its own)."""
    meta = getattr(result, "meta", None)
    if meta and types.SERVER_INFO_META_KEY in meta:
        cleaned = {k: v for k, v in meta.items() if k != types.SERVER_INFO_META_KEY}
        return result.model_copy(update={"meta": cleaned or None})
    return result


def _connection_of(session: ServerSession) -> Any:
    # One per client; the session object is per message.
    return getattr(session, "_connection", None)


def client_of(ctx: ServerRequestContext[Any]) -> Any:
    """What identifies the downstream client of a request, for per-client limits."""
    return _connection_of(ctx.session) or ctx.session


def profile_of(ctx: ServerRequestContext[Any]) -> Profile:
    """The client capabilities an upstream may use to reach back through this request."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return frozenset()  # no server-to-client requests exist in this era
    caps = ctx.session.client_capabilities
    if caps is None:
        return frozenset()
    offered = {"sampling": caps.sampling, "elicitation": caps.elicitation, "roots": caps.roots}
    return frozenset(name for name, cap in offered.items() if cap is not None)


def to_mcp_error(exc: BaseException) -> MCPError:
    """The JSON-RPC error a downstream client gets for `exc`."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, UnknownName):
        code = types.INVALID_PARAMS
        return MCPError(code, str(exc).capitalize(), data={"kind": exc.kind, "name": exc.name})
    if isinstance(exc, UpstreamError):
        return MCPError(types.INTERNAL_ERROR, str(exc), data={"server": exc.server_name})
    if isinstance(exc, ProxyError):
        return MCPError(types.INTERNAL_ERROR, str(exc))
    logger.error("unexpected error while handling a request", exc_info=exc)
    return MCPError(types.INTERNAL_ERROR, "internal error in pluggedin-mcp (see its log for details)")


@dataclass(frozen=True, slots=True)
class Caller:
    """A downstream request waiting on an upstream: where relays for it go."""

    session: ServerSession
    request_id: types.RequestId | None


class Downstreams:
    """The downstream sessions seen so far, for notifications not tied to one request."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakKeyDictionary[Any, ServerSession] = weakref.WeakKeyDictionary()
        self._fallback: ServerSession | None = None

    def remember(self, session: ServerSession) -> None:
        connection = _connection_of(session)
        try:
            self._sessions[connection] = session
        except TypeError:
            self._fallback = session

    def sessions(self) -> list[ServerSession]:
        found = list(self._sessions.values())
        return found or ([self._fallback] if self._fallback is not None else [])

    async def broadcast(self, send: Callable[[ServerSession], Awaitable[None]]) -> None:
        for session in self.sessions():
            try:
                await send(session)
            except Exception as exc:  # a closed client must not stop the others hearing it
                logger.debug("could not notify a downstream session: %s", exc)


class Forwarder:
    """Sends requests to upstreams and serves the upstreams' requests and notifications."""

    def __init__(self, downstreams: Downstreams, *, startup_timeout: float = DEFAULT_STARTUP_TIMEOUT) -> None:
        self.pool = UpstreamPool(self, startup_timeout=startup_timeout)
        self.downstreams = downstreams
        self.on_list_changed: Callable[[str, types.ServerNotification], Awaitable[None]] | None = None
        self.log_level: types.LoggingLevel | None = None
        self._seen: weakref.WeakSet[Upstream] = weakref.WeakSet()
        self._on_new_upstream: Callable[[Upstream], None] | None = None

    def on_new_upstream(self, callback: Callable[[Upstream], None]) -> None:
        """Call `callback` once for each upstream the first time a request uses it."""
        self._on_new_upstream = callback

    async def upstream(self, server: ServerSpec, profile: Profile) -> Upstream:
        upstream = await self.pool.get(server, profile)
        if upstream not in self._seen:
            self._seen.add(upstream)
            if self.log_level is not None and upstream.capabilities.logging is not None:
                await self._set_level(upstream, self.log_level)
            if self._on_new_upstream is not None:
                self._on_new_upstream(upstream)
        return upstream

    async def send(
        self,
        ctx: ServerRequestContext[Any],
        server: ServerSpec,
        request: Any,
        result_type: TypeAdapter[ResultT] | type[ResultT],
    ) -> ResultT:
        """Send `request` to `server` on behalf of the downstream request `ctx`."""
        upstream = await self.upstream(server, profile_of(ctx))
        caller = Caller(ctx.session, ctx.request_id)
        session = ctx.session

        async def report(progress: float, total: float | None, message: str | None) -> None:
            await session.report_progress(progress, total, message)

        on_progress: ProgressFnT = report

        upstream.inflight.append(caller)
        try:
            result = await upstream.session.send_request(
                request,
                result_type,
                request_read_timeout_seconds=server.timeout,
                progress_callback=on_progress,
            )
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED or (
                exc.code == types.INVALID_REQUEST and exc.error.message.lower() in _SESSION_GONE_MESSAGES
            ):
                upstream.mark_dead(exc.error.message)
                raise UpstreamGone(
                    f"server {server.name!r} closed the connection while handling the request "
                    "(it may have crashed); it will be restarted on the next request",
                    server_name=server.name,
                ) from exc
            raise
        finally:
            upstream.inflight.remove(caller)
        return strip_server_info(result)

    async def set_level(self, level: types.LoggingLevel) -> None:
        """Remember the client's log level and pass it to every live upstream that logs."""
        self.log_level = level
        for upstream in self.pool.live():
            if upstream.capabilities.logging is not None:
                await self._set_level(upstream, level)

    async def _set_level(self, upstream: Upstream, level: types.LoggingLevel) -> None:
        try:
            await upstream.session.send_request(
                types.SetLevelRequest(params=types.SetLevelRequestParams(level=level)), types.EmptyResult
            )
        except MCPError as exc:
            logger.debug("server %r refused logging/setLevel: %s", upstream.spec.name, exc)

    # UpstreamHooks: what upstreams ask of the client, and what they announce.

    async def sampling(
        self, upstream: Upstream, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        request = types.CreateMessageRequest(params=params)
        if params.tools or params.tool_choice:
            return await self._relay(upstream, request, types.CreateMessageResultWithTools)
        return await self._relay(upstream, request, types.CreateMessageResult)

    async def elicitation(
        self, upstream: Upstream, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        return await self._relay(upstream, types.ElicitRequest(params=params), types.ElicitResult)

    async def roots(self, upstream: Upstream) -> types.ListRootsResult | types.ErrorData:
        return await self._relay(upstream, types.ListRootsRequest(), types.ListRootsResult)

    async def log(self, upstream: Upstream, params: types.LoggingMessageNotificationParams) -> None:
        if not params.logger:
            params = params.model_copy(update={"logger": upstream.spec.name})
        notification = types.LoggingMessageNotification(params=params)
        if upstream.inflight:
            caller = upstream.inflight[-1]
            await _quietly(caller.session.send_notification(notification, related_request_id=caller.request_id))
        else:
            await self.downstreams.broadcast(lambda s: s.send_notification(notification))

    async def notification(self, upstream: Upstream, notification: types.ServerNotification) -> None:
        if isinstance(
            notification,
            types.ToolListChangedNotification
            | types.PromptListChangedNotification
            | types.ResourceListChangedNotification,
        ):
            if self.on_list_changed is not None:
                await self.on_list_changed(upstream.spec.id, notification)
        elif isinstance(notification, types.ResourceUpdatedNotification):
            await self.downstreams.broadcast(lambda s: s.send_notification(notification))
        elif isinstance(notification, types.ElicitCompleteNotification) and upstream.inflight:
            caller = upstream.inflight[-1]
            await _quietly(caller.session.send_notification(notification, related_request_id=caller.request_id))

    async def _relay(self, upstream: Upstream, request: Any, result_type: type[ResultT]) -> ResultT | types.ErrorData:
        if not upstream.inflight:
            return types.ErrorData(
                code=types.INVALID_REQUEST,
                message="pluggedin-mcp can only relay this request while a client request to the server is open",
            )
        caller: Caller = upstream.inflight[-1]
        try:
            return await caller.session.send_request(
                request, result_type, metadata=ServerMessageMetadata(related_request_id=caller.request_id)
            )
        except MCPError as exc:
            return exc.error


async def _quietly(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except (MCPError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
        logger.debug("could not relay a notification downstream: %s", exc)
