"""The six clipboard tools: named and indexed entries kept by the plugged.in App for a profile.

`set` stores an entry under a name (replacing one of the same name) or an index (refused if taken),
`push` stores one at the next free index and `pop` takes the highest index back out, stack-like;
`get` reads one entry or a page of them, `list` shows the App's page as it is, `delete` removes one or
all. Writes carry `source: "mcp"` so the App knows where they came from. An image stored as base64 is
handed back as MCP image content. Calls are logged as `Clipboard System` in the activity log.

Two rules JSON Schema cannot say (a name or an index is needed; an `image/*` entry must be base64)
are checked here before the App is called; like a schema violation, breaking one is not an activity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import mcp_types as types

from pluggedin_proxy.builtins.base import (
    ActivitySource,
    BuiltinTool,
    InvalidArguments,
    ToolCall,
    ToolFailure,
    app_failure,
    hints,
    image,
    text,
    zod_schema,
)

if TYPE_CHECKING:
    from pluggedin_proxy.catalog.app_client import AppReply

__all__ = ["TOOLS"]

CLIPBOARD = ActivitySource(server_name="Clipboard System", server_uuid="pluggedin_clipboard")
TIMEOUT = 30.0
MIME_PATTERN = r"^[\w.-]+/[\w.+-]+$"
MAX_TTL_SECONDS = 31_536_000
PREVIEW_CHARS = 100
SET = "pluggedin_clipboard_set"
DELETE = "pluggedin_clipboard_delete"
PUSH = "pluggedin_clipboard_push"

_COMMON_MESSAGES = {
    401: "Authentication failed. Check your API key.",
    429: "Rate limit exceeded. Please try again later.",
}
_WRITE_MESSAGES = {
    **_COMMON_MESSAGES,
    400: "Invalid clipboard data: {error}",
    413: "Clipboard entry too large. Maximum size is 2MB.",
}

# Input schema pieces

_LIMIT = {
    "type": "integer",
    "minimum": 1,
    "maximum": 100,
    "default": 50,
    "description": "At most this many entries (1-100).",
}
_OFFSET = {"type": "integer", "minimum": 0, "default": 0, "description": "How many entries to skip, for paging."}
_FILTER_TYPE = {"type": "string", "description": "Only entries of this MIME type."}
_CONTENT: dict[str, Any] = {
    "contentType": {
        "type": "string",
        "maxLength": 256,
        "pattern": MIME_PATTERN,
        "default": "text/plain",
        "description": "MIME type of the value, e.g. text/plain, application/json, image/png.",
    },
    "encoding": {
        "type": "string",
        "enum": ["utf-8", "base64", "hex"],
        "default": "utf-8",
        "description": "How the value is written: utf-8 text, or base64 or hex for binary data (images need base64).",
    },
    "visibility": {
        "type": "string",
        "enum": ["private", "workspace", "public"],
        "default": "private",
        "description": "Who may see the entry.",
    },
    "createdByTool": {"type": "string", "maxLength": 255, "description": "The tool that produced the value."},
    "createdByModel": {"type": "string", "maxLength": 255, "description": "The model that produced the value."},
    "ttlSeconds": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_TTL_SECONDS,
        "description": "Seconds until the entry expires (at most a year; the App keeps it 24 hours by default).",
    },
}


def _with_examples(schema: dict[str, Any], *examples: Mapping[str, Any]) -> dict[str, Any]:
    return {**schema, "examples": [dict(example) for example in examples]}


# Handlers


async def _set(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    if "name" not in args and "idx" not in args:
        raise InvalidArguments("give the entry a name or an idx")
    _check_image_encoding(call, SET)
    reply = await _send(call, "POST", "/api/clipboard", json={**args, "source": "mcp"})
    if not reply.ok:
        messages = {**_WRITE_MESSAGES, 409: "Index conflict: {error}"}
        raise app_failure(reply, messages, "Failed to set clipboard entry: {error}")
    entry = _entry(reply)
    return text(
        f"Clipboard entry set successfully!\n{_identifier(entry)}\n"
        f"Size: {entry.get('sizeBytes')} bytes\nExpires: {_expiry(entry)}"
    )


async def _get(call: ToolCall) -> types.CallToolResult:
    params = _query(call.arguments, "name", "idx", "contentType", "limit", "offset")
    reply = await _send(call, "GET", "/api/clipboard", params=params)
    if not reply.ok:
        messages = {**_COMMON_MESSAGES, 404: "Clipboard entry not found"}
        raise app_failure(reply, messages, "Failed to get clipboard entries: {error}")
    if reply.field("entry") is not None:
        return _show(_entry(reply))
    entries = reply.field("entries")
    listed = [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
    return text(_listing(listed, reply.field("total") or 0))


async def _delete(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    if not args["clearAll"] and "name" not in args and "idx" not in args:
        raise InvalidArguments("give a name or an idx, or clearAll: true")
    reply = await _send(call, "DELETE", "/api/clipboard", json=args)
    if not reply.ok:
        messages = {**_COMMON_MESSAGES, 404: "Clipboard entry not found"}
        raise app_failure(reply, messages, "Failed to delete clipboard entry: {error}")
    deleted = reply.field("deleted") or 0
    if args["clearAll"]:
        return text(f"Cleared all clipboard entries ({deleted} removed)")
    return text(f"Deleted {deleted} clipboard {'entry' if deleted == 1 else 'entries'}")


async def _list(call: ToolCall) -> types.CallToolResult:
    params = _query(call.arguments, "contentType", "limit", "offset")
    reply = await _send(call, "GET", "/api/clipboard", params=params)
    if not reply.ok:
        raise app_failure(reply, _COMMON_MESSAGES, "Failed to list clipboard entries: {error}")
    return text(_pretty(reply.body))


async def _push(call: ToolCall) -> types.CallToolResult:
    _check_image_encoding(call, PUSH)
    reply = await _send(call, "POST", "/api/clipboard/push", json={**call.arguments, "source": "mcp"})
    if not reply.ok:
        raise app_failure(reply, _WRITE_MESSAGES, "Failed to push to clipboard: {error}")
    entry = _entry(reply)
    return text(
        f"Pushed to clipboard at index {entry.get('idx')}\n"
        f"Size: {entry.get('sizeBytes')} bytes\nExpires: {_expiry(entry)}"
    )


async def _pop(call: ToolCall) -> types.CallToolResult:
    reply = await _send(call, "POST", "/api/clipboard/pop", json={})
    if not reply.ok:
        messages = {**_COMMON_MESSAGES, 404: "No indexed entries to pop"}
        raise app_failure(reply, messages, "Failed to pop from clipboard: {error}")
    return _show(_entry(reply))


# Helpers


async def _send(call: ToolCall, method: str, path: str, *, params: Any = None, json: Any = None) -> AppReply:
    return await call.require_app().send(method, path, params=params, json=json, timeout=TIMEOUT)


def _check_image_encoding(call: ToolCall, tool: str) -> None:
    content_type = call.arguments["contentType"]
    if content_type.startswith("image/") and call.arguments["encoding"] != "base64":
        raise InvalidArguments(f"an {content_type} value must be sent as base64 (encoding: base64)")


def _query(args: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The query parameters among `keys` that the call has, in that order."""
    return {key: args[key] for key in keys if key in args}


