"""What gets measured, and how a client reaches it.

A `Target` is one way to reach the benchmark's echo server: the echo server itself (`direct`),
`pluggedin-mcp` in front of it (`proxy`), or a peer proxy, over stdio (a command to spawn) or
Streamable HTTP (a URL). `connect()` opens an MCP client session to a target with the SDK's own
transports and `ClientSession`, as any MCP client would, and every measured request goes through
`ClientSession.send_request`, so the client's share of each number is the same for all targets.

The `Sandbox` keeps a run away from the user's own files: config files, logs and the proxy's
listing cache live in one temporary directory, pointed at through the `XDG_*` variables.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from benchmarks.processes import LeftoverWatch, descendants, own_children

__all__ = ["ECHO_SERVER", "Connection", "Sandbox", "Target", "TargetError", "connect", "parse_peer", "resolve_names"]

ECHO_SERVER = Path(__file__).with_name("echo_server.py")
# Bound on any one request, so a wedged target fails its workload instead of hanging the run.
REQUEST_TIMEOUT = 120.0
# Variables a run must not inherit: they would point the proxy at the user's App or change its limits.
_DROPPED_PREFIXES = ("PLUGGEDIN_", "XDG_")


class TargetError(Exception):
    """Raised when a stdio target fails or goes away mid-session; says how its stderr ended."""

    def __init__(self, name: str, stderr_tail: str) -> None:
        super().__init__(f"{name} failed" + (f"; its stderr ended with: {stderr_tail}" if stderr_tail else ""))


@dataclass(frozen=True, slots=True)
class Target:
    """One way to reach the echo server, and the names its `echo` and `blob` tools have there."""

    name: str
    # Whose column the target's shared rows (leftover children) count towards: "direct", "proxy" or a peer's name.
    column: str
    argv: tuple[str, ...] = ()
    url: str | None = None
    # An HTTP target's server process; a stdio target's is found when it is spawned.
    pid: int | None = None
    echo: str = "echo"
    blob: str = "blob"


@dataclass(slots=True)
class Connection:
    """An initialized client session to a target, and the pid of the process that serves it."""

    target: Target
    session: ClientSession
    pid: int | None

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        request = types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments))
        return await self.session.send_request(request, types.CallToolResult, REQUEST_TIMEOUT)

    async def echo(self, text: str = "ping") -> types.CallToolResult:
        return await self.call(self.target.echo, {"text": text})

    async def blob(self, size: int) -> types.CallToolResult:
        return await self.call(self.target.blob, {"size": size})

    async def list_tools(self) -> types.ListToolsResult:
        return await self.session.send_request(types.ListToolsRequest(), types.ListToolsResult, REQUEST_TIMEOUT)


@dataclass(slots=True)
class Sandbox:
    """A run's temporary directory: environment, config files and logs."""

    root: Path
    python: str = sys.executable
    # Configs whose servers the proxy has already discovered (their listings are in its cache).
    discovered: set[Path] = field(default_factory=set)
    _logs: int = field(default=0, init=False)

    def env(self) -> dict[str, str]:
        """The environment every spawned process gets: this one's, with caches and configs in the sandbox."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
        for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            path = self.root / name.removeprefix("XDG_").removesuffix("_HOME").lower()
            path.mkdir(exist_ok=True)
            env[name] = str(path)
        return env

    def echo_argv(self, *, tools: int = 0, http: bool = False) -> list[str]:
        """The command line of the echo server."""
        argv = [self.python, str(ECHO_SERVER)]
        if tools:
            argv += ["--tools", str(tools)]
        if http:
            argv += ["--http", "--port", "0"]
        return argv

    def proxy_argv(self, *options: str) -> list[str]:
        """`pluggedin-mcp` with `options`, the call rate limit lifted."""
        return [self.python, "-m", "pluggedin_proxy", "--rate-limit", "0", *options]

    def write_config(self, name: str, servers: Mapping[str, Mapping[str, Any]]) -> Path:
        """Write an `mcpServers` config file and return its path."""
        path = self.root / f"{name}.json"
        path.write_text(json.dumps({"mcpServers": servers}, indent=2))
        return path

    def stdio_entry(self, *, tools: int = 0) -> dict[str, Any]:
        """A config entry for the echo server over stdio."""
        command, *args = self.echo_argv(tools=tools)
        return {"command": command, "args": args}

    def log(self, name: str) -> Path:
        """A fresh log file for one process's stderr."""
        self._logs += 1
        directory = self.root / "logs"
        directory.mkdir(exist_ok=True)
        return directory / f"{self._logs:04d}-{name}.log"


@asynccontextmanager
async def connect(target: Target, sandbox: Sandbox, watch: LeftoverWatch | None = None) -> AsyncIterator[Connection]:
    """Open and initialize a client session to `target`; on exit, close it as a client would.

    With a `watch`, the processes the target had started are checked for survivors after the close.
    """
    if target.url is not None:
        async with streamable_http_client(target.url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield Connection(target, session, target.pid)
        return
    before = own_children()
    command, *args = target.argv
    params = StdioServerParameters(command=command, args=args, env=sandbox.env())
    log = sandbox.log(target.name)
    try:
        with log.open("a") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                spawned = own_children() - before
                pid = spawned.pop() if len(spawned) == 1 else None
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    yield Connection(target, session, pid)
                children = descendants(pid)
    except Exception as exc:
        raise TargetError(target.name, _tail(log)) from exc
    if watch is not None:
        watch.closed(target.column, children)


async def resolve_names(target: Target, sandbox: Sandbox) -> Target:
    """`target` with the names its `echo` and `blob` tools are listed under (peers and the App prefix them).

    Raises:
        LookupError: the target lists no tool that looks like the echo server's `echo`.
    """
    async with connect(target, sandbox) as connection:
        names = [tool.name for tool in (await connection.list_tools()).tools]
    echo, blob = _find(names, "echo"), _find(names, "blob")
    if echo is None:
        raise LookupError(f"{target.name} lists no `echo` tool (it lists {', '.join(names[:8]) or 'nothing'})")
    return replace(target, echo=echo, blob=blob or target.blob)


def _tail(log: Path, lines: int = 3) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _find(names: list[str], tool: str) -> str | None:
    if tool in names:
        return tool
    prefixed = sorted((n for n in names if n.endswith(("_" + tool, "." + tool, "/" + tool))), key=len)
    return prefixed[0] if prefixed else None


def parse_peer(spec: str, placeholders: Mapping[str, str]) -> Target:
    """A peer target from `NAME=COMMAND`, with `{echo}`, `{python}`, `{config}`, `{app_url}`, `{app_key}` filled in.

    Raises:
        ValueError: `spec` has no `=`, names a reserved column, or uses an unknown placeholder.
    """
    name, sep, command = spec.partition("=")
    name = name.strip()
    if not sep or not name or not command.strip():
        raise ValueError(f"--peer wants NAME=COMMAND, got {spec!r}")
    if name in ("direct", "proxy"):
        raise ValueError(f"--peer name {name!r} is taken by the suite's own targets")
    try:
        argv = shlex.split(command.format_map(placeholders))
    except KeyError as exc:
        raise ValueError(f"--peer {name}: unknown placeholder {{{exc.args[0]}}}") from exc
    return Target(name=name, column=name, argv=tuple(argv))
