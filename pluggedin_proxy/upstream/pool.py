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
The profile is the set of client capabilities (sampling, elicitation, roots) the upstream session
advertises, mirrored from the downstream client so an upstream never offers a feature the client
cannot serve.
"""

from __future__ import annotations

import logging
import math
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
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from pluggedin_proxy import __version__
from pluggedin_proxy.errors import UpstreamStartFailed
from pluggedin_proxy.upstream.connect import StderrTail, open_transport
from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["DEFAULT_STARTUP_TIMEOUT", "Profile", "Upstream", "UpstreamHooks", "UpstreamPool"]

logger = logging.getLogger(__name__)

Profile = frozenset[str]
"""Client capabilities an upstream session advertises: a subset of sampling, elicitation, roots."""

# Spawn plus handshake; generous because `npx`/`uvx` servers may download packages on first start.
DEFAULT_STARTUP_TIMEOUT = 60.0
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
    initialize_result: types.InitializeResult
    started_at: float = field(default_factory=time.monotonic)
    inflight: list[Any] = field(default_factory=list)
    """Downstream requests currently waiting on this upstream; owned by the proxy layer."""
    listed: bool = False
    """Whether its whole offer has been listed on this session (so there is no need to list it again)."""
    _done: anyio.Event = field(default_factory=anyio.Event)
    _dead_reason: str | None = None

    @property
    def alive(self) -> bool:
        return not self._done.is_set()

    @property
    def capabilities(self) -> types.ServerCapabilities:
        return self.initialize_result.capabilities

    def mark_dead(self, reason: str) -> None:
        """Retire this upstream; the next `UpstreamPool.get` connects afresh."""
        if self.alive:
            self._dead_reason = reason
            logger.info("upstream %r is gone: %s", self.spec.name, reason)
            self._done.set()

    def close(self) -> None:
        self._done.set()


class UpstreamPool:
    """Sessions to upstream servers, opened lazily and shared per connection key and profile."""

    def __init__(self, hooks: UpstreamHooks, *, startup_timeout: float = DEFAULT_STARTUP_TIMEOUT) -> None:
        self._hooks = hooks
        self._startup_timeout = startup_timeout
        self._live: dict[tuple[str, str, Profile], Upstream] = {}
        self._connecting: dict[tuple[str, str, Profile], anyio.Lock] = {}
        self._exit_stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> UpstreamPool:
        if self._exit_stack is not None:
            raise RuntimeError("an UpstreamPool cannot be entered twice")
        self._exit_stack = AsyncExitStack()
        self._tg = await self._exit_stack.enter_async_context(anyio.create_task_group())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._exit_stack is not None
        for upstream in list(self._live.values()):
            upstream.close()
        self._live.clear()
        # Connection tasks unwind their transports (stopping children) as their upstreams close.
        await self._exit_stack.__aexit__(None, None, None)

    async def get(self, spec: ServerSpec, profile: Profile = frozenset()) -> Upstream:
        """A ready upstream for `spec`, connecting (with retries) if none is alive.

        Raises:
            UpstreamStartFailed: the server could not be started or connected.
        """
        key = (spec.id, spec.connection_key, profile)
        upstream = self._live.get(key)
        if upstream is not None and upstream.alive:
            return upstream
        lock = self._connecting.setdefault(key, anyio.Lock())
        async with lock:
            upstream = self._live.get(key)
            if upstream is not None and upstream.alive:
                return upstream
            upstream = await self._connect_with_retries(spec, profile)
            # Sessions made with connection settings that no longer apply are closed.
            self.retire(spec.id, keep=spec.connection_key)
            self._live[key] = upstream
            return upstream

    def retire(self, server_id: str, *, keep: str | None = None) -> None:
        """Close one server's upstreams, except those with connection key `keep`."""
        for key, upstream in list(self._live.items()):
            if key[0] == server_id and key[1] != keep:
                upstream.close()
                del self._live[key]

    def live(self, server_id: str | None = None) -> list[Upstream]:
        """The upstreams alive now, all or one server's."""
        return [u for (sid, _, _), u in self._live.items() if u.alive and (server_id is None or sid == server_id)]

    async def _connect_with_retries(self, spec: ServerSpec, profile: Profile) -> Upstream:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(START_ATTEMPTS),
            wait=wait_exponential_jitter(
                multiplier=START_BACKOFF_INITIAL, max=START_BACKOFF_MAX, jitter=START_BACKOFF_INITIAL
            ),
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._connect(spec, profile)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self, spec: ServerSpec, profile: Profile) -> Upstream:
        assert self._tg is not None, "use the pool inside `async with`"
        tail = StderrTail(spec.name)
        try:
            try:
                upstream: Upstream = await self._tg.start(self._serve, spec, profile, tail)
            except BaseExceptionGroup as group:
                raise _unwrap(group) from None
        except UpstreamStartFailed:
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
        *,
        task_status: anyio.abc.TaskStatus[Upstream] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        timeout = self._startup_timeout
        started = False
        holder: list[Upstream] = []
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + timeout) as startup_scope:
                async with open_transport(spec, tail) as (read, write):
                    transport_done = anyio.Event()
                    relay_send, relay_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(_pump, read, relay_send, transport_done)
                        session = ClientSession(
                            relay_recv,
                            write,
                            client_info=types.Implementation(name="pluggedin-mcp", version=__version__),
                            message_handler=self._message_handler(holder),
                            logging_callback=self._logging_callback(holder),
                            **self._request_callbacks(holder, profile),
                        )
                        async with session:
                            result = await session.initialize()
                            upstream = Upstream(
                                spec=spec, profile=profile, session=session, tail=tail, initialize_result=result
                            )
                            holder.append(upstream)
                            startup_scope.deadline = math.inf
                            started = True
                            task_status.started(upstream)
                            async with anyio.create_task_group() as watch:
                                watch.start_soon(_mark_dead_when, transport_done, upstream)
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
    if not isinstance(exc, UpstreamStartFailed):
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