def _entry(reply: AppReply) -> dict[str, Any]:
    entry = reply.field("entry")
    if not isinstance(entry, dict):
        raise ToolFailure("The plugged.in App answered without a clipboard entry.")
    return entry


def _show(entry: Mapping[str, Any]) -> types.CallToolResult:
    """A single entry: image content for a base64 image, otherwise the entry as pretty JSON."""
    content_type = str(entry.get("contentType") or "text/plain")
    value = entry.get("value")
    if content_type.startswith("image/") and entry.get("encoding") == "base64" and isinstance(value, str):
        return image(value, content_type)
    return text(_pretty(entry))


def _listing(entries: list[dict[str, Any]], total: object) -> str:
    lines = [f"Found {total} clipboard entries (showing {len(entries)}):", ""]
    for number, entry in enumerate(entries, 1):
        content_type = str(entry.get("contentType"))
        lines += [
            f"{number}. {_identifier(entry)}",
            f"   Type: {content_type}",
            f"   Size: {entry.get('sizeBytes')} bytes",
            f"   Created: {entry.get('createdAt')}",
        ]
        if entry.get("createdByTool"):
            lines.append(f"   Created by: {entry['createdByTool']}")
        if not content_type.startswith("image/"):
            value = str(entry.get("value") or "")
            more = "..." if len(value) > PREVIEW_CHARS else ""
            lines.append(f"   Preview: {value[:PREVIEW_CHARS]}{more}")
        lines.append("")
    return "\n".join(lines)


def _identifier(entry: Mapping[str, Any]) -> str:
    return f'name="{entry["name"]}"' if entry.get("name") else f"idx={entry.get('idx')}"


def _expiry(entry: Mapping[str, Any]) -> str:
    return str(entry.get("expiresAt") or "never")


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


# The tools

