"""`ChildReaper` and its watchdog, with real process groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import anyio.abc
import psutil
import pytest

from pluggedin_proxy.upstream import _watchdog
from pluggedin_proxy.upstream.reaper import ChildReaper
from tests.processes import kill_groups, wait_gone

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX; Windows uses Job Objects"),
]

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
# Ignores SIGTERM, then says so on stdout.
STUBBORN = (
    "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nos.write(1, b'ready')\ntime.sleep(600)\n"
)


@pytest.fixture
def groups() -> Iterator[list[int]]:
    """Process groups a test started; whatever is left of them is SIGKILLed at teardown."""
    started: list[int] = []
    yield started
    kill_groups(started)


@pytest.fixture
async def sleeper(groups: list[int]) -> AsyncIterator[anyio.abc.Process]:
    """A sleeping process leading its own process group, as a stdio upstream does."""
    async with await anyio.open_process(SLEEPER, stdin=subprocess.DEVNULL, start_new_session=True) as process:
        groups.append(process.pid)
        yield process
        if process.returncode is None:
            process.kill()


def _watchdogs() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if str(_watchdog.__file__) in p.cmdline()]


async def test_a_watched_group_is_killed_when_the_reaper_closes(sleeper: anyio.abc.Process) -> None:
    """A group still registered when the reaper closes (the proxy did not stop it) is killed."""
    async with ChildReaper() as reaper:
        await reaper.watch(sleeper.pid)
        assert reaper.watched == {sleeper.pid}
    with anyio.fail_after(5):
        assert await sleeper.wait() == -signal.SIGTERM


async def test_a_forgotten_group_is_left_alone(sleeper: anyio.abc.Process) -> None:
    """A group the proxy forgot (it stopped it itself) is not signalled when the reaper closes."""
    async with ChildReaper() as reaper:
        await reaper.watch(sleeper.pid)
        await reaper.forget(sleeper.pid)
        watchdog = reaper.pid
    assert watchdog is not None and not psutil.pid_exists(watchdog)
    assert sleeper.returncode is None


async def test_no_watchdog_runs_until_a_child_is_watched() -> None:
    """Entering the reaper starts nothing; `start` starts one watchdog and closing ends it."""
    async with ChildReaper() as reaper:
        assert reaper.pid is None and _watchdogs() == []
        await reaper.start()
        await reaper.start()
        assert [p.pid for p in _watchdogs()] == [reaper.pid]
    assert _watchdogs() == []


async def test_the_watchdog_ignores_signals_meant_for_the_proxy(sleeper: anyio.abc.Process) -> None:
    """SIGINT, SIGTERM and SIGHUP (a Ctrl-C, a group kill) do not stop the watchdog before its job is done."""
    async with ChildReaper() as reaper:
        await reaper.watch(sleeper.pid)
        assert reaper.pid is not None
        assert os.getsid(reaper.pid) == reaper.pid  # its own session: a terminal's Ctrl-C never reaches it
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(reaper.pid, signum)
    # Only a watchdog still alive at the close can have killed the sleeper.
    with anyio.fail_after(5):
        assert await sleeper.wait() == -signal.SIGTERM


async def test_a_dead_watchdog_is_replaced_and_learns_every_group(sleeper: anyio.abc.Process) -> None:
    """If the watchdog is killed, the next event starts another one that still kills the watched groups."""
    async with ChildReaper() as reaper:
        await reaper.watch(sleeper.pid)
        first = reaper.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        with anyio.fail_after(5):
            while reaper.pid == first:  # the reaper notices on its next write
                await reaper.forget(12345678)
                await anyio.sleep(0.01)
        assert reaper.pid is not None and len(_watchdogs()) == 1
    with anyio.fail_after(5):
        assert await sleeper.wait() == -signal.SIGTERM


async def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(groups: list[int]) -> None:
    """SIGTERM first, SIGKILL for what is left after the grace period."""
    async with await anyio.open_process(
        [sys.executable, "-c", STUBBORN], stdin=subprocess.DEVNULL, start_new_session=True
    ) as stubborn:
        groups.append(stubborn.pid)
        assert stubborn.stdout is not None
        assert await stubborn.stdout.receive() == b"ready"
        async with ChildReaper() as reaper:
            await reaper.watch(stubborn.pid)
        with anyio.fail_after(5):
            assert await stubborn.wait() == -signal.SIGKILL


def test_a_reaper_cannot_be_used_outside_async_with() -> None:
    """`watch` needs an entered reaper, and a reaper is entered once."""
    reaper = ChildReaper()
    with pytest.raises(RuntimeError, match="inside `async with`"):
        anyio.run(reaper.watch, 1234)

    async def enter_twice() -> None:
        async with reaper:
            pass
        async with reaper:
            pass

    with pytest.raises(RuntimeError, match="cannot be entered twice"):
        anyio.run(enter_twice)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the start-time check needs /proc")
async def test_a_leader_that_started_at_another_time_is_not_signalled(sleeper: anyio.abc.Process) -> None:
    """Pid reuse guard: a group whose leader's start time differs from the registered one is left alone."""
    started = _watchdog.start_time(sleeper.pid)
    assert started is not None
    _watchdog.kill_groups({sleeper.pid: started + 1})
    assert sleeper.returncode is None and psutil.Process(sleeper.pid).status() != psutil.STATUS_ZOMBIE
    _watchdog.kill_groups({sleeper.pid: started})
    with anyio.fail_after(5):
        assert await sleeper.wait() == -signal.SIGTERM


async def test_a_group_whose_leader_is_gone_is_still_killed(groups: list[int]) -> None:
    """Members left in a group after its leader exited are killed: the id cannot be reused while they live."""
    code = (
        "import subprocess, sys\n"
        "sleeper = [sys.executable, '-c', 'import time; time.sleep(600)']\n"
        "print(subprocess.Popen(sleeper, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)\n"
    )
    leader = await anyio.run_process([sys.executable, "-c", code], start_new_session=True)
    member = psutil.Process(int(leader.stdout))
    groups.append(os.getpgid(member.pid))
    watched = {os.getpgid(member.pid): _watchdog.start_time(os.getpgid(member.pid))}
    _watchdog.kill_groups(watched)
    await wait_gone([member.pid], timeout=5)
