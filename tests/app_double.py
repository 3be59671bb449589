"""A contract-faithful stand-in for the plugged.in App, served on loopback by real uvicorn.

Tests say what each route answers (shapes taken from `reference/pluggedin-app-api.md` and the
endpoint table of `reference/pluggedin-proxy.md` §2.2) and read back every request the App got.
The catalog routes answer empty lists and the activity log accepts everything until told otherwise;
any other route answers 404 like the App does for an unknown path.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import proxy_session

KEY = "pg_in_test_key_for_the_app_double_0123456789"


@dataclass(frozen=True)
class Recorded:
    """One request the App received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    """Parsed JSON body, or `None`."""
    authorization: str | None


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class AppDouble:
    """Programmable answers per `(method, path)`, and the record of what was asked."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Recorded] = []
        self._replies: dict[tuple[str, str], deque[Reply]] = {}
        self._defaults: dict[tuple[str, str], Reply] = {
            ("GET", "/api/mcp-servers"): Reply(200, []),
            ("GET", "/api/tools"): Reply(200, {"tools": []}),
            ("GET", "/api/prompts"): Reply(200, []),
            ("GET", "/api/resources"): Reply(200, []),
            ("GET", "/api/resource-templates"): Reply(200, []),
            ("POST", "/api/notifications/mcp-activity"): Reply(200, {"success": True}),
        }

    def reply(
        self,
        method: str,
        path: str,
        body: Any = None,
        status: int = 200,
        *,
        once: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer `method path` with `status` and JSON `body` (a `str` is sent as text) from now on, or once."""
        answer = Reply(status, body, headers or {})
        if once:
            self._replies.setdefault((method, path), deque()).append(answer)
        else:
            self._defaults[(method, path)] = answer

    def seen(self, method: str, path: str) -> list[Recorded]:
        """The requests received for `method path`, oldest first."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def activity(self) -> list[dict[str, Any]]:
        """Bodies posted to the activity log."""
        return [r.body for r in self.seen("POST", "/api/notifications/mcp-activity")]

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        path = request.url.path
        self.requests.append(Recorded(request.method, path, query, body, request.headers.get("authorization")))
        queued = self._replies.get((request.method, path))
        answer = queued.popleft() if queued else self._defaults.get((request.method, path))
        if answer is None:
            return JSONResponse({"error": "Not found"}, status_code=404)
        if isinstance(answer.body, str):
            return Response(answer.body, answer.status, answer.headers, media_type="text/plain")
        if answer.body is None:
            return Response(b"", answer.status, answer.headers)
        return JSONResponse(answer.body, answer.status, answer.headers)


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@asynccontextmanager
async def app_double() -> AsyncIterator[AppDouble]:
    """An `AppDouble` listening on a free loopback port."""
    double = AppDouble()
    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", double._handle, methods=methods)])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off")
    server = _AnnouncingServer(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            await server.ready.wait()
        port = server.servers[0].sockets[0].getsockname()[1]
        double.url = f"http://127.0.0.1:{port}"
        try:
            yield double
        finally:
            server.should_exit = True


def proxy_for(double: AppDouble, *extra: str, **options: Any) -> Any:
    """A client session with the proxy in App mode against the double."""
    args = ("--pluggedin-api-key", KEY, "--pluggedin-api-base-url", double.url, "--app-timeout", "2")
    return proxy_session(None, *args, *extra, **options)
