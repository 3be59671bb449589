"""Opening the transport to one upstream: stdio child, SSE or Streamable HTTP.

`open_transport(spec, tail)` is an async context manager yielding the SDK's `(read, write)` streams.
Given a `policy` (`upstream/policy.py`), it first refuses a server the policy forbids (a command
not on the allowlist, a private address), and registers the server's secrets to be masked.

stdio: the child is spawned by the SDK's `stdio_client` with no shell, in a new session (process
group), so closing the transport stops the child and everything it started (close stdin, wait,
SIGTERM the group, SIGKILL). The SDK kills the group only if the child outlives its grace period,
so once the transport is closed we stop whatever is left of the group: grandchildren of a server
that exited promptly when its stdin closed. A `ChildReaper`, when given, holds each child's group
from spawn until it is stopped, so the children die with the proxy even if the proxy is killed
with SIGKILL. Its environment is an allow-list of the proxy's own (paths, locale,
proxies, CA bundles) plus the server's `env`. Its stderr goes through a pipe we read into a
`StderrTail`, a bounded ring of recent lines for diagnostics, so a chatty child can neither fill a
pipe and stall nor flood our own stderr.

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
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.abc

from pluggedin_proxy.upstream.spec import ENV_NAME, shown_name, without_unsafe_chars

if TYPE_CHECKING:
    from mcp.client._transport import TransportStreams

    from pluggedin_proxy.upstream.policy import UpstreamPolicy
    from pluggedin_proxy.upstream.reaper import ChildReaper
    from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["StderrTail", "child_environment", "open_transport"]

logger = logging.getLogger(__name__)

# Variables a stdio server may need from the proxy's environment: how to find programs and
# homes, locale, temp dirs, and the network settings (proxies, CA bundles) corporate machines need.
INHERITED_ENV_VARS = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "NODE_OPTIONS",
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "npm_config_cache",
    "UV_CACHE_DIR",
    "UV_INDEX_URL",
    "PIP_INDEX_URL",
    "VIRTUAL_ENV",
)

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


def child_environment(extra: Iterable[tuple[str, str]], base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a stdio child: the allow-listed variables of `base` plus `extra`.

    Catalogs validate `extra` already; as a last guard, a variable with an invalid name is dropped and NUL,
    CR and LF are removed from values.
    """
    source = os.environ if base is None else base
    env = {key: source[key] for key in INHERITED_ENV_VARS if key in source and not source[key].startswith("()")}
    for key, value in extra:
        if ENV_NAME.fullmatch(key) is None:
            logger.warning("not passing environment variable %s to a server: not a valid name", shown_name(key))
            continue
        env[key] = without_unsafe_chars(value)
    return env


@contextlib.asynccontextmanager
async def open_transport(
    spec: ServerSpec,
    tail: StderrTail,
    *,
    reaper: ChildReaper | None = None,
    policy: UpstreamPolicy | None = None,
) -> AsyncIterator[TransportStreams]:
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
        ) as streams:
            yield streams
    else:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        client = httpx2.AsyncClient(
            headers=dict(spec.headers),
            timeout=httpx2.Timeout(HTTP_CONNECT_TIMEOUT, read=HTTP_READ_TIMEOUT),
            follow_redirects=True,
        )
        async with client, streamable_http_client(spec.url or "", http_client=client) as streams:
            yield streams


@contextlib.asynccontextmanager
async def _open_stdio(
    spec: ServerSpec, tail: StderrTail, reaper: ChildReaper | None
) -> AsyncIterator[TransportStreams]:
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=spec.command or "",
        args=list(spec.args),
        # stdio_client merges its own tiny allow-list under this; ours is a superset.
        env=child_environment(spec.env),
        cwd=spec.cwd,
        encoding_error_handler="replace",
    )
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    errlog = os.fdopen(write_fd, "w", closefd=True)
    pgid: int | None = None
    try:
        if reaper is not None:
            # Started before the spawn, so a proxy killed just after it leaves at most one pipe write undone.
            await reaper.start()
        async with anyio.create_task_group() as tg:
            try:
                client = stdio_client(params, errlog=errlog)
                async with client as streams:
                    # The child holds its own copy now; ours must go so EOF arrives when it exits.
                    errlog.close()
                    # `start_new_session=True` in the SDK: the child leads its own group, so pgid == pid.
                    pgid = _child_pid(client) if sys.platform != "win32" else None
                    if pgid is not None and reaper is not None:
                        await reaper.watch(pgid)
                    tg.start_soon(_read_stderr, read_fd, tail)
                    yield streams
            finally:
                errlog.close()
                tg.cancel_scope.cancel()
                if pgid is not None:
                    with anyio.CancelScope(shield=True):
                        await _stop_leftovers(pgid)
                        if reaper is not None:
                            await reaper.forget(pgid)
    finally:
        os.close(read_fd)


def _child_pid(client: object) -> int | None:
    """The pid of the child `client` (a `stdio_client(...)` context manager, entered) has spawned.

    The SDK exposes no seam for this (mcp 2.3): the process lives only in the local `process` of the
    `stdio_client` generator, suspended at its `yield` while the transport is open. We read it there,
    through `contextlib`'s `gen` attribute and the generator's frame, which is safe (read-only, no global
    patching, nothing shared between transports); `tests/upstream/test_connect_reaper.py` fails if the SDK
    renames it. If it ever cannot be found, the child runs without the reaper's protection and a warning
    says so; nothing else changes.
    """
    frame = getattr(getattr(client, "gen", None), "ag_frame", None)
    process = frame.f_locals.get("process") if frame is not None else None
    pid = getattr(process, "pid", None)
    if not isinstance(pid, int):
        logger.warning("cannot find the stdio child's pid; it is not protected against the proxy being killed")
        return None
    return pid


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
