"""Opening the transport to one upstream: stdio child, SSE or Streamable HTTP.

`open_transport(spec, tail)` is an async context manager yielding the SDK's `(read, write)` streams.

stdio: the child is spawned by the SDK's `stdio_client` with no shell, in a new session (process
group), so closing the transport stops the child and everything it started (close stdin, wait,
SIGTERM the group, SIGKILL). Its environment is an allow-list of the proxy's own (paths, locale,
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
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

import anyio
import anyio.abc

if TYPE_CHECKING:
    from mcp.client._transport import TransportStreams

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


class StderrTail:
    """The last lines a stdio upstream wrote to stderr, for logs and `doctor`."""

    def __init__(self, server_name: str, *, maxlen: int = STDERR_TAIL_LINES) -> None:
        self.server_name = server_name
        self._lines: collections.deque[str] = collections.deque(maxlen=maxlen)

    def add(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if len(line) > STDERR_MAX_LINE:
            line = line[:STDERR_MAX_LINE] + "…"
        self._lines.append(line)
        logger.debug("[%s stderr] %s", self.server_name, line)

    def lines(self, last: int | None = None) -> list[str]:
        """The kept lines, oldest first; the newest `last` only when given."""
        kept = list(self._lines)
        return kept if last is None else kept[-last:]


def child_environment(extra: Iterable[tuple[str, str]], base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a stdio child: the allow-listed variables of `base` plus `extra`."""
    source = os.environ if base is None else base
    env = {key: source[key] for key in INHERITED_ENV_VARS if key in source and not source[key].startswith("()")}
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def open_transport(spec: ServerSpec, tail: StderrTail) -> AsyncIterator[TransportStreams]:
    """Open the transport to `spec`'s server; the streams close, and a child stops, on exit.

    Raises:
        OSError: the stdio command could not be started.
    """
    if spec.transport == "stdio":
        async with _open_stdio(spec, tail) as streams:
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
async def _open_stdio(spec: ServerSpec, tail: StderrTail) -> AsyncIterator[TransportStreams]:
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
    try:
        async with anyio.create_task_group() as tg:
            try:
                async with stdio_client(params, errlog=errlog) as streams:
                    # The child holds its own copy now; ours must go so EOF arrives when it exits.
                    errlog.close()
                    tg.start_soon(_read_stderr, read_fd, tail)
                    yield streams
            finally:
                errlog.close()
                tg.cancel_scope.cancel()
    finally:
        os.close(read_fd)


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
