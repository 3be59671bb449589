"""Oversized tool results: cut to size for the client, kept whole for a while as a readable resource.

A tool result whose content is larger than the limit reaches the client truncated, with a note
saying how much was cut and which resource holds the whole result; `resources/read` of that URI
returns the full result as JSON for `RESULT_TTL` seconds. Results are kept in memory, up to a total
size; the oldest go first. Sizes are measured on the content blocks as sent (text, base64 data,
embedded resources), which costs one pass over the blocks and no serialisation. Structured content
that fits is kept as it is (clients check it against the tool's output schema); structured content
that does not fit is dropped and the result marked as an error, so no client takes it as whole.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import mcp_types as types

__all__ = ["DEFAULT_MAX_RESULT_BYTES", "RESULT_URI_PREFIX", "ResultStore"]

DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
RESULT_URI_PREFIX = "pluggedin://results/"
# How long a full result stays readable, and the memory all kept results may take (bytes).
RESULT_TTL = 600.0
STORE_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Kept:
    text: str
    expires: float


class ResultStore:
    """Cuts oversized tool results and keeps the originals for a while."""

    def __init__(self, limit: int = DEFAULT_MAX_RESULT_BYTES, *, max_bytes: int = STORE_MAX_BYTES) -> None:
        self.limit = limit
        """Characters of content (text, base64 data) a result may have before it is cut; 0 means no limit."""
        self._max_bytes = max_bytes
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._bytes = 0

    def fit(self, result: types.CallToolResult, tool: str) -> types.CallToolResult:
        """`result` if it is within the limit, else a cut copy pointing at the kept original."""
        if not self.limit:
            return result
        size = sum(_size(block) for block in result.content)
        if size <= self.limit:
            return result
        uri = self._keep(result.model_dump_json(by_alias=True, exclude_none=True))
        budget = self.limit
        content: list[types.ContentBlock] = []
        for block in result.content:
            cost = _size(block)
            if cost <= budget:
                content.append(block)
                budget -= cost
            elif isinstance(block, types.TextContent) and budget > 0:
                content.append(block.model_copy(update={"text": block.text[:budget]}))
                budget = 0
        note = (
            f"[pluggedin-mcp: the result of {tool} was {size:,} characters long, more than the {self.limit:,} allowed, "
            f"and was cut. The whole result is readable as the resource {uri} for {RESULT_TTL / 60:g} minutes.]"
        )
        content.append(types.TextContent(text=note))
        update: dict[str, Any] = {"content": content}
        structured = result.structured_content
        if structured is not None and len(json.dumps(structured)) > self.limit:
            # Cut structured content would break its schema: drop it, and say the result is not whole.
            update |= {"structured_content": None, "is_error": True}
        return result.model_copy(update=update)

    def read(self, uri: str) -> types.ReadResourceResult | None:
        """A kept result as a JSON text resource, or None if it is unknown or expired."""
        self._expire()
        kept = self._kept.get(uri)
        if kept is None:
            return None
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=kept.text)]
        )

    def _keep(self, text: str) -> str:
        self._expire()
        uri = RESULT_URI_PREFIX + secrets.token_urlsafe(16)
        self._kept[uri] = _Kept(text, time.monotonic() + RESULT_TTL)
        self._bytes += len(text)
        while self._bytes > self._max_bytes and len(self._kept) > 1:
            _, dropped = self._kept.popitem(last=False)
            self._bytes -= len(dropped.text)
        return uri

    def _expire(self) -> None:
        now = time.monotonic()
        while self._kept:
            uri, kept = next(iter(self._kept.items()))
            if kept.expires > now:
                return
            del self._kept[uri]
            self._bytes -= len(kept.text)


def _size(block: types.ContentBlock) -> int:
    if isinstance(block, types.TextContent):
        return len(block.text)
    if isinstance(block, types.ImageContent | types.AudioContent):
        return len(block.data)
    if isinstance(block, types.EmbeddedResource):
        inner = block.resource
        return len(inner.text) if isinstance(inner, types.TextResourceContents) else len(inner.blob)
    return 0
