"""Serving an ASGI application (the self-hosted App) with uvicorn inside an anyio task group.

`serve_app` is started with `TaskGroup.start()` and reports the bound port once uvicorn accepts
connections, so a caller never guesses when the App is ready. uvicorn runs in a shielded task: when the
caller's scope is cancelled, `serve_app` asks uvicorn to exit and waits (bounded) for its graceful
shutdown, so the application's lifespan shutdown runs and every server it started is stopped. A
signal (SIGINT, SIGTERM) caught by uvicorn ends the serving the same way, and `serve_app` returns.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import anyio
import anyio.abc
import uvicorn

__all__ = ["bind_socket", "serve_app"]

logger = logging.getLogger(__name__)

# Open connections get this long to finish their responses at shutdown.
GRACEFUL_SHUTDOWN_TIMEOUT = 5
# Beyond the graceful period, the lifespan shutdown (stopping upstream servers) gets this long.
SHUTDOWN_TIMEOUT = GRACEFUL_SHUTDOWN_TIMEOUT + 15.0


class _ReadyServer(uvicorn.Server):
    """A uvicorn server that says when its startup has settled (listening or failed) and when it ended."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = anyio.Event()
        self.done = anyio.Event()
        self.failure: BaseException | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.settled.set()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port`; port 0 lets the kernel pick a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_app(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `sock` (or a socket bound to `host:port`) until cancelled or signalled.

    Reports the listening port through `task_status` once uvicorn accepts connections.

    Raises:
        OSError: `host:port` cannot be bound.
        RuntimeError: the application's startup (its lifespan) failed; uvicorn has logged why.
    """
    own_socket = sock is None
    listener = bind_socket(host, port) if sock is None else sock
    bound_port: int = listener.getsockname()[1]
    # log_config=None keeps uvicorn on the root logger (stderr); its default config logs access to stdout.
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT
    )
    server = _ReadyServer(config)
    try:
        async with anyio.create_task_group() as tg:
            shield = anyio.CancelScope(shield=True)
            tg.start_soon(_run, server, listener, shield)
            try:
                await server.settled.wait()
                if server.started:
                    task_status.started(bound_port)
                    await server.done.wait()
            finally:
                server.should_exit = True
                shield.deadline = anyio.current_time() + SHUTDOWN_TIMEOUT
    finally:
        if own_socket:
            listener.close()
    if not server.started:
        raise RuntimeError("the application failed to start; see the log above for why") from server.failure


async def _run(server: _ReadyServer, listener: socket.socket, shield: anyio.CancelScope) -> None:
    with shield:
        try:
            await server.serve(sockets=[listener])
        except SystemExit as exc:
            # uvicorn exits the process when the lifespan startup fails; here that is an error to report.
            server.failure = exc
        finally:
            server.settled.set()
            server.done.set()
