"""A stdio upstream's process group, from spawn to stop: registered with a `ChildReaper`, emptied on close."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import anyio
import mcp_types as types
import psutil
import pytest
from mcp import ClientSession

from pluggedin_proxy.upstream.connect import StderrTail, open_transport
from pluggedin_proxy.upstream.reaper import ChildReaper
from pluggedin_proxy.upstream.spec import ServerSpec
from tests.conftest import REPO
from tests.processes import gone, kill_groups, wait_gone

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX; Windows uses Job Objects"),
]

SPAWNER = ServerSpec(
    id="spawner",
    name="spawner",
    slug="spawner",
    transport="stdio",
    command=sys.executable,
    args=("-m", "tests.servers.spawner_server"),
    cwd=str(REPO),
)

# The owner of a reaper and one upstream, as a process a test can SIGKILL; it prints the pids once serving.
OWNER = """
import json, sys
import anyio
from mcp import ClientSession
from pluggedin_proxy.upstream.connect import StderrTail, open_transport
from pluggedin_proxy.upstream.reaper import ChildReaper
from pluggedin_proxy.upstream.spec import ServerSpec

SPAWNER = ServerSpec(
    id="s", name="s", slug="s", transport="stdio", command=sys.executable, args=("-m", "tests.servers.spawner_server")
)

async def main():
    async with ChildReaper() as reaper, open_transport(SPAWNER, StderrTail("s"), reaper=reaper) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("spawn", {})
            pids = json.loads(result.content[0].text)
            print(json.dumps({**pids, "watchdog": reaper.pid}), flush=True)
            await anyio.sleep_forever()

anyio.run(main)
"""


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Processes a test learned of; their process groups are SIGKILLed at teardown, whatever happened."""
    seen: list[int] = []
    yield seen
    kill_groups(seen)


async def _spawn(session: ClientSession) -> dict[str, int]:
    result = await session.call_tool("spawn", {})
    (block,) = result.content
    assert isinstance(block, types.TextContent)
    answer: dict[str, int] = json.loads(block.text)
    return answer


async def test_the_child_is_watched_while_it_runs_and_forgotten_once_stopped(pids: list[int]) -> None:
    """The reaper holds exactly the spawned child's group (found through the SDK's generator) until it stops."""
    async with ChildReaper() as reaper:
        async with open_transport(SPAWNER, StderrTail("spawner"), reaper=reaper) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                server = (await _spawn(session))["server"]
                pids.append(server)
                assert reaper.watched == {server}
                assert psutil.Process(server).ppid() == os.getpid()
        assert reaper.watched == frozenset()


async def test_grandchildren_left_in_the_group_are_stopped_with_the_transport(pids: list[int]) -> None:
    """A server that exits on EOF leaves a SIGTERM-proof grandchild; closing the transport still ends it."""
    async with open_transport(SPAWNER, StderrTail("spawner")) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            spawned = await _spawn(session)
            pids.extend(spawned.values())
    await wait_gone(spawned.values(), timeout=0.5)


async def test_children_die_with_an_owner_killed_by_sigkill(pids: list[int]) -> None:
    """SIGKILL the process owning the reaper: the watchdog kills server and grandchild, then exits."""
    async with await anyio.open_process(
        [sys.executable, "-c", OWNER], cwd=REPO, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as owner:
        assert owner.stdout is not None
        with anyio.fail_after(30):
            line = b""
            while not line.endswith(b"\n"):
                line += await owner.stdout.receive()
        spawned: dict[str, int] = json.loads(line)
        pids.extend(spawned.values())
        assert not any(map(gone, spawned.values()))
        owner.kill()
        await owner.wait()
        await wait_gone(spawned.values(), timeout=3)
