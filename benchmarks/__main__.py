"""`python -m benchmarks`: time pluggedin-mcp against a direct connection to the same server, and against peers.

    python -m benchmarks [--quick] [--only warm,http,...] [--peer NAME=COMMAND ...] [--compare OLD.json]
    python -m benchmarks --show RESULT.json [--compare OLD.json]

A run prints one markdown table on stdout (progress goes to stderr) and writes its JSON to
`benchmarks/results/<UTC timestamp>.json` and `benchmarks/results/latest.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from benchmarks.plan import DEFAULT, QUICK, Plan, Run
from benchmarks.processes import HAVE_PSUTIL, PSUTIL_MISSING, LeftoverWatch, background_server
from benchmarks.report import NOT_RUN, compare, document, render
from benchmarks.startup import cached_catalog, cold_start, fan_out_shutdown, lazy_first_call
from benchmarks.stats import Results
from benchmarks.targets import Sandbox, Target, TargetError, parse_peer, resolve_names
from benchmarks.workloads import warm_http, warm_stdio

logger = logging.getLogger("benchmarks")

# In run order: the fleet discovery in `lazy` also serves `catalog` and `shutdown`.
WORKLOADS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "warm": warm_stdio,
    "http": warm_http,
    "cold": cold_start,
    "lazy": lazy_first_call,
    "catalog": cached_catalog,
    "shutdown": fan_out_shutdown,
}
RESULTS_DIR = Path(__file__).with_name("results")


def main() -> None:
    args = _parser().parse_args()
    # Progress only: the SDK's and httpx2's own INFO lines (one per HTTP request) would drown it.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    if args.show:
        doc = _load(args.show)
    else:
        names = [name.strip() for name in args.only.split(",")] if args.only else list(WORKLOADS)
        unknown = sorted(set(names) - set(WORKLOADS))
        if unknown:
            sys.exit(f"--only: unknown workload {', '.join(unknown)} (choose from {', '.join(WORKLOADS)})")
        doc = anyio.run(_run, QUICK if args.quick else DEFAULT, args.quick, names, args.peer, args.keep_files)
        stamp = datetime.fromisoformat(doc["date"]).strftime("%Y%m%dT%H%M%SZ")
        path = args.out or RESULTS_DIR / f"{stamp}.json"
        _save(doc, path)
        if args.out is None:
            _save(doc, RESULTS_DIR / "latest.json")
        logger.info("results written to %s", path)
    sys.stdout.write(render(doc) + "\n")
    if args.compare:
        sys.stdout.write("\n" + compare(_load(args.compare), doc) + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark pluggedin-mcp against a direct connection to the same MCP server.",
        epilog=(
            "A peer is any command that serves MCP on stdio in front of the benchmark's echo server "
            "(benchmarks/echo_server.py); you configure it to do so. In COMMAND, {echo} is the echo server's "
            "command line, {python} this interpreter, {config} an mcpServers file with the echo server as 'echo', "
            "{app_url} and {app_key} a self-hosted plugged.in App serving that file."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a minute or two (fewer, noisier samples)")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated workloads to run, of: {', '.join(WORKLOADS)}")
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="also measure this stdio MCP proxy, fronting the echo server (repeatable)",
    )
    parser.add_argument("--compare", type=Path, metavar="OLD.json", help="also print the changes since a saved run")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the JSON here instead of benchmarks/results/")
    parser.add_argument(
        "--keep-files", action="store_true", help="keep the run's configs and logs (the path goes to stderr)"
    )
    parser.add_argument("--show", type=Path, metavar="RESULT.json", help="print a saved run's report; run nothing")
    return parser


async def _run(plan: Plan, quick: bool, names: list[str], peer_specs: list[str], keep: bool) -> dict[str, Any]:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    load_start = os.getloadavg()[0]
    results = Results()
    if not HAVE_PSUTIL:
        results.skip("left", PSUTIL_MISSING)
    durations: dict[str, float] = {}
    with _workdir(keep) as tmp:
        sandbox = Sandbox(tmp)
        one = sandbox.write_config("one", {"echo": sandbox.stdio_entry()})
        direct = Target("direct", "direct", argv=tuple(sandbox.echo_argv()))
        proxy = Target("proxy", "proxy", argv=tuple(sandbox.proxy_argv("--config", str(one), "--no-prefix")))
        # The watch's checks run in this group, which waits for the last of them before the run ends.
        async with anyio.create_task_group() as tg, AsyncExitStack() as stack:
            watch = LeftoverWatch(tg, lambda column, left: results.add("left", column, [left]))
            placeholders = {
                "echo": shlex.join(sandbox.echo_argv()),
                "python": shlex.quote(sandbox.python),
                "config": shlex.quote(str(one)),
            }
            proxy_app = None
            if "cold" in names or any("{app_" in spec for spec in peer_specs):
                logger.info("[%4.0fs] starting the self-hosted App", time.perf_counter() - clock)
                proxy_app = await _start_app(sandbox, stack, placeholders, results)
            if peer_specs:
                logger.info("[%4.0fs] asking the peers for their tools", time.perf_counter() - clock)
            peers, peer_info = await _peers(peer_specs, sandbox, placeholders)
            run = Run(plan, sandbox, results, watch, direct, proxy, proxy_app, tuple(peers))
            for name in WORKLOADS.keys() - set(names):
                results.skip(name, f"{NOT_RUN} (--only)")
            for name in names:
                logger.info("[%4.0fs] %s", time.perf_counter() - clock, name)
                began = time.perf_counter()
                try:
                    await WORKLOADS[name](run)
                except Exception as exc:
                    logger.warning("%s failed: %s (--keep-files keeps the logs)", name, _describe(exc))
                    results.skip(name, f"the workload failed: {_describe(exc)}")
                durations[name] = time.perf_counter() - began
            logger.info("[%4.0fs] waiting for the last leftover checks", time.perf_counter() - clock)
    return document(
        results,
        plan=plan,
        quick=quick,
        started=started,
        elapsed=time.perf_counter() - clock,
        load=(load_start, os.getloadavg()[0]),
        durations=durations,
        peers=peer_info,
    )


async def _start_app(
    sandbox: Sandbox, stack: AsyncExitStack, placeholders: dict[str, str], results: Results
) -> Target | None:
    """Serve the one-server config from a self-hosted App; the proxy in App mode as a target (None if it fails)."""
    key = secrets.token_urlsafe(32)
    config = sandbox.write_config("app", {"echo": sandbox.stdio_entry()})
    argv = [sandbox.python, "-m", "pluggedin_proxy.selfhost", "--config", str(config), "--port", "0"]
    argv += ["--api-key", key, "--data-dir", str(sandbox.root / "app-data")]
    try:
        app = await stack.enter_async_context(background_server(argv, env=sandbox.env(), log=sandbox.log("app")))
        options = ("--pluggedin-api-key", key, "--pluggedin-api-base-url", app.url)
        target = await resolve_names(Target("proxy-app", "proxy", argv=tuple(sandbox.proxy_argv(*options))), sandbox)
    except Exception as exc:
        logger.warning("the self-hosted App did not serve: %s", _describe(exc))
        results.skip("cold", f"the self-hosted App did not serve: {_describe(exc)}", "proxy-app")
        return None
    placeholders.update(app_url=shlex.quote(app.url), app_key=key)
    return target


async def _peers(
    specs: list[str], sandbox: Sandbox, placeholders: dict[str, str]
) -> tuple[list[Target], dict[str, dict[str, Any]]]:
    """The peers that list the echo server's tools; every peer's command line, and why any was left out."""
    peers: list[Target] = []
    info: dict[str, dict[str, Any]] = {}
    for spec in specs:
        try:
            peer = parse_peer(spec, placeholders)
        except ValueError as exc:
            sys.exit(str(exc))
        info[peer.name] = {"argv": list(peer.argv)}
        try:
            peers.append(await resolve_names(peer, sandbox))
        except Exception as exc:
            logger.warning("peer %s left out: %s", peer.name, _describe(exc))
            info[peer.name]["error"] = _describe(exc)
    return peers, info


@contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    """A temporary directory for the run, removed afterwards unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix="pluggedin-bench-"))
    try:
        yield path
    finally:
        if keep:
            logger.info("configs and logs kept in %s", path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _describe(exc: BaseException) -> str:
    """One line per underlying error, task-group wrappers unwrapped."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    text = str(exc).strip().splitlines()
    cause = f" ({_describe(exc.__cause__)})" if isinstance(exc, TargetError) and exc.__cause__ else ""
    return f"{type(exc).__name__}: {text[0] if text else ''}{cause}"


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _save(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
