"""JSON-RPC errors answered straight from the HTTP layer, before any message was read (so `id` is null)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import Send

__all__ = ["send_error"]


async def send_error(
    send: Send, status: int, error: dict[str, Any], *, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with HTTP `status` and `{"jsonrpc": "2.0", "error": error, "id": null}`."""
    payload = json.dumps({"jsonrpc": "2.0", "error": error, "id": None}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})
