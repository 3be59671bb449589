"""The document tools: create, list, search, read and update documents in the user's plugged.in library.

Each tool makes one call to the App's `/api/documents` routes and words the answer as the TypeScript
proxy lays it out, with its messages for the HTTP statuses it knows. Dates are shown as the ISO strings
the App sends: the TypeScript proxy formats them in the machine's locale, which is not portable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import mcp_types as types

from pluggedin_proxy.builtins.base import (
    ActivitySource,
    BuiltinTool,
    ToolCall,
    ToolFailure,
    app_failure,
    hand_schema,
    hints,
    text,
    zod_schema,
)

if TYPE_CHECKING:
    from pluggedin_proxy.catalog.app_client import AppReply

__all__ = ["CREATE_DOCUMENT", "GET_DOCUMENT", "LIST_DOCUMENTS", "SEARCH_DOCUMENTS", "TOOLS", "UPDATE_DOCUMENT"]

DOCUMENTS_TIMEOUT = 30.0
"""The TypeScript proxy sets none on these calls; this one keeps a stalled App from holding a call forever."""

_ACTIVITY = ActivitySource("Document System", "pluggedin_documents")
_COMMON = {
    401: "Authentication failed. Check your API key.",
    429: "Rate limit exceeded. Please try again later.",
}
_NOT_FOUND = "Document not found or not accessible"
_CSRF_REFUSED = (
    "The plugged.in App refused the update (HTTP 403): its document-update route demands the browser "
    "headers of its CSRF check (an allowed Origin and X-Requested-With), which API clients such as this "
    "proxy do not send. The document was not changed; edit it in the plugged.in web app instead."
)

# JSON Schema pieces. Zod's `uuid` and `datetime` become `format`, which the validator does not check,
# so a pattern says the same thing in a form it does.
_UUID = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
_DATE_TIME = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_SOURCES = ["all", "upload", "ai_generated", "api"]
_CATEGORIES = ["report", "analysis", "documentation", "guide", "research", "code", "other"]


def _field(base: Mapping[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {**base, **extra, "description": description}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return _field({"type": "string"}, description, **extra)


def _object(description: str, properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A nested object as Zod emits it: closed to unknown keys."""
    return {**hand_schema(properties, required), "additionalProperties": False, "description": description}


def _model(description: str) -> dict[str, Any]:
    model = _object(
        description,
        {
            "name": _string("Model name, e.g. claude-sonnet-4."),
            "provider": _string("Who serves the model, e.g. anthropic or openai."),
            "version": _string("Model version, if known."),
        },
        required=["name", "provider"],
    )
    model["examples"] = [{"name": "claude-sonnet-4", "provider": "anthropic"}, {"name": "gpt-4o", "provider": "openai"}]
    return model


async def _send(call: ToolCall, method: str, path: str, *, params: Any = None, body: Any = None) -> AppReply:
    return await call.require_app().send(method, path, params=params, json=body, timeout=DOCUMENTS_TIMEOUT)


def _source_line(doc: Mapping[str, Any]) -> str:
    """`<source>`, with the model's name for documents an AI wrote."""
    model = _dict(doc.get("aiMetadata")).get("model")
    if doc.get("source") == "ai_generated" and isinstance(model, dict) and model.get("name"):
        return f"{doc.get('source')} ({model['name']})"
    return str(doc.get("source"))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# pluggedin_create_document


