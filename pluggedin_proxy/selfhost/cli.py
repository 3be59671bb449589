"""`python -m pluggedin_proxy.selfhost` (and `pluggedin-mcp app`): run the self-hosted App.

    python -m pluggedin_proxy.selfhost --config FILE [--host 127.0.0.1] [--port 12005]
        [--api-key KEY ...] [--data-dir DIR] [--discovery-timeout SECONDS] [--log-level LEVEL]

API keys come from `--api-key` (repeatable) and `$PLUGGEDIN_APP_API_KEYS` (comma-separated). Each
must be 32–256 characters from `A-Z a-z 0-9 _ -`: the TypeScript plugged.in proxy silently ignores
any other key, and would then never call the App. Once the App is listening, exactly one line goes to
stderr, `pluggedin-mcp app listening on http://HOST:PORT (N servers)`, with the real port when
`--port 0` let the kernel pick one. A configuration problem exits 1 with one line on stderr;
SIGINT or SIGTERM shuts down gracefully, stopping every server the App started.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import socket
import sys
from pathlib import Path
from typing import NoReturn

import anyio

from pluggedin_proxy.errors import ConfigError
from pluggedin_proxy.selfhost.app import SelfHostedApp
from pluggedin_proxy.selfhost.serve import bind_socket, serve_app

__all__ = ["API_KEYS_ENV", "default_data_dir", "main", "parse_api_keys"]

API_KEYS_ENV = "PLUGGEDIN_APP_API_KEYS"
DEFAULT_PORT = 12005
# What the TypeScript proxy's `validateBearerToken` and CLI sanitiser both let through.
_USABLE_KEY = re.compile(r"^[A-Za-z0-9_-]{32,256}$")
_MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/pluggedin-mcp/app`, else `~/.local/share/pluggedin-mcp/app`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pluggedin-mcp" / "app"


def parse_api_keys(flags: list[str], env_value: str | None) -> list[str]:
    """The App's API keys: the `--api-key` flags, then the comma-separated environment value.

    Raises:
        ValueError: there is no key at all, or one the plugged.in proxy would ignore (the key is not echoed).
    """
    given = [(key.strip(), "--api-key") for key in flags]
    given += [(key.strip(), f"${API_KEYS_ENV}") for key in (env_value or "").split(",") if key.strip()]
    if not given:
        raise ValueError(
            f"no API key given: pass --api-key KEY or set {API_KEYS_ENV}=KEY1,KEY2. A key is 32 to 256 "
            f"characters from A-Z a-z 0-9 _ -; make one with: {_MAKE_A_KEY}"
        )
    for number, (key, source) in enumerate(given, start=1):
        if not _USABLE_KEY.match(key):
            raise ValueError(
                f"API key #{number} (from {source}, {len(key)} characters) is not usable: the plugged.in proxy "
                f"ignores keys that are shorter than 32 or longer than 256 characters or use characters other "
                f"than A-Z a-z 0-9 _ -. Make one with: {_MAKE_A_KEY}"
            )
    return list(dict.fromkeys(key for key, _ in given))


def main(argv: list[str] | None = None) -> None:
    """Run the self-hosted App until SIGINT or SIGTERM; exit 1 with one line on a setup problem."""
    args = _parser().parse_args(argv)
    _configure_logging(args.log_level)
    try:
        keys = parse_api_keys(args.api_key, os.environ.get(API_KEYS_ENV))
    except ValueError as exc:
        _fail(str(exc))
    data_dir: Path = args.data_dir or default_data_dir()
    try:
        app = SelfHostedApp(args.config, api_keys=keys, data_dir=data_dir, discovery_timeout=args.discovery_timeout)
    except ConfigError as exc:
        _fail(str(exc))
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create the data directory {data_dir}: {exc.strerror or exc}")
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    try:
        problem = anyio.run(_serve, app, sock, args.host)
    except KeyboardInterrupt:
        problem = None
    finally:
        sock.close()
    if problem is not None:
        _fail(problem)


async def _serve(app: SelfHostedApp, sock: socket.socket, host: str) -> str | None:
    """Serve until signalled; return why the App could not start, if it could not."""
    async with anyio.create_task_group() as tg:
        try:
            port = await tg.start(functools.partial(serve_app, app.asgi, sock=sock))
        except RuntimeError as exc:
            return str(exc)
        servers = len(app.specs)
        sys.stderr.write(
            f"pluggedin-mcp app listening on {_url(host, port)} ({servers} server{'' if servers == 1 else 's'})\n"
        )
        sys.stderr.flush()
    return None


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pluggedin-mcp app",
        description="Serve the plugged.in App API from a local mcpServers config file, so a plugged.in proxy "
        "(this one or the TypeScript one) can use it as its --pluggedin-api-base-url.",
    )
    parser.add_argument("--config", "-c", type=Path, required=True, help="config file in the mcpServers format")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help=f"accepted Bearer key, repeatable; also ${API_KEYS_ENV} (comma-separated)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="where the database and listings live (default: $XDG_DATA_HOME/pluggedin-mcp/app)"
    )
    parser.add_argument(
        "--discovery-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long one server may take to start and list its offer (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"], help="stderr verbosity"
    )
    return parser


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pluggedin-mcp app %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("pluggedin_proxy").setLevel(level.upper())


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"pluggedin-mcp app: {message}\n")
    sys.exit(1)
