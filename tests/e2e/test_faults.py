"""Faults with real processes: upstreams killed mid-call, hanging, crash-looping, and per-client sessions.

Each test runs the proxy as a subprocess over stdio (or HTTP for per-client isolation) with the echo
fixture as its upstream, and checks what the client sees and which processes exist (with psutil).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
import mcp_types as types
import psutil
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import REPO, echo_server, proxy_command, proxy_session
from tests.http.conftest import HEADERS, INITIALIZE, running_proxy, session_headers

pytestmark = pytest.mark.anyio


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _pid(session: ClientSession, server: str = "echo") -> int:
    return int(_text(await session.call_tool(f"{server}__pid", {})))


async def _kill_when_busy(pid: int, started: anyio.Event) -> None:
    await started.wait()
    await anyio.sleep(0.3)  # let the call reach the server
    os.kill(pid, signal.SIGKILL)


class TestKilledMidCall:
    async def test_a_read_only_call_is_sent_again_to_a_fresh_process(self, write_config: Any) -> None:
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            pid = await _pid(session)
            started = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_kill_when_busy, pid, started)
                started.set()
                result = await session.call_tool("echo__nap", {"seconds": 1})
            assert _text(result) == "slept"
            assert await _pid(session) != pid

    async def test_a_call_that_may_change_something_is_not_repeated(self, write_config: Any) -> None:
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            pid = await _pid(session)
            started = anyio.Event()
            failures: list[MCPError] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(_kill_when_busy, pid, started)
                started.set()
                try:
                    await session.call_tool("echo__sleep", {"seconds": 5})
                except MCPError as exc:
                    failures.append(exc)
            (failure,) = failures
            error = failure.error
            assert "may or may not have taken effect" in error.message and "restarted" in error.message
            assert error.data == {"server": "echo", "retryable": True}
            assert _text(await session.call_tool("echo__echo", {"text": "after"})) == "after"


class TestTimeouts:
    async def test_a_hanging_server_times_out_while_the_others_keep_answering(self, write_config: Any) -> None:
        config = write_config({"stuck": {**echo_server("stuck"), "timeout": 6}, "echo": echo_server()})
        async with proxy_session(config) as session:
            await _pid(session, "stuck")
            hung = anyio.Event()
            outcome: list[BaseException] = []

            async def hang() -> None:
                try:
                    await session.call_tool("stuck__sleep", {"seconds": 60})
                except MCPError as exc:
                    outcome.append(exc)
                hung.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(hang)
                await anyio.sleep(0.2)
                # Answered while the other server's call is still waiting for its timeout.
                assert _text(await session.call_tool("echo__echo", {"text": "free"})) == "free"
                assert not hung.is_set()
                with anyio.fail_after(30):
                    await hung.wait()
            (error,) = outcome
            assert isinstance(error, MCPError)
            assert "did not answer within 6 s" in error.error.message
            assert error.error.data == {"server": "stuck", "retryable": True}

    async def test_progress_restarts_the_clock(self, write_config: Any) -> None:
        config = write_config({"echo": {**echo_server(), "timeout": 3}})
        async with proxy_session(config) as session:
            # Five steps a second apart: 5 s in all, but never 3 s without progress.
            result = await session.call_tool("echo__slow", {"steps": 5, "delay": 1.0})
        assert _text(result) == "done after 5 steps"


class TestCircuitBreaker:
    async def test_a_server_that_keeps_failing_is_paused_then_tried_again(
        self, write_config: Any, tmp_path: Path
    ) -> None:
        broken = tmp_path / "broken"
        config = write_config({"echo": echo_server(env={"ECHO_EXIT_IF_EXISTS": str(broken)})})
        async with proxy_session(config) as session:
            await _pid(session)
            broken.touch()
            with pytest.raises(MCPError):
                await session.call_tool("echo__crash", {})
            messages = []
            for _ in range(4):
                with pytest.raises(MCPError) as caught:
                    await session.call_tool("echo__echo", {"text": "x"})
                messages.append(caught.value.error.message)
            # Failures in a row open the circuit: then the proxy answers at once, saying when it retries.
            assert "unavailable after" in messages[-1] and "next attempt is in" in messages[-1]
            assert "exiting at start because the file ECHO_EXIT_IF_EXISTS names exists" in messages[-1]
            broken.unlink()
            with anyio.fail_after(30):
                while True:
                    try:
                        result = await session.call_tool("echo__echo", {"text": "back"})
                        break
                    except MCPError as exc:
                        assert "unavailable after" in exc.error.message
                        await anyio.sleep(0.5)
            assert _text(result) == "back"


class TestPerClientIsolation:
    async def test_each_client_gets_its_own_process_which_ends_with_its_session(self, write_config: Any) -> None:
        config = write_config({"echo": {**echo_server(), "isolation": "per-client"}, "shared": echo_server("shared")})
        async with running_proxy(config, "--rate-limit", "0") as url:
            pids: list[int] = []
            shared: list[int] = []
            for _ in range(2):
                async with (
                    httpx2.AsyncClient(timeout=30) as http,
                    streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
                    ClientSession(read, write) as session,
                ):
                    await session.initialize()
                    pids.append(await _pid(session))
                    shared.append(await _pid(session, "shared"))
                    assert psutil.pid_exists(pids[-1])
                # The client closed its session (DELETE): its own upstream goes with it.
                process = psutil.Process(pids[-1])
                await anyio.to_thread.run_sync(process.wait, 10)
            assert pids[0] != pids[1]
            assert shared[0] == shared[1] and psutil.pid_exists(shared[0])

    async def test_an_idle_per_client_session_is_closed(self, write_config: Any) -> None:
        config = write_config({"echo": {**echo_server(), "isolation": "per-client", "idleTimeout": 1}})
        async with proxy_session(config) as session:
            pid = await _pid(session)
            await anyio.to_thread.run_sync(psutil.Process(pid).wait, 10)
            assert await _pid(session) != pid


def test_doctor_starts_every_server_and_shows_how_each_is_doing(write_config: Any) -> None:
    config = write_config({"echo": echo_server(), "broken": echo_server("broken", env={"ECHO_EXIT_AT_START": "1"})})
    done = subprocess.run(
        proxy_command("doctor", "--servers", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:2] == ["echo", "ready"] for line in lines), done.stdout
    assert any(line.split()[:2] == ["broken", "failing"] for line in lines), done.stdout
    assert "    last error: server 'broken' failed its MCP handshake" in done.stdout
    assert "    stderr| echo_server: exiting at start because ECHO_EXIT_AT_START=1" in lines


class TestOversizedResults:
    async def test_a_large_result_is_cut_and_kept_whole_as_a_resource(self, write_config: Any) -> None:
        config = write_config({"echo": echo_server()})
        text = "0123456789" * 500
        async with proxy_session(config, "--max-result-size", "1000") as session:
            result = await session.call_tool("echo__echo", {"text": text})
            cut, note = result.content
            assert isinstance(cut, types.TextContent) and cut.text == text[:1000]
            assert isinstance(note, types.TextContent) and "5,000 characters long" in note.text
            uri = re.search(r"pluggedin://results/\S+", note.text)
            assert uri is not None
            kept = await session.read_resource(uri.group(0).rstrip("."))
            (contents,) = kept.contents
            assert isinstance(contents, types.TextResourceContents)
            assert json.loads(contents.text)["content"][0]["text"] == text
            small = await session.call_tool("echo__echo", {"text": "short"})
            assert _text(small) == "short"
            with pytest.raises(MCPError) as caught:
                await session.read_resource("pluggedin://results/unknown")
            assert caught.value.code == types.INVALID_PARAMS

    async def test_structured_content_too_large_to_keep_marks_the_result_as_not_whole(self, write_config: Any) -> None:
        config = write_config({"echo": echo_server()})
        async with proxy_session(config, "--max-result-size", "1000") as session:
            result = await session.call_tool("echo__echo", {"text": "x" * 5000})
        assert result.is_error is True and result.structured_content is None
        assert "pluggedin://results/" in _text(result)


async def test_health_shows_each_servers_state_last_error_and_stderr(write_config: Any) -> None:
    config = write_config({"echo": echo_server(), "broken": echo_server("broken", env={"ECHO_EXIT_AT_START": "1"})})
    async with running_proxy(config) as url, httpx2.AsyncClient(base_url=url, timeout=30) as http:
        opened = await http.post("/mcp", json=INITIALIZE, headers=HEADERS)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo__pid", "arguments": {}}}
        called = await http.post("/mcp", json=call, headers=session_headers(opened))
        assert called.status_code == 200, called.text
        upstreams = {u["server"]: u for u in (await http.get("/health")).json()["upstreams"]}
    assert upstreams["echo"]["state"] == "ready" and upstreams["echo"]["live"] == 1
    broken = upstreams["broken"]
    assert broken["state"] == "failing" and broken["live"] == 0 and broken["failures"] == 1
    assert "failed its MCP handshake" in broken["lastError"]
    assert broken["stderr"] == ["echo_server: exiting at start because ECHO_EXIT_AT_START=1"]
