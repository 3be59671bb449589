"""Stopping stdio children even when the proxy cannot: a watchdog process that outlives a killed proxy.

A proxy stops its children on every orderly exit (see `connect.py`), but a proxy killed with SIGKILL, or
crashing in C, runs no code at all. Its children, each in its own process group, would live on. So the proxy
starts one tiny watchdog (`_watchdog.py`) and keeps a pipe to it: each stdio child's process group is
registered when spawned (`watch`) and forgotten once stopped (`forget`). When the pipe reaches end of file,
because the proxy died or because `ChildReaper` was closed, the watchdog SIGTERMs every group still
registered, SIGKILLs the survivors after half a second, and exits.

Lifecycle. `ChildReaper` is an async context manager, owned by whatever owns the transports (the pool). The
watchdog starts on the first `start()` or `watch()`, so a proxy serving only HTTP upstreams never runs one. It
runs in a session of its own, so a signal to the proxy's process group (Ctrl-C in a terminal) cannot reach
it; it ignores those signals anyway. Leaving the `async with` closes the pipe and waits, bounded, for the
watchdog to finish; groups still registered then are killed, as they would be after a crash. If the watchdog
dies, the next event starts a new one and registers every group again. Failing to start it is logged, never
fatal: the children then only have the orderly paths.

POSIX only: on Windows the SDK puts each child in a Job Object, which already dies with the proxy, so every
method here does nothing there.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.abc

__all__ = ["ChildReaper"]

logger = logging.getLogger(__name__)

WATCHDOG = Path(__file__).with_name("_watchdog.py")
"""The watchdog script, run by path with `python -I -S` so it imports nothing of ours or of site-packages."""

# The watchdog says `ready` within milliseconds; a loaded machine gets far more.
WATCHDOG_START_TIMEOUT = 5.0
# The watchdog's worst case after end of file is its 0.5 s grace, a SIGKILL and its own exit.
WATCHDOG_EXIT_TIMEOUT = 5.0


class _State(enum.Enum):
    UNOPENED = 1
    OPEN = 2
    CLOSED = 3


class ChildReaper:
    """Kills registered process groups if the proxy exits, however it exits, without stopping them first."""

    def __init__(self) -> None:
        self._state = _State.UNOPENED
        self._watched: set[int] = set()
        self._process: anyio.abc.Process | None = None
        self._lock = anyio.Lock()
        self._enabled = sys.platform != "win32"
        """False on Windows, and once a watchdog failed to start: then every method does nothing."""

    @property
    def watched(self) -> frozenset[int]:
        """The process groups registered now."""
        return frozenset(self._watched)

    @property
    def pid(self) -> int | None:
        """The watchdog's process id, from its start until the reaper closes or replaces it."""
        return self._process.pid if self._process is not None else None

    async def __aenter__(self) -> ChildReaper:
        if self._state is not _State.UNOPENED:
            raise RuntimeError("a ChildReaper cannot be entered twice")
        self._state = _State.OPEN
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._state = _State.CLOSED
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._stop_watchdog()

    async def start(self) -> None:
        """Start the watchdog if it is not running; it is ready (immune to Ctrl-C) when this returns."""
        self._check_open()
        if self._enabled:
            async with self._lock:
                await self._ensure_watchdog()

    async def watch(self, pgid: int) -> None:
        """Register process group `pgid`: the watchdog kills it if the proxy ends without `forget`."""
        self._check_open()
        if self._enabled:
            await self._send(f"+{pgid}\n")
            self._watched.add(pgid)

    async def forget(self, pgid: int) -> None:
        """Unregister `pgid`, which the proxy has stopped itself; after closing, does nothing."""
        self._watched.discard(pgid)
        if self._enabled and self._state is _State.OPEN:
            await self._send(f"-{pgid}\n")

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise RuntimeError("use the ChildReaper inside `async with`")

    async def _send(self, line: str) -> None:
        async with self._lock:
            for _ in range(2):
                process = await self._ensure_watchdog()
                if process is None:
                    return
                assert process.stdin is not None
                try:
                    await process.stdin.send(line.encode())
                    return
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    # The watchdog died (killed by hand, out of memory): start another, which learns every group.
                    logger.warning("the child-reaper watchdog (pid %d) is gone; starting another", process.pid)
                    await self._stop_watchdog()

    async def _ensure_watchdog(self) -> anyio.abc.Process | None:
        if self._process is not None:
            return self._process
        try:
            process = await anyio.open_process(
                [sys.executable, "-I", "-S", str(WATCHDOG), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
                start_new_session=True,
            )
        except OSError as exc:
            logger.warning("could not start the child-reaper watchdog (%s); children may outlive a killed proxy", exc)
            self._enabled = False
            return None
        assert process.stdout is not None
        ready = b""
        with anyio.move_on_after(WATCHDOG_START_TIMEOUT):
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                ready = await process.stdout.receive()
        await process.stdout.aclose()
        if ready != b"ready\n":
            logger.warning("the child-reaper watchdog did not start; children may outlive a killed proxy")
            self._enabled = False
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.aclose()
            return None
        logger.debug("child-reaper watchdog started (pid %d)", process.pid)
        self._process = process
        if self._watched:
            # A replacement for a watchdog that died: it must learn every group registered with the old one.
            assert process.stdin is not None
            try:
                await process.stdin.send("".join(f"+{pgid}\n" for pgid in sorted(self._watched)).encode())
            except (anyio.BrokenResourceError, OSError):
                pass  # found out by the next send
        return process

    async def _stop_watchdog(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        try:
            await process.stdin.aclose()  # end of file: the watchdog kills what is still registered and exits
        except (anyio.BrokenResourceError, OSError):
            pass
        with anyio.move_on_after(WATCHDOG_EXIT_TIMEOUT):
            await process.wait()
        if process.returncode is None:
            logger.warning("the child-reaper watchdog (pid %d) did not exit; killing it", process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.aclose()
