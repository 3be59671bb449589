"""Opening the transport to one upstream: stdio child, SSE or Streamable HTTP.

`open_transport(spec, tail)` is an async context manager yielding `Streams`, which unpack as the SDK's
`(read, write)`.
Given a `policy` (`upstream/policy.py`), it first refuses a server the policy forbids (a command
not on the allowlist, a private address), and registers the server's secrets to be masked.

stdio: the child is started by `stdio.py` with no shell, in a new session (process group), so closing
the transport stops the child and everything it started (close stdin, wait, SIGTERM the group,
SIGKILL). Its streams come with a `Lane` for requests the proxy holds as JSON. Once the transport is
closed we stop whatever is left of the group: grandchildren of a server that exited promptly when
its stdin closed. A `ChildReaper`, when given, holds each child's group from spawn until it is
stopped, so the children die with the proxy even if the proxy is killed with SIGKILL. Its
environment is an allow-list of the proxy's own (paths, locale, proxies, CA bundles) plus the
server's `env`. Its stderr goes through a pipe we read into a `StderrTail`, a bounded ring of recent
lines for diagnostics, so a chatty child can neither fill a pipe and stall nor flood our own stderr.
On Windows the SDK's own transport is used (its Job Objects stop the child's tree), without a lane.

HTTP and SSE: one `httpx2.AsyncClient` per upstream carries the server's headers; it is closed with
the transport.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.abc

from pluggedin_proxy.upstream.child import adopt, child_environment, spawn
from pluggedin_proxy.upstream.stdio import Lane, open_stdio_child

if TYPE_CHECKING:
    from mcp.client._transport import TransportStreams

    from pluggedin_proxy.upstream.policy import UpstreamPolicy
    from pluggedin_proxy.upstream.reaper import ChildReaper
    from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["StderrTail", "Streams", "child_environment", "open_transport"]

logger = logging.getLogger(__name__)

# Lines of child stderr kept per upstream, and the longest line kept whole.
STDERR_TAIL_LINES = 200
STDERR_MAX_LINE = 2000

# Streamable HTTP and SSE: connect quickly, but let a tool stream its answer for a long time.
HTTP_CONNECT_TIMEOUT = 10.0
HTTP_READ_TIMEOUT = 300.0

# Grace for what is left of a stdio child's process group after the SDK stopped the child itself: those
# processes were started by the server and are meant to end with it, so they get less than its own 2 s.
LEFTOVER_GRACE = 1.0
# How often to look whether those leftovers are gone.
LEFTOVER_POLL_INTERVAL = 0.02


class StderrTail:
    """The last lines a stdio upstream wrote to stderr, for logs and `doctor`."""

    def __init__(self, server_name: str, *, maxlen: int = STDERR_TAIL_LINES) -> None:
        self.server_name = server_name
        self._lines: collections.deque[str] = collections.deque(maxlen=maxlen)
        self.redact: Callable[[str], str] | None = None
        """Masks secrets in each line before it is kept or logged; `open_transport` sets it from its policy."""

    def add(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if self.redact is not None:
            line = self.redact(line)
        if len(line) > STDERR_MAX_LINE:
            line = line[:STDERR_MAX_LINE] + "…"
        self._lines.append(line)
        logger.debug("[%s stderr] %s", self.server_name, line)

    def lines(self, last: int | None = None) -> list[str]:
        """The kept lines, oldest first; the newest `last` only when given."""
        kept = list(self._lines)
        return kept if last is None else kept[-last:]


@dataclass(frozen=True, slots=True)
class Streams:
    """An open transport: the SDK session's message streams, and for a stdio child the JSON lane beside them.

    Unpacks as `(read, write)`, like the SDK's transports.
    """

    read: Any
    write: Any
    lane: Lane | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.read, self.write))


@contextlib.asynccontextmanager
async def open_transport(
    spec: ServerSpec,
    tail: StderrTail,
    *,
    reaper: ChildReaper | None = None,
    policy: UpstreamPolicy | None = None,
) -> AsyncIterator[Streams]:
    """Open the transport to `spec`'s server; the streams close, and a child stops, on exit.

    A stdio child's process group is registered with `reaper`, if given, while the child runs. `policy`, if
    given, is checked first, and learns the server's secrets so that they are masked in `tail` and in logs.

    Raises:
        UpstreamRefused: `policy` forbids this server.
        OSError: the stdio command could not be started.
    """
    if policy is not None:
        await policy.check(spec)
        if policy.redactor is not None:
            query = parse_qsl(urlsplit(spec.url or "").query)
            policy.redactor.add_named((*spec.env, *spec.headers, *query))
            tail.redact = policy.redactor.redact
    if spec.transport == "stdio":
        async with _open_stdio(spec, tail, reaper) as streams:
            yield streams
    elif spec.transport == "sse":
        from mcp.client.sse import sse_client

        async with sse_client(
            spec.url or "",
            headers=dict(spec.headers),
            timeout=HTTP_CONNECT_TIMEOUT,
            sse_read_timeout=HTTP_READ_TIMEOUT,
        ) as (read, write):
            yield Streams(read, write)
    else:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        client = httpx2.AsyncClient(
            headers=dict(spec.headers),
            timeout=httpx2.Timeout(HTTP_CONNECT_TIMEOUT, read=HTTP_READ_TIMEOUT),
            follow_redirects=True,
        )
        async with client, streamable_http_client(spec.url or "", http_client=client) as (read, write):
            yield Streams(read, write)


@contextlib.asynccontextmanager
async def _open_stdio(spec: ServerSpec, tail: StderrTail, reaper: ChildReaper | None) -> AsyncIterator[Streams]:
    if sys.platform == "win32":
        async with _open_stdio_sdk(spec) as (read, write):
            yield Streams(read, write)
        return
    argv, env = [spec.command or "", *spec.args], child_environment(spec.env)
    child = adopt(argv, env, spec.cwd) or spawn(argv, env, spec.cwd)
    pgid = child.pid  # the child leads its own group, so pgid == pid
    try:
        if reaper is not None:
            # Registered while the child starts up. Should the proxy die before, the child's stdin closes.
            await reaper.watch(pgid)
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(_read_stderr, child.stderr, tail)
                async with open_stdio_child(child) as opened:
                    yield Streams(opened.read, opened.write, opened.lane)
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await _stop_leftovers(pgid)
            if reaper is not None:
                await reaper.forget(pgid)
        os.close(child.stderr)


@contextlib.asynccontextmanager
async def _open_stdio_sdk(spec: ServerSpec) -> AsyncIterator[TransportStreams]:
    """The SDK's stdio transport (Windows: its Job Objects stop the child's tree), stderr to ours."""
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=spec.command or "",
        args=list(spec.args),
        env=child_environment(spec.env),
        cwd=spec.cwd,
        encoding_error_handler="replace",
    )
    async with stdio_client(params) as streams:
        yield streams


async def _stop_leftovers(pgid: int) -> None:
    """SIGTERM what is left of a stopped child's process group, SIGKILL it after `LEFTOVER_GRACE`.

    Usually the group is already gone and this is one `killpg` answering ESRCH. A group id is not reused
    while the group has members, so the signals reach only the child's own descendants (those that stayed
    in its group: a daemon that made a session of its own escapes, by design).
    """
    if not _signal_group(pgid, signal.SIGTERM):
        return
    with anyio.move_on_after(LEFTOVER_GRACE):
        while _signal_group(pgid, 0):  # noqa: ASYNC110  # nothing announces a process group's end
            await anyio.sleep(LEFTOVER_POLL_INTERVAL)
        return
    logger.debug("process group %d outlived SIGTERM by %gs; killing it", pgid, LEFTOVER_GRACE)
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to group `pgid`; False once no process is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a member we may not signal (or a zombie on macOS): the group is still there
    return True


async def _read_stderr(fd: int, tail: StderrTail) -> None:
    pending = b""
    while True:
        try:
            await anyio.wait_readable(fd)
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError:
            return
        if not chunk:
            if pending:
                tail.add(pending.decode(errors="replace"))
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            tail.add(line.decode(errors="replace"))
        if len(pending) > STDERR_MAX_LINE * 4:
            tail.add(pending.decode(errors="replace"))
            pending = b""
