"""Limits on HTTP requests: the size of a body and the rate of requests per credential.

`BodyLimit` (middleware) refuses a body over `max_bytes` with 413 and a JSON-RPC error, whether the
size is declared (`Content-Length`) or only seen as a chunked body streams in. Before answering it
reads and discards what the client is still uploading (within bounds): closing a connection with
unread data makes the TCP stack send a reset, and the client would see that instead of the 413.
Nothing is buffered, so memory stays flat whatever the client sends.

`RateLimit` (an endpoint wrapper, so it runs after authentication and before the body is read)
counts each request against its credential: the API key `ApiKeyAuth` identified (by digest, never
the key), or the client's address when authentication is off. Over the limit: 429, `Retry-After`
in whole seconds, and a JSON-RPC error with `data.retryAfter`, as the per-session tool-call limit.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pluggedin_proxy.http.replies import send_error
from pluggedin_proxy.proxy.limits import SlidingWindow
from pluggedin_proxy.proxy.server import RATE_LIMITED

__all__ = ["BodyLimit", "RateLimit", "client_address", "send_rate_limited"]

# Bytes of a refused body read and thrown away so the client, still uploading, gets the 413; past that, close.
DRAIN_LIMIT = 16 * 1024 * 1024
# A client that pauses this long (seconds) is not uploading any more: answer it.
DRAIN_PAUSE = 2.0
# The longest (seconds) a refused upload is read, however steadily it trickles in.
DRAIN_TIMEOUT = 30.0


class BodyLimit:
    """Refuse a request body larger than `max_bytes`, declared or streamed, with a JSON-RPC error and 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            # A client that sent `Expect: 100-continue` waits for our go-ahead before uploading; it never gets it.
            if headers.get("expect", "").lower() != "100-continue":
                await _drain(receive, 0)
            await self._refuse(send)
            return

        received = 0
        responding = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if responding:  # too late for a 413: let the app see the request end
                        return {"type": "http.disconnect"}
                    if message.get("more_body", False):
                        await _drain(receive, received)
                    raise _TooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal responding
            responding = responding or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        error = {"code": -32600, "message": f"Request body too large (limit {self.max_bytes} bytes)"}
        await send_error(send, 413, error, headers=[(b"connection", b"close")])


class _TooLarge(Exception):
    """Raised from `receive` when a streamed body passes the limit, so `BodyLimit` answers instead of the app."""


async def _drain(receive: Receive, received: int) -> None:
    """Read and discard the rest of the body, while it keeps coming and within `DRAIN_LIMIT`/`DRAIN_TIMEOUT`."""
    with anyio.move_on_after(DRAIN_TIMEOUT):
        while received <= DRAIN_LIMIT:
            with anyio.move_on_after(DRAIN_PAUSE) as pause:
                message = await receive()
            if pause.cancelled_caught or message["type"] != "http.request":
                return
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class RateLimit:
    """An endpoint that admits at most `window.limit` requests per window for each credential."""

    def __init__(self, endpoint: Callable[[Scope, Receive, Send], Awaitable[None]], window: SlidingWindow) -> None:
        self.endpoint = endpoint
        self.window = window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if isinstance(user, AuthenticatedUser):
            key, per = ("key", user.access_token.client_id), "API key"
        else:
            key, per = ("address", client_address(scope)), "client address"
        wait = self.window.acquire(key)
        if wait is not None:
            await send_rate_limited(send, wait, f"at most {self.window.limit} requests per minute per {per}")
            return
        await self.endpoint(scope, receive, send)


def client_address(scope: Scope) -> str:
    """The peer's address as the server saw it (uvicorn substitutes `X-Forwarded-For` only from trusted peers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def send_rate_limited(send: Send, wait: float, limit: str) -> None:
    """Answer 429 saying which `limit` was exceeded and, in `Retry-After` and the error, when to retry."""
    retry = max(1, math.ceil(wait))
    error = {
        "code": RATE_LIMITED,
        "message": f"Rate limit exceeded: {limit}; try again in {retry} s.",
        "data": {"retryAfter": retry},
    }
    await send_error(send, 429, error, headers=[(b"retry-after", str(retry).encode())])
