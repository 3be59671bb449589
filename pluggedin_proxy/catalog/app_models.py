"""The plugged.in App's wire shapes, as the App really sends them.

The models accept every shape the App is known to produce: lists as bare arrays or wrapped
(`{"tools": [...]}`), templates with `mediaType` instead of `mimeType`, HTTP options under
`streamableHTTPOptions`, transport hints hidden in `env` by legacy rows, and unknown extra fields.
Each model converts itself to the proxy's own types (`ServerSpec`, `mcp.types.Tool`, …), so
nothing past this module sees the App's spelling or its internal `_server*` fields.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, Literal

import mcp_types as types
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pluggedin_proxy.naming import SEPARATOR
from pluggedin_proxy.upstream.spec import (
    ENV_NAME,
    HEADER_NAME,
    CustomInstructions,
    ServerSpec,
    Transport,
    has_unsafe_chars,
    shown_name,
    without_unsafe_chars,
)

__all__ = [
    "AppPrompt",
    "AppResource",
    "AppServer",
    "AppTemplate",
    "AppTool",
    "parse_list",
]

logger = logging.getLogger(__name__)

_TYPES: dict[str, Transport] = {
    "STDIO": "stdio",
    "SSE": "sse",
    "STREAMABLE_HTTP": "streamable-http",
    "STREAMABLEHTTP": "streamable-http",
    "HTTP": "streamable-http",
}


class _AppModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class AppServer(_AppModel):
    """One entry of `GET /api/mcp-servers` (and the body of `/api/resolve/*`)."""

    uuid: str
    """The server's id in the App; also the name prefix when it has no slug."""
    name: str = ""
    type: str | None = None
    """`STDIO`, `SSE` or `STREAMABLE_HTTP`; missing means STDIO."""
    transport: str | None = None
    """Decrypted transport hint (`stdio`, `sse`, `streamable_http`), used when `type` is missing."""
    command: str | None = None
    args: list[str] | None = None
    env: dict[str, Any] | None = None
    url: str | None = None
    cwd: str | None = None
    """Working directory of a stdio server (sent by the self-hosted App; the cloud App has none)."""
    headers: dict[str, Any] | None = None
    streamable_http_options: dict[str, Any] | None = Field(default=None, alias="streamableHTTPOptions")
    slug: str | None = None
    description: str | None = None
    custom_instructions: Any = Field(default=None, alias="customInstructions")
    """A list of `{role, content}` messages (or, from older Apps, a string)."""
    custom_instructions_description: str | None = Field(default=None, alias="customInstructionsDescription")

    @field_validator("args", mode="before")
    @classmethod
    def _args_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(item) for item in value]
        return value

    def to_spec(self) -> ServerSpec:
        """The proxy's view of this server: how to reach it, and its name prefix."""
        env = dict(self.env or {})
        options = self.streamable_http_options
        # Legacy rows hid the transport and HTTP options inside env; the App lifts them, older ones did not.
        legacy_transport = env.pop("__transport", None)
        legacy_options = env.pop("__streamableHTTPOptions", None)
        if options is None and isinstance(legacy_options, str):
            try:
                parsed = json.loads(legacy_options)
            except ValueError:
                parsed = None
            options = parsed if isinstance(parsed, dict) else None
        transport = self._transport(legacy_transport)
        # Header names ignore case: a refreshed `Authorization` in the options must replace any spelling of it.
        merged: dict[str, tuple[str, str]] = {}
        option_headers = options.get("headers") if options else None
        for source in (self.headers, option_headers):
            if isinstance(source, dict):
                merged.update({str(k).lower(): (str(k), str(v)) for k, v in source.items()})
        stdio = transport == "stdio"
        return ServerSpec(
            id=self.uuid,
            name=self.name or self.uuid,
            slug=self.slug or self.uuid,
            transport=transport,
            command=self.command if stdio else None,
            args=tuple(self.args or ()) if stdio else (),
            env=self._valid_env(env) if stdio else (),
            cwd=self.cwd if stdio else None,
            url=None if stdio else self.url,
            headers=() if stdio else self._valid_headers(merged.values()),
            instructions=CustomInstructions.parse(self.custom_instructions, self.custom_instructions_description),
        )

    def _valid_env(self, env: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        """The variables a child may get, sorted: invalid names dropped with a warning, values made safe."""
        pairs: list[tuple[str, str]] = []
        for key, value in env.items():
            if key.startswith("__"):
                continue
            if ENV_NAME.fullmatch(key) is None:
                logger.warning(
                    "server %r from the App: dropping environment variable %s: not a valid name",
                    self.name or self.uuid,
                    shown_name(key),
                )
                continue
            pairs.append((key, _env_value(value)))
        return tuple(sorted(pairs))

    def _valid_headers(self, headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """The headers that may be sent, sorted: an invalid name, or CR, LF or NUL in a value, drops one."""
        pairs: list[tuple[str, str]] = []
        for name, value in headers:
            problem = _header_problem(name, value)
            if problem is not None:
                logger.warning(
                    "server %r from the App: dropping header %s: %s", self.name or self.uuid, shown_name(name), problem
                )
                continue
            pairs.append((name, value))
        return tuple(sorted(pairs))

    def _transport(self, legacy: Any) -> Transport:
        for hint in (self.type, self.transport, legacy):
            if isinstance(hint, str) and hint.strip():
                key = hint.strip().upper().replace("-", "_")
                if key in _TYPES:
                    return _TYPES[key]
                if key.replace("_", "") in _TYPES:
                    return _TYPES[key.replace("_", "")]
        return "stdio"


class AppTool(_AppModel):
    """One tool of `GET /api/tools`; `name` carries the App's prefix when asked for."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"}, alias="inputSchema")
    server_uuid: str | None = Field(default=None, alias="_serverUuid")
    server_name: str | None = Field(default=None, alias="_serverName")
    server_slug: str | None = Field(default=None, alias="_serverSlug")

    def original_name(self) -> str:
        """The name the upstream server knows: the App's `<slug>__` or `<uuid>__` prefix removed."""
        for prefix in (self.server_slug, self.server_uuid):
            if prefix and self.name.startswith(prefix + SEPARATOR):
                return self.name[len(prefix) + len(SEPARATOR) :]
        return self.name

    def to_tool(self) -> types.Tool:
        """An MCP tool with the original name; extra MCP fields the App kept are carried over."""
        extra = {k: v for k, v in (self.model_extra or {}).items() if k in _TOOL_EXTRAS}
        data = {"name": self.original_name(), "description": self.description, "inputSchema": self.input_schema}
        return types.Tool.model_validate({**extra, **{k: v for k, v in data.items() if v is not None}})


_TOOL_EXTRAS = {"title", "annotations", "outputSchema", "icons", "_meta", "execution"}


class AppPrompt(_AppModel):
    """One prompt of `GET /api/prompts` (never prefixed by the App)."""

    name: str
    description: str | None = None
    arguments: list[dict[str, Any]] | None = None

    def to_prompt(self) -> types.Prompt:
        arguments = [types.PromptArgument.model_validate(a) for a in self.arguments or [] if a.get("name")]
        return types.Prompt(name=self.name, description=self.description, arguments=arguments)


class AppResource(_AppModel):
    """One resource of `GET /api/resources`."""

    uri: str
    name: str | None = None
    description: str | None = None
    mime_type: str | None = Field(default=None, alias="mimeType")

    def to_resource(self) -> types.Resource:
        return types.Resource(
            uri=self.uri, name=self.name or self.uri, description=self.description, mime_type=self.mime_type
        )


class AppTemplate(_AppModel):
    """One template of `GET /api/resource-templates`; the App spells the MIME type `mediaType`."""

    uri_template: str = Field(alias="uriTemplate")
    name: str | None = None
    description: str | None = None
    media_type: str | None = Field(default=None, alias="mediaType")
    mime_type: str | None = Field(default=None, alias="mimeType")

    def to_template(self) -> types.ResourceTemplate:
        return types.ResourceTemplate(
            uri_template=self.uri_template,
            name=self.name or self.uri_template,
            description=self.description,
            mime_type=self.mime_type or self.media_type,
        )


ListKind = Literal["tools", "prompts", "resources", "templates", "servers"]
_ENVELOPE_KEYS: dict[str, tuple[str, ...]] = {
    "tools": ("tools", "results"),
    "prompts": ("prompts",),
    "resources": ("resources",),
    "templates": ("resourceTemplates", "templates"),
    "servers": ("servers", "mcpServers"),
}


def parse_list(kind: ListKind, body: Any) -> list[Any]:
    """The items of a list response, whether the App sent a bare array or wrapped it.

    Raises:
        ValueError: the body is neither.
    """
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in _ENVELOPE_KEYS[kind]:
            if isinstance(body.get(key), list):
                return list(body[key])
    raise ValueError(f"expected a list of {kind}")


def _header_problem(name: str, value: str) -> str | None:
    if HEADER_NAME.fullmatch(name) is None:
        return "not a valid header name"
    if has_unsafe_chars(value):
        return "its value contains CR, LF or NUL"
    return None


def _env_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    # A value with NUL, CR or LF cannot be passed to a child safely; the TypeScript proxy strips them too.
    return without_unsafe_chars(text)
