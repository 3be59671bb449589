"""The echo test server (`tests.servers.echo_server`) served over Streamable HTTP at `/mcp`.

Run from the repository root:

    python -m tests.servers.http_echo --port PORT [--host 127.0.0.1] [--name NAME] [--extra-tools N] [--stateless]

The script binds the listening socket itself, so `--port 0` lets the kernel pick a free port. Once uvicorn is
accepting connections it writes `LISTENING <port>` to stderr; a test reads that line instead of guessing a port
or sleeping. stdout stays unused. Sessions are stateful unless `--stateless` is given.
"""

from __future__ import annotations

import argparse
import functools
import logging
import socket
import sys

import anyio
import uvicorn

from tests.servers.echo_server import build_server

logger = logging.getLogger(__name__)


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that writes `LISTENING <port>` to stderr once its startup has finished."""

    def __init__(self, config: uvicorn.Config, port: int) -> None:
        super().__init__(config)
        self._port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            sys.stderr.write(f"LISTENING {self._port}\n")
            sys.stderr.flush()


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket; port 0 asks the kernel for a free one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Echo MCP server over Streamable HTTP, for the proxy's tests.")
    parser.add_argument("--port", type=int, required=True, help="TCP port; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="echo", help="server name, reported in serverInfo and by whoami")
    parser.add_argument("--extra-tools", type=int, default=0, metavar="N", help="add tools extra_0..extra_{N-1}")
    parser.add_argument("--stateless", action="store_true", help="serve handshake-era clients without sessions")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="http_echo: %(levelname)s %(message)s")
    app = build_server(args.name, args.extra_tools).streamable_http_app(host=args.host, stateless_http=args.stateless)
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    # log_config=None keeps uvicorn on the root logger (stderr); its default config sends access logs to stdout.
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1)
    server = _AnnouncingServer(config, port)
    try:
        anyio.run(functools.partial(server.serve, sockets=[sock]))
    finally:
        sock.close()


if __name__ == "__main__":
    main()
