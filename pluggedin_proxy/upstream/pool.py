"""The upstream pool: live sessions to upstream MCP servers, opened on first use.

Lifecycle. `UpstreamPool` is an async context manager owning one task group. `await pool.get(spec,
profile)` returns a ready `Upstream`, connecting if needed; concurrent callers for the same key wait
on one connection attempt (single flight). Each connection lives in its own task in the pool's group,
which enters the transport and the SDK `ClientSession`, runs `initialize`, hands the `Upstream` back,
and then waits until the upstream is closed or its transport ends. A startup deadline bounds the
spawn plus handshake; transient start failures are retried with exponential backoff and jitter.

Death. A pump between the transport and the session notices the transport's read side ending (the
child exited, the pipe closed, the HTTP stream dropped) and marks the upstream dead; callers may
also mark it dead when an HTTP upstream says its session is gone. A dead upstream is dropped from
the pool and the next `get` connects afresh. Leaving the pool closes every upstream: stdio children
are stopped with their whole process group, each wait bounded.

Keys. An upstream is shared by every request for the same `(server id, connection key, profile)`.
In the handshake era the profile is the set of client capabilities (sampling, elicitation, roots)
the upstream session advertises, mirrored from the downstream client so an upstream never sends a
request the client cannot serve.

Eras. The profile `{MODERN}` connects with `server/discover`, so the upstream answers in the 2026
era (input requests come back as results, logs only when a request asks). That era declares client
capabilities on every request, so one session serves every 2026 client: each request carries its
own client's capabilities (see `_negotiate`). A server that cannot discover (every handshake-only
server) is remembered, and 2026 requests for it use a handshake session without client
capabilities, since a 2026 client cannot take requests from a server.
"""

from __future__ import annotations

import logging
import math
import random
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.abc
import mcp_types as types
from mcp import ClientSession
from mcp.client import ClientRequestContext
from mcp.client.session import LoggingFnT, MessageHandlerFnT
from mcp.client.subscriptions import listen
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp.shared.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from pluggedin_proxy import __version__
from pluggedin_proxy.errors import UpstreamRefused, UpstreamStartFailed, UpstreamUnavailable
from pluggedin_proxy.upstream.child import PRESTART_HOLD
from pluggedin_proxy.upstream.child import discard as discard_early_children
from pluggedin_proxy.upstream.connect import StderrTail, open_transport
from pluggedin_proxy.upstream.policy import UpstreamPolicy
from pluggedin_proxy.upstream.reaper import ChildReaper
from pluggedin_proxy.upstream.spec import ServerSpec
from pluggedin_proxy.upstream.stdio import Lane
from pluggedin_proxy.upstream.supervisor import DEFAULT_MAX_CONCURRENCY, Gate, Supervisor

__all__ = ["DEFAULT_STARTUP_TIMEOUT", "MODERN", "Profile", "Upstream", "UpstreamHooks", "UpstreamPool"]

logger = logging.getLogger(__name__)

Profile = frozenset[str]
"""Client capabilities an upstream session advertises (a subset of sampling, elicitation, roots), and `MODERN`."""

MODERN = "modern"
"""The profile member asking for a 2026-era upstream session."""

# Spawn plus handshake; generous because `npx`/`uvx` servers may download packages on first start.
DEFAULT_STARTUP_TIMEOUT = 60.0
# A restart's budget: the server is installed by then, so it should not take long.
RESTART_TIMEOUT = 30.0
# `per-client` sessions per server at once, and how long one may sit unused before it is closed (seconds).
DEFAULT_MAX_CLIENTS = 32
DEFAULT_CLIENT_IDLE_TIMEOUT = 600.0
# How often idle sessions are looked for (seconds), and the stderr lines a status shows.
REAP_INTERVAL = 1.0
STATUS_STDERR_LINES = 5
# Start attempts before giving up, and the backoff between them (seconds).
START_ATTEMPTS = 3
START_BACKOFF_INITIAL = 0.2
START_BACKOFF_MAX = 2.0


