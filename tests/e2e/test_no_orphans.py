"""No upstream process outlives the proxy, whichever way the proxy ends: stdin closed, SIGTERM, SIGKILL.

Each test runs the proxy as a real subprocess with two stdio upstreams, started by tool calls: the echo server
and the spawner server, whose grandchild ignores SIGTERM and stays when the spawner exits. Processes are checked
with `psutil`; a zombie counts as gone (this sandbox's init may never reap orphans).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.abc
import mcp_types as types
import psutil
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.text import TextReceiveStream
from mcp import Client

from tests.conftest import REPO, echo_server, proxy_command
from tests.processes import gone, kill_groups, wait_gone

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX; Windows uses Job Objects"),
]

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)/mcp")
STARTUP_TIMEOUT = 60.0
HELLO = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


class StdioProxy:
    """The proxy as a stdio subprocess, spoken to in raw JSON-RPC lines."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdout is not None
        self.process = process
        self._stdout = BufferedByteReceiveStream(process.stdout)
        self._ids = 0

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self._ids += 1
        message = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")
        while True:
            reply: dict[str, Any] = json.loads(await self._stdout.receive_until(b"\n", 1 << 20))
            if reply.get("id") == self._ids:
                return reply

    async def call(self, tool: str) -> str:
        reply = await self.request("tools/call", {"name": tool, "arguments": {}})
        text: str = reply["result"]["content"][0]["text"]
        return text


@pytest.fixture
def config(write_config: Any) -> Path:
    """Two stdio upstreams: `echo` and `spawner` (which starts a grandchild that ignores SIGTERM)."""
    spawner = {"command": sys.executable, "args": ["-m", "tests.servers.spawner_server"], "cwd": str(REPO)}
    path: Path = write_config({"echo": echo_server("echo"), "spawner": spawner})
    return path


@pytest.fixture
def upstream_pids() -> Iterator[list[int]]:
    """Upstream processes a test learned of; their process groups are SIGKILLed at teardown, whatever happened."""
    seen: list[int] = []
    yield seen
    kill_groups(seen)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[IO[bytes]]:
    """The proxy's stderr, kept in a file for a failing test's report."""
    with (tmp_path / "proxy.log").open("wb") as file:
        yield file


@asynccontextmanager
async def stdio_proxy(config: Path, log: IO[bytes]) -> AsyncIterator[StdioProxy]:
    """The proxy on stdio, initialized; killed at the end if the test left it running."""
    command = proxy_command("--config", str(config), "--log-level", "debug")
    async with await anyio.open_process(command, cwd=REPO, stderr=log) as process:
        try:
            proxy = StdioProxy(process)
            with anyio.fail_after(STARTUP_TIMEOUT):
                await proxy.request("initialize", HELLO)
                assert process.stdin is not None
                await process.stdin.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
            yield proxy
        finally:
            if process.returncode is None:
                process.kill()


async def start_upstreams(call: Any, pids: list[int]) -> list[int]:
    """Start both upstreams with one tool call each; return (and record) echo, spawner and grandchild pids."""
    with anyio.fail_after(STARTUP_TIMEOUT):
        echo = int(await call("echo__pid"))
        pids.append(echo)
        spawned = json.loads(await call("spawner__spawn"))
    pids.extend([spawned["server"], spawned["grandchild"]])
    assert not any(map(gone, pids))
    return list(pids)


def watchdog_of(proxy_pid: int) -> int:
    """The proxy's child-reaper watchdog."""
    (watchdog,) = [p.pid for p in psutil.Process(proxy_pid).children() if "_watchdog.py" in " ".join(p.cmdline())]
    return watchdog


async def test_upstreams_die_with_a_proxy_killed_by_sigkill(
    config: Path, log: IO[bytes], upstream_pids: list[int]
) -> None:
    """SIGKILL the stdio proxy: within seconds no upstream, grandchild or watchdog survives."""
    async with stdio_proxy(config, log) as proxy:
        victims = await start_upstreams(proxy.call, upstream_pids)
        victims.append(watchdog_of(proxy.process.pid))
        proxy.process.kill()
        await proxy.process.wait()
        await wait_gone(victims, timeout=3)


async def test_closing_stdin_stops_every_upstream_before_the_proxy_exits(
    config: Path, log: IO[bytes], upstream_pids: list[int]
) -> None:
    """The client closes stdin: the proxy exits 0 and, within a second, nothing it started is left."""
    async with stdio_proxy(config, log) as proxy:
        victims = await start_upstreams(proxy.call, upstream_pids)
        assert proxy.process.stdin is not None
        await proxy.process.stdin.aclose()
        with anyio.fail_after(30):
            assert await proxy.process.wait() == 0
        await wait_gone(victims, timeout=1)


async def test_the_watchdog_exits_with_the_proxy(config: Path, log: IO[bytes], upstream_pids: list[int]) -> None:
    """The watchdog starts with the first stdio upstream and is gone once the proxy has exited normally."""
    async with stdio_proxy(config, log) as proxy:
        await start_upstreams(proxy.call, upstream_pids)
        watchdog = watchdog_of(proxy.process.pid)
        assert proxy.process.stdin is not None
        await proxy.process.stdin.aclose()
        with anyio.fail_after(30):
            assert await proxy.process.wait() == 0
        await wait_gone([watchdog], timeout=1)


async def test_sigterm_stops_an_http_proxy_in_order(config: Path, upstream_pids: list[int]) -> None:
    """SIGTERM to the HTTP proxy: it stops serving, stops every upstream, and exits 0; nothing it started is left."""
    command = proxy_command(
        "--config", str(config), "--transport", "streamable-http", "--port", "0", "--log-level", "info"
    )
    async with (
        await anyio.open_process(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) as process,
        anyio.create_task_group() as tg,
    ):
        lines: list[str] = []
        listening = anyio.Event()
        url: list[str] = []

        async def read_stderr() -> None:
            assert process.stderr is not None
            pending = ""
            async for chunk in TextReceiveStream(process.stderr):
                *complete, pending = (pending + chunk).split("\n")
                for line in complete:
                    lines.append(line)
                    if not url and (match := LISTENING.search(line)):
                        url.append(match.group(1))
                        listening.set()
            listening.set()  # the proxy exited; the test finds `url` empty

        tg.start_soon(read_stderr)
        try:
            with anyio.fail_after(STARTUP_TIMEOUT):
                await listening.wait()
            assert url, "\n".join(lines[-30:])
            async with Client(f"{url[0]}/mcp") as client:

                async def call(tool: str) -> str:
                    (block,) = (await client.call_tool(tool, {})).content
                    assert isinstance(block, types.TextContent)
                    return block.text

                victims = await start_upstreams(call, upstream_pids)
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                returncode = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
        assert returncode == 0, "\n".join(lines[-30:])
        assert any("received SIGTERM; stopping the upstreams" in line for line in lines), "\n".join(lines[-30:])
        await wait_gone(victims, timeout=1)
