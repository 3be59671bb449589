"""`pluggedin_ask_knowledge_base`: a question answered from the documents of the user's Hub.

It posts the question to the App's RAG endpoint and answers with pretty-printed JSON
`{answer, sources, metadata: {query, sourceCount, timestamp}}`, the layout the TypeScript proxy returns.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import mcp_types as types

from pluggedin_proxy.builtins.base import (
    ActivitySource,
    BuiltinTool,
    ToolCall,
    ToolFailure,
    app_failure,
    hints,
    text,
    zod_schema,
)
from pluggedin_proxy.errors import CatalogUnavailable

__all__ = ["ASK_KNOWLEDGE_BASE", "TOOLS"]

RAG_TIMEOUT = 15.0

_MESSAGES = {
    401: "Authentication failed. Check your API key.",
    429: "Rate limit exceeded. Please try again later.",
}


async def _ask(call: ToolCall) -> types.CallToolResult:
    query: str = call.arguments["query"]
    try:
        reply = await call.require_app().send(
            "POST", "/api/rag/query", json={"query": query, "includeMetadata": True}, timeout=RAG_TIMEOUT
        )
    except CatalogUnavailable as exc:
        raise ToolFailure(f"RAG service temporarily unavailable ({exc})") from exc
    if not reply.ok:
        raise app_failure(reply, _MESSAGES, "RAG service error ({status})")
    if isinstance(reply.body, dict):
        answer, sources = _structured(reply.body)
    else:  # the App answers plain text when metadata is not asked for; take it as the answer
        answer, sources = (reply.body or "The knowledge base sent no answer."), []
    result = {
        "answer": answer,
        "sources": sources,
        "metadata": {
            "query": query,
            "sourceCount": len(sources),
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        },
    }
    return text(json.dumps(result, indent=2, ensure_ascii=False))


def _structured(body: dict[str, Any]) -> tuple[Any, list[Any]]:
    """The answer and one entry per source; names come from `sources`, the rest from the parallel arrays."""
    names = _list(body.get("sources"))
    ids = _list(body.get("documentIds"))
    versions = _list(body.get("documentVersions"))
    scores = _list(body.get("relevanceScores"))

    def at(items: list[Any], index: int) -> Any:
        return items[index] if index < len(items) and items[index] else None

    sources: list[Any]
    if names:
        sources = [
            {"name": name, "id": at(ids, i), "version": at(versions, i), "relevance": at(scores, i)}
            for i, name in enumerate(names)
        ]
    else:
        sources = [{"id": id_, "version": at(versions, i), "relevance": at(scores, i)} for i, id_ in enumerate(ids)]
    return body.get("answer") or "The knowledge base sent no answer.", sources


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


ASK_KNOWLEDGE_BASE = BuiltinTool(
    name="pluggedin_ask_knowledge_base",
    description=(
        "Search the documents in your plugged.in knowledge base and get back the passages that answer a "
        "question, as JSON with the answer text, the source documents (name and id) and query metadata."
    ),
    input_schema=zod_schema(
        "Ask the plugged.in knowledge base a question; the answer comes back as JSON with its sources.",
        {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": 1000,
                "description": "The question to answer from your documents (1-1000 characters).",
            }
        },
        required=["query"],
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=False),
    handler=_ask,
    activity=ActivitySource("RAG System", "pluggedin_rag"),
)

TOOLS: tuple[BuiltinTool, ...] = (ASK_KNOWLEDGE_BASE,)
