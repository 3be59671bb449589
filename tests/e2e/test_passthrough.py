"""The stdio fast path (`proxy/passthrough.py`): tool calls sent to a stdio upstream as JSON, same answers as ever.

The proxy takes a plain `tools/call` off its stdin once the client is known (after its first handled request)
and sends it down the upstream's JSON lane, where the request id is a string of the lane's; the echo fixture's
`whoami` shows that id when `ECHO_SHOW_REQUEST_ID` is set. Everything here runs the real CLI and real servers.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import REPO, echo_server, proxy_command, proxy_session, time_server

pytestmark = pytest.mark.anyio

LANE_PREFIX = "pluggedin-lane-"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _config(write_config: Any) -> Path:
    return write_config({"echo": echo_server("echo", env={"ECHO_SHOW_REQUEST_ID": "1"}), "time": time_server()})


async def test_the_first_call_goes_through_the_sdk_and_later_ones_down_the_lane(write_config: Any) -> None:
    async with proxy_session(_config(write_config)) as session:
        first = _text(await session.call_tool("echo__whoami", {}))
        assert first.startswith("echo ") and LANE_PREFIX not in first  # the SDK session's integer id
        later = _text(await session.call_tool("echo__whoami", {}))
        assert json.loads(later.split(" ", 1)[1]).startswith(LANE_PREFIX)


async def test_answers_are_the_same_either_way(write_config: Any) -> None:
    """An SDK-relayed call and a lane call of the same tool give equal results, structured content included."""
    async with proxy_session(_config(write_config)) as session:
        slow_way = await session.call_tool("echo__echo", {"text": "héllo ✓ \U0001f600"})
        fast_way = await session.call_tool("echo__echo", {"text": "héllo ✓ \U0001f600"})
        assert fast_way == slow_way
        assert fast_way.structured_content == {"text": "héllo ✓ \U0001f600"}
        # A third-party server (mcp-server-time, PyPI) through the lane.
        converted = await session.call_tool(
            "time__convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"}
        )
        assert converted.is_error is not True and "Europe/Paris" in _text(converted)


async def test_errors_pass_through_the_lane_unchanged(write_config: Any) -> None:
    async with proxy_session(_config(write_config)) as session:
        await session.list_tools()
        with pytest.raises(MCPError) as raised:
            await session.call_tool("echo__raise_error", {"code": -32042, "message": "nope"})
        assert (raised.value.code, raised.value.message, raised.value.data) == (-32042, "nope", {"from": "echo"})
        failed = await session.call_tool("echo__fail", {"message": "tool says no"})
        assert failed.is_error is True and _text(failed) == "tool says no"
        with pytest.raises(MCPError) as unknown:
            await session.call_tool("echo__no_such_tool", {})
        assert unknown.value.code == types.INVALID_PARAMS and "echo__no_such_tool" in unknown.value.message


async def test_progress_comes_back_under_the_clients_token(write_config: Any) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with proxy_session(_config(write_config)) as session:
        await session.list_tools()
        result = await session.call_tool("echo__slow", {"steps": 3, "delay": 0.01}, progress_callback=on_progress)
        assert _text(result) == "done after 3 steps"
        assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_limits_apply_on_the_lane(write_config: Any) -> None:
    """The call rate limit and the result size cap hold for lane calls as for any other."""
    async with proxy_session(_config(write_config), "--rate-limit", "3", "--max-result-size", "100") as session:
        await session.list_tools()
        cut = await session.call_tool("echo__echo", {"text": "x" * 500})
        assert cut.is_error is True  # its structured content could not be kept whole
        assert "was cut" in _text(cut) and "pluggedin://results/" in _text(cut)
        await session.call_tool("echo__whoami", {})
        await session.call_tool("echo__whoami", {})
        with pytest.raises(MCPError) as limited:
            await session.call_tool("echo__whoami", {})
        assert limited.value.code == -32029


@contextmanager
def _raw_proxy(config: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """The proxy with pipes a test writes JSON-RPC lines to directly."""
    proc = subprocess.Popen(
        proxy_command("--config", str(config), *extra),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
    )
    try:
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _send(proc: subprocess.Popen[str], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()


def _read(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the proxy closed its stdout"
    message: dict[str, Any] = json.loads(line)
    return message


def _call(request_id: Any, name: str, arguments: dict[str, Any], **meta: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _start(proc: subprocess.Popen[str]) -> None:
    _send(proc, INITIALIZE)
    assert _read(proc)["id"] == 0
    _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    _send(proc, {"jsonrpc": "2.0", "id": "list", "method": "tools/list"})
    assert _read(proc)["id"] == "list"


def test_a_cancelled_call_is_never_answered_and_the_next_one_is(write_config: Any) -> None:
    with _raw_proxy(_config(write_config)) as proc:
        _start(proc)
        _send(proc, _call("warm", "echo__whoami", {}))
        assert _read(proc)["id"] == "warm"
        _send(proc, _call("long", "echo__sleep", {"seconds": 30}))
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "long"}})
        _send(proc, _call(7, "echo__whoami", {}))
        answer = _read(proc)
        assert answer["id"] == 7 and LANE_PREFIX in answer["result"]["content"][0]["text"]
        # Only the answer to 7 came: "long" is never answered (stdin closes; the proxy ends without it).
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.stdout is not None
        assert proc.stdout.read() == ""


def test_lane_answers_match_sdk_answers_and_odd_requests_still_get_theirs(write_config: Any) -> None:
    with _raw_proxy(_config(write_config)) as proc:
        _send(proc, INITIALIZE)
        assert _read(proc)["id"] == 0
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        text = 'quotes " and \\ and ünïcödé \U0001f600'
        _send(proc, _call(1, "echo__echo", {"text": text}))  # the client's first request: the SDK's way
        by_sdk = _read(proc)
        _send(proc, _call(2, "echo__echo", {"text": text}))  # now known: the lane
        by_lane = _read(proc)
        assert by_sdk["id"] == 1 and by_lane["id"] == 2
        assert by_lane["result"] == by_sdk["result"]
        assert by_lane["result"]["structuredContent"] == {"text": text}

        # Requests the lane does not take: each still gets the SDK path's answer.
        _send(proc, {**_call(3, "echo__whoami", {}), "params": {"name": "echo__whoami", "task": {"ttl": 1}}})
        assert _read(proc)["id"] == 3
        _send(proc, {**_call(4, "echo__echo", {}), "params": {"name": "echo__echo", "arguments": "not an object"}})
        assert _read(proc)["error"]["code"] == types.INVALID_PARAMS
        _send(proc, _call(None, "echo__whoami", {}))
        assert _read(proc)["error"]["code"] == types.INVALID_REQUEST
        _send(proc, _call(5, "echo__whoami", {}, progressToken=1.5))
        assert _read(proc)["id"] == 5


async def test_a_server_crash_mid_call_is_reported_and_the_server_comes_back(write_config: Any) -> None:
    async with proxy_session(_config(write_config)) as session:
        await session.list_tools()
        with pytest.raises(MCPError) as crashed:
            await session.call_tool("echo__crash", {})
        assert crashed.value.code == types.INTERNAL_ERROR
        assert crashed.value.data == {"server": "echo", "retryable": True}
        with anyio.fail_after(30):
            again = _text(await session.call_tool("echo__whoami", {}))
        assert again.startswith("echo ")
