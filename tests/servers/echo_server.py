"""A low-level MCP server that the proxy's tests run as a real upstream process.

It is built on `mcp.server.Server`, not `MCPServer`, so nothing checks tool names and a test can serve names a
client would reject (`weird/name:x`, a name past 64 characters). Every tool exists to trigger one upstream
behaviour the proxy must relay: plain results, `isError` results, JSON-RPC errors, progress, cancellation,
logging, sampling, elicitation, roots, list-changed and resource-updated notifications, and a process that
dies mid-call. `build_server()` is shared with `tests.servers.http_echo`, which serves the same tools over
Streamable HTTP.

Run from the repository root, over stdio:

    python -m tests.servers.echo_server [--name NAME] [--extra-tools N]

Environment switches, read once at start:

- `ECHO_EXIT_AT_START=1`: write one line to stderr and exit with status 3 before serving.
- `ECHO_EXIT_IF_EXISTS=PATH`: the same, but only while PATH exists (a server that breaks, then heals).
- `ECHO_START_MARKER=PATH`: append this process's id to PATH at start.
- `ECHO_JUNK_STDOUT=1`: write a non-JSON line to fd 1 before the protocol starts, then serve normally.
- `ECHO_TOOL_DESCRIPTION=TEXT`: describe the `echo` tool with TEXT (a server that rewrote its tool).
- `ECHO_SHOW_REQUEST_ID=1`: `whoami` also returns the JSON-RPC id of the request it answers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args

import anyio
import mcp.types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.models import InitializationOptions
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

logger = logging.getLogger(__name__)

# The name is 87 characters, past the 64 that some clients accept.
LONG_TOOL_NAME = "a_really_long_tool_name_that_goes_well_past_the_sixty_four_character_budget_for_clients"
WEIRD_TOOL_NAME = "weird/name:x"
GREET_NAMES = ("alice", "alfred", "bob")
# In rising severity, as the spec lists them.
LOG_LEVELS: tuple[types.LoggingLevel, ...] = get_args(types.LoggingLevel)
# Every list-changed flag is advertised: `add_tool` sends tools/list_changed, and proxies test relaying them.
ALL_CHANGES = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)

T = TypeVar("T")
Ctx = ServerRequestContext[Any]
ToolFn = Callable[[Ctx, dict[str, Any]], Awaitable[types.CallToolResult]]


def _schema(required: tuple[str, ...] = (), /, **props: str) -> dict[str, Any]:
    """Build an object input schema; each keyword names a property and its JSON type."""
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(required)}


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)])


def _arg(args: dict[str, Any], key: str, kind: type[T], default: T | None = None) -> T:
    """Read one argument, answering a missing or mistyped one with INVALID_PARAMS (the low-level server does not)."""
    value = args.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MCPError(types.INVALID_PARAMS, f"argument {key!r} must be a {kind.__name__}", data={"argument": key})
    return value


def _quietly(call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """Start a call to a deprecated session helper without its `MCPDeprecationWarning`.

    On Python 3.11 the `@deprecated` wrapper warns when the coroutine is created, not when it is awaited, so the
    filter only has to cover creation and never spans an `await`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return call()


@dataclass(frozen=True, slots=True)
class _ToolEntry:
    tool: types.Tool
    run: ToolFn


