"""The proxy's MCP server: one low-level `Server` whose handlers route to upstreams.

`Proxy` wires the pieces (catalog, router, upstream pool, forwarder) and builds the SDK `Server`
with explicit `on_*` handlers. Lists are served from the router's cached view with an opaque
offset cursor; calls, gets, reads and completions are forwarded to the owning upstream and their
results passed through untouched. Every handler failure goes through `to_mcp_error`. Each handler
is counted and timed into `metrics` (`_handler`), each forwarded call once more by upstream (`_recorded`).

Lifecycle: `async with Proxy(...)` opens the upstream pool and a task group for background
listing refreshes; leaving it closes every upstream.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import anyio.abc
import mcp_types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ListenHandler
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ServerEvent, ToolsListChanged
from pydantic import TypeAdapter, ValidationError

from pluggedin_proxy import __version__
from pluggedin_proxy.builtins import Builtins
from pluggedin_proxy.builtins.base import ActivitySource
from pluggedin_proxy.builtins.prompts import (
    CAPABILITIES,
    CAPABILITIES_ACTIVITY,
    capabilities_result,
    server_instructions,
)
from pluggedin_proxy.catalog.base import Activity, Catalog
from pluggedin_proxy.catalog.local import list_everything
from pluggedin_proxy.catalog.pins import PinStore
from pluggedin_proxy.errors import CatalogError, UnknownName
from pluggedin_proxy.metrics import NO_METRICS, Failure, Metrics
from pluggedin_proxy.naming import SEPARATOR
from pluggedin_proxy.proxy import instructions
from pluggedin_proxy.proxy.forwarding import (
    DEFAULT_CALL_TIMEOUT,
    Caller,
    Downstreams,
    Forwarder,
    clean_meta,
    client_of,
    handshake_profile,
    is_modern,
    profile_of,
    strip_server_info,
    to_mcp_error,
)
from pluggedin_proxy.proxy.limits import SlidingWindow
from pluggedin_proxy.proxy.results import DEFAULT_MAX_RESULT_BYTES, RESULT_URI_PREFIX, ResultStore
from pluggedin_proxy.proxy.router import Route, Router
from pluggedin_proxy.settings import Mode
from pluggedin_proxy.upstream.child import prestart
from pluggedin_proxy.upstream.policy import UpstreamPolicy
from pluggedin_proxy.upstream.pool import DEFAULT_STARTUP_TIMEOUT, Profile, Upstream, UpstreamPool
from pluggedin_proxy.upstream.stdio import LaneAnswer

if TYPE_CHECKING:
    from pluggedin_proxy.catalog.app_client import AppClient

__all__ = ["JsonResult", "Proxy", "ProxyServer"]

logger = logging.getLogger(__name__)

# Tool calls per minute per downstream session, as the TypeScript proxy allowed per process.
DEFAULT_RATE_LIMIT = 60
# JSON-RPC error code of a rate-limited call (implementation-defined server error range).
RATE_LIMITED = -32029

# Items per page of an aggregated list; large, because many clients never follow `nextCursor`.
PAGE_SIZE = 1000

# The MCP method of each activity-log action, as upstream metrics label it.
_ACTION_METHODS = {"tool_call": "tools/call", "prompt_get": "prompts/get", "resource_read": "resources/read"}

ListKind = Literal["tools", "prompts", "resources"]
_ALL_LISTS: tuple[ListKind, ...] = ("tools", "prompts", "resources")
_LIST_EVENTS: dict[ListKind, Callable[[], ServerEvent]] = {
    "tools": ToolsListChanged,
    "prompts": PromptsListChanged,
    "resources": ResourcesListChanged,
}
_LIST_CHANGES: dict[type, ListKind] = {
    types.ToolListChangedNotification: "tools",
    types.PromptListChangedNotification: "prompts",
    types.ResourceListChangedNotification: "resources",
}

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# What a forwarded request may come back as; input requests only from 2026-era upstreams.
_CALL_TOOL_RESULT: TypeAdapter[types.CallToolResult | types.InputRequiredResult] = TypeAdapter(
    types.CallToolResult | types.InputRequiredResult
)
_GET_PROMPT_RESULT: TypeAdapter[types.GetPromptResult | types.InputRequiredResult] = TypeAdapter(
    types.GetPromptResult | types.InputRequiredResult
)
_READ_RESOURCE_RESULT: TypeAdapter[types.ReadResourceResult | types.InputRequiredResult] = TypeAdapter(
    types.ReadResourceResult | types.InputRequiredResult
)


@dataclass(frozen=True, slots=True)
class JsonResult:
    """A tool result held as JSON (`Proxy.call_tool_json`)."""

    value: dict[str, Any]
    raw: bytes | None = None
    """`value` exactly as the server wrote it, when it passes through unchanged: sent as is."""

    @property
    def is_error(self) -> bool:
        return self.value.get("isError") is True


class ProxyServer(Server[Any]):
    """The SDK's low-level server, announcing `listChanged` for tools, prompts and resources."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        # The HTTP session manager calls this without options; default to announcing list changes.
        options = notification_options or NotificationOptions(
            prompts_changed=True, resources_changed=True, tools_changed=True
        )
        return super().create_initialization_options(options, experimental_capabilities, extensions)


