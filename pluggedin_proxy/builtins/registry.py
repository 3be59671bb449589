"""The set of built-in tools, which of them a mode lists, and how a call of one runs.

Order and names follow the TypeScript proxy: setup, discovery, knowledge base, documents,
notifications, clipboard, memory, then the four tools it could call but never listed (listed here).
With an App key every tool but setup is listed; in local mode only those that work without the
App; with nothing configured, all of them, the App's ones answering with setup guidance.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import mcp_types as types

from pluggedin_proxy.builtins import clipboard, discovery, documents, knowledge, memory, notifications, setup
from pluggedin_proxy.builtins.base import BuiltinHost, BuiltinTool, InvalidArguments, ToolCall, ToolFailure
from pluggedin_proxy.catalog.base import Activity
from pluggedin_proxy.errors import CatalogAuthError, CatalogUnavailable

if TYPE_CHECKING:
    from jsonschema import Draft7Validator

    from pluggedin_proxy.catalog.app_client import AppClient

__all__ = ["ALL_TOOLS", "Builtins"]

logger = logging.getLogger(__name__)

ALL_TOOLS: tuple[BuiltinTool, ...] = (
    *setup.TOOLS,
    *discovery.TOOLS,
    *knowledge.TOOLS,
    *documents.TOOLS,
    *notifications.TOOLS,
    *clipboard.TOOLS,
    *memory.TOOLS,
)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


class Builtins:
    """The built-in tools of one proxy."""

    def __init__(self, host: BuiltinHost, app: AppClient | None, tools: Sequence[BuiltinTool] = ALL_TOOLS) -> None:
        self.host = host
        self.app = app
        self._tools: Mapping[str, BuiltinTool] = {tool.name: tool for tool in tools}
        self._validators: dict[str, Draft7Validator] = {}
        """Built on a tool's first call: `jsonschema` costs a tenth of a second to import, at every start."""
        if host.mode == "app":
            listed = [t for t in tools if t.name != setup.SETUP.name]
        elif host.mode == "local":
            listed = [t for t in tools if not t.needs_app]
        else:
            listed = list(tools)
        self.listed: tuple[dict[str, Any], ...] = tuple(t.wire for t in listed)
        """The listed tools as `tools/list` sends them."""

    def _validator(self, tool: BuiltinTool) -> Draft7Validator:
        validator = self._validators.get(tool.name)
        if validator is None:
            from jsonschema import Draft7Validator, FormatChecker

            # Draft 7 knows no `uuid` format; the App refuses malformed ones, so refuse them before calling it.
            formats = FormatChecker(formats=())
            formats.checks("uuid")(lambda value: not isinstance(value, str) or _is_uuid(value))
            validator = self._validators[tool.name] = Draft7Validator(dict(tool.input_schema), format_checker=formats)
        return validator

    def schema(self, name: str) -> Mapping[str, Any] | None:
        """The input schema of built-in `name`, or None."""
        tool = self._tools.get(name)
        return tool.input_schema if tool is not None else None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    async def call(self, name: str, arguments: Mapping[str, Any] | None) -> types.CallToolResult:
        """Run built-in `name`; every failure becomes an `isError` result and is logged as an activity."""
        tool = self._tools[name]
        if tool.needs_app and self.app is None:
            return _error(setup.guidance_for(tool.name, self.host.mode))
        args = dict(arguments or {})
        problems = sorted(self._validator(tool).iter_errors(args), key=lambda e: list(e.absolute_path))
        if problems:
            # Refused before anything ran: not an activity (the App would raise an alert for it).
            return _error(f"Invalid arguments for {name}: " + "; ".join(_describe(p) for p in problems[:5]))
        _fill_defaults(tool.input_schema, args)
        call = ToolCall(arguments=args, app=self.app, host=self.host, activity=tool.activity)
        started = time.monotonic()
        error: str | None = None
        try:
            result = await tool.handler(call)
        except InvalidArguments as exc:
            call.activity = None  # refused before anything ran, as the schema would have
            return _error(f"Invalid arguments for {name}: {exc}")
        except (ToolFailure, CatalogUnavailable, CatalogAuthError) as exc:
            error = str(exc)
            return _error(error)
        finally:
            if call.activity is not None:
                self.host.catalog.record(
                    Activity(
                        action="tool_call",
                        server_name=call.activity.server_name,
                        server_uuid=call.activity.server_uuid,
                        item_name=name,
                        success=error is None,
                        execution_ms=int((time.monotonic() - started) * 1000),
                        error=error,
                    )
                )
        return result


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def _fill_defaults(schema: Mapping[str, Any], args: dict[str, Any]) -> None:
    """Fill in the defaults the schema declares, at every depth an object is given."""
    for key, prop in schema.get("properties", {}).items():
        if key not in args and "default" in prop:
            args[key] = prop["default"]
        elif isinstance(args.get(key), dict) and prop.get("type") == "object":
            _fill_defaults(prop, args[key])
