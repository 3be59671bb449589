"""API-key authentication for every HTTP path that reaches MCP, as a plain ASGI middleware.

A request must carry one of the accepted keys as `Authorization: Bearer <key>` (any case of
`Bearer`) or `X-Api-Key: <key>`; keys are compared in constant time. The check runs on the
headers, before the body is read, so nothing in a request (a batch included) executes
unauthenticated. A session is bound to the key that created it: another key naming that
session id gets 404, as if it did not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ApiKeyAuth", "UNAUTHORIZED"]

UNAUTHORIZED = {"code": -32001, "message": "Unauthorized: Invalid or missing API key"}
SESSION_HEADER = b"mcp-session-id"


class ApiKeyAuth:
    """Let through only requests with an accepted key to `paths` (and below them); others pass untouched."""

    def __init__(self, app: ASGIApp, keys: Iterable[str], *, paths: Iterable[str]) -> None:
        self.app = app
        self._keys = [k.encode() for k in keys if k]
        self._paths = tuple(paths)
        self._owners: dict[bytes, bytes] = {}
        """Session id → digest of the key that created it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = _presented_key(headers)
        if key is None or not self._accepts(key):
            await _reply(send, 401, {"jsonrpc": "2.0", "error": UNAUTHORIZED, "id": None}, authenticate=True)
            return
        owner = hashlib.sha256(key).digest()
        session = headers.get(SESSION_HEADER)
        if session is not None and self._owners.get(session, owner) != owner:
            error = {"code": -32600, "message": "Session not found"}
            await _reply(send, 404, {"jsonrpc": "2.0", "error": error, "id": None})
            return

        async def bind_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == SESSION_HEADER:
                        self._owners.setdefault(value, owner)
            await send(message)

        await self.app(scope, receive, bind_session)
        if scope["method"] == "DELETE" and session is not None:
            self._owners.pop(session, None)

    def _guarded(self, path: str) -> bool:
        return path in self._paths or any(path.startswith(p + "/") for p in self._paths if p != "/")

    def _accepts(self, key: bytes) -> bool:
        # Compare with every key, so the time taken says nothing about which (if any) matched.
        matched = False
        for accepted in self._keys:
            matched |= hmac.compare_digest(key, accepted)
        return matched


def _presented_key(headers: dict[bytes, bytes]) -> bytes | None:
    authorization = headers.get(b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip()
    api_key = headers.get(b"x-api-key")
    return api_key.strip() if api_key else None


async def _reply(send: Send, status: int, body: object, *, authenticate: bool = False) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if authenticate:
        headers.append((b"www-authenticate", b'Bearer realm="pluggedin-mcp"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