class Proxy:
    """The whole proxy: catalog, routing, upstream pool and the MCP server in front of them."""

    def __init__(
        self,
        catalog_factory: Callable[[UpstreamPool, Callable[[], Profile]], Catalog],
        *,
        mode: Mode = "local",
        app: AppClient | None = None,
        prefix: bool = True,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        max_result_size: int = DEFAULT_MAX_RESULT_BYTES,
        policy: UpstreamPolicy | None = None,
        pins: PinStore | None = None,
        instructions: str | None = None,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.mode: Mode = mode
        self.metrics = metrics
        self.instructions = instructions or server_instructions(mode)
        self.rate_limit = SlidingWindow(rate_limit)
        self.results = ResultStore(max_result_size)
        self.downstreams = Downstreams()
        self.forwarder = Forwarder(
            self.downstreams, startup_timeout=startup_timeout, call_timeout=call_timeout, policy=policy
        )
        self.pool = self.forwarder.pool
        self._policy = policy
        self._profile: Profile = frozenset()
        self.catalog = catalog_factory(self.pool, lambda: self._profile)
        self.forwarder.on_list_changed = self._upstream_list_changed
        self.forwarder.on_new_upstream(self._refresh_listing_soon)
        self.router = Router(self.catalog, prefix=prefix, pins=pins)
        self.builtins = Builtins(self, app)
        self._builtin_tools = tuple(types.Tool.model_validate(t) for t in self.builtins.listed)
        self._builtin_json = [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in self._builtin_tools]
        self._tool_json: tuple[int, list[dict[str, Any]]] | None = None
        self._tool_page: tuple[list[dict[str, Any]], tuple[types.Tool, ...]] | None = None
        self.server = self._build_server()
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Proxy:
        self._stack = AsyncExitStack()
        await self._stack.enter_async_context(self.pool)
        await self._stack.enter_async_context(self.catalog)
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        if self.mode == "app" and not (self._policy is not None and self._policy.allowed_commands):
            self._tg.start_soon(self._start_likely_servers)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._stack is not None and self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._stack.aclose()

    def _build_server(self) -> ProxyServer:
        server = ProxyServer(
            "pluggedin-mcp",
            version=__version__,
            title="plugged.in MCP proxy",
            instructions=self.instructions,
            on_list_tools=self._handler("tools/list", self.list_tools),
            on_call_tool=self._handler("tools/call", self.call_tool),
            on_list_prompts=self._handler("prompts/list", self.list_prompts),
            on_get_prompt=self._handler("prompts/get", self.get_prompt),
            on_list_resources=self._handler("resources/list", self.list_resources),
            on_list_resource_templates=self._handler("resources/templates/list", self.list_resource_templates),
            on_read_resource=self._handler("resources/read", self.read_resource),
            on_subscribe_resource=self._handler("resources/subscribe", self.subscribe_resource),
            on_unsubscribe_resource=self._handler("resources/unsubscribe", self.unsubscribe_resource),
            on_completion=self._handler("completion/complete", self.complete),
            on_subscriptions_listen=ListenHandler(self.forwarder.bus),
            get_tool_input_schema=self._tool_input_schema,
        )
        server.add_request_handler(
            "logging/setLevel", types.SetLevelRequestParams, self._handler("logging/setLevel", self.set_level)
        )
        return server

    def _handler(
        self, method: str, handler: Callable[[ServerRequestContext[Any], Any], Awaitable[Any]]
    ) -> Callable[[ServerRequestContext[Any], Any], Awaitable[Any]]:
        """Wrap `handler` (serving `method`): failures mapped through `to_mcp_error`, outcome and time counted."""

        async def handle(ctx: ServerRequestContext[Any], params: Any) -> Any:
            if not is_modern(ctx):  # a 2026-era client hears changes on its listen stream instead
                self.downstreams.remember(ctx.session)
            self._profile = profile_of(ctx)
            started = time.monotonic()
            failure: Failure | None = "cancelled"  # kept only if neither branch below runs
            try:
                result = await handler(ctx, params)
                failure = "tool" if getattr(result, "is_error", False) else None
                return result
            except Exception as exc:
                failure = "jsonrpc"
                raise to_mcp_error(exc) from exc
            finally:
                self.metrics.request(method, time.monotonic() - started, failure)

        return handle

    # Lists

    async def list_tools(self, ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult | dict[str, Any]:
        if is_modern(ctx):
            # A typed result: the SDK adds the 2026 era's cache hints and `resultType` to those only.
            page, cursor = _paginate(await self._all_tools(), params)
            return types.ListToolsResult(tools=page, next_cursor=cursor)
        # The handshake era takes the tools as the view holds them in JSON: nothing is built per request.
        page_json, cursor = _paginate(await self._all_tools_json(), params)
        return {"tools": page_json, "nextCursor": cursor} if cursor else {"tools": page_json}

    async def _all_tools_json(self) -> list[dict[str, Any]]:
        """The built-ins, then every server's tools, as JSON; rebuilt only when the view changed."""
        try:
            view = await self.router.view()
        except CatalogError as exc:
            # The built-ins work without the catalog; a client must not lose them too.
            logger.warning("listing only the built-in tools: %s", exc)
            return self._builtin_json
        cached = self._tool_json
        if cached is None or cached[0] != view.version:
            shadowed = [t["name"] for t in view.tool_wire if t["name"] in self.builtins]
            if shadowed:
                logger.warning("hiding server tools named like built-ins: %s", ", ".join(shadowed))
            listed = self._builtin_json + [t for t in view.tool_wire if t["name"] not in self.builtins]
            cached = self._tool_json = (view.version, listed)
        return cached[1]

    async def _all_tools(self) -> tuple[types.Tool, ...]:
        """`_all_tools_json` as typed tools (for 2026-era clients), made once per view."""
        listed = await self._all_tools_json()
        cached = self._tool_page
        if cached is None or cached[0] is not listed:
            typed = tuple(types.Tool.model_validate(t) for t in listed[len(self._builtin_json) :])
            cached = self._tool_page = (listed, self._builtin_tools + typed)
        return cached[1]

    async def list_prompts(self, ctx: ServerRequestContext[Any], params: Any) -> types.ListPromptsResult:
        page, cursor = _paginate(await self._all_prompts(), params)
        return types.ListPromptsResult(prompts=page, next_cursor=cursor)

    async def _all_prompts(self) -> tuple[types.Prompt, ...]:
        """The capabilities prompt, the servers' instructions prompts, then the servers' own prompts."""
        try:
            servers = await self.catalog.servers()
            prompts = await self.router.prompts()
        except CatalogError as exc:
            logger.warning("listing only the proxy's own prompt: %s", exc)
            return (CAPABILITIES,)
        return (CAPABILITIES, *instructions.prompts_for(servers), *prompts)

    async def list_resources(self, ctx: ServerRequestContext[Any], params: Any) -> types.ListResourcesResult:
        page, cursor = _paginate(await self.router.resources(), params)
        return types.ListResourcesResult(resources=page, next_cursor=cursor)

    async def list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: Any
    ) -> types.ListResourceTemplatesResult:
        page, cursor = _paginate(await self.router.templates(), params)
        return types.ListResourceTemplatesResult(resource_templates=page, next_cursor=cursor)

    def _tool_input_schema(self, name: str) -> Any:
        """A listed tool's input schema, from the last view (the 2026 HTTP layer checks `Mcp-Param-*` with it)."""
        builtin = self.builtins.schema(name)
        if builtin is not None:
            return builtin
        view = self.router.current
        tool = view.tools_by_name.get(name) if view is not None else None
        return tool.input_schema if tool is not None else None

    def _retry_safe(self, name: str) -> bool:
        """Whether a tool may run twice: its server says it only reads, or running it again changes nothing."""
        view = self.router.current
        tool = view.tools_by_name.get(name) if view is not None else None
        hints = tool.annotations if tool is not None else None
        return hints is not None and bool(hints.read_only_hint or hints.idempotent_hint)

    # Requests routed to one upstream

    async def call_tool(self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        self._check_rate(client_of(ctx))
        if params.name in self.builtins:
            return await self.builtins.call(params.name, params.arguments)
        route = await self.router.tool(params.name)
        upstream_params = params.model_copy(update={"name": route.name, "meta": clean_meta(params.meta)})
        request = types.CallToolRequest(params=upstream_params)
        result = await self._recorded(
            "tool_call",
            route,
            self.forwarder.send(
                ctx, route.server, request, _CALL_TOOL_RESULT, retry_safe=self._retry_safe(params.name)
            ),
        )
        return self.results.fit(result, params.name) if isinstance(result, types.CallToolResult) else result

    async def call_tool_json(
        self, session: ServerSession, request_id: types.RequestId, params: dict[str, Any], progress: ProgressFnT | None
    ) -> JsonResult:
        """`call_tool` for a handshake-era client whose request is held as JSON (see `passthrough.py`).

        The same checks, routing, limits and records as `call_tool`, but a stdio upstream gets the
        arguments as they came and its result goes back as it came (only its `serverInfo` stamp
        removed, and cut if oversized). `progress` is set when the client asked for progress.

        Raises:
            MCPError: as `call_tool` would answer.
        """
        started = time.monotonic()
        failure: Failure | None = "cancelled"
        try:
            result = await self._call_tool_json(session, request_id, params, progress)
            failure = "tool" if result.is_error else None
            return result
        except Exception as exc:
            failure = "jsonrpc"
            raise to_mcp_error(exc) from exc
        finally:
            self.metrics.request("tools/call", time.monotonic() - started, failure)

    async def _call_tool_json(
        self, session: ServerSession, request_id: types.RequestId, params: dict[str, Any], progress: ProgressFnT | None
    ) -> JsonResult:
        self._check_rate(getattr(session, "_connection", None) or session)
        name = params["name"]
        if name in self.builtins:
            builtin = await self.builtins.call(name, params.get("arguments"))
            return JsonResult(builtin.model_dump(by_alias=True, mode="json", exclude_none=True))
        route = await self.router.tool(name)
        upstream_params = {key: value for key, value in params.items() if key != "_meta"}
        upstream_params["name"] = route.name
        if meta := clean_meta(params.get("_meta")):
            upstream_params["_meta"] = meta

        async def transmit(upstream: Upstream, report: ProgressFnT) -> JsonResult:
            if upstream.lane is None or upstream.modern:
                # An HTTP or SSE upstream: through its SDK session, as `call_tool` does.
                request = types.CallToolRequest(params=types.CallToolRequestParams.model_validate(upstream_params))
                sent = strip_server_info(await self.forwarder.request(upstream, request, _CALL_TOOL_RESULT, report))
                if isinstance(sent, types.CallToolResult):
                    sent = self.results.fit(sent, name)
                return JsonResult(sent.model_dump(by_alias=True, mode="json", exclude_none=True))

            async def relay(note: dict[str, Any]) -> None:
                await report(note.get("progress", 0), note.get("total"), note.get("message"))

            answer = await upstream.lane.request("tools/call", upstream_params, relay if progress else None)
            return self._tool_result_json(answer, name, route)

        caller = Caller(session, None)  # a stdio connection: server-to-client requests need no related id
        result: JsonResult = await self._recorded(
            "tool_call",
            route,
            self.forwarder.forward(
                caller,
                route.server,
                handshake_profile(session.client_capabilities),
                getattr(session, "_connection", None),
                transmit,
                retry_safe=self._retry_safe(name),
                progress=progress or _no_progress,
            ),
        )
        return result

    def _tool_result_json(self, answer: LaneAnswer, name: str, route: Route) -> JsonResult:
        """The `result` of an upstream's JSON answer to `tools/call`, checked, unstamped and cut to size.

        When nothing needed changing, the result's bytes as the server wrote them come with it.
        """
        message, raw = answer.message, answer.raw_result
        if "result" not in message:
            error = message.get("error")
            try:
                data = types.ErrorData.model_validate(error)
            except ValidationError:
                raise MCPError(
                    types.INTERNAL_ERROR, f"server {route.server.name!r} answered with a malformed error"
                ) from None
            raise MCPError(data.code, data.message, data.data)
        result: dict[str, Any] = message["result"]
        if not isinstance(result, dict) or not isinstance(result.get("content"), list):
            raw = None
            try:
                result = _CALL_TOOL_RESULT.validate_python(result).model_dump(
                    by_alias=True, mode="json", exclude_none=True
                )
            except ValidationError:
                raise MCPError(
                    types.INTERNAL_ERROR, f"server {route.server.name!r} answered with an invalid tool result"
                ) from None
        meta = result.get("_meta")
        if isinstance(meta, dict) and types.SERVER_INFO_META_KEY in meta:
            raw = None
            result = {**result, "_meta": {k: v for k, v in meta.items() if k != types.SERVER_INFO_META_KEY}}
            if not result["_meta"]:
                del result["_meta"]
        if self.results.limit and answer.size > self.results.limit:
            typed = types.CallToolResult.model_validate(result)
            fitted = self.results.fit(typed, name)
            if fitted is not typed:
                raw = None
                result = fitted.model_dump(by_alias=True, mode="json", exclude_none=True)
        return JsonResult(result, raw)

    def _check_rate(self, client: Any) -> None:
        wait = self.rate_limit.acquire(client)
        if wait is not None:
            raise MCPError(
                RATE_LIMITED,
                f"Rate limit exceeded: at most {self.rate_limit.limit} tool calls per minute per session; "
                f"try again in {max(1, round(wait))} s.",
                data={"retryAfter": max(1, round(wait))},
            )

    async def get_prompt(self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> Any:
        if params.name == CAPABILITIES.name:
            started = time.monotonic()
            result = capabilities_result({tool["name"] for tool in self.builtins.listed}, self.mode)
            self._record_builtin("prompt_get", CAPABILITIES_ACTIVITY, params.name, started)
            return result
        if params.name.endswith(SEPARATOR + instructions.PROMPT_SUFFIX):
            owner = next((s for s in await self.catalog.servers() if instructions.prompt_name(s) == params.name), None)
            if owner is not None and owner.instructions is not None:
                return instructions.prompt_result(owner)
        route = await self.router.prompt(params.name)
        upstream_params = params.model_copy(update={"name": route.name, "meta": clean_meta(params.meta)})
        request = types.GetPromptRequest(params=upstream_params)
        return await self._recorded(
            "prompt_get", route, self.forwarder.send(ctx, route.server, request, _GET_PROMPT_RESULT)
        )

    async def read_resource(self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams) -> Any:
        if params.uri.startswith(RESULT_URI_PREFIX):
            kept = self.results.read(params.uri)
            if kept is None:
                raise MCPError(
                    types.INVALID_PARAMS,
                    f"Resource not found (kept results expire): {params.uri}",
                    data={"uri": params.uri},
                )
            return kept
        try:
            route = await self.router.resource(params.uri)
        except UnknownName:
            # -32602 is what the specification prescribes for an unknown resource.
            raise MCPError(
                types.INVALID_PARAMS, f"Resource not found: {params.uri}", data={"uri": params.uri}
            ) from None
        upstream_params = params.model_copy(update={"meta": clean_meta(params.meta)})
        request = types.ReadResourceRequest(params=upstream_params)
        return await self._recorded(
            "resource_read", route, self.forwarder.send(ctx, route.server, request, _READ_RESOURCE_RESULT)
        )

    async def _recorded(self, action: str, route: Route, call: Awaitable[ResultT]) -> ResultT:
        """Await `call`, timing it for the upstream metrics and noting it in the catalog's activity log.

        The log never delays or fails the call.
        """
        started = time.monotonic()
        error: str | None = None
        failure: Failure | None = "cancelled"  # kept only if no branch below runs
        try:
            result = await call
        except MCPError as exc:
            error, failure = exc.error.message, "jsonrpc"
            raise
        except Exception as exc:
            error, failure = str(exc) or type(exc).__name__, "unavailable"
            raise
        else:
            failure = None
            if getattr(result, "is_error", False):
                error, failure = "the tool reported an error", "tool"
            return result
        finally:
            self.metrics.upstream_request(
                route.server.name, _ACTION_METHODS.get(action, action), time.monotonic() - started, failure
            )
            self.catalog.record(
                Activity(
                    action=action,
                    server_name=route.server.name,
                    server_uuid=route.server.id,
                    item_name=route.name,
                    success=error is None,
                    execution_ms=int((time.monotonic() - started) * 1000),
                    error=error,
                )
            )

    def _record_builtin(self, action: str, source: ActivitySource, item: str, started: float) -> None:
        self.catalog.record(
            Activity(
                action=action,
                server_name=source.server_name,
                server_uuid=source.server_uuid,
                item_name=item,
                success=True,
                execution_ms=int((time.monotonic() - started) * 1000),
            )
        )

    async def subscribe_resource(self, ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams) -> Any:
        return await self._forward_subscription(ctx, params, types.SubscribeRequest)

    async def unsubscribe_resource(self, ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams) -> Any:
        return await self._forward_subscription(ctx, params, types.UnsubscribeRequest)

    async def _forward_subscription(self, ctx: ServerRequestContext[Any], params: Any, request_type: Any) -> Any:
        """Pass (un)subscribe to the resource's owner; an owner that cannot subscribe is simply not asked."""
        route = await self.router.resource(params.uri)
        upstream = await self.forwarder.upstream(ctx, route.server)
        caps = upstream.capabilities.resources
        if caps is not None and caps.subscribe:
            upstream_params = params.model_copy(update={"meta": clean_meta(params.meta)})
            await self.forwarder.send(ctx, route.server, request_type(params=upstream_params), types.EmptyResult)
        return types.EmptyResult()

    async def complete(self, ctx: ServerRequestContext[Any], params: types.CompleteRequestParams) -> Any:
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            route = await self.router.prompt(ref.name)
            upstream_ref: Any = ref.model_copy(update={"name": route.name})
        else:
            view = await self.router.view()
            found = view.route_template(ref.uri)
            if found is None:
                raise UnknownName("resource template", ref.uri)
            route, upstream_ref = found, ref
        upstream = await self.forwarder.upstream(ctx, route.server)
        if upstream.capabilities.completions is None:
            return types.CompleteResult(completion=types.Completion(values=[]))
        upstream_params = params.model_copy(update={"ref": upstream_ref, "meta": clean_meta(params.meta)})
        return await self.forwarder.send(
            ctx, route.server, types.CompleteRequest(params=upstream_params), types.CompleteResult
        )

    async def set_level(self, ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams) -> Any:
        await self.forwarder.set_level(params.level)
        return types.EmptyResult()

    # What the built-ins may ask of the proxy

    def builtin_names(self) -> list[str]:
        return [tool["name"] for tool in self.builtins.listed]

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `func` in the proxy's task group, outliving the request that started it."""
        assert self._tg is not None, "the proxy is not running"
        self._tg.start_soon(func)

    async def _start_likely_servers(self) -> None:
        """App mode: ask the App for its servers now, and start a few stdio ones early (see `upstream/child.py`).

        A local config's servers are started by the command line, before it loads the SDK; the App's are
        known only once it has answered.
        """
        try:
            servers = await self.catalog.servers()
        except Exception as exc:  # a head start only: the first request reports the App's failure
            logger.debug("could not ask the App for its servers at start: %s", exc)
            return
        prestart(servers)

    # Keeping listings fresh

    def _refresh_listing_soon(self, upstream: Upstream) -> None:
        """Re-list a server once it is connected: a saved or App listing may be out of date."""
        if self._tg is not None and not upstream.listed:
            self._tg.start_soon(self._refresh_listing, upstream)

    async def _refresh_listing(self, upstream: Upstream) -> None:
        try:
            listing = await list_everything(upstream)
        except Exception as exc:
            logger.debug("could not re-list %r: %s", upstream.spec.name, exc)
            return
        if self.catalog.update(upstream.spec.id, listing):
            logger.info("the offer of %r changed since it was last listed", upstream.spec.name)
            await self.announce_list_changed()

    async def _upstream_list_changed(self, server_id: str, notification: types.ServerNotification) -> None:
        """Re-list the server, then pass its news on, even if the listing looks the same to us."""
        live = self.pool.live(server_id)
        if live:
            try:
                self.catalog.update(server_id, await list_everything(live[0]))
            except Exception as exc:
                logger.debug("could not re-list %r: %s", live[0].spec.name, exc)
                self.catalog.invalidate(server_id)
        else:
            self.catalog.invalidate(server_id)
        kind = _LIST_CHANGES.get(type(notification))
        await self.announce_list_changed((kind,) if kind is not None else _ALL_LISTS)

    async def announce_list_changed(self, kinds: Sequence[ListKind] = _ALL_LISTS) -> None:
        """Tell every downstream session and 2026 listen stream that these lists may have changed."""
        for kind in kinds:
            await self.forwarder.bus.publish(_LIST_EVENTS[kind]())

        async def send(session: Any) -> None:
            for kind in kinds:
                await getattr(session, f"send_{kind.removesuffix('s')}_list_changed")()

        await self.downstreams.broadcast(send)


async def _no_progress(progress: float, total: float | None, message: str | None) -> None:
    """Progress for a request that did not ask for it: dropped."""


def _paginate(items: Sequence[ItemT], params: Any) -> tuple[list[ItemT], str | None]:
    cursor = getattr(params, "cursor", None) if params is not None else None
    start = 0
    if cursor:
        try:
            start = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("offset:"))
        except ValueError:
            raise MCPError(types.INVALID_PARAMS, "Invalid cursor") from None
        if start < 0 or start > len(items):
            raise MCPError(types.INVALID_PARAMS, "Invalid cursor")
    end = start + PAGE_SIZE
    next_cursor = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return list(items[start:end]), next_cursor
