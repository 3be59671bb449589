"""Starting a small config's stdio servers early (`upstream/child.py`), and the CLI doing so before a client asks."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from pluggedin_proxy.upstream import child
from pluggedin_proxy.upstream.spec import ServerSpec
from tests.conftest import KEY, REPO, echo_server, proxy_session, selfhosted_app
from tests.processes import gone

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="servers are started early on POSIX only")


def _spec(name: str, marker: Path, transport: str = "stdio") -> ServerSpec:
    return ServerSpec(
        id=name,
        name=name,
        slug=name,
        transport=transport,  # type: ignore[arg-type]
        command=sys.executable,
        args=("-m", "tests.servers.echo_server", "--name", name),
        env=(("ECHO_START_MARKER", str(marker)),),
        cwd=str(REPO),
    )


def _started(marker: Path, count: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [int(line) for line in marker.read_text().split()] if marker.exists() else []
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"{count} server(s) did not start within {timeout} s")


def _argv_env_cwd(spec: ServerSpec) -> tuple[list[str], dict[str, str], str | None]:
    return [spec.command or "", *spec.args], child.child_environment(spec.env), spec.cwd


def test_a_small_config_starts_early_and_only_an_exact_match_is_adopted(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    specs = [_spec("a", marker), _spec("b", marker)]
    adopted: child.Child | None = None
    child.prestart(specs)
    try:
        pids = _started(marker, 2)
        argv, env, cwd = _argv_env_cwd(specs[0])
        assert child.adopt(argv, {**env, "EXTRA": "1"}, cwd) is None  # not what the pool would start
        adopted = child.adopt(argv, env, cwd)
        assert adopted is not None and adopted.pid in pids
        assert child.adopt(argv, env, cwd) is None  # once only
        child.discard()
        other = next(pid for pid in pids if pid != adopted.pid)
        assert gone(other)  # the one nobody adopted is stopped
        assert not gone(adopted.pid)  # the adopted one is its adopter's to stop
    finally:
        child.discard()
        if adopted is not None:
            adopted.close_pipes()
            adopted.process.wait(timeout=10)


def test_a_larger_config_starts_nothing_early(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    child.prestart([_spec(f"s{i}", marker) for i in range(child.PRESTART_MAX + 1)])
    try:
        time.sleep(0.5)
        assert not marker.exists()
    finally:
        child.discard()


@pytest.mark.anyio
async def test_the_cli_starts_the_server_before_the_first_call_and_the_call_uses_that_process(
    tmp_path: Path, write_config: Any
) -> None:
    marker = tmp_path / "started"
    config = write_config({"echo": echo_server("echo", env={"ECHO_START_MARKER": str(marker)})})
    async with proxy_session(config) as session:
        with anyio.fail_after(30):
            while not marker.exists():  # noqa: ASYNC110  # started with no request from the client at all
                await anyio.sleep(0.05)
        pid = (await session.call_tool("echo__pid", {})).content[0]
        assert getattr(pid, "text", None) == marker.read_text().split()[0]
        assert len(marker.read_text().split()) == 1  # adopted, not started twice


def _started_by_the_proxy(marker: Path) -> list[int]:
    """Pids in `marker` whose parent is a `pluggedin_proxy` process (the self-hosted App starts servers too)."""
    found = []
    for pid in (int(line) for line in marker.read_text().split()) if marker.exists() else ():
        try:
            parent = psutil.Process(pid).parent()
            if parent is not None and parent.cmdline()[1:3] == ["-m", "pluggedin_proxy"]:
                found.append(pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.anyio
async def test_in_app_mode_the_apps_servers_start_once_it_has_named_them(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    servers = {"echo": echo_server("echo", env={"ECHO_START_MARKER": str(marker)})}
    with selfhosted_app(tmp_path, servers) as url:
        async with proxy_session(None, "--pluggedin-api-key", KEY, "--pluggedin-api-base-url", url) as session:
            with anyio.fail_after(30):
                while not (early := _started_by_the_proxy(marker)):  # noqa: ASYNC110  # no request asked for it
                    await anyio.sleep(0.05)
            tools = [tool.name for tool in (await session.list_tools()).tools]
            name = next(tool for tool in tools if tool.endswith("__pid"))
            pid = (await session.call_tool(name, {})).content[0]
            assert getattr(pid, "text", None) == str(early[0])
            assert _started_by_the_proxy(marker) == early  # adopted, not started twice
