"""The legacy HTTP+SSE transport (protocol 2024-11-05), for clients that predate Streamable HTTP.

`GET /sse` opens an event stream whose first event, `endpoint`, names where to post
(`/messages?session_id=…`); each `POST /messages` delivers one client message (202), and the answer
comes on the stream. Each stream is one MCP session: the proxy's server runs on it, as in the SDK's
own SSE apps, from the moment the stream opens until it closes (the client disconnects or the
process stops), so there is no idle expiry. The SDK transport checks Host and Origin (DNS
rebinding), the body size, and that a post carries the credential that opened the stream (404
otherwise). At most `max_sessions` streams are open at once; one more gets 503. The transport is
stateful by nature, so it is offered in `--stateless` mode too.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server import Server
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INTERNAL_ERROR
from starlette.types import Receive, Scope, Send

from pluggedin_proxy.http.replies import send_error

__all__ = ["LegacySse"]

logger = logging.getLogger(__name__)

MESSAGE_PATH = "/messages"


class LegacySse:
    """The two endpoints of the HTTP+SSE transport for `server`: `stream` (GET /sse) and `post` (POST /messages)."""

    def __init__(
        self,
        server: Server[Any],
        *,
        security: TransportSecuritySettings | None,
        max_body_bytes: int,
        max_sessions: int,
    ) -> None:
        self._server = server
        self._transport = SseServerTransport(
            MESSAGE_PATH, security_settings=security, max_request_body_size=max_body_bytes
        )
        self.max_sessions = max_sessions
        self.sessions = 0
        """Streams open now."""

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Open an event stream and serve one MCP session on it until it closes."""
        if self.sessions >= self.max_sessions:
            logger.warning("refusing an SSE stream: %d are already open", self.sessions)
            message = f"Too many open sessions: at most {self.max_sessions} SSE streams; try again later"
            await send_error(send, 503, {"code": INTERNAL_ERROR, "message": message})
            return
        self.sessions += 1
        opened = False
        try:
            async with self._transport.connect_sse(scope, receive, send) as (read, write):
                opened = True
                await self._server.run(read, write, self._server.create_initialization_options())
        except ValueError:
            if opened:
                raise
            # The transport refused the request (Host or Origin not allowed) and has answered it.
        finally:
            self.sessions -= 1

    async def post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Deliver one posted message to the session its `session_id` names."""
        await self._transport.handle_post_message(scope, receive, send)
