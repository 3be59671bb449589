"""Workloads that time fresh processes: cold starts, lazy first calls, cached listings, shutdown.

- `cold_start`: spawn → `initialize` answered → first `echo` result, for the echo server itself, the
  proxy with a one-server local config, the proxy with the self-hosted App, and peers; and how
  long each takes to exit once the client closes.
- `lazy_first_call`: with 10 and with 50 servers configured and their listings cached, the
  first call to the last server, which the proxy has to start then. The direct figure is what
  that server takes on its own from spawn to first result.
- `cached_catalog`: `tools/list` of 50 servers × 20 tools from the proxy's listing cache,
  against one echo server with 1,000 tools; then the proxy's memory and process count.
- `fan_out_shutdown`: a call to each of 10 servers, so 10 children run, then the close.

The proxy persists what its servers offer, keyed by config file, so each fleet is discovered
once per run (`fleet()`), with a generous discovery timeout, before anything is timed.
"""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio

from benchmarks.plan import Run
from benchmarks.processes import descendants
from benchmarks.targets import Connection, Sandbox, Target, connect
from benchmarks.workloads import footprint, latency, timed

__all__ = ["FLEETS", "TOOLS_PER_SERVER", "cached_catalog", "cold_start", "fan_out_shutdown", "lazy_first_call"]

logger = logging.getLogger("benchmarks")

# Servers configured in the two lazy-start fleets; the larger one also backs the cached listing.
FLEETS = (10, 50)
# Tools per fleet server: `echo`, `blob` and 18 dummies, so 50 servers list 1,000 tools.
TOOLS_PER_SERVER = 20
# Discovery of a whole fleet at once spawns every server together; on two busy cores that is slow.
FLEET_DISCOVERY_TIMEOUT = 600


async def cold_start(run: Run) -> None:
    """Spawn → first result, and client close → exit, for each target in turn."""
    targets = [run.direct, run.proxy, *([run.proxy_app] if run.proxy_app else []), *run.peers]
    for target in targets:  # unmeasured: fills the page cache and the proxy's listing caches
        await _first_result(run, target)
    for _ in range(run.plan.cold_starts):
        for target in targets:
            ready, first, exit_ = await _first_result(run, target)
            run.results.add("cold.ready_s", target.name, [ready])
            run.results.add("cold.first_s", target.name, [first])
            run.results.add("cold.exit_s", target.name, [exit_])


async def lazy_first_call(run: Run) -> None:
    """The first call to the last server of each fleet, against that server's own spawn → first result."""
    direct = Target("direct", "direct", argv=tuple(run.sandbox.echo_argv(tools=TOOLS_PER_SERVER - 2)))
    proxies = [
        Target(
            f"proxy-{size}",
            "proxy",
            argv=tuple(run.sandbox.proxy_argv("--config", str(await fleet(run.sandbox, size)))),
            echo=f"{_server(size, size)}__echo",
        )
        for size in FLEETS
    ]
    await _first_result(run, direct)
    for _ in range(run.plan.lazy_starts):
        _ready, first, _exit = await _first_result(run, direct)
        run.results.add("lazy.first_ms", direct.name, [first * 1000])
        for proxy in proxies:
            async with connect(proxy, run.sandbox, run.watch) as conn:
                run.results.add("lazy.first_ms", proxy.name, await timed(conn, Connection.echo, 1))


async def cached_catalog(run: Run) -> None:
    """`tools/list` of 1,000 tools: 50 servers from the proxy's cache, against one server listing them all."""
    size = max(FLEETS)
    total = size * TOOLS_PER_SERVER
    config = await fleet(run.sandbox, size)
    direct = Target(f"direct-{total}", "direct", argv=tuple(run.sandbox.echo_argv(tools=total - 2)))
    proxy = Target(f"proxy-{size}", "proxy", argv=tuple(run.sandbox.proxy_argv("--config", str(config))))
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(connect(t, run.sandbox, run.watch)) for t in (direct, proxy)]
        for conn in conns:
            listed = len((await conn.list_tools()).tools)
            if listed < total:
                raise RuntimeError(f"{conn.target.name} lists {listed} tools, expected {total}")
        rounds, count = run.plan.catalog_rounds, run.plan.catalog_lists
        await latency(run, conns, "catalog.list", Connection.list_tools, count, cpu=True, rounds=rounds, warmup=count)
        for conn in conns:
            footprint(run, conn, "catalog")


async def fan_out_shutdown(run: Run) -> None:
    """Start all 10 servers of the small fleet through one proxy, then time its exit after the close."""
    size = min(FLEETS)
    config = await fleet(run.sandbox, size)
    target = Target(f"proxy-{size}-all", "proxy", argv=tuple(run.sandbox.proxy_argv("--config", str(config))))
    async with connect(target, run.sandbox, run.watch) as conn:
        async with anyio.create_task_group() as tg:
            for index in range(1, size + 1):
                tg.start_soon(conn.call, f"{_server(index, size)}__echo", {"text": "hi"})
        children = descendants(conn.pid)
        if children is not None:
            run.results.add("shutdown.procs", target.name, [1 + len(children)])
        closing = time.perf_counter()
    run.results.add("shutdown.exit_s", target.name, [time.perf_counter() - closing])


async def fleet(sandbox: Sandbox, size: int) -> Path:
    """A config of `size` echo servers whose listings the proxy has cached; discover them on first use.

    Raises:
        RuntimeError: discovery left some server's tools out of the listing.
    """
    servers = {_server(i, size): sandbox.stdio_entry(tools=TOOLS_PER_SERVER - 2) for i in range(1, size + 1)}
    path = sandbox.write_config(f"fleet-{size}", servers)
    if path in sandbox.discovered:
        return path
    options = ("--config", str(path), "--discovery-timeout", str(FLEET_DISCOVERY_TIMEOUT))
    discoverer = Target(f"discover-{size}", "proxy", argv=tuple(sandbox.proxy_argv(*options)))
    start = time.perf_counter()
    async with connect(discoverer, sandbox) as conn:
        names = {tool.name for tool in (await conn.list_tools()).tools}
    took = time.perf_counter() - start
    logger.info("        the proxy discovered %d servers in %.0f s (once per run, not timed)", size, took)
    missing = [name for name in servers if f"{name}__echo" not in names]
    if missing:
        raise RuntimeError(f"discovering {size} servers left out {', '.join(missing)} (see the proxy's log)")
    sandbox.discovered.add(path)
    return path


async def _first_result(run: Run, target: Target) -> tuple[float, float, float]:
    """Seconds from spawn to `initialize` answered, to the first `echo` result, and from the close to the exit."""
    start = time.perf_counter()
    async with connect(target, run.sandbox, run.watch) as conn:
        ready = time.perf_counter()
        await conn.echo()
        first = time.perf_counter()
    return ready - start, first - start, time.perf_counter() - first


def _server(index: int, size: int) -> str:
    """Config key of a fleet's `index`-th server (`s01` … `s50`), which is also its name prefix."""
    return f"s{index:0{len(str(size))}d}"