async def _create(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    reply = await _send(call, "POST", "/api/documents/ai", body=args)
    if not reply.ok:
        messages = {
            **_COMMON,
            400: "Invalid document data provided",
            413: "Document content too large (max 10MB)",
        }
        raise app_failure(reply, messages, "Document service error ({status})")
    return text(
        f"Document created successfully!\nID: {reply.field('documentId')}\nTitle: {args['title']}\n"
        f"URL: {reply.field('url')}"
    )


CREATE_DOCUMENT = BuiltinTool(
    name="pluggedin_create_document",
    description=(
        "Save a document you wrote into the user's plugged.in library, with the model that wrote it and "
        "how it came about. Answers with the new document's id and its library URL."
    ),
    input_schema=zod_schema(
        "Create a document in the plugged.in library, attributed to the model that wrote it.",
        {
            "title": _string("Title of the document (1-255 characters).", minLength=1, maxLength=255),
            "content": _string("The document's text.", minLength=1),
            "format": _string(
                "How the content is written: md (Markdown), txt, json or html.",
                enum=["md", "txt", "json", "html"],
                default="md",
            ),
            "tags": _field(_STRINGS, "Tags to file it under (at most 20).", maxItems=20),
            "category": _string("What kind of document it is.", enum=_CATEGORIES, default="other"),
            "metadata": _object(
                "Who wrote the document and in what context.",
                {
                    "model": _model("The model that wrote the document."),
                    "context": _string("What the document was written for."),
                    "visibility": _string(
                        "Who may see it: private (the user), workspace (the team) or public.",
                        enum=["private", "workspace", "public"],
                        default="private",
                    ),
                    "prompt": _string("The user's request that led to the document."),
                    "conversationContext": _field(_STRINGS, "Earlier messages of the conversation, for context."),
                    "sourceDocuments": _field(_STRINGS, "Ids of library documents it draws on."),
                    "generationParams": _object(
                        "Sampling settings used to write it.",
                        {
                            "temperature": {"type": "number", "minimum": 0, "maximum": 2, "description": "0-2."},
                            "maxTokens": {"type": "number", "exclusiveMinimum": 0, "description": "Token limit."},
                            "topP": {"type": "number", "minimum": 0, "maximum": 1, "description": "0-1."},
                        },
                    ),
                },
                required=["model"],
            ),
        },
        required=["title", "content", "metadata"],
    ),
    annotations=hints(read_only=False, destructive=False, idempotent=False),
    handler=_create,
    activity=_ACTIVITY,
)


# pluggedin_list_documents


async def _list(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    params: list[tuple[str, Any]] = []
    for key, value in _dict(args.get("filters")).items():
        if key == "tags":
            params.extend(("tags", tag) for tag in value)
        elif value:
            params.append((key, value))
    params += [("sort", args["sort"]), ("limit", args["limit"]), ("offset", args["offset"])]
    reply = await _send(call, "GET", "/api/documents", params=params)
    if not reply.ok:
        raise app_failure(reply, _COMMON, "Failed to list documents")
    documents = _items(reply.field("documents"))
    lines = [f"Found {reply.field('total') or 0} document(s) (showing {len(documents)})", ""]
    for number, doc in enumerate(documents, 1):
        lines += [f"{number}. **{doc.get('title')}**", f"   ID: {doc.get('id')}", f"   Created: {doc.get('createdAt')}"]
        lines.append(f"   Source: {_source_line(doc)}")
        if doc.get("tags"):
            lines.append(f"   Tags: {', '.join(map(_plain, doc['tags']))}")
        if doc.get("description"):
            lines.append(f"   Description: {doc['description']}")
        lines.append("")
    return text("\n".join(lines))


_FILTER_COMMON = {
    "modelName": _string("Only documents written by this model."),
    "modelProvider": _string("Only documents written by this provider's models, e.g. anthropic."),
    "dateFrom": _field(_DATE_TIME, "Only documents created at or after this ISO 8601 time."),
    "dateTo": _field(_DATE_TIME, "Only documents created at or before this ISO 8601 time."),
    "tags": _field(_STRINGS, "Only documents with these tags."),
}
_SOURCE_FILTER = _string("Where documents came from: all, upload, ai_generated or api.", enum=_SOURCES, default="all")

LIST_DOCUMENTS = BuiltinTool(
    name="pluggedin_list_documents",
    description=(
        "List the documents in the user's plugged.in library, newest first by default, optionally filtered "
        "by source, model, date, tags, category or a text match, with paging."
    ),
    input_schema=zod_schema(
        "List documents of the plugged.in library, with filters, sort order and paging.",
        {
            "filters": _object(
                "Narrow the list down.",
                {
                    "source": _SOURCE_FILTER,
                    **_FILTER_COMMON,
                    "category": _string("Only documents of this category.", enum=_CATEGORIES),
                    "searchQuery": _string("Only documents whose name or description contains this text."),
                },
            ),
            "sort": _string(
                "Order: date_desc (newest first), date_asc, title or size.",
                enum=["date_desc", "date_asc", "title", "size"],
                default="date_desc",
            ),
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "default": 20,
                "description": "How many documents to show (1-100).",
            },
            "offset": {"type": "integer", "minimum": 0, "default": 0, "description": "How many to skip first."},
        },
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_list,
    activity=_ACTIVITY,
)


# pluggedin_search_documents


async def _search(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    reply = await _send(call, "POST", "/api/documents/search", body=args)
    if not reply.ok:
        raise app_failure(reply, _COMMON, "Failed to search documents")
    results = _items(reply.field("results"))
    lines = [f'Search results for "{args["query"]}" ({len(results)} found):', ""]
    for number, result in enumerate(results, 1):
        score = result.get("relevanceScore")
        relevance = f"{score * 100:.1f}%" if isinstance(score, int | float) else "unknown"
        lines += [
            f"{number}. **{result.get('title')}**",
            f"   ID: {result.get('id')}",
            f"   Relevance: {relevance}",
            f"   Snippet: {result.get('snippet')}",
            f"   Source: {_source_line(result)}",
            "",
        ]
    return text("\n".join(lines))


SEARCH_DOCUMENTS = BuiltinTool(
    name="pluggedin_search_documents",
    description=(
        "Search the user's plugged.in library by meaning and wording; answers with the best matches, their "
        "relevance and a snippet of each."
    ),
    input_schema=zod_schema(
        "Search documents of the plugged.in library.",
        {
            "query": _string(
                "What to look for (1-500 characters).",
                minLength=1,
                maxLength=500,
                examples=["quarterly sales analysis", "API authentication guide"],
            ),
            "filters": _object("Narrow the search down.", {**_FILTER_COMMON, "source": _SOURCE_FILTER}),
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 50,
                "default": 10,
                "description": "How many results to return (1-50).",
            },
        },
        required=["query"],
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_search,
    activity=_ACTIVITY,
)


# pluggedin_get_document

_KNOWN_METADATA = {
    "model", "prompt", "updateReason", "changesFromPrompt", "changeSummary", "context", "visibility",
    "sessionId", "lastUpdatedBy", "lastUpdateTimestamp", "conversationContext", "sourceDocuments",
    "generationParams", "timestamp",
}  # fmt: skip
_METADATA_LABELS = {
    "prompt": "Prompt",
    "updateReason": "Update Reason",
    "changesFromPrompt": "Changes From Prompt",
    "changeSummary": "Change Summary",
    "context": "Context",
    "visibility": "Visibility",
    "sessionId": "Session ID",
}
_PARAM_LABELS = {"temperature": "Temperature", "maxTokens": "Max Tokens", "topP": "Top-P"}


async def _get(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    params = {key: "true" if args[key] else "false" for key in ("includeContent", "includeVersions")}
    reply = await _send(call, "GET", f"/api/documents/{args['documentId']}", params=params)
    if not reply.ok:
        raise app_failure(reply, {**_COMMON, 404: _NOT_FOUND}, "Failed to retrieve document")
    doc = _dict(reply.body)
    lines = [f"**{doc.get('title')}**", "", f"ID: {doc.get('id')}", f"Created: {doc.get('createdAt')}"]
    lines += [f"Source: {_source_line(doc)}", f"Version: {doc.get('version')}"]
    if doc.get("tags"):
        lines.append(f"Tags: {', '.join(map(_plain, doc['tags']))}")
    lines.append("")
    if doc.get("description"):
        lines += [f"Description: {doc['description']}", ""]
    metadata = _dict(doc.get("aiMetadata"))
    if metadata:
        lines += ["--- AI Metadata ---", *_metadata_lines(metadata), ""]
    if args["includeContent"] and doc.get("content"):
        lines += ["--- Content ---", _plain(doc["content"])]
    versions = _items(doc.get("versions"))
    if args["includeVersions"] and versions:
        lines += ["", "--- Version History ---"]
        for version in versions:
            line = f"v{version.get('versionNumber')} - {version.get('createdAt')}"
            by = _dict(version.get("createdByModel")).get("name")
            if by:
                line += f" by {by}"
            if version.get("changeSummary"):
                line += f" - {version['changeSummary']}"
            lines.append(line)
    return text("\n".join(lines) + "\n")


def _metadata_lines(metadata: Mapping[str, Any]) -> list[str]:
    """The `aiMetadata` block: known keys with labels, in a fixed order, then any others as they come."""
    lines: list[str] = []
    if isinstance(metadata.get("model"), dict):
        lines.append(f"Model: {_model_name(metadata['model'])}")
    lines += [f"{label}: {_plain(metadata[key])}" for key, label in _METADATA_LABELS.items() if metadata.get(key)]
    if isinstance(metadata.get("lastUpdatedBy"), dict):
        lines.append(f"Last Updated By: {_model_name(metadata['lastUpdatedBy'])}")
    if metadata.get("lastUpdateTimestamp"):
        lines.append(f"Last Update: {metadata['lastUpdateTimestamp']}")
    if isinstance(metadata.get("conversationContext"), list) and metadata["conversationContext"]:
        lines.append(f"Conversation Context: {len(metadata['conversationContext'])} messages")
    if isinstance(metadata.get("sourceDocuments"), list) and metadata["sourceDocuments"]:
        lines.append(f"Source Documents: {', '.join(map(_plain, metadata['sourceDocuments']))}")
    params = metadata.get("generationParams")
    if isinstance(params, dict):
        lines.append("Generation Parameters:")
        lines += [f"  - {label}: {_plain(params[key])}" for key, label in _PARAM_LABELS.items() if key in params]
    others = [key for key in metadata if key not in _KNOWN_METADATA and metadata[key] is not None]
    if others:
        lines.append("Additional Metadata:")
        lines += [f"  - {key}: {_plain(metadata[key])}" for key in others]
    return lines


def _model_name(model: Mapping[str, Any]) -> str:
    """`name (provider vVERSION)`."""
    version = f" v{model['version']}" if model.get("version") else ""
    return f"{model.get('name')} ({model.get('provider')}{version})"


GET_DOCUMENT = BuiltinTool(
    name="pluggedin_get_document",
    description=(
        "Read one document of the user's plugged.in library by id: its details and AI attribution, and on "
        "request its full content and version history."
    ),
    input_schema=zod_schema(
        "Fetch one document of the plugged.in library.",
        {
            "documentId": _field(
                _UUID, "The document's id (a UUID).", examples=["550e8400-e29b-41d4-a716-446655440000"]
            ),
            "includeContent": {"type": "boolean", "default": False, "description": "Also return the full text."},
            "includeVersions": {"type": "boolean", "default": False, "description": "Also return the version history."},
        },
        required=["documentId"],
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_get,
    activity=_ACTIVITY,
)


# pluggedin_update_document


async def _update(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    # The App checks CSRF headers on this route before the API key; faking a browser Origin is not ours to do.
    reply = await _send(call, "PATCH", f"/api/documents/{args['documentId']}", body=args)
    if reply.status == 501:
        details = reply.field("details")
        raise ToolFailure(
            details if isinstance(details, str) and details else "The plugged.in App does not support document updates"
        )
    if not reply.ok:
        messages = {**_COMMON, 400: "Invalid update data provided", 403: _CSRF_REFUSED, 404: _NOT_FOUND}
        raise app_failure(reply, messages, "Failed to update document")
    return text(
        f"Document updated successfully!\nID: {args['documentId']}\nOperation: {args['operation']}\n"
        f"New version: {reply.field('version')}"
    )


UPDATE_DOCUMENT = BuiltinTool(
    name="pluggedin_update_document",
    description=(
        "Change a document of the user's plugged.in library: replace its content, or add text at its end or "
        "start. Each update makes a new version, attributed to the model that made it."
    ),
    input_schema=zod_schema(
        "Update a document of the plugged.in library, keeping its version history.",
        {
            "documentId": _field(_UUID, "The document's id (a UUID)."),
            "operation": _string(
                "replace (the whole content), append (at the end) or prepend (at the start).",
                enum=["replace", "append", "prepend"],
            ),
            "content": _string("The new text.", minLength=1),
            "metadata": _object(
                "What changed and who changed it.",
                {
                    "tags": _field(_STRINGS, "The document's new tags."),
                    "changeSummary": _string("A short summary of the change."),
                    "updateReason": _string("Why the document was changed."),
                    "changesFromPrompt": _string("The user's request that led to the change."),
                    "model": _model("The model that made the change."),
                },
                required=["model"],
            ),
        },
        required=["documentId", "operation", "content"],
    ),
    annotations=hints(read_only=False, destructive=False, idempotent=False),
    handler=_update,
    activity=_ACTIVITY,
)

TOOLS: tuple[BuiltinTool, ...] = (CREATE_DOCUMENT, LIST_DOCUMENTS, SEARCH_DOCUMENTS, GET_DOCUMENT, UPDATE_DOCUMENT)