class UpstreamHooks(Protocol):
    """What the proxy layer provides to serve an upstream's requests and notifications."""

    async def sampling(
        self, upstream: Upstream, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData: ...

    async def elicitation(
        self, upstream: Upstream, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData: ...

    async def roots(self, upstream: Upstream) -> types.ListRootsResult | types.ErrorData: ...

    async def log(self, upstream: Upstream, params: types.LoggingMessageNotificationParams) -> None: ...

    async def notification(self, upstream: Upstream, notification: types.ServerNotification) -> None: ...


@dataclass(eq=False)
class Upstream:
    """A live, initialized session with one upstream server."""

    spec: ServerSpec
    profile: Profile
    session: ClientSession
    tail: StderrTail
    negotiated: types.InitializeResult | types.DiscoverResult
    """What the upstream answered to `initialize` (handshake era) or `server/discover` (2026 era)."""
    inflight: list[Any] = field(default_factory=list)
    """Downstream requests currently waiting on this upstream; owned by the proxy layer."""
    listed: bool = False
    """Whether its whole offer has been listed on this session (so there is no need to list it again)."""
    last_used: float = field(default_factory=time.monotonic)
    """When a request last used it (monotonic), for idle reaping; kept by the proxy layer."""
    client: int | None = None
    """For `per-client` isolation, the downstream connection it belongs to."""
    supervisor: Supervisor | None = None
    lane: Lane | None = None
    """For a stdio server, requests sent as JSON beside the session (see `stdio.py`)."""
    _done: anyio.Event = field(default_factory=anyio.Event)
    _dead_reason: str | None = None

    @property
    def alive(self) -> bool:
        return not self._done.is_set()

    @property
    def capabilities(self) -> types.ServerCapabilities:
        return self.negotiated.capabilities

    @property
    def instructions(self) -> str | None:
        return self.negotiated.instructions

    @property
    def modern(self) -> bool:
        """Whether this session speaks the 2026 era (no server-to-client requests, no `logging/setLevel`)."""
        return isinstance(self.negotiated, types.DiscoverResult)

    def mark_dead(self, reason: str) -> None:
        """Retire this upstream; the next `UpstreamPool.get` connects afresh."""
        if self.alive:
            self._dead_reason = reason
            logger.info("upstream %r is gone: %s", self.spec.name, reason)
            self._done.set()
            if self.supervisor is not None:
                self.supervisor.failed(reason)

    def close(self) -> None:
        self._done.set()


_Key = tuple[str, str, Profile, int | None]
"""(server id, connection key, profile, downstream client for `per-client` servers)."""


class UpstreamPool:
    """Sessions to upstream servers, opened lazily and shared per connection key and profile."""

    def __init__(
        self,
        hooks: UpstreamHooks,
        *,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        policy: UpstreamPolicy | None = None,
    ) -> None:
        self._hooks = hooks
        self._startup_timeout = startup_timeout
        self._policy = policy
        self._child_reaper = ChildReaper()
        self._live: dict[_Key, Upstream] = {}
        self._connecting: dict[_Key, anyio.Lock] = {}
        self._supervisors: dict[str, Supervisor] = {}
        self._gates: dict[str, Gate] = {}
        self._watched_clients: set[int] = set()
        self._reaper = anyio.CancelScope()
        self._early_hold = anyio.CancelScope()
        self._handshake_only: set[tuple[str, str]] = set()
        """Servers (id, connection key) that answered `server/discover` with an error."""
        self._exit_stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> UpstreamPool:
        if self._exit_stack is not None:
            raise RuntimeError("an UpstreamPool cannot be entered twice")
        self._exit_stack = AsyncExitStack()
        # Entered before the task group, so it closes after every connection task has stopped its child.
        await self._exit_stack.enter_async_context(self._child_reaper)
        self._tg = await self._exit_stack.enter_async_context(anyio.create_task_group())
        self._tg.start_soon(self._reap_idle)
        self._tg.start_soon(self._discard_early_children)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._exit_stack is not None
        self._reaper.cancel()
        self._early_hold.cancel()
        for upstream in list(self._live.values()):
            upstream.close()
        self._live.clear()
        # Connection tasks unwind their transports (stopping children) as their upstreams close.
        await self._exit_stack.__aexit__(None, None, None)
        discard_early_children()

    async def get(self, spec: ServerSpec, profile: Profile = frozenset(), client: Any = None) -> Upstream:
        """A ready upstream for `spec`, connecting (with retries) if none is alive.

        `client` is the downstream connection asking; a `per-client` server gets a session of its own
        for each, closed when that connection ends.

        Raises:
            UpstreamStartFailed: the server could not be started or connected.
            UpstreamUnavailable: its circuit is open, or its per-client sessions are at their cap.
        """
        if MODERN in profile and (spec.id, spec.connection_key) in self._handshake_only:
            profile = frozenset()
        token = id(client) if spec.isolation == "per-client" and client is not None else None
        key = (spec.id, spec.connection_key, profile, token)
        upstream = self._live.get(key)
        if upstream is not None and upstream.alive:
            return upstream
        supervisor = self.supervisor(spec)
        supervisor.admit()
        lock = self._connecting.setdefault(key, anyio.Lock())
        async with lock:
            upstream = self._live.get(key)
            if upstream is not None and upstream.alive:
                return upstream
            supervisor.admit()  # a probe that failed while this request waited has opened the circuit again
            if token is not None:
                self._make_room(spec)
            first = supervisor.starts == 0
            supervisor.starting()
            try:
                upstream = await self._connect_with_retries(spec, profile, first=first)
            except _NoModernEra as exc:
                logger.info("server %r speaks only the handshake era (%s)", spec.name, exc)
                self._handshake_only.add((spec.id, spec.connection_key))
                return await self.get(spec, frozenset(), client)
            except UpstreamStartFailed as exc:
                supervisor.failed(str(exc))
                raise
            supervisor.succeeded()
            upstream.supervisor = supervisor
            upstream.client = token
            # Sessions made with connection settings that no longer apply are closed.
            self.retire(spec.id, keep=spec.connection_key)
            self._live[key] = upstream
            if token is not None:
                self._watch(client, token)
            return upstream

    async def _discard_early_children(self) -> None:
        """Stop servers started early (by the CLI) that no connection adopted in time."""
        with self._early_hold:
            await anyio.sleep(PRESTART_HOLD)
            discard_early_children(wait=False)

    def supervisor(self, spec: ServerSpec) -> Supervisor:
        """The health and circuit breaker of `spec`'s server."""
        supervisor = self._supervisors.get(spec.id)
        if supervisor is None:
            supervisor = self._supervisors[spec.id] = Supervisor(spec.name)
        return supervisor

    def gate(self, spec: ServerSpec) -> Gate:
        """The cap on calls in flight to `spec`'s server."""
        limit = spec.max_concurrency or DEFAULT_MAX_CONCURRENCY
        gate = self._gates.get(spec.id)
        if gate is None or gate.limit != limit:
            gate = self._gates[spec.id] = Gate(spec.name, limit=limit)
        return gate

    def status(self, spec: ServerSpec) -> dict[str, Any]:
        """What `doctor` and `/health` show about one server: state, failures, restarts, recent stderr."""
        supervisor = self._supervisors.get(spec.id)
        status = supervisor.status() if supervisor is not None else {"state": "idle", "failures": 0, "restarts": 0}
        live = self.live(spec.id)
        status["live"] = len(live)
        if supervisor is not None and supervisor.tail is not None:
            status["stderr"] = supervisor.tail.lines(last=STATUS_STDERR_LINES)
        gate = self._gates.get(spec.id)
        if gate is not None:
            status["inFlight"] = gate.in_flight
            status["queued"] = gate.waiting
        return status

    def release(self, upstream: Upstream) -> None:
        """Close one session now (the next `get` for its key connects afresh)."""
        for key, live in list(self._live.items()):
            if live is upstream:
                del self._live[key]
        upstream.close()

    def release_client(self, token: int) -> None:
        """Close the `per-client` sessions of a downstream connection that ended."""
        self._watched_clients.discard(token)
        for key, upstream in list(self._live.items()):
            if key[3] == token:
                upstream.close()
                del self._live[key]
        for key in [k for k in self._connecting if k[3] == token]:
            del self._connecting[key]

    def _watch(self, client: Any, token: int) -> None:
        if token in self._watched_clients:
            return
        exit_stack = getattr(client, "exit_stack", None)
        if exit_stack is None:
            logger.debug("cannot tell when this client disconnects; its sessions end when idle")
            return
        self._watched_clients.add(token)
        exit_stack.callback(self.release_client, token)

    def _make_room(self, spec: ServerSpec) -> None:
        """Keep `spec`'s per-client sessions under its cap, closing the least recently used idle one."""
        cap = spec.max_clients or DEFAULT_MAX_CLIENTS
        mine = [(k, u) for k, u in self._live.items() if k[0] == spec.id and k[3] is not None and u.alive]
        if len(mine) < cap:
            return
        idle = sorted((u.last_used, k) for k, u in mine if not u.inflight)
        if not idle:
            raise UpstreamUnavailable(
                f"server {spec.name!r} already runs {len(mine)} per-client sessions, all busy (its limit is {cap})",
                server_name=spec.name,
            )
        key = idle[0][1]
        self._live.pop(key).close()

    async def _reap_idle(self) -> None:
        """Close sessions unused for longer than their idle timeout (never one with a request in flight)."""
        with self._reaper:
            while True:
                await anyio.sleep(REAP_INTERVAL)
                now = time.monotonic()
                for key, upstream in list(self._live.items()):
                    timeout = upstream.spec.idle_timeout
                    if timeout is None and key[3] is not None:
                        timeout = DEFAULT_CLIENT_IDLE_TIMEOUT
                    if timeout is not None and not upstream.inflight and now - upstream.last_used > timeout:
                        logger.info("closing an idle session of %r", upstream.spec.name)
                        del self._live[key]
                        upstream.close()
                        if upstream.supervisor is not None and not self.live(key[0]):
                            upstream.supervisor.stopped()

    def retire(self, server_id: str, *, keep: str | None = None) -> None:
        """Close one server's upstreams, except those with connection key `keep`."""
        for key, upstream in list(self._live.items()):
            if key[0] == server_id and key[1] != keep:
                upstream.close()
                del self._live[key]
        self._handshake_only = {k for k in self._handshake_only if k[0] != server_id or k[1] == keep}

    def live(self, server_id: str | None = None) -> list[Upstream]:
        """The upstreams alive now, all or one server's."""
        return [u for key, u in self._live.items() if u.alive and (server_id is None or key[0] == server_id)]

    async def _connect_with_retries(self, spec: ServerSpec, profile: Profile, *, first: bool) -> Upstream:
        # The first start may download the server (`npx`, `uvx`); a restart has it already.
        timeout = self._startup_timeout if first else min(self._startup_timeout, RESTART_TIMEOUT)
        for attempt in range(START_ATTEMPTS):
            try:
                return await self._connect(spec, profile, timeout)
            except Exception as exc:
                if attempt + 1 == START_ATTEMPTS or not _is_transient(exc):
                    raise
            # Exponential backoff with jitter, so restarts of many servers do not move in step.
            backoff = min(START_BACKOFF_MAX, START_BACKOFF_INITIAL * 2**attempt)
            await anyio.sleep(backoff + random.uniform(0, START_BACKOFF_INITIAL))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self, spec: ServerSpec, profile: Profile, timeout: float) -> Upstream:
        assert self._tg is not None, "use the pool inside `async with`"
        tail = self.supervisor(spec).tail = StderrTail(spec.name)
        try:
            try:
                upstream: Upstream = await self._tg.start(self._serve, spec, profile, tail, timeout)
            except BaseExceptionGroup as group:
                raise _unwrap(group) from None
        except (UpstreamStartFailed, _NoModernEra):
            raise
        except OSError as exc:
            raise UpstreamStartFailed(
                f"server {spec.name!r} could not be started ({spec.target}): {exc.strerror or exc}",
                server_name=spec.name,
            ) from exc
        except MCPError as exc:
            raise UpstreamStartFailed(
                f"server {spec.name!r} failed its MCP handshake: {exc.error.message}{_stderr_hint(tail)}",
                server_name=spec.name,
            ) from exc
        except Exception as exc:
            raise UpstreamStartFailed(
                f"server {spec.name!r} could not be connected ({spec.target}): {_describe(exc)}{_stderr_hint(tail)}",
                server_name=spec.name,
            ) from exc
        logger.info("connected to upstream %r (%s)", spec.name, spec.target)
        return upstream

    async def _serve(
        self,
        spec: ServerSpec,
        profile: Profile,
        tail: StderrTail,
        timeout: float,
        *,
        task_status: anyio.abc.TaskStatus[Upstream] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        started = False
        holder: list[Upstream] = []
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + timeout) as startup_scope:
                async with open_transport(spec, tail, policy=self._policy, reaper=self._child_reaper) as streams:
                    transport_done = anyio.Event()
                    relay_send, relay_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(_pump, streams.read, relay_send, transport_done)
                        session = ClientSession(
                            relay_recv,
                            streams.write,
                            client_info=types.Implementation(name="pluggedin-mcp", version=__version__),
                            message_handler=self._message_handler(holder),
                            logging_callback=self._logging_callback(holder),
                            **self._request_callbacks(holder, profile),
                        )
                        async with session:
                            negotiated = await _negotiate(session, modern=MODERN in profile)
                            upstream = Upstream(
                                spec=spec,
                                profile=profile,
                                session=session,
                                tail=tail,
                                negotiated=negotiated,
                                lane=streams.lane,
                            )
                            holder.append(upstream)
                            startup_scope.deadline = math.inf
                            started = True
                            task_status.started(upstream)
                            async with anyio.create_task_group() as watch:
                                watch.start_soon(_mark_dead_when, transport_done, upstream)
                                if upstream.modern:
                                    watch.start_soon(self._listen, upstream)
                                await upstream._done.wait()
                                watch.cancel_scope.cancel()
                        tg.cancel_scope.cancel()
            if startup_scope.cancelled_caught and not started:
                raise UpstreamStartFailed(
                    f"server {spec.name!r} did not finish starting within {timeout:g}s{_stderr_hint(tail)}",
                    server_name=spec.name,
                )
        except Exception as exc:
            if not started:
                raise
            # After start, a failing transport must not take the pool's task group down.
            logger.debug("upstream %r closed with an error: %s", spec.name, _describe(exc))
        finally:
            for upstream in holder:
                upstream.mark_dead(upstream._dead_reason or "closed")

    async def _listen(self, upstream: Upstream) -> None:
        """Hear a 2026-era upstream's list changes, which it sends only on a `subscriptions/listen` stream."""
        caps = upstream.capabilities
        tools = bool(caps.tools and caps.tools.list_changed)
        prompts = bool(caps.prompts and caps.prompts.list_changed)
        resources = bool(caps.resources and caps.resources.list_changed)
        if not (tools or prompts or resources):
            return
        try:
            async with listen(
                upstream.session,
                tools_list_changed=tools,
                prompts_list_changed=prompts,
                resources_list_changed=resources,
            ) as subscription:
                async for event in subscription:
                    notification = _as_notification(event)
                    if notification is not None:
                        await self._hooks.notification(upstream, notification)
        except Exception as exc:  # the upstream may refuse or drop the stream; calls still work
            logger.debug("no change notifications from %r: %s", upstream.spec.name, _describe(exc))

    def _message_handler(self, holder: list[Upstream]) -> MessageHandlerFnT:
        async def handle(message: types.ServerNotification | Exception) -> None:
            if isinstance(message, Exception):
                logger.debug("upstream transport reported: %s", _describe(message))
                return
            if holder and not isinstance(message, types.ProgressNotification | types.LoggingMessageNotification):
                await self._hooks.notification(holder[0], message)

        return handle

    def _logging_callback(self, holder: list[Upstream]) -> LoggingFnT:
        async def log(params: types.LoggingMessageNotificationParams) -> None:
            if holder:
                await self._hooks.log(holder[0], params)

        return log

    def _request_callbacks(self, holder: list[Upstream], profile: Profile) -> dict[str, Any]:
        hooks = self._hooks

        def unavailable() -> types.ErrorData:
            return types.ErrorData(code=types.INTERNAL_ERROR, message="the proxy's upstream session is not ready")

        async def sampling(
            ctx: ClientRequestContext, params: types.CreateMessageRequestParams
        ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
            return await hooks.sampling(holder[0], params) if holder else unavailable()

        async def elicitation(
            ctx: ClientRequestContext, params: types.ElicitRequestParams
        ) -> types.ElicitResult | types.ErrorData:
            return await hooks.elicitation(holder[0], params) if holder else unavailable()

        async def roots(ctx: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
            return await hooks.roots(holder[0]) if holder else unavailable()

        callbacks: dict[str, Any] = {}
        if "sampling" in profile:
            callbacks["sampling_callback"] = sampling
        if "elicitation" in profile:
            callbacks["elicitation_callback"] = elicitation
        if "roots" in profile:
            callbacks["list_roots_callback"] = roots
        return callbacks


class _NoModernEra(Exception):
    """The server refused `server/discover`: it speaks only the handshake era."""


async def _negotiate(session: ClientSession, *, modern: bool) -> types.InitializeResult | types.DiscoverResult:
    if not modern:
        return await session.initialize()
    try:
        result = await session.discover()
    except MCPError as exc:
        if exc.code == types.CONNECTION_CLOSED:
            raise  # the server died; that is a start failure, not an answer
        # Method not found, an HTTP 4xx for a request without a session, or no common version.
        raise _NoModernEra(exc.error.message) from exc
    except RuntimeError as exc:  # the versions it offers are none of ours
        raise _NoModernEra(str(exc)) from exc
    _keep_client_capabilities(session)
    return result


def _keep_client_capabilities(session: ClientSession) -> None:
    """Let a request's own `clientCapabilities` stand instead of the session's (2026 era).

    The SDK stamps every request with the capabilities derived from the session's callbacks; the
    proxy forwards each downstream client's declaration instead, exactly as that client made it.
    """
    stamp = session._stamp

    def restamp(data: dict[str, Any], options: Any) -> None:
        meta = (data.get("params") or {}).get("_meta") or {}
        declared = meta.get(types.CLIENT_CAPABILITIES_META_KEY)
        stamp(data, options)
        if declared is not None:
            data["params"]["_meta"][types.CLIENT_CAPABILITIES_META_KEY] = declared

    session._stamp = restamp


def _as_notification(event: ServerEvent) -> types.ServerNotification | None:
    """The handshake-era notification saying what a 2026 listen-stream event says."""
    if isinstance(event, ToolsListChanged):
        return types.ToolListChangedNotification()
    if isinstance(event, PromptsListChanged):
        return types.PromptListChangedNotification()
    if isinstance(event, ResourcesListChanged):
        return types.ResourceListChangedNotification()
    if isinstance(event, ResourceUpdated):
        return types.ResourceUpdatedNotification(params=types.ResourceUpdatedNotificationParams(uri=event.uri))
    return None


async def _pump(source: Any, sink: anyio.abc.ObjectSendStream[SessionMessage | Exception], done: anyio.Event) -> None:
    """Relay the transport's messages to the session; the source ending means the upstream is gone."""
    try:
        async with sink:
            async for item in source:
                await sink.send(item)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
        pass
    finally:
        done.set()


async def _mark_dead_when(event: anyio.Event, upstream: Upstream) -> None:
    await event.wait()
    upstream.mark_dead("its connection closed")


def _is_transient(exc: BaseException) -> bool:
    """Start failures worth another attempt: not a missing program, not a spent startup budget."""
    if not isinstance(exc, UpstreamStartFailed) or isinstance(exc, UpstreamRefused):
        return False
    cause = exc.__cause__
    if isinstance(cause, FileNotFoundError | PermissionError | NotADirectoryError):
        return False
    return "did not finish starting" not in str(exc)


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    """The one meaningful exception inside nested task-group wrappers, or the group itself."""
    inner = [e for e in group.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
    if len(inner) == 1:
        return _unwrap(inner[0]) if isinstance(inner[0], BaseExceptionGroup) else inner[0]
    return group


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        if inner:
            return _describe(inner[0])
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "…"


def _stderr_hint(tail: StderrTail) -> str:
    last = [line for line in tail.lines(last=3) if line.strip()]
    return f" (stderr: {last[-1][:200]})" if last else ""
