"""Checking real processes from tests: gone or not, waiting (bounded) until they are, killing what is left."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

import anyio
import psutil

# How often to look again while waiting for processes that are not our children (nothing to wait on).
POLL_INTERVAL = 0.02


def gone(pid: int) -> bool:
    """No such process, or a zombie: dead, though an init that does not reap orphans may keep it listed."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_gone(pids: Iterable[int], timeout: float) -> None:
    """Return once every process in `pids` is gone; fail the test after `timeout` seconds, naming the survivors."""
    pids = list(pids)
    with anyio.move_on_after(timeout):
        while not all(map(gone, pids)):  # noqa: ASYNC110  # not our children: only a probe can tell
            await anyio.sleep(POLL_INTERVAL)
        return
    raise AssertionError(f"still running after {timeout:g}s: {', '.join(map(_describe, filter(_alive, pids)))}")


def _alive(pid: int) -> bool:
    return not gone(pid)


def _describe(pid: int) -> str:
    try:
        return f"{pid} ({' '.join(psutil.Process(pid).cmdline())[:100]})"
    except psutil.Error:
        return str(pid)


def kill_groups(pids: Iterable[int]) -> None:
    """SIGKILL the process group of each pid still there (never the test's own group): a safety net."""
    ours = os.getpgid(0)
    for pid in pids:
        try:
            pgid = os.getpgid(pid)
            if pgid != ours:
                os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
