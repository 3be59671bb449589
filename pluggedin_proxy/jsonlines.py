"""JSON-RPC lines as the proxy reads and writes them where it bypasses the SDK (the stdio fast path and lane)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["compact", "loads_or_none"]


def compact(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON, as the SDKs write it; a lone surrogate (UTF-8 cannot carry it) stays escaped."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def loads_or_none(text: str | bytes) -> Any:
    """The JSON value in `text`, or None when it is not JSON (or nested past the parser's stack)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
