"""An upstream that fulfils the fixture contract of the official MCP conformance suite.

`@modelcontextprotocol/conformance` (0.1.16 and 0.2.0-alpha.12) tests a server by calling tools, prompts and
resources with agreed names (`test_simple_text`, `test_prompt_with_arguments`, `test://static-text`, ...) and
checking exactly what comes back. This server provides all of them on the low-level `mcp.server.Server`, for both
protocol eras:

- Handshake era (2024-11-05 ... 2025-11-25): sampling, elicitation and roots are requests sent to the client on the
  calling request's stream; `logging/setLevel` filters log messages per session; list changes go out as
  notifications on the session's standalone stream.
- 2026-07-28 (stateless): the same tools return an `InputRequiredResult` instead, carrying the answers of earlier
  rounds in `requestState`, which the SDK's `RequestStateBoundary` seals against tampering; list changes are
  published to `subscriptions/listen` streams; every cacheable result carries `ttlMs`/`cacheScope`.

`scripts/conformance --fixture` runs the suites against it, which is how we know the fixture is right; put behind
a proxy, it lets the same suites test the proxy. Run from the repository root:

    python -m tests.servers.conformance_server                      # stdio
    python -m tests.servers.conformance_server --http --port PORT   # Streamable HTTP on 127.0.0.1 at /mcp

With `--http`, `--port 0` picks a free port, and `listening on http://127.0.0.1:PORT/mcp` goes to stderr once
uvicorn accepts connections. The HTTP server keeps SSE events in memory, so a client can resume a stream with
`Last-Event-ID` (the `test_reconnection` tool closes its stream on purpose).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args

import anyio
import mcp.types as types
import uvicorn
from mcp.server import CacheHint, NotificationOptions, Server, ServerRequestContext
from mcp.server.caching import CacheableMethod
from mcp.server.models import InitializationOptions
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, PromptsListChanged, ToolsListChanged
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import TypeAdapter

from tests.servers.http_echo import bind_socket

SERVER_NAME = "conformance-fixture"
# A 1x1 red PNG and a WAV of eight silent 8 kHz samples: the smallest media the content checks accept.
RED_PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
SILENT_WAV = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="
# The input schema `json-schema-2020-12` expects back verbatim: SEP-1613 keywords plus the SEP-2106 vocabulary.
JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}
SIMPLE_TEXT = "This is a simple text response for testing."
COMPLETIONS = ("paris", "park", "party", "test", "testing")
LOG_LEVELS: tuple[types.LoggingLevel, ...] = get_args(types.LoggingLevel)
ALL_CHANGES = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
# Nothing here changes, so a minute of freshness is honest; `caching` checks the hints are present and valid.
CACHED_METHODS: tuple[CacheableMethod, ...] = (
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "server/discover",
)
CACHE_HINTS = {method: CacheHint(ttl_ms=60_000, scope="public") for method in CACHED_METHODS}
# SSE `retry:` for resumable streams (SEP-1699): long enough that a reconnecting client does not spin.
RETRY_INTERVAL_MS = 500
# Events kept for `Last-Event-ID` replay; a conformance run stores a few hundred.
MAX_STORED_EVENTS = 10_000
# The spacing the suite asks for between log and progress notifications.
NOTIFICATION_GAP_S = 0.05

T = TypeVar("T")
Ctx = ServerRequestContext[Any]
Outcome = types.CallToolResult | types.InputRequiredResult
ToolFn = Callable[[Ctx, types.CallToolRequestParams], Awaitable[Outcome]]
Answers = dict[str, types.InputResponse]
ANSWERS = TypeAdapter(Answers)
RESULT_TYPES: dict[str, type[types.CreateMessageResult | types.ElicitResult | types.ListRootsResult]] = {
    "sampling/createMessage": types.CreateMessageResult,
    "elicitation/create": types.ElicitResult,
    "roots/list": types.ListRootsResult,
}


def _schema(required: tuple[str, ...] = (), /, **props: Any) -> dict[str, Any]:
    """Build an object schema; each keyword names a property and its JSON type, or its whole schema."""
    properties = {k: v if isinstance(v, dict) else {"type": v} for k, v in props.items()}
    return {"type": "object", "properties": properties, "required": list(required)}


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)])


def _elicit(message: str, schema: dict[str, Any]) -> types.ElicitRequest:
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(prompt: str, max_tokens: int = 100) -> types.CreateMessageRequest:
    message = types.SamplingMessage(role="user", content=types.TextContent(text=prompt))
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(messages=[message], max_tokens=max_tokens)
    )


def _wrong_answer(key: str, expected: str) -> MCPError:
    # A 2026 client chooses what it sends back under each key.
    return MCPError(types.INVALID_PARAMS, f"input response {key!r} must be {expected}", data={"key": key})


def _answer(answers: Answers, key: str, kind: type[T]) -> T:
    answer = answers[key]
    if not isinstance(answer, kind):
        raise _wrong_answer(key, f"a {kind.__name__}")
    return answer


def _form(answers: Answers, key: str) -> dict[str, Any]:
    return dict(_answer(answers, key, types.ElicitResult).content or {})


def _describe(answers: Answers, key: str) -> str:
    result = _answer(answers, key, types.ElicitResult)
    return f"action={result.action}, content={json.dumps(result.content)}"


def _sampled(answers: Answers, key: str) -> str:
    answer = answers[key]
    if not isinstance(answer, types.CreateMessageResult | types.CreateMessageResultWithTools):
        raise _wrong_answer(key, "a sampling result")
    content = answer.content
    blocks = content if isinstance(content, list) else [content]
    return " ".join(b.text if isinstance(b, types.TextContent) else b.model_dump_json() for b in blocks)


def _roots(answers: Answers, key: str) -> str:
    return ", ".join(str(root.uri) for root in _answer(answers, key, types.ListRootsResult).roots)


def _missing_capability(ctx: Ctx, request: types.InputRequest) -> types.ClientCapabilities | None:
    """The capability `request` needs when the client did not declare it, else `None`."""
    declared = ctx.session.client_capabilities or types.ClientCapabilities()
    if isinstance(request, types.ElicitRequest):
        # A bare `elicitation: {}` predates modes and means form support; a url-only client cannot fill a form.
        if declared.elicitation and (declared.elicitation.form is not None or declared.elicitation.url is None):
            return None
        return types.ClientCapabilities(elicitation=types.ElicitationCapability(form=types.FormElicitationCapability()))
    if isinstance(request, types.CreateMessageRequest):
        return None if declared.sampling else types.ClientCapabilities(sampling=types.SamplingCapability())
    return None if declared.roots else types.ClientCapabilities(roots=types.RootsCapability())


class _Inputs:
    """Answers to server-to-client requests, gathered the way the request's protocol era allows.

    Handshake era: each request goes to the client on the calling request's stream and is awaited. 2026-07-28:
    requests not answered yet come back as an `InputRequiredResult`; answers from earlier rounds travel in
    `requestState` (sealed by `RequestStateBoundary`, so it decodes only what we minted), new ones in
    `inputResponses`. Asking for something the client did not declare fails with -32021 in both eras.
    """

    def __init__(self, ctx: Ctx, params: types.InputResponseRequestParams) -> None:
        self._ctx = ctx
        self._modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        self.state_echoed = params.request_state is not None
        self._answers: Answers = {}
        if self._modern:
            if params.request_state is not None:
                self._answers.update(ANSWERS.validate_json(params.request_state))
            self._answers.update(params.input_responses or {})

    async def ask(self, requests: dict[str, types.InputRequest]) -> Answers | types.InputRequiredResult:
        for request in requests.values():
            if (needed := _missing_capability(self._ctx, request)) is not None:
                data = types.MissingRequiredClientCapabilityErrorData(required_capabilities=needed)
                raise MCPError(
                    types.MISSING_REQUIRED_CLIENT_CAPABILITY,
                    f"the client did not declare the capability {request.method} needs",
                    data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
                )
        missing = {key: request for key, request in requests.items() if key not in self._answers}
        if missing and self._modern:
            state = ANSWERS.dump_json(self._answers, by_alias=True, exclude_none=True).decode()
            return types.InputRequiredResult(input_requests=missing, request_state=state)
        send, metadata = self._ctx.session.send_request, ServerMessageMetadata(related_request_id=self._ctx.request_id)
        for key, request in missing.items():
            self._answers[key] = await send(request, RESULT_TYPES[request.method], metadata=metadata)
        return {key: self._answers[key] for key in requests}


NAME_FORM = _schema(("name",), name="string")
CONFIRM_FORM = _schema(("ok",), ok="boolean")
SEP1034_FORM = _schema(
    (),
    name={"type": "string", "description": "User name", "default": "John Doe"},
    age={"type": "integer", "description": "User age", "default": 30},
    score={"type": "number", "description": "User score", "default": 95.5},
    status={
        "type": "string",
        "description": "User status",
        "enum": ["active", "inactive", "pending"],
        "default": "active",
    },
    verified={"type": "boolean", "description": "Verification status", "default": True},
)
SEP1330_FORM = _schema(
    (),
    untitledSingle={"type": "string", "enum": ["option1", "option2", "option3"]},
    titledSingle={
        "type": "string",
        "oneOf": [
            {"const": "value1", "title": "First Option"},
            {"const": "value2", "title": "Second Option"},
            {"const": "value3", "title": "Third Option"},
        ],
    },
    legacyEnum={
        "type": "string",
        "enum": ["opt1", "opt2", "opt3"],
        "enumNames": ["Option One", "Option Two", "Option Three"],
    },
    untitledMulti={"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
    titledMulti={
        "type": "array",
        "items": {
            "anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"},
            ]
        },
    },
)


async def _ask_then(
    ctx: Ctx,
    params: types.InputResponseRequestParams,
    requests: dict[str, types.InputRequest],
    finish: Callable[[Answers], str],
) -> Outcome:
    """Gather `requests`, then answer with the text `finish` makes of the answers."""
    answers = await _Inputs(ctx, params).ask(requests)
    return answers if isinstance(answers, types.InputRequiredResult) else _text(finish(answers))


def _fixed(*content: types.ContentBlock, is_error: bool = False) -> ToolFn:
    async def run(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
        return types.CallToolResult(content=list(content), is_error=is_error)

    return run


def _asking(requests: dict[str, types.InputRequest], finish: Callable[[Answers], str]) -> ToolFn:
    async def run(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
        return await _ask_then(ctx, params, requests, finish)

    return run


def _arg(params: types.CallToolRequestParams, key: str) -> str:
    value = (params.arguments or {}).get(key)
    if not isinstance(value, str):
        raise MCPError(types.INVALID_PARAMS, f"argument {key!r} must be a string", data={"argument": key})
    return value


async def sampling(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    requests: dict[str, types.InputRequest] = {"reply": _sample(_arg(params, "prompt"))}
    return await _ask_then(ctx, params, requests, lambda a: f"LLM response: {_sampled(a, 'reply')}")


async def elicitation(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    form = _schema(
        ("username", "email"),
        username={"type": "string", "description": "User's response"},
        email={"type": "string", "description": "User's email address"},
    )
    requests: dict[str, types.InputRequest] = {"user": _elicit(_arg(params, "message"), form)}
    return await _ask_then(ctx, params, requests, lambda a: f"User response: {_describe(a, 'user')}")


async def streaming_elicitation(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    await ctx.session.report_progress(0, 1, "asking for confirmation")
    requests: dict[str, types.InputRequest] = {"confirm": _elicit("Continue streaming?", CONFIRM_FORM)}
    return await _ask_then(ctx, params, requests, lambda a: f"Streaming finished: {_describe(a, 'confirm')}")


async def progress(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    for step in (0, 50, 100):
        if step:
            await anyio.sleep(NOTIFICATION_GAP_S)
        await ctx.session.report_progress(step, 100)
    return _text("Progress reported: 0, 50, 100 of 100")


async def reconnection(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    # Closing our own SSE stream mid-call makes the client resume with Last-Event-ID (SEP-1699); the result
    # is stored meanwhile and replayed. Only HTTP sessions at 2025-11-25 with an event store get the callback.
    if ctx.close_sse_stream is not None:
        await ctx.close_sse_stream()
        await anyio.sleep(NOTIFICATION_GAP_S)
    return _text("Reconnection test completed successfully")


async def echo_arguments(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    return _text(json.dumps(params.arguments or {}, sort_keys=True))


async def confirm_with_state(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    inputs = _Inputs(ctx, params)
    answers = await inputs.ask({"confirm": _elicit("Please confirm", CONFIRM_FORM)})
    if isinstance(answers, types.InputRequiredResult):
        return answers
    # On 2026-07-28 the boundary has verified the echoed state before we get here.
    return _text(f"{'state-ok' if inputs.state_echoed else 'confirmed'}: {_describe(answers, 'confirm')}")


async def multi_round(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    inputs = _Inputs(ctx, params)
    first = await inputs.ask({"step1": _elicit("Step 1: What is your name?", NAME_FORM)})
    if isinstance(first, types.InputRequiredResult):
        return first
    color_form = _schema(("color",), color="string")
    second = await inputs.ask({"step2": _elicit("Step 2: What is your favorite color?", color_form)})
    if isinstance(second, types.InputRequiredResult):
        return second
    return _text(f"{_form(first, 'step1').get('name')}'s favorite color is {_form(second, 'step2').get('color')}")


async def declared_inputs(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
    offers: dict[str, types.InputRequest] = {
        "user_name": _elicit("What is your name?", NAME_FORM),
        "greeting": _sample("Generate a greeting", 50),
        "client_roots": types.ListRootsRequest(),
    }
    requests = {key: request for key, request in offers.items() if _missing_capability(ctx, request) is None}
    if not requests:
        return _text("The client declared none of elicitation, sampling and roots.")
    return await _ask_then(ctx, params, requests, lambda a: f"Answered: {', '.join(sorted(a))}")


def _greeting(answers: Answers) -> str:
    return f"Hello, {_form(answers, 'user_name').get('name')}!"


def _session_id(ctx: Ctx) -> str | None:
    return ctx.request.headers.get("mcp-session-id") if ctx.request is not None else None


def _user(content: types.ContentBlock) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


@dataclass(frozen=True, slots=True)
class _ToolEntry:
    tool: types.Tool
    run: ToolFn


def _tool(name: str, description: str, run: ToolFn, schema: dict[str, Any] | None = None) -> _ToolEntry:
    return _ToolEntry(types.Tool(name=name, description=description, input_schema=schema or _schema()), run)


@dataclass(slots=True)
class ConformanceFixture:
    """The state one fixture server shares across its sessions: list-change fan-out and per-session log levels."""

    bus: InMemorySubscriptionBus = field(default_factory=InMemorySubscriptionBus)
    # Keyed by `Mcp-Session-Id`; `None` is the one stdio connection.
    log_levels: dict[str | None, types.LoggingLevel] = field(default_factory=dict)

    def tools(self) -> dict[str, _ToolEntry]:
        mixed = (
            types.TextContent(text="Multiple content types test:"),
            types.ImageContent(data=RED_PIXEL_PNG, mime_type="image/png"),
            types.EmbeddedResource(
                resource=types.TextResourceContents(
                    uri="test://mixed-content-resource",
                    mime_type="application/json",
                    text='{"test":"data","value":123}',
                )
            ),
        )
        embedded = types.EmbeddedResource(
            resource=types.TextResourceContents(
                uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
            )
        )
        entries = [
            _tool("test_simple_text", "Return one text block.", _fixed(types.TextContent(text=SIMPLE_TEXT))),
            _tool(
                "test_image_content",
                "Return a 1x1 PNG image.",
                _fixed(types.ImageContent(data=RED_PIXEL_PNG, mime_type="image/png")),
            ),
            _tool(
                "test_audio_content",
                "Return a short WAV clip.",
                _fixed(types.AudioContent(data=SILENT_WAV, mime_type="audio/wav")),
            ),
            _tool("test_embedded_resource", "Return an embedded text resource.", _fixed(embedded)),
            _tool("test_multiple_content_types", "Return text, an image and an embedded resource.", _fixed(*mixed)),
            _tool("test_tool_with_logging", "Log three info messages 50 ms apart.", self.logging),
            _tool("test_logging_tool", "Log three info messages 50 ms apart.", self.logging),
            _tool("test_tool_with_progress", "Report progress 0, 50 and 100 of 100.", progress),
            _tool(
                "test_error_handling",
                "Return an isError result.",
                _fixed(types.TextContent(text="This tool intentionally returns an error for testing"), is_error=True),
            ),
            _tool(
                "test_sampling",
                "Ask the client to sample a reply to the prompt.",
                sampling,
                _schema(("prompt",), prompt={"type": "string", "description": "The prompt to send to the LLM"}),
            ),
            _tool(
                "test_elicitation",
                "Ask the user for a username and email.",
                elicitation,
                _schema(("message",), message={"type": "string", "description": "The message to show the user"}),
            ),
            _tool(
                "test_elicitation_sep1034_defaults",
                "Elicit a form whose fields all have defaults (SEP-1034).",
                _asking(
                    {"form": _elicit("Please review the defaults", SEP1034_FORM)},
                    lambda a: f"Elicitation completed: {_describe(a, 'form')}",
                ),
            ),
            _tool(
                "test_elicitation_sep1330_enums",
                "Elicit a form with every enum variant (SEP-1330).",
                _asking(
                    {"form": _elicit("Please pick some options", SEP1330_FORM)},
                    lambda a: f"Elicitation completed: {_describe(a, 'form')}",
                ),
            ),
            _tool("test_streaming_elicitation", "Report progress, then elicit a confirmation.", streaming_elicitation),
            _tool(
                "test_missing_capability",
                "Ask the client to sample; fails with -32021 unless it declared sampling.",
                _asking({"summary": _sample("Summarize this run in one sentence.")}, lambda a: _sampled(a, "summary")),
            ),
            _tool(
                "test_reconnection", "Close this call's SSE stream, then answer on the resumed stream.", reconnection
            ),
            _tool("test_trigger_tool_change", "Announce that the tool list changed.", self.tools_changed),
            _tool("test_trigger_prompt_change", "Announce that the prompt list changed.", self.prompts_changed),
            _tool(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features; echoes its arguments.",
                echo_arguments,
                JSON_SCHEMA_2020_12,
            ),
            _tool(
                "test_param_header",
                "Echo the region, which clients mirror into the Mcp-Param-Region header.",
                echo_arguments,
                _schema(("region",), region={"type": "string", "x-mcp-header": "Region"}),
            ),
            _tool(
                "test_input_required_result_elicitation",
                "Greet the user by the name they give.",
                _asking({"user_name": _elicit("What is your name?", NAME_FORM)}, _greeting),
            ),
            _tool(
                "test_input_required_result_sampling",
                "Ask the client's model a question.",
                _asking(
                    {"capital_question": _sample("What is the capital of France?")},
                    lambda a: _sampled(a, "capital_question"),
                ),
            ),
            _tool(
                "test_input_required_result_list_roots",
                "List the client's roots.",
                _asking({"client_roots": types.ListRootsRequest()}, lambda a: f"Roots: {_roots(a, 'client_roots')}"),
            ),
            _tool("test_input_required_result_request_state", "Ask for a confirmation.", confirm_with_state),
            _tool("test_input_required_result_tampered_state", "Ask for a confirmation.", confirm_with_state),
            _tool(
                "test_input_required_result_multiple_inputs",
                "Ask for a name, a sampled greeting and the roots at once.",
                _asking(
                    {
                        "user_name": _elicit("What is your name?", NAME_FORM),
                        "greeting": _sample("Generate a greeting", 50),
                        "client_roots": types.ListRootsRequest(),
                    },
                    lambda a: f"{_sampled(a, 'greeting')} {_greeting(a)} Roots: {_roots(a, 'client_roots')}",
                ),
            ),
            _tool("test_input_required_result_multi_round", "Ask for a name, then a color.", multi_round),
            _tool(
                "test_input_required_result_capabilities",
                "Ask for input only through the capabilities the client declared.",
                declared_inputs,
            ),
        ]
        return {entry.tool.name: entry for entry in entries}

    async def logging(self, ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
        for i, message in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
            if i:
                await anyio.sleep(NOTIFICATION_GAP_S)
            await self._log(ctx, "info", message)
        return _text("Tool with logging executed successfully")

    async def _log(self, ctx: Ctx, level: types.LoggingLevel, message: str) -> None:
        threshold = self.log_levels.get(_session_id(ctx))
        if threshold is not None and LOG_LEVELS.index(level) < LOG_LEVELS.index(threshold):
            return
        # The SDK gates 2026-07-28 delivery on the request's logLevel opt-in; the helper is deprecated with
        # logging itself (SEP-2577), and its wrapper warns when the coroutine is created, not awaited.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            pending = ctx.session.send_log_message(
                level, message, logger=SERVER_NAME, related_request_id=ctx.request_id
            )
        await pending

    async def set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self.log_levels[_session_id(ctx)] = params.level
        return types.EmptyResult()

    async def tools_changed(self, ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
        await self.bus.publish(ToolsListChanged())
        await ctx.session.send_tool_list_changed()  # dropped by the SDK on 2026-07-28 connections
        return _text("Announced tools/list_changed")

    async def prompts_changed(self, ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
        await self.bus.publish(PromptsListChanged())
        await ctx.session.send_prompt_list_changed()
        return _text("Announced prompts/list_changed")


PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A prompt without arguments."),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt that quotes its two arguments.",
        arguments=[
            types.PromptArgument(name="arg1", description="First test argument", required=True),
            types.PromptArgument(name="arg2", description="Second test argument", required=True),
        ],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt that embeds a resource.",
        arguments=[types.PromptArgument(name="resourceUri", description="URI of the resource to embed", required=True)],
    ),
    types.Prompt(name="test_prompt_with_image", description="A prompt that shows an image."),
    types.Prompt(
        name="test_input_required_result_prompt", description="A prompt that first asks the user for context."
    ),
]
RESOURCES: dict[str, types.TextResourceContents | types.BlobResourceContents] = {
    "test://static-text": types.TextResourceContents(
        uri="test://static-text", mime_type="text/plain", text="This is the content of the static text resource."
    ),
    "test://static-binary": types.BlobResourceContents(
        uri="test://static-binary", mime_type="image/png", blob=RED_PIXEL_PNG
    ),
    "test://watched-resource": types.TextResourceContents(
        uri="test://watched-resource", mime_type="text/plain", text="This resource can be subscribed to."
    ),
}
TEMPLATE_PREFIX, TEMPLATE_SUFFIX = "test://template/", "/data"


async def get_prompt(
    ctx: Ctx, params: types.GetPromptRequestParams
) -> types.GetPromptResult | types.InputRequiredResult:
    args = params.arguments or {}
    required = next((p.arguments or [] for p in PROMPTS if p.name == params.name), None)
    if required is None:
        raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}", data={"name": params.name})
    if missing := [a.name for a in required if a.required and a.name not in args]:
        raise MCPError(
            types.INVALID_PARAMS, f"missing prompt arguments: {', '.join(missing)}", data={"missing": missing}
        )
    match params.name:
        case "test_simple_prompt":
            messages = [_user(types.TextContent(text="This is a simple prompt for testing."))]
        case "test_prompt_with_arguments":
            text = f"Prompt with arguments: arg1='{args['arg1']}', arg2='{args['arg2']}'"
            messages = [_user(types.TextContent(text=text))]
        case "test_prompt_with_embedded_resource":
            resource = types.TextResourceContents(
                uri=args["resourceUri"], mime_type="text/plain", text="Embedded resource content for testing."
            )
            messages = [
                _user(types.EmbeddedResource(resource=resource)),
                _user(types.TextContent(text="Please process the embedded resource above.")),
            ]
        case "test_prompt_with_image":
            messages = [
                _user(types.ImageContent(data=RED_PIXEL_PNG, mime_type="image/png")),
                _user(types.TextContent(text="Please analyze the image above.")),
            ]
        case _:  # test_input_required_result_prompt
            form = _schema(("context",), context="string")
            answers = await _Inputs(ctx, params).ask(
                {"user_context": _elicit("What context should the prompt use?", form)}
            )
            if isinstance(answers, types.InputRequiredResult):
                return answers
            text = f"Use this context: {_form(answers, 'user_context').get('context')}"
            messages = [_user(types.TextContent(text=text))]
    return types.GetPromptResult(messages=messages)


async def list_prompts(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=PROMPTS)


async def list_resources(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    resources = [
        types.Resource(
            uri=uri, name=uri.removeprefix("test://"), description=f"The {uri} fixture.", mime_type=c.mime_type
        )
        for uri, c in RESOURCES.items()
    ]
    return types.ListResourcesResult(resources=resources)


async def list_templates(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
    template = types.ResourceTemplate(
        uri_template=f"{TEMPLATE_PREFIX}{{id}}{TEMPLATE_SUFFIX}",
        name="template",
        description="JSON data for any id.",
        mime_type="application/json",
    )
    return types.ListResourceTemplatesResult(resource_templates=[template])


async def read_resource(ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = params.uri
    if uri in RESOURCES:
        return types.ReadResourceResult(contents=[RESOURCES[uri]])
    item = uri.removeprefix(TEMPLATE_PREFIX).removesuffix(TEMPLATE_SUFFIX)
    if uri.startswith(TEMPLATE_PREFIX) and uri.endswith(TEMPLATE_SUFFIX) and item and "/" not in item:
        text = json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        )
    # SEP-2164: an unknown resource is -32602 with the URI in `data`, never an empty `contents`.
    raise MCPError(types.INVALID_PARAMS, "Resource not found", data={"uri": uri})


async def accept_subscription(
    ctx: Ctx, params: types.SubscribeRequestParams | types.UnsubscribeRequestParams
) -> types.EmptyResult:
    # Nothing here ever changes, so there is no update to send and no subscriber to remember.
    return types.EmptyResult()


async def complete(ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
    values = [v for v in COMPLETIONS if v.startswith(params.argument.value)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))


class _FixtureServer(Server[Any]):
    """A `Server` whose default init options advertise every list-changed flag.

    The Streamable HTTP manager calls `create_initialization_options()` without arguments, which would advertise
    none, so handshake-era HTTP sessions would not learn that `test_trigger_*_change` can announce changes.
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


