"""Bearer-key authentication for the App API, as a plain ASGI middleware.

It follows the App's `authenticateApiKey`: the `Authorization` header must begin with exactly
`Bearer ` (capital B, one space), and the rest, trimmed, must be one of the configured keys. Keys are
compared in constant time. Anything else is answered with 401 and `{"error": ...}` before routing, so
an unauthenticated caller learns nothing about which routes exist. Paths in `public_paths` (the health
check) and non-HTTP scopes (lifespan) pass straight through.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Sequence

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BearerAuth"]

SCHEME = "Bearer "


class BearerAuth:
    """Answer 401 unless the request carries `Authorization: Bearer <one of the keys>`."""

    def __init__(self, app: ASGIApp, *, api_keys: Sequence[str], public_paths: Collection[str] = ()) -> None:
        if not api_keys:
            raise ValueError("BearerAuth needs at least one API key")
        self.app = app
        self._keys = tuple(key.encode() for key in api_keys)
        self._public = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        problem = self._problem(Headers(scope=scope).get("authorization"))
        if problem is None:
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"error": problem}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)

    def _problem(self, header: str | None) -> str | None:
        """Why the header does not authenticate, or `None` when it does."""
        if header is None or not header.startswith(SCHEME):
            return "Authorization header with a Bearer API key is required"
        offered = header[len(SCHEME) :].strip().encode()
        # Compare against every key, so the time taken does not tell which (or whether one) nearly matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(key, offered)
        return None if matched and offered else "Invalid API key"
