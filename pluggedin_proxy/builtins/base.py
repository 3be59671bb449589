"""What a built-in tool is, and what it gets when called.

A `BuiltinTool` declares its name, description, JSON Schema, annotations and handler, and says
whether it needs the plugged.in App. A handler receives a `ToolCall` (the validated arguments with
their top-level defaults filled in, the App client, and the proxy's `BuiltinHost`) and returns a
`CallToolResult`, or raises `ToolFailure`, which the caller turns into an `isError` result the model
can read. Built-ins never see a transport or a downstream session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import mcp_types as types

from pluggedin_proxy.catalog.base import Catalog
from pluggedin_proxy.settings import Mode

if TYPE_CHECKING:
    from pluggedin_proxy.catalog.app_client import AppClient, AppReply
    from pluggedin_proxy.proxy.router import Router

__all__ = [
    "SCHEMA_DRAFT",
    "ActivitySource",
    "BuiltinHost",
    "BuiltinTool",
    "InvalidArguments",
    "ToolCall",
    "ToolFailure",
    "hints",
    "app_failure",
    "hand_schema",
    "image",
    "text",
    "zod_schema",
]

SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"


@dataclass(frozen=True, slots=True)
class ActivitySource:
    """How the App's activity log names a built-in: a pseudo server name and id."""

    server_name: str
    server_uuid: str


class BuiltinHost(Protocol):
    """What the proxy lends its built-ins."""

    @property
    def mode(self) -> Mode: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def router(self) -> Router:
        """What the proxy exposes, under the names clients see."""
        ...

    def builtin_names(self) -> list[str]:
        """The built-in tools this proxy lists."""
        ...

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `func` in the background, outliving the current call."""
        ...

    async def announce_list_changed(self) -> None:
        """Tell every client its lists of tools, prompts and resources changed."""
        ...


class ToolFailure(Exception):
    """Raised by a handler to answer with an `isError` result carrying this message."""


class InvalidArguments(ToolFailure):
    """Raised by a handler for arguments its schema cannot express as wrong; like a schema refusal, not logged."""


@dataclass(slots=True)
class ToolCall:
    """One call of a built-in tool."""

    arguments: dict[str, Any]
    app: AppClient | None
    host: BuiltinHost
    activity: ActivitySource | None
    """Where the call is logged; a handler may switch it to a more precise source."""

    def require_app(self) -> AppClient:
        if self.app is None:
            raise ToolFailure("this tool needs the plugged.in App")  # guarded earlier; see Builtins.call
        return self.app


@dataclass(frozen=True, slots=True)
class BuiltinTool:
    """One of the proxy's own tools."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    annotations: types.ToolAnnotations
    handler: Callable[[ToolCall], Awaitable[types.CallToolResult]]
    needs_app: bool = True
    """Whether it calls the plugged.in App (else it works in local mode too)."""
    activity: ActivitySource | None = None
    title: str | None = None
    wire: dict[str, Any] = field(init=False, repr=False, compare=False)
    """The tool as `tools/list` sends it, built once."""

    def __post_init__(self) -> None:
        tool: dict[str, Any] = {"name": self.name}
        if self.title:
            tool["title"] = self.title
        tool["description"] = self.description
        tool["inputSchema"] = dict(self.input_schema)
        tool["annotations"] = self.annotations.model_dump(by_alias=True, exclude_none=True)
        object.__setattr__(self, "wire", tool)


def hints(*, read_only: bool, destructive: bool, idempotent: bool) -> types.ToolAnnotations:
    """The three hints every built-in declares, as the TypeScript proxy declares them."""
    return types.ToolAnnotations(read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent)


def zod_schema(description: str, properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """An input schema in the shape the TypeScript proxy emits for its Zod-defined tools."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    schema["description"] = description
    schema["$schema"] = SCHEMA_DRAFT
    return schema


def hand_schema(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """An input schema in the plain shape of the TypeScript proxy's hand-written tools."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    return schema


def text(body: str) -> types.CallToolResult:
    """A successful result holding one text block."""
    return types.CallToolResult(content=[types.TextContent(text=body)], is_error=False)


def image(data: str, mime_type: str) -> types.CallToolResult:
    """A successful result holding one image block (base64 `data`)."""
    return types.CallToolResult(content=[types.ImageContent(data=data, mime_type=mime_type)], is_error=False)


def app_failure(reply: AppReply, messages: Mapping[int, str], fallback: str) -> ToolFailure:
    """The failure for an App answer that is not a success: the status's own message, else `fallback`.

    Messages may contain `{status}` and `{error}` (the App's `error` string, or `HTTP <status>`).
    """
    template = messages.get(reply.status, fallback)
    error = reply.field("error") or reply.field("message")
    detail = error if isinstance(error, str) and error else f"HTTP {reply.status}"
    return ToolFailure(template.replace("{status}", str(reply.status)).replace("{error}", detail))
