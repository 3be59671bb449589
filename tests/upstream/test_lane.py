"""The JSON lane beside a stdio upstream's SDK session (`upstream/stdio.py`), its line handling in isolation."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from pluggedin_proxy.upstream.stdio import LANE_PREFIX, Lane, LaneAnswer

pytestmark = pytest.mark.anyio


class Wire:
    """What the lane writes, and a way to answer it as a server would."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.written = anyio.Event()

    async def send(self, line: bytes) -> None:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        self.sent.append(json.loads(line))
        self.written.set()


async def _answered(lane: Lane, wire: Wire, reply: bytes) -> LaneAnswer:
    """Send one request on `lane` and answer it with `reply`, where `{id}` stands for the request's id."""
    answer: list[LaneAnswer] = []

    async def ask() -> None:
        answer.append(await lane.request("tools/call", {"name": "t", "arguments": {}}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await wire.written.wait()
        request_id = wire.sent[-1]["id"]
        assert await lane.offer(reply.replace(b"{id}", json.dumps(request_id).encode()))
    return answer[0]


@pytest.mark.parametrize(
    "reply",
    [
        b'{"jsonrpc":"2.0","id":{id},"result":{"content":[{"type":"text","text":"\\u00e9 x"}]}}',
        b'{"result":{"content":[{"type":"text","text":"\\u00e9 x"}]},"jsonrpc":"2.0","id":{id}}',
    ],
    ids=["python-sdk-order", "typescript-sdk-order"],
)
async def test_the_result_comes_back_as_written_when_the_line_has_a_usual_shape(reply: bytes) -> None:
    wire = Wire()
    answer = await _answered(Lane(wire.send), wire, reply)
    assert answer.raw_result == b'{"content":[{"type":"text","text":"\\u00e9 x"}]}'
    assert answer.message["result"] == {"content": [{"type": "text", "text": "é x"}]}
    assert answer.size == len(reply) + len(wire.sent[0]["id"]) + 2 - len(b"{id}")


async def test_other_shapes_are_parsed_but_not_passed_as_written() -> None:
    wire = Wire()
    reply = b'{"jsonrpc": "2.0", "id": {id}, "result": {"content": []}}'  # not compact
    answer = await _answered(Lane(wire.send), wire, reply)
    assert answer.raw_result is None and answer.message["result"] == {"content": []}


async def test_an_answer_with_invalid_utf8_is_still_delivered() -> None:
    wire = Wire()
    answer = await _answered(Lane(wire.send), wire, b'{"jsonrpc":"2.0","id":{id},"result":{"content":[],"x":"\xff"}}')
    assert answer.message["result"]["x"] == "\ufffd"


async def test_lines_that_are_not_the_lanes_are_left_to_the_session() -> None:
    lane = Lane(Wire().send)
    assert not await lane.offer(b'{"jsonrpc":"2.0","id":3,"result":{}}')
    assert not await lane.offer(b'{"jsonrpc":"2.0","id":["' + LANE_PREFIX.encode() + b'1"],"result":{}}')
    assert not await lane.offer(b'{"jsonrpc":"2.0","id":"' + LANE_PREFIX.encode() + b'99","result":{}}')
    assert not await lane.offer(b"not json " + LANE_PREFIX.encode())


async def test_progress_goes_to_its_request_and_the_answer_after_it() -> None:
    wire = Wire()
    lane = Lane(wire.send)
    seen: list[dict[str, Any]] = []

    async def progress(params: dict[str, Any]) -> None:
        seen.append(params)

    answer: list[LaneAnswer] = []

    async def ask() -> None:
        answer.append(await lane.request("tools/call", {"name": "t"}, progress))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await wire.written.wait()
        token = wire.sent[0]["params"]["_meta"]["progressToken"]
        note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": 1}}
        assert await lane.offer(json.dumps(note).encode())
        reply = {"jsonrpc": "2.0", "id": wire.sent[0]["id"], "result": {"content": []}}
        assert await lane.offer(json.dumps(reply).encode())
    assert seen == [{"progressToken": token, "progress": 1}]
    assert answer[0].message["result"] == {"content": []}


async def test_a_closed_lane_fails_open_and_new_requests_alike() -> None:
    wire = Wire()
    lane = Lane(wire.send)
    failures: list[MCPError] = []

    async def ask() -> None:
        try:
            await lane.request("tools/call", {"name": "t"})
        except MCPError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await wire.written.wait()
        lane.close()
    await ask()
    assert [exc.code for exc in failures] == [types.CONNECTION_CLOSED] * 2