def build_server() -> Server[Any]:
    """Build the fixture: the tools, prompts, resources and completions of the conformance contract."""
    fixture = ConformanceFixture()
    tools = fixture.tools()

    async def list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[entry.tool for entry in tools.values()])

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> Outcome:
        entry = tools.get(params.name)
        if entry is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}", data={"name": params.name})
        return await entry.run(ctx, params)

    server = _FixtureServer(
        SERVER_NAME,
        version="1.0.0",
        cache_hints=CACHE_HINTS,
        # Lets `Mcp-Param-*` header validation look the schema up instead of running `tools/list` per call.
        get_tool_input_schema=lambda name: tools[name].tool.input_schema if name in tools else None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=accept_subscription,
        on_unsubscribe_resource=accept_subscription,
        on_subscriptions_listen=ListenHandler(fixture.bus),
        on_completion=complete,
    )
    # Registered directly: the `on_set_logging_level` keyword emits an MCPDeprecationWarning.
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, fixture.set_level)
    server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=SERVER_NAME))
    return server


class InMemoryEventStore(EventStore):
    """The newest `MAX_STORED_EVENTS` SSE events, so a client can resume a stream with `Last-Event-ID`."""

    def __init__(self) -> None:
        self._events: dict[EventId, tuple[StreamId, types.JSONRPCMessage | None]] = {}
        self._counter = 0

    async def store_event(self, stream_id: StreamId, message: types.JSONRPCMessage | None) -> EventId:
        self._counter += 1
        event_id = str(self._counter)
        self._events[event_id] = (stream_id, message)
        if len(self._events) > MAX_STORED_EVENTS:
            del self._events[next(iter(self._events))]
        return event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        if last_event_id not in self._events:
            return None
        stream_id = self._events[last_event_id][0]
        later = list(self._events.items())
        start = next(i for i, (event_id, _) in enumerate(later) if event_id == last_event_id) + 1
        for event_id, (event_stream, message) in later[start:]:
            # `None` marks a priming event: a cursor, not a message.
            if event_stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that writes `listening on <url>` to stderr once its startup has finished."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self._url = url

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            sys.stderr.write(f"listening on {self._url}\n")
            sys.stderr.flush()


def serve_http(port: int) -> None:
    host = "127.0.0.1"
    app = build_server().streamable_http_app(
        host=host, event_store=InMemoryEventStore(), retry_interval=RETRY_INTERVAL_MS
    )
    sock = bind_socket(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}/mcp"
    # log_config=None keeps uvicorn on the root logger (stderr); its default config sends access logs to stdout.
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1)
    try:
        anyio.run(functools.partial(_AnnouncingServer(config, url).serve, sockets=[sock]))
    finally:
        sock.close()


async def serve_stdio() -> None:
    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MCP conformance-suite fixture server.")
    parser.add_argument("--http", action="store_true", help="serve Streamable HTTP on 127.0.0.1 instead of stdio")
    parser.add_argument("--port", type=int, default=0, help="with --http: TCP port; 0 (the default) picks a free one")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="conformance_server: %(levelname)s %(message)s"
    )
    if args.http:
        serve_http(args.port)
    else:
        anyio.run(serve_stdio)


if __name__ == "__main__":
    main()
