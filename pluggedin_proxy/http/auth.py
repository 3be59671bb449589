"""API-key authentication for every HTTP path that reaches MCP, as a plain ASGI middleware.

A request must carry one of the accepted keys as `Authorization: Bearer <key>` (any case of
`Bearer`) or `X-Api-Key: <key>`; keys are compared in constant time. The check runs on the
headers, before the body is read, so nothing in a request (a batch included) executes
unauthenticated. An accepted key is named in the scope as an `AuthenticatedUser` whose identity
is a keyed digest of the key (never the key): the SDK's transports bind each session, Streamable
HTTP and legacy SSE alike, to the identity that created it, so another key naming that session
gets 404, as if it did not exist; the request rate limit counts per identity. Requests that fail
authentication are counted per client address; past that budget they get 429 instead of 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from pluggedin_proxy.http.limits import client_address, send_rate_limited
from pluggedin_proxy.http.replies import send_error
from pluggedin_proxy.proxy.limits import SlidingWindow

__all__ = ["ApiKeyAuth", "UNAUTHORIZED"]

UNAUTHORIZED = {"code": -32001, "message": "Unauthorized: Invalid or missing API key"}


class ApiKeyAuth:
    """Let through only requests with an accepted key to `paths` (and below them); others pass untouched.

    `failures`, when given, limits the requests per client address that fail authentication.
    """

    def __init__(
        self, app: ASGIApp, keys: Iterable[str], *, paths: Iterable[str], failures: SlidingWindow | None = None
    ) -> None:
        self.app = app
        self._keys = [k.encode() for k in keys if k]
        self._paths = tuple(paths)
        self._failures = failures
        # Identities are digests keyed per process, so one seen in memory or a log says nothing about the key.
        self._salt = secrets.token_bytes(32)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        key = _presented_key(dict(scope["headers"]))
        if key is None or not self._accepts(key):
            await self._refuse(scope, send)
            return
        identity = hmac.new(self._salt, key, hashlib.sha256).hexdigest()
        scope["user"] = AuthenticatedUser(AccessToken(token=identity, client_id=identity, scopes=[]))
        scope["auth"] = AuthCredentials()
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if self._failures is not None:
            wait = self._failures.acquire(("address", client_address(scope)))
            if wait is not None:
                limit = f"at most {self._failures.limit} failed authentications per minute per client address"
                await send_rate_limited(send, wait, limit)
                return
        await send_error(send, 401, UNAUTHORIZED, headers=[(b"www-authenticate", b'Bearer realm="pluggedin-mcp"')])

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
