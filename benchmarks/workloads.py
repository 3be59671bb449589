"""Warm workloads: many requests over sessions that stay open, every target in turn.

Each measurement runs in rounds. In a round every target does the same chunk of work, one after
the other (A/B/A/B…), so a change in the machine's load lands on all of them alike. Before
timing, each target proves it passes the echo server's results through unchanged and serves a
few unmeasured calls.

- `warm_stdio`: the echo server, the proxy and peers over stdio: `tools/call` and `tools/list`
  latency, a 100 KB result, throughput at 1, 16 and 64 requests in flight, the CPU time the
  serving process spends per call, and its memory and process count afterwards.
- `warm_http`: the echo server over Streamable HTTP, against the proxy serving HTTP in front of
  a stdio echo server (downstream HTTP) and the proxy on stdio in front of the HTTP echo server
  (upstream HTTP): latency, throughput at 16 in flight, CPU per call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import anyio
import mcp.types as types

from benchmarks.plan import Run
from benchmarks.processes import background_server, cpu_seconds, descendants, rss_megabytes, why_unmeasured
from benchmarks.targets import Connection, Target, connect

__all__ = ["BLOB_SIZE", "IN_FLIGHT", "footprint", "latency", "timed", "warm_http", "warm_stdio"]

# The large result: big enough that copying and re-encoding it shows, as a file read or a page would.
BLOB_SIZE = 100 * 1024
IN_FLIGHT = (1, 16, 64)

Op = Callable[[Connection], Awaitable[Any]]


async def warm_stdio(run: Run) -> None:
    """Time the warm workloads over stdio for the echo server, the proxy and every peer."""
    targets = [run.direct, run.proxy, *run.peers]
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(connect(t, run.sandbox, run.watch)) for t in targets]
        for conn in conns:
            await _check(conn)
        await latency(run, conns, "warm.call", Connection.echo, run.plan.calls, cpu=True)
        await latency(run, conns, "warm.list", Connection.list_tools, run.plan.lists)
        await latency(run, conns, "warm.blob", lambda c: c.blob(BLOB_SIZE), run.plan.blobs)
        for level in IN_FLIGHT:
            await _throughput(run, conns, f"warm.tput{level}", level)
        for conn in conns:
            footprint(run, conn, "warm")


async def warm_http(run: Run) -> None:
    """Time `tools/call` over Streamable HTTP: direct, downstream of the proxy, upstream of it."""
    sandbox = run.sandbox
    env = sandbox.env()
    async with AsyncExitStack() as stack:
        echo = await stack.enter_async_context(
            background_server(sandbox.echo_argv(http=True), env=env, log=sandbox.log("echo-http"))
        )
        behind = sandbox.write_config("http-downstream", {"echo": sandbox.stdio_entry()})
        serving = sandbox.proxy_argv("--config", str(behind), "--no-prefix", "--transport", "streamable-http")
        proxy = await stack.enter_async_context(
            background_server([*serving, "--port", "0"], env=env, log=sandbox.log("proxy-http"))
        )
        upstream = sandbox.write_config("http-upstream", {"echo": {"type": "streamable-http", "url": echo.url}})
        targets = [
            Target("http-direct", "direct", url=echo.url, pid=echo.pid),
            Target("http-downstream", "proxy", url=proxy.url, pid=proxy.pid),
            Target("http-upstream", "proxy", argv=tuple(sandbox.proxy_argv("--config", str(upstream), "--no-prefix"))),
        ]
        conns = [await stack.enter_async_context(connect(t, sandbox, run.watch)) for t in targets]
        for conn in conns:
            await _check(conn)
        await latency(run, conns, "http.call", Connection.echo, run.plan.calls, cpu=True)
        await _throughput(run, conns, "http.tput16", 16)


def footprint(run: Run, conn: Connection, workload: str) -> None:
    """Record the serving process's resident memory (children excluded) and its process count."""
    rss, children = rss_megabytes(conn.pid), descendants(conn.pid)
    if rss is None or children is None:
        reason = why_unmeasured(conn.pid)
        run.results.skip(f"{workload}.rss_mb", reason, conn.target.name)
        run.results.skip(f"{workload}.procs", reason, conn.target.name)
        return
    run.results.add(f"{workload}.rss_mb", conn.target.name, [rss])
    run.results.add(f"{workload}.procs", conn.target.name, [1 + len(children)])


async def timed(conn: Connection, op: Op, count: int) -> list[float]:
    """Run `op` `count` times in a row; the milliseconds each took."""
    samples: list[float] = []
    for _ in range(count):
        start = time.perf_counter_ns()
        await op(conn)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


async def latency(
    run: Run,
    conns: Sequence[Connection],
    name: str,
    op: Op,
    count: int,
    *,
    cpu: bool = False,
    rounds: int | None = None,
    warmup: int | None = None,
) -> None:
    """Rounds of `count` sequential requests per target; with `cpu`, the serving process's CPU per request too."""
    for conn in conns:
        await timed(conn, op, run.plan.warmup if warmup is None else warmup)
    for _ in range(run.plan.rounds if rounds is None else rounds):
        for conn in conns:
            before = cpu_seconds(conn.pid)
            run.results.add(f"{name}_ms", conn.target.name, await timed(conn, op, count))
            after = cpu_seconds(conn.pid)
            if cpu and before is not None and after is not None:
                run.results.add(f"{name}_cpu_ms", conn.target.name, [(after - before) * 1000 / count])
    if cpu:
        for conn in conns:
            if run.results.get(f"{name}_cpu_ms", conn.target.name) is None:
                run.results.skip(f"{name}_cpu_ms", why_unmeasured(conn.pid), conn.target.name)


async def _throughput(run: Run, conns: Sequence[Connection], name: str, in_flight: int) -> None:
    """Rounds of `plan.burst` echo calls per target, `in_flight` at a time; calls per second."""
    each = max(1, run.plan.burst // in_flight)
    for _ in range(run.plan.burst_rounds):
        for conn in conns:
            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for _ in range(in_flight):
                    tg.start_soon(timed, conn, Connection.echo, each)
            run.results.add(name, conn.target.name, [each * in_flight / (time.perf_counter() - start)])


async def _check(conn: Connection) -> None:
    """Fail unless `conn` passes `echo` and a 100 KB `blob` through unchanged."""
    texts = (await _text(conn.echo("check ✓")), await _text(conn.blob(BLOB_SIZE)))
    if texts != ("check ✓", "x" * BLOB_SIZE):
        shown = [t[:40] + ("…" if len(t) > 40 else "") for t in texts]
        raise RuntimeError(f"{conn.target.name} does not pass results through unchanged: got {shown}")


async def _text(result: Awaitable[types.CallToolResult]) -> str:
    content = (await result).content
    return "".join(block.text for block in content if isinstance(block, types.TextContent))