@dataclass(slots=True)
class EchoBehaviour:
    """The mutable state of one echo server: tools added at run time, resource subscriptions, log level."""

    name: str
    dynamic_tools: set[str] = field(default_factory=set)
    subscriptions: set[str] = field(default_factory=set)
    log_level: types.LoggingLevel | None = None

    def static_tools(self, extra_tools: int) -> dict[str, _ToolEntry]:
        ro = types.ToolAnnotations(read_only_hint=True)
        text_schema = _schema(("text",), text="string")
        entries = [
            _ToolEntry(
                types.Tool(
                    name="echo",
                    description=os.environ.get(
                        "ECHO_TOOL_DESCRIPTION", "Return the text unchanged, also as structured content."
                    ),
                    input_schema=text_schema,
                    output_schema=text_schema,
                    annotations=ro,
                ),
                self.echo,
            ),
            self._entry(
                "fail", "Return an isError result carrying the message.", self.fail, ("message",), message="string"
            ),
            self._entry(
                "raise_error",
                "Fail with a JSON-RPC error of the given code.",
                self.raise_error,
                ("code", "message"),
                code="integer",
                message="string",
            ),
            self._entry(
                "slow", "Report progress for each step, then finish.", self.slow, steps="integer", delay="number"
            ),
            self._entry("sleep", "Sleep for the given seconds.", self.sleep, ("seconds",), seconds="number"),
            self._entry(
                "nap", "Sleep for the given seconds; changes nothing.", self.sleep, ("seconds",), ro, seconds="number"
            ),
            self._entry("crash", "Kill this server process at once.", self.crash),
            self._entry("pid", "Return this server's process id.", self.pid, annotations=ro),
            self._entry("whoami", "Return this server's name.", self.whoami, annotations=ro),
            self._entry(
                "log", "Send a logging notification.", self.log, ("level", "message"), level="string", message="string"
            ),
            self._entry("sample", "Ask the client to sample a reply.", self.sample, ("prompt",), prompt="string"),
            self._entry("elicit", "Ask the client to elicit an answer.", self.elicit, ("message",), message="string"),
            self._entry("roots", "Return the client's root URIs, one per line.", self.roots),
            self._entry(
                "add_tool", "Add a tool and announce tools/list_changed.", self.add_tool, ("name",), name="string"
            ),
            self._entry("touch", "Send resources/updated for the URI.", self.touch, ("uri",), uri="string"),
            self._entry("subscriptions", "Return the subscribed resource URIs, one per line.", self.list_subscriptions),
            self._entry(LONG_TOOL_NAME, "A tool whose name is too long for some clients.", self.fixed("long ok")),
            self._entry(WEIRD_TOOL_NAME, "A tool whose name has illegal characters.", self.fixed("weird ok")),
        ]
        entries += [
            self._entry(f"extra_{i}", f"Extra tool {i}: echo the text.", self.echo_text, ("text",), text="string")
            for i in range(extra_tools)
        ]
        return {entry.tool.name: entry for entry in entries}

    @staticmethod
    def _entry(
        tool_name: str,
        description: str,
        run: ToolFn,
        required: tuple[str, ...] = (),
        /,
        annotations: types.ToolAnnotations | None = None,
        **props: str,
    ) -> _ToolEntry:
        """Describe one tool; each extra keyword is an input property and its JSON type."""
        schema = _schema(required, **props)
        tool = types.Tool(name=tool_name, description=description, input_schema=schema, annotations=annotations)
        return _ToolEntry(tool, run)

    def dynamic_entry(self, name: str) -> _ToolEntry:
        return self._entry(name, f"Added at run time by add_tool({name!r}).", self.fixed(f"dynamic {name}"))

    @staticmethod
    def fixed(text: str) -> ToolFn:
        async def run(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
            return _text(text)

        return run

    async def echo(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        text = _arg(args, "text", str)
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content={"text": text})

    async def echo_text(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        return _text(_arg(args, "text", str))

    async def fail(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        return types.CallToolResult(is_error=True, content=[types.TextContent(text=_arg(args, "message", str))])

    async def raise_error(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        raise MCPError(_arg(args, "code", int), _arg(args, "message", str), data={"from": "echo"})

    async def slow(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        steps, delay = _arg(args, "steps", int, 3), _arg(args, "delay", float, 0.05)
        for i in range(1, steps + 1):
            await anyio.sleep(delay)  # a plain sleep, so notifications/cancelled interrupts it
            await ctx.session.report_progress(i, steps, f"step {i}")
        return _text(f"done after {steps} steps")

    async def sleep(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        await anyio.sleep(_arg(args, "seconds", float))
        return _text("slept")

    async def crash(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        logger.warning("crash tool called: exiting with status 1")
        os._exit(1)

    async def pid(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        return _text(str(os.getpid()))

    async def whoami(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        if os.environ.get("ECHO_SHOW_REQUEST_ID"):  # how the proxy's request reached us: its id, as JSON
            return _text(f"{self.name} {json.dumps(ctx.request_id)}")
        return _text(self.name)

    async def log(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        raw_level, message = _arg(args, "level", str), _arg(args, "message", str)
        level = next((lvl for lvl in LOG_LEVELS if lvl == raw_level), None)
        if level is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown log level {raw_level!r}", data={"argument": "level"})
        # Honour logging/setLevel as a handshake-era server should; with no level set, everything is sent.
        if self.log_level is None or LOG_LEVELS.index(level) >= LOG_LEVELS.index(self.log_level):
            send = ctx.session.send_log_message
            await _quietly(lambda: send(level, message, logger="echo", related_request_id=ctx.request_id))
        return _text("logged")

    async def sample(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        message = types.SamplingMessage(role="user", content=types.TextContent(text=_arg(args, "prompt", str)))
        create = ctx.session.create_message
        result = await _quietly(lambda: create([message], max_tokens=100, related_request_id=ctx.request_id))
        content = result.content
        text = content.text if isinstance(content, types.TextContent) else content.model_dump_json()
        return _text(f"sampled: {text}")

    async def elicit(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        schema: types.ElicitRequestedSchema = {"type": "object", "properties": {"answer": {"type": "string"}}}
        result = await ctx.session.elicit_form(_arg(args, "message", str), schema, related_request_id=ctx.request_id)
        return _text(f"{result.action}: {result.content}")

    async def roots(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        result = await _quietly(ctx.session.list_roots)
        return _text("\n".join(str(root.uri) for root in result.roots))

    async def add_tool(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        name = _arg(args, "name", str)
        self.dynamic_tools.add(name)
        await ctx.session.send_tool_list_changed()
        return _text(f"added {name}")

    async def touch(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        uri = _arg(args, "uri", str)
        await ctx.session.send_resource_updated(uri)
        return _text(f"touched {uri}")

    async def list_subscriptions(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        return _text("\n".join(sorted(self.subscriptions)))


class _EchoServer(Server[Any]):
    """A `Server` whose default init options advertise every list-changed flag.

    The Streamable HTTP manager calls `create_initialization_options()` with no arguments, which would advertise
    none; stdio passes `ALL_CHANGES` explicitly, so both transports advertise the same capabilities.
    """

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or ALL_CHANGES, experimental_capabilities, extensions
        )


def build_server(name: str = "echo", extra_tools: int = 0) -> Server[Any]:
    """Build the echo server: the tools, prompts, resources and completions described in the module docstring."""
    state = EchoBehaviour(name)
    static = state.static_tools(extra_tools)

    def lookup(tool_name: str) -> _ToolEntry | None:
        if tool_name in static:
            return static[tool_name]
        return state.dynamic_entry(tool_name) if tool_name in state.dynamic_tools else None

    async def list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        dynamic = [state.dynamic_entry(n).tool for n in sorted(state.dynamic_tools) if n not in static]
        return types.ListToolsResult(tools=[e.tool for e in static.values()] + dynamic)

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        entry = lookup(params.name)
        if entry is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}", data={"name": params.name})
        return await entry.run(ctx, dict(params.arguments or {}))

    async def list_prompts(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        argument = types.PromptArgument(name="name", description="Who to greet", required=True)
        return types.ListPromptsResult(
            prompts=[types.Prompt(name="greet", description="Greet someone", arguments=[argument])]
        )

    async def get_prompt(ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        if params.name != "greet":
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}", data={"name": params.name})
        who = (params.arguments or {}).get("name", "world")
        message = types.PromptMessage(role="user", content=types.TextContent(text=f"Hello, {who}!"))
        return types.GetPromptResult(description="A greeting", messages=[message])

    async def complete(ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        values: list[str] = []
        if (
            isinstance(params.ref, types.PromptReference)
            and params.ref.name == "greet"
            and params.argument.name == "name"
        ):
            values = [n for n in GREET_NAMES if n.startswith(params.argument.value)]
        return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))

    async def list_resources(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        static_resource = types.Resource(name="static", uri="echo://static", mime_type="text/plain")
        return types.ListResourcesResult(resources=[static_resource])

    async def list_templates(
        ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(name="item", uri_template="echo://item/{id}", mime_type="text/plain")
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri == "echo://static":
            text = "static resource"
        elif uri.startswith("echo://item/") and len(uri) > len("echo://item/"):
            text = f"item {uri.removeprefix('echo://item/')}"
        else:
            raise MCPError(types.INVALID_PARAMS, "Resource not found", data={"uri": uri})
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="text/plain", text=text)]
        )

    async def subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        state.subscriptions.add(str(params.uri))
        return types.EmptyResult()

    async def unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        state.subscriptions.discard(str(params.uri))
        return types.EmptyResult()

    async def set_level(ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        state.log_level = params.level
        return types.EmptyResult()

    server = _EchoServer(
        name,
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
    )
    # Registered directly: the `on_set_logging_level` keyword emits an MCPDeprecationWarning.
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Echo MCP server for the proxy's tests.")
    parser.add_argument("--name", default="echo", help="server name, reported in serverInfo and by whoami")
    parser.add_argument("--extra-tools", type=int, default=0, metavar="N", help="add tools extra_0..extra_{N-1}")
    return parser.parse_args(argv)


async def serve_stdio(server: Server[Any]) -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options(ALL_CHANGES))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="echo_server: %(levelname)s %(message)s")
    broken = os.environ.get("ECHO_EXIT_IF_EXISTS")
    reason = "ECHO_EXIT_AT_START=1" if os.environ.get("ECHO_EXIT_AT_START") == "1" else None
    if broken and os.path.exists(broken):
        reason = "the file ECHO_EXIT_IF_EXISTS names exists"
    if reason:
        sys.stderr.write(f"echo_server: exiting at start because {reason}\n")
        sys.stderr.flush()
        sys.exit(3)
    if marker := os.environ.get("ECHO_START_MARKER"):
        # Lets a test see whether this server was spawned at all.
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
    if os.environ.get("ECHO_JUNK_STDOUT") == "1":
        # Straight to fd 1, before stdio_server() moves the protocol off it.
        os.write(1, b"this line is not JSON-RPC\n")
    anyio.run(serve_stdio, build_server(args.name, args.extra_tools))


if __name__ == "__main__":
    main()
