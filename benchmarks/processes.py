"""What the operating system can tell about a measured process, and servers run in the background.

Probes read CPU time, resident memory and the process tree through psutil. psutil is optional
(`pip install psutil`): without it every probe answers None and the rows that need one say
"not measured".

`background_server()` starts an HTTP server (the echo server with `--http`, the proxy with
`--transport streamable-http`, the self-hosted App) and returns once the server has written
`listening on http://…` to stderr, with that URL; its stderr keeps flowing into a log file.
On exit the server gets SIGTERM, then SIGKILL for its whole process group if it lingers.

`LeftoverWatch` checks, one second after a client closed a session, how many of the processes
the measured server had started are still running.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.abc

try:
    import psutil  # type: ignore[import-untyped]  # psutil ships no type information
except ImportError:
    psutil = None

__all__ = [
    "HAVE_PSUTIL",
    "PSUTIL_MISSING",
    "why_unmeasured",
    "LeftoverWatch",
    "Running",
    "background_server",
    "cpu_seconds",
    "descendants",
    "own_children",
    "rss_megabytes",
]

HAVE_PSUTIL = psutil is not None
PSUTIL_MISSING = "psutil is not installed (pip install psutil)"
# How long a server may take from spawn to listening; the App discovers its servers first.
READY_TIMEOUT = 120.0
# How long a stopped server may take to exit after SIGTERM before its process group is killed.
STOP_TIMEOUT = 5.0
# The requirement: nothing the proxy started may still run this long after the client closed.
LEFTOVER_GRACE = 1.0

_LISTENING = re.compile(r"listening on (http://\S+)")


def why_unmeasured(pid: int | None) -> str:
    """Why a probe of `pid` answered None."""
    return PSUTIL_MISSING if psutil is None else "its process id is unknown" if pid is None else "it had exited"


def own_children() -> set[int]:
    """The pids of this process's direct children (empty without psutil)."""
    if psutil is None:
        return set()
    return {child.pid for child in psutil.Process().children()}


def cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU time of `pid` alone, children excluded."""
    if psutil is None or pid is None:
        return None
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return None
    return float(times.user + times.system)


def rss_megabytes(pid: int | None) -> float | None:
    """Resident memory of `pid` alone, in MB (10^6 bytes), children excluded."""
    if psutil is None or pid is None:
        return None
    try:
        return float(psutil.Process(pid).memory_info().rss) / 1e6
    except psutil.NoSuchProcess:
        return None


def descendants(pid: int | None) -> list[int] | None:
    """Every process `pid` started, directly or not."""
    if psutil is None or pid is None:
        return None
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return None


def _still_running(pids: Sequence[int]) -> int:
    assert psutil is not None
    running = 0
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running += 1
        except psutil.NoSuchProcess:
            pass
    return running


class LeftoverWatch:
    """Counts the survivors among a closed session's child processes, `LEFTOVER_GRACE` after the close."""

    def __init__(self, tg: anyio.abc.TaskGroup, record: Callable[[str, int], None]) -> None:
        """Checks run in `tg`; each result goes to `record(column, survivors)`."""
        self._tg = tg
        self._record = record

    def closed(self, column: str, children: Sequence[int] | None) -> None:
        """A client just closed its session to a server that had started `children`."""
        if children is not None:
            self._tg.start_soon(self._check, column, list(children))

    async def _check(self, column: str, children: list[int]) -> None:
        await anyio.sleep(LEFTOVER_GRACE)
        self._record(column, _still_running(children))


@dataclass(frozen=True, slots=True)
class Running:
    """A background server that is listening."""

    url: str
    pid: int


@asynccontextmanager
async def background_server(argv: Sequence[str], *, env: dict[str, str], log: Path) -> AsyncIterator[Running]:
    """Run `argv` until the block ends; yield once it announced its URL on stderr.

    Raises:
        RuntimeError: the server exited, or stayed silent for `READY_TIMEOUT`, before listening.
    """
    with log.open("ab") as sink:
        process = await anyio.open_process(
            list(argv), env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            async with anyio.create_task_group() as tg:
                try:
                    with anyio.fail_after(READY_TIMEOUT):
                        url = await tg.start(_relay_stderr, process, sink)
                except (TimeoutError, RuntimeError) as exc:
                    sink.flush()
                    tail = (await anyio.Path(log).read_text(errors="replace"))[-2000:]
                    raise RuntimeError(f"{Path(argv[0]).name} {' '.join(argv[1:3])}… did not start:\n{tail}") from exc
                yield Running(url, process.pid)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)


async def _relay_stderr(
    process: anyio.abc.Process, sink: BinaryIO, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Copy the server's stderr to the log, reporting the URL from its `listening on` line."""
    assert process.stderr is not None
    announced = False
    buffer = b""
    async for chunk in process.stderr:
        sink.write(chunk)
        if announced:
            continue
        buffer += chunk
        # Only whole lines: a chunk may end in the middle of the port number.
        match = _LISTENING.search(buffer[: buffer.rfind(b"\n") + 1].decode(errors="replace"))
        if match:
            announced = True
            task_status.started(match.group(1))
    if not announced:
        raise RuntimeError("the server exited before it was listening")


async def _stop(process: anyio.abc.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_TIMEOUT):
            await process.wait()
    if process.returncode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        with anyio.move_on_after(STOP_TIMEOUT):
            await process.wait()
