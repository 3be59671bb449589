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
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.abc
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, TypeAdapter

from pluggedin_proxy.errors import (
    ProxyError,
    ToolWithheld,
    UnknownName,
    UpstreamError,
    UpstreamGone,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from pluggedin_proxy.upstream.policy import UpstreamPolicy
from pluggedin_proxy.upstream.pool import DEFAULT_STARTUP_TIMEOUT, MODERN, Profile, Upstream, UpstreamPool
from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = [
    "Caller",
    "Downstreams",
    "Forwarder",
    "clean_meta",
    "client_of",
    "handshake_profile",
    "is_modern",
    "profile_of",
    "strip_server_info",
    "to_mcp_error",
]

logger = logging.getLogger(__name__)

ResultT = TypeVar("ResultT", bound=BaseModel)
T = TypeVar("T")

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
# Seconds a forwarded request may go without an answer or a progress notification.
DEFAULT_CALL_TIMEOUT = 300.0

_MODERN_PROFILE: Profile = frozenset({MODERN})
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


def is_modern(ctx: ServerRequestContext[Any]) -> bool:
    """Whether the downstream request is of the 2026 era."""
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def profile_of(ctx: ServerRequestContext[Any]) -> Profile:
    """What the upstream session serving this request must look like: its era and client capabilities.

    The capabilities are the downstream client's own, so an upstream never counts on a feature the
    client lacks: in the handshake era it would send requests the client cannot answer, in the
    2026 era it would return input requests the client cannot fulfil.
    """
    if is_modern(ctx):
        return _MODERN_PROFILE  # capabilities travel with each request (see `Forwarder.send`)
    return handshake_profile(ctx.session.client_capabilities)


def handshake_profile(caps: types.ClientCapabilities | None) -> Profile:
    """The handshake-era profile mirroring a client's declared capabilities (sampling, elicitation, roots)."""
    if caps is None:
        return frozenset()
    offered = {"sampling": caps.sampling, "elicitation": caps.elicitation, "roots": caps.roots}
    return frozenset(name for name, cap in offered.items() if cap is not None)


def to_mcp_error(exc: BaseException) -> MCPError:
    """The JSON-RPC error a downstream client gets for `exc`."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, UnknownName):
        return MCPError(types.INVALID_PARAMS, _sentence(str(exc)), data={"kind": exc.kind, "name": exc.name})
    if isinstance(exc, ToolWithheld):
        return MCPError(types.INVALID_PARAMS, _sentence(str(exc)), data={"name": exc.name, "server": exc.server_name})
    if isinstance(exc, UpstreamError):
        data: dict[str, Any] = {"server": exc.server_name}
        if isinstance(exc, UpstreamGone | UpstreamTimeout | UpstreamUnavailable):
            data["retryable"] = True
        return MCPError(types.INTERNAL_ERROR, str(exc), data=data)
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

    def __init__(
        self,
        downstreams: Downstreams,
        *,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        policy: UpstreamPolicy | None = None,
    ) -> None:
        self.pool = UpstreamPool(self, startup_timeout=startup_timeout, policy=policy)
        self.call_timeout = call_timeout
        self.downstreams = downstreams
        self.on_list_changed: Callable[[str, types.ServerNotification], Awaitable[None]] | None = None
        self.log_level: types.LoggingLevel | None = None
        self.bus = InMemorySubscriptionBus()
        """Change events for 2026-era clients' `subscriptions/listen` streams."""
        self._seen: weakref.WeakSet[Upstream] = weakref.WeakSet()
        self._on_new_upstream: Callable[[Upstream], None] | None = None

    def on_new_upstream(self, callback: Callable[[Upstream], None]) -> None:
        """Call `callback` once for each upstream the first time a request uses it."""
        self._on_new_upstream = callback

    async def upstream(self, ctx: ServerRequestContext[Any], server: ServerSpec) -> Upstream:
        """The upstream session that serves `ctx`'s requests to `server`, connecting if needed."""
        # A 2026-era request has no session to keep a per-client upstream for; it shares.
        client = _connection_of(ctx.session) if not is_modern(ctx) else None
        return await self.connect(server, profile_of(ctx), client)

    async def connect(self, server: ServerSpec, profile: Profile, client: Any = None) -> Upstream:
        """The upstream session to `server` for `profile` (and `client`'s own if per-client), connecting if needed."""
        client = client if server.isolation == "per-client" else None
        upstream = await self.pool.get(server, profile, client)
        if upstream not in self._seen:
            self._seen.add(upstream)
            if self.log_level is not None and _takes_log_level(upstream):
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
        *,
        retry_safe: bool = True,
    ) -> ResultT:
        """Send `request` to `server` on behalf of the downstream request `ctx` (see `forward`)."""

        async def transmit(upstream: Upstream, progress: ProgressFnT) -> ResultT:
            sent = _declaring_capabilities(request, ctx) if upstream.modern else request
            return strip_server_info(await self.request(upstream, sent, result_type, progress))

        client = _connection_of(ctx.session) if not is_modern(ctx) else None
        caller = Caller(ctx.session, ctx.request_id)
        return await self.forward(
            caller,
            server,
            profile_of(ctx),
            client,
            transmit,
            retry_safe=retry_safe,
            progress=ctx.session.report_progress,
        )

    async def forward(
        self,
        caller: Caller,
        server: ServerSpec,
        profile: Profile,
        client: Any,
        transmit: Callable[[Upstream, ProgressFnT], Awaitable[T]],
        *,
        retry_safe: bool,
        progress: ProgressFnT,
    ) -> T:
        """Have `transmit` send `caller`'s request to `server` on the right upstream session; return its answer.

        At most the server's cap of calls is in flight at once; others queue. Progress from the
        upstream goes to `progress` and restarts the call's timeout. If the connection dies while the
        request is open, the request is sent once more to a fresh session when that is safe
        (`retry_safe`: it only reads, or its tool says it is read-only or idempotent); otherwise the
        client is told the server restarted and the request may or may not have taken effect.

        Raises:
            UpstreamGone: the connection died and the request was not (or could not be) retried.
            UpstreamTimeout: no answer or progress within the server's timeout.
            UpstreamUnavailable: the server is paused after failures, or too busy to queue for.
        """
        async with self.pool.gate(server).slot():
            try:
                return await self._forward_once(caller, server, profile, client, transmit, progress)
            except UpstreamGone as exc:
                if not retry_safe:
                    raise UpstreamGone(
                        f"server {server.name!r} stopped while handling the request (it may have crashed) and will be "
                        "restarted; the request may or may not have taken effect, so retry it only if that is safe",
                        server_name=server.name,
                    ) from exc
                logger.info("sending the request again to a fresh session of %r", server.name)
                return await self._forward_once(caller, server, profile, client, transmit, progress)

    async def _forward_once(
        self,
        caller: Caller,
        server: ServerSpec,
        profile: Profile,
        client: Any,
        transmit: Callable[[Upstream, ProgressFnT], Awaitable[T]],
        relay: ProgressFnT,
    ) -> T:
        upstream = await self.connect(server, profile, client)
        timeout = server.timeout or self.call_timeout
        upstream.inflight.append(caller)
        try:
            # Progress restarts the clock: a slow tool that says it is working is not cut off.
            with anyio.CancelScope(deadline=anyio.current_time() + timeout) as clock:

                async def report(progress: float, total: float | None, message: str | None) -> None:
                    clock.deadline = anyio.current_time() + timeout
                    await relay(progress, total, message)

                result = await transmit(upstream, report)
            if clock.cancelled_caught:
                raise self._timed_out(upstream, timeout)
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
            upstream.last_used = time.monotonic()
        if upstream.supervisor is not None:
            upstream.supervisor.succeeded()
        return result

    async def request(
        self, upstream: Upstream, request: Any, result_type: TypeAdapter[ResultT] | type[ResultT], report: ProgressFnT
    ) -> ResultT:
        """Send `request` on `upstream`'s SDK session (once more after listing tools if a 2026 server asks)."""
        try:
            return await upstream.session.send_request(request, result_type, progress_callback=report)
        except MCPError as exc:
            if exc.code != types.HEADER_MISMATCH or not upstream.modern:
                raise
            # The session sends `Mcp-Param-*` headers only for tools it has listed itself: list, then retry once.
            await _list_tools(upstream)
            return await upstream.session.send_request(request, result_type, progress_callback=report)

    def _timed_out(self, upstream: Upstream, timeout: float) -> UpstreamTimeout:
        name = upstream.spec.name
        if upstream.supervisor is not None:
            upstream.supervisor.failed(f"no answer within {timeout:g} s")
            if upstream.supervisor.state == "open":
                # A server that keeps hanging is restarted when its pause ends.
                self.pool.retire(upstream.spec.id)
        return UpstreamTimeout(
            f"server {name!r} did not answer within {timeout:g} s (the timeout restarts with each progress "
            "notification; set a longer 'timeout' for this server if its tools are slow)",
            server_name=name,
        )

    async def set_level(self, level: types.LoggingLevel) -> None:
        """Remember the client's log level and pass it to every live upstream that logs."""
        self.log_level = level
        for upstream in self.pool.live():
            if _takes_log_level(upstream):
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
        logger_name = params.logger or upstream.spec.name
        if upstream.inflight:
            # Through the session's own log method, which keeps to what the request asked for (2026 era).
            caller = upstream.inflight[-1]
            await _quietly(
                caller.session.send_log_message(
                    params.level, params.data, logger_name, related_request_id=caller.request_id
                )
            )
        else:
            await self.downstreams.broadcast(lambda s: s.send_log_message(params.level, params.data, logger_name))

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
            await self.bus.publish(ResourceUpdated(uri=notification.params.uri))
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


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _declaring_capabilities(request: Any, ctx: ServerRequestContext[Any]) -> Any:
    """`request` carrying the downstream client's declared capabilities, for a 2026-era upstream."""
    caps = ctx.session.client_capabilities
    declared = {} if caps is None else caps.model_dump(by_alias=True, mode="json", exclude_none=True)
    params = request.params
    meta = {**(params.meta or {}), types.CLIENT_CAPABILITIES_META_KEY: declared}
    return request.model_copy(update={"params": params.model_copy(update={"meta": meta})})


def _takes_log_level(upstream: Upstream) -> bool:
    """Whether `logging/setLevel` applies: a handshake-era upstream that logs (2026 asks per request)."""
    return not upstream.modern and upstream.capabilities.logging is not None


async def _list_tools(upstream: Upstream) -> None:
    """List the upstream's tools on its own session, every page, so the session knows their headers."""
    cursor: str | None = None
    for _ in range(100):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        cursor = (await upstream.session.list_tools(params=params)).next_cursor
        if not cursor:
            return


async def _quietly(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except (MCPError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
        logger.debug("could not relay a notification downstream: %s", exc)