CLIPBOARD_SET = BuiltinTool(
    name=SET,
    description=(
        "Store a value on the plugged.in clipboard under a name (like a key; an existing entry of that "
        "name is replaced) or a numeric idx (fails if that index is taken). Values up to 2MB; entries "
        "expire after ttlSeconds, 24 hours by default."
    ),
    input_schema=_with_examples(
        zod_schema(
            "Store a clipboard entry by name or by index.",
            {
                "name": {"type": "string", "maxLength": 255, "description": "The entry's name, e.g. 'draft_reply'."},
                "idx": {"type": "integer", "description": "The entry's index, for list-like use (0, 1, 2, ...)."},
                "value": {"type": "string", "description": "The value to store."},
                **_CONTENT,
            },
            required=["value"],
        ),
        {"name": "draft_reply", "value": "Thanks, we'll ship on Friday."},
        {"idx": 0, "value": '{"step": 1, "rows": 120}', "contentType": "application/json"},
    ),
    annotations=hints(read_only=False, destructive=False, idempotent=False),
    handler=_set,
    activity=CLIPBOARD,
)

CLIPBOARD_GET = BuiltinTool(
    name="pluggedin_clipboard_get",
    description=(
        "Read the plugged.in clipboard: one entry by name or idx (images come back as images), or, "
        "with neither, a summary of the entries page by page."
    ),
    input_schema=_with_examples(
        zod_schema(
            "Read one clipboard entry, or summarise a page of them.",
            {
                "name": {"type": "string", "description": "Read the entry of this name."},
                "idx": {"type": "integer", "description": "Read the entry at this index."},
                "contentType": _FILTER_TYPE,
                "limit": _LIMIT,
                "offset": _OFFSET,
            },
        ),
        {"name": "draft_reply"},
        {"idx": 0},
        {"limit": 10, "offset": 0},
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_get,
    activity=CLIPBOARD,
)

CLIPBOARD_DELETE = BuiltinTool(
    name=DELETE,
    description="Remove a plugged.in clipboard entry by name or idx, or every entry with clearAll.",
    input_schema=_with_examples(
        zod_schema(
            "Remove clipboard entries.",
            {
                "name": {"type": "string", "description": "Remove the entry of this name."},
                "idx": {"type": "integer", "description": "Remove the entry at this index."},
                "clearAll": {"type": "boolean", "default": False, "description": "Remove every entry."},
            },
        ),
        {"name": "draft_reply"},
        {"idx": 0},
        {"clearAll": True},
    ),
    annotations=hints(read_only=False, destructive=True, idempotent=True),
    handler=_delete,
    activity=CLIPBOARD,
)

CLIPBOARD_LIST = BuiltinTool(
    name="pluggedin_clipboard_list",
    description=(
        "List the plugged.in clipboard entries with their metadata, as the App returns them "
        "(image values cut to their first 1000 characters)."
    ),
    input_schema=zod_schema(
        "List clipboard entries with their metadata.",
        {"contentType": _FILTER_TYPE, "limit": _LIMIT, "offset": _OFFSET},
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_list,
    activity=CLIPBOARD,
)

CLIPBOARD_PUSH = BuiltinTool(
    name=PUSH,
    description=(
        "Add a value to the plugged.in clipboard at the next free index, for ordered results or a "
        "stack; pluggedin_clipboard_pop takes the latest back."
    ),
    input_schema=_with_examples(
        zod_schema(
            "Add a clipboard entry at the next index.",
            {"value": {"type": "string", "description": "The value to add."}, **_CONTENT},
            required=["value"],
        ),
        {"value": "Step 1 done: 120 rows cleaned", "createdByTool": "cleaner"},
        {"value": "iVBORw0KGgo=", "contentType": "image/png", "encoding": "base64"},
    ),
    annotations=hints(read_only=False, destructive=False, idempotent=False),
    handler=_push,
    activity=CLIPBOARD,
)

CLIPBOARD_POP = BuiltinTool(
    name="pluggedin_clipboard_pop",
    description="Take the highest-indexed entry off the plugged.in clipboard (last in, first out) and return it.",
    input_schema=zod_schema("Take the latest indexed clipboard entry.", {}),
    annotations=hints(read_only=False, destructive=True, idempotent=False),
    handler=_pop,
    activity=CLIPBOARD,
)

TOOLS: tuple[BuiltinTool, ...] = (
    CLIPBOARD_SET,
    CLIPBOARD_GET,
    CLIPBOARD_DELETE,
    CLIPBOARD_LIST,
    CLIPBOARD_PUSH,
    CLIPBOARD_POP,
)
