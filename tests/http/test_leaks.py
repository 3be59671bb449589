"""Hundreds of clients come and go in HTTP mode; the proxy ends where it started.

Each cycle opens a session, calls a `per-client` server (so the proxy opens an upstream session just
for that client) and a shared one, then ends the session with DELETE. Afterwards the proxy's open
file descriptors and child processes are back at their baseline, and its memory grew less than a
stated bound. The 500-cycle run uses a Streamable HTTP per-client upstream (a session per client, no
process); a shorter run uses a stdio per-client upstream, whose processes must all be gone.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import psutil
import pytest

from tests.conftest import echo_server, http_echo
from tests.http.conftest import HEADERS, INITIALIZE, running_proxy, session_headers

pytestmark = pytest.mark.anyio

# Memory the proxy may gain over 500 client sessions after its warm-up (MiB): allocator noise, not a leak.
RSS_GROWTH_BOUND_MIB = 25


def _call(name: str, id: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": {}}}


async def _cycle(http: httpx2.AsyncClient, tools: tuple[str, ...]) -> None:
    opened = await http.post("/mcp", json=INITIALIZE, headers=HEADERS)
    assert opened.status_code == 200, opened.text
    headers = session_headers(opened)
    await http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    for i, tool in enumerate(tools, start=2):
        reply = await http.post("/mcp", json=_call(tool, i), headers=headers)
        assert reply.status_code == 200 and '"isError":false' in reply.text.replace(" ", ""), reply.text
    closed = await http.delete("/mcp", headers=headers)
    assert closed.status_code in (200, 204), closed.status_code


def _proxy_process(url: str) -> psutil.Process:
    port = int(url.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise AssertionError(f"no process listens on {url}")


def _upstreams(proxy: psutil.Process) -> list[psutil.Process]:
    """The proxy's upstream server processes (not its helpers, such as the reaper)."""
    found = []
    for child in proxy.children(recursive=True):
        try:
            if "tests.servers.echo_server" in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


async def _settled(check: Any, timeout: float = 20) -> None:
    with anyio.fail_after(timeout):
        while not check():  # noqa: ASYNC110  # the state lives in another process
            await anyio.sleep(0.1)


async def test_500_sessions_with_a_per_client_http_upstream_leave_nothing_behind(write_config: Any) -> None:
    with http_echo("web") as web:
        config = write_config(
            {
                "web": {"url": f"http://127.0.0.1:{web.port}/mcp", "isolation": "per-client"},
                "echo": echo_server(),
            }
        )
        async with (
            running_proxy(config, "--rate-limit", "0") as url,
            httpx2.AsyncClient(base_url=url, timeout=30) as http,
        ):
            proxy = _proxy_process(url)
            for _ in range(50):  # warm-up: imports, caches, the shared child
                await _cycle(http, ("web__pid", "echo__pid"))
            fds, children = proxy.num_fds(), len(_upstreams(proxy))
            rss = proxy.memory_info().rss
            for _ in range(500):
                await _cycle(http, ("web__pid", "echo__pid"))
            await _settled(lambda: proxy.num_fds() <= fds + 2)
            assert len(_upstreams(proxy)) == children
            growth = (proxy.memory_info().rss - rss) / 2**20
            assert growth < RSS_GROWTH_BOUND_MIB, f"RSS grew {growth:.1f} MiB over 500 sessions"


async def test_per_client_stdio_upstreams_end_with_their_sessions(write_config: Any) -> None:
    config = write_config({"echo": {**echo_server(), "isolation": "per-client"}})
    async with (
        running_proxy(config, "--rate-limit", "0") as url,
        httpx2.AsyncClient(base_url=url, timeout=60) as http,
    ):
        proxy = _proxy_process(url)
        await _cycle(http, ("echo__pid",))
        await _settled(lambda: not _upstreams(proxy))
        fds = proxy.num_fds()
        for _ in range(25):
            await _cycle(http, ("echo__pid",))
        await _settled(lambda: not _upstreams(proxy))
        await _settled(lambda: proxy.num_fds() <= fds + 2)
