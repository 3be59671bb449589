"""The proxy as a real stdio subprocess in front of real upstream servers, driven by the SDK client."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
import psutil
import pytest
from mcp import ClientSession
from mcp.client import ClientRequestContext
from mcp.shared.exceptions import MCPError

from tests.conftest import (
    REPO,
    echo_server,
    everything_server,
    example_server,
    proxy_command,
    proxy_session,
    time_server,
)

pytestmark = pytest.mark.anyio


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _tool_names(session: ClientSession) -> list[str]:
    return [tool.name for tool in (await session.list_tools()).tools]


class TestAggregation:
    async def test_tools_of_every_server_are_listed_and_callable(self, write_config: Any) -> None:
        """Tools of the example servers, mcp-server-time and server-everything are listed and each answers."""
        config = write_config(
            {
                "notes": example_server("notes"),
                "calc": example_server("calc"),
                "time": time_server(),
                "everything": everything_server(),
            }
        )
        async with proxy_session(config) as session:
            names = await _tool_names(session)
            assert {"notes__add_note", "calc__add", "time__get_current_time", "everything__echo"} <= set(names)

            added = await session.call_tool("notes__add_note", {"title": "t", "text": "through the proxy"})
            assert added.is_error is not True and "through the proxy" in _text(added)
            assert _text(await session.call_tool("calc__add", {"a": 2, "b": 40})) == "42.0"
            now = await session.call_tool("time__get_current_time", {"timezone": "UTC"})
            assert now.structured_content is not None and now.structured_content["timezone"] == "UTC"
            echoed = await session.call_tool("everything__echo", {"message": "hi"})
            assert "hi" in _text(echoed)

    async def test_same_tool_name_on_two_servers_gets_two_names(self, write_config: Any) -> None:
        """`echo` on two servers is exposed twice, and each name reaches its own server."""
        config = write_config({"first": echo_server("first"), "second": echo_server("second")})
        async with proxy_session(config) as session:
            names = await _tool_names(session)
            assert "first__whoami" in names and "second__whoami" in names
            assert _text(await session.call_tool("first__whoami", {})) == "first"
            assert _text(await session.call_tool("second__whoami", {})) == "second"

    async def test_overlong_and_illegal_names_get_client_safe_aliases_and_stay_callable(
        self, write_config: Any
    ) -> None:
        """Names breaking `^[A-Za-z0-9_-]{1,64}$` are listed under a safe alias; alias and original both work."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            names = await _tool_names(session)
            assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", n) for n in names)
            weird = next(n for n in names if n.startswith("echo__weird"))
            long = next(n for n in names if n.startswith("echo__a_really_long"))
            assert _text(await session.call_tool(weird, {})) == "weird ok"
            assert _text(await session.call_tool("echo__weird/name:x", {})) == "weird ok"
            assert _text(await session.call_tool(long, {})) == "long ok"

    async def test_a_tool_can_be_called_before_anything_is_listed(self, write_config: Any) -> None:
        """A client that remembers names from an earlier run can call without listing first."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            result = await session.call_tool("echo__echo", {"text": "no list first"})
            assert _text(result) == "no list first"
            assert result.structured_content == {"text": "no list first"}

    async def test_prompts_resources_and_templates_are_aggregated_and_routed(self, write_config: Any) -> None:
        """Prompts are prefixed like tools; resources and templated URIs reach the server that owns them."""
        config = write_config({"echo": echo_server(), "notes": example_server("notes")})
        async with proxy_session(config) as session:
            prompts = [p.name for p in (await session.list_prompts()).prompts]
            assert {"echo__greet", "notes__summarize_notes"} <= set(prompts)
            greeting = await session.get_prompt("echo__greet", {"name": "Ada"})
            assert isinstance(greeting.messages[0].content, types.TextContent)
            assert greeting.messages[0].content.text == "Hello, Ada!"

            uris = [r.uri for r in (await session.list_resources()).resources]
            assert {"echo://static", "notes://index"} <= set(uris)
            templates = [t.uri_template for t in (await session.list_resource_templates()).resource_templates]
            assert {"echo://item/{id}", "notes://note/{id}"} <= set(templates)

            static = await session.read_resource("echo://static")
            assert isinstance(static.contents[0], types.TextResourceContents)
            assert static.contents[0].text == "static resource"
            item = await session.read_resource("echo://item/7")
            assert isinstance(item.contents[0], types.TextResourceContents)
            assert item.contents[0].text == "item 7"
            note = await session.read_resource("notes://note/1")
            assert isinstance(note.contents[0], types.TextResourceContents) and note.contents[0].text

    async def test_completion_is_routed_to_the_prompts_server(self, write_config: Any) -> None:
        """`completion/complete` on a prefixed prompt reaches its server with the original name."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            result = await session.complete(
                types.PromptReference(type="ref/prompt", name="echo__greet"), {"name": "name", "value": "al"}
            )
            assert result.completion.values == ["alice", "alfred"]


class TestResults:
    async def test_upstream_is_error_result_passes_through_as_a_result(self, write_config: Any) -> None:
        """An upstream `isError` result reaches the client unchanged, not as a JSON-RPC error."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            result = await session.call_tool("echo__fail", {"message": "it broke"})
            assert result.is_error is True
            assert _text(result) == "it broke"

    async def test_upstream_json_rpc_error_keeps_code_message_and_data(self, write_config: Any) -> None:
        """An upstream JSON-RPC error reaches the client with its own code, message and data."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            with pytest.raises(MCPError) as caught:
                await session.call_tool("echo__raise_error", {"code": -32042, "message": "custom failure"})
            assert caught.value.code == -32042
            assert caught.value.error.message == "custom failure"
            assert caught.value.error.data == {"from": "echo"}

    async def test_unknown_tool_is_a_clear_error_and_the_proxy_keeps_serving(self, write_config: Any) -> None:
        """Calling an unknown name gives INVALID_PARAMS naming it; the next call works."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            with pytest.raises(MCPError) as caught:
                await session.call_tool("echo__nope", {})
            assert caught.value.code == types.INVALID_PARAMS
            assert "echo__nope" in caught.value.error.message
            with pytest.raises(MCPError):
                await session.get_prompt("nobody__nothing")
            with pytest.raises(MCPError) as missing:
                await session.read_resource("nowhere://at-all")
            assert missing.value.code == types.INVALID_PARAMS
            assert _text(await session.call_tool("echo__echo", {"text": "still here"})) == "still here"


class TestRelays:
    async def test_progress_is_relayed_with_the_callers_token(self, write_config: Any) -> None:
        """Upstream progress notifications reach the client's progress callback in order."""
        config = write_config({"echo": echo_server()})
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async with proxy_session(config) as session:
            result = await session.call_tool("echo__slow", {"steps": 3, "delay": 0.01}, progress_callback=on_progress)
            assert _text(result) == "done after 3 steps"
        assert [p for p, _, _ in seen] == [1, 2, 3]
        assert seen[-1][1] == 3 and seen[-1][2] == "step 3"

    async def test_sampling_elicitation_and_roots_are_relayed_to_the_client(self, write_config: Any) -> None:
        """Server-to-client requests from an upstream reach the client that made the call, and back."""

        async def sampling(
            ctx: ClientRequestContext, params: types.CreateMessageRequestParams
        ) -> types.CreateMessageResult:
            content = params.messages[0].content
            asked = content.text if isinstance(content, types.TextContent) else "?"
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=f"answer to {asked}"), model="test"
            )

        async def elicitation(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
            return types.ElicitResult(action="accept", content={"answer": "yes"})

        async def roots(ctx: ClientRequestContext) -> types.ListRootsResult:
            return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/project", name="project")])

        config = write_config({"echo": echo_server()})
        async with proxy_session(
            config, sampling_callback=sampling, elicitation_callback=elicitation, list_roots_callback=roots
        ) as session:
            assert _text(await session.call_tool("echo__sample", {"prompt": "life"})) == "sampled: answer to life"
            assert "accept" in _text(await session.call_tool("echo__elicit", {"message": "ok?"}))
            assert _text(await session.call_tool("echo__roots", {})) == "file:///tmp/project"

    async def test_upstream_log_messages_reach_the_client(self, write_config: Any) -> None:
        """`notifications/message` from an upstream during a call reaches the client's logging callback."""
        received: list[types.LoggingMessageNotificationParams] = []
        arrived = anyio.Event()

        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            received.append(params)
            arrived.set()

        config = write_config({"echo": echo_server()})
        async with proxy_session(config, logging_callback=on_log) as session:
            await session.call_tool("echo__log", {"level": "warning", "message": "careful"})
            with anyio.fail_after(5):
                await arrived.wait()
        assert received[0].data == "careful" and received[0].level == "warning"

    async def test_upstream_list_changed_refreshes_the_catalog_and_is_announced(self, write_config: Any) -> None:
        """A tool added upstream appears in the proxy's list, and the client hears `tools/list_changed`."""
        changed = anyio.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                changed.set()

        config = write_config({"echo": echo_server()})
        async with proxy_session(config, message_handler=on_message) as session:
            await session.call_tool("echo__add_tool", {"name": "fresh"})
            with anyio.fail_after(10):
                await changed.wait()
            assert "echo__fresh" in await _tool_names(session)
            assert _text(await session.call_tool("echo__fresh", {})) == "dynamic fresh"

    async def test_cancelling_a_call_cancels_it_upstream(self, write_config: Any) -> None:
        """A client-side timeout cancels the upstream call; the proxy then serves the next call at once."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            with pytest.raises(MCPError) as caught:
                await session.call_tool("echo__sleep", {"seconds": 30}, read_timeout_seconds=0.5)
            assert caught.value.code == types.REQUEST_TIMEOUT
            with anyio.fail_after(5):
                assert _text(await session.call_tool("echo__echo", {"text": "next"})) == "next"


class TestFailures:
    async def test_an_upstream_that_crashes_serves_again_on_the_next_call(self, write_config: Any) -> None:
        """The call that kills an upstream gets a clear error; the next call restarts it."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            first_pid = int(_text(await session.call_tool("echo__pid", {})))
            with pytest.raises(MCPError) as caught:
                await session.call_tool("echo__crash", {})
            assert "echo" in caught.value.error.message and "restarted" in caught.value.error.message
            second_pid = int(_text(await session.call_tool("echo__pid", {})))
            assert second_pid != first_pid
            assert _text(await session.call_tool("echo__echo", {"text": "back"})) == "back"

    async def test_an_upstream_killed_between_calls_is_restarted_on_next_use(self, write_config: Any) -> None:
        """An upstream that died while idle is noticed and reconnected when next used."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config) as session:
            pid = int(_text(await session.call_tool("echo__pid", {})))
            process = psutil.Process(pid)
            os.kill(pid, signal.SIGKILL)
            # The proxy reaps the child only after its transport saw the pipe close.
            await anyio.to_thread.run_sync(process.wait, 10)
            assert int(_text(await session.call_tool("echo__pid", {}))) != pid

    async def test_a_broken_server_does_not_stop_the_others(self, write_config: Any, tmp_path: Path) -> None:
        """With one server that cannot start and one that exits at once, the healthy server still works."""
        config = write_config(
            {
                "missing": {"command": str(tmp_path / "no-such-program")},
                "exits": echo_server("exits", env={"ECHO_EXIT_AT_START": "1"}),
                "echo": echo_server(),
            }
        )
        errors = tmp_path / "stderr.log"
        with errors.open("w") as errlog:
            async with proxy_session(config, errlog=errlog) as session:
                names = await _tool_names(session)
                assert "echo__echo" in names and not any(n.startswith(("missing__", "exits__")) for n in names)
                assert _text(await session.call_tool("echo__echo", {"text": "fine"})) == "fine"
                with pytest.raises(MCPError) as caught:
                    await session.call_tool("missing__anything", {})
                assert "missing__anything" in caught.value.error.message
        log = errors.read_text()
        assert "'missing'" in log and "No such file or directory" in log
        assert "'exits'" in log


def _children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


class TestProcessLifecycle:
    def _start(self, config: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            proxy_command("--config", str(config)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )

    def _request(self, proc: subprocess.Popen[bytes], message: dict[str, Any]) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    def _initialize(self, proc: subprocess.Popen[bytes]) -> None:
        reply = self._request(
            proc,
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "1"},
                },
            },
        )
        assert reply["result"]["serverInfo"]["name"] == "pluggedin-mcp"
        assert proc.stdin is not None
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        proc.stdin.flush()

    def test_stdout_carries_only_json_rpc_and_bad_lines_get_errors(self, write_config: Any) -> None:
        """Every stdout line is JSON-RPC; a malformed line gets -32700, a non-message -32600, then service goes on."""
        config = write_config({"echo": echo_server(env={"ECHO_JUNK_STDOUT": "1"})})
        proc = self._start(config)
        try:
            self._initialize(proc)
            assert self._request(proc, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})["id"] == 1
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"this is not json\n")
            proc.stdin.flush()
            parse_error = json.loads(proc.stdout.readline())
            assert parse_error["error"]["code"] == -32700 and parse_error["id"] is None
            proc.stdin.write(b'{"jsonrpc": "2.0", "id": 5, "method": 42}\n')
            proc.stdin.flush()
            invalid = json.loads(proc.stdout.readline())
            assert invalid["error"]["code"] == -32600 and invalid["id"] == 5
            unknown = self._request(proc, {"jsonrpc": "2.0", "id": 2, "method": "no/such/method"})
            assert unknown["error"]["code"] == -32601
            reply = self._request(
                proc,
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {"name": "echo__echo", "arguments": {"text": "ok"}},
                },
            )
            assert reply["id"] == 3 and reply["result"]["content"][0]["text"] == "ok"
        finally:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            rest = proc.stdout.read()
            proc.wait(timeout=20)
        for line in rest.splitlines():
            assert json.loads(line)["jsonrpc"] == "2.0"

    def test_requests_piped_before_stdin_closes_are_all_answered(self, write_config: Any) -> None:
        """`printf '…' | pluggedin-mcp`: every request read before EOF gets its answer, then the proxy exits 0."""
        config = write_config({"echo": echo_server()})
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "p", "version": "1"}}
        lines = [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "echo__echo", "arguments": {"text": "piped"}}},
            {"jsonrpc": "2.0", "id": 3, "method": "ping"},
        ]  # fmt: skip
        piped = "".join(json.dumps(line) + "\n" for line in lines)
        done = subprocess.run(
            proxy_command("--config", str(config)), input=piped, capture_output=True, text=True, timeout=60, cwd=REPO
        )
        answers = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines())}
        assert done.returncode == 0
        assert sorted(answers) == [1, 2, 3]
        assert answers[2]["result"]["content"][0]["text"] == "piped"

    def test_no_child_process_is_left_after_stdin_closes(self, write_config: Any) -> None:
        """When the client closes stdin, the proxy exits 0 and every upstream it started is gone."""
        config = write_config({"a": echo_server("a"), "b": echo_server("b")})
        proc = self._start(config)
        self._initialize(proc)
        for i, name in enumerate(("a__pid", "b__pid")):
            self._request(
                proc,
                {"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {"name": name, "arguments": {}}},
            )
        children = _children_of(proc.pid)
        assert len(children) >= 2
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []

    def test_no_child_process_is_left_after_sigterm(self, write_config: Any) -> None:
        """SIGTERM stops the proxy and every upstream it started."""
        config = write_config({"a": echo_server("a")})
        proc = self._start(config)
        self._initialize(proc)
        self._request(
            proc, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a__pid", "arguments": {}}}
        )
        children = _children_of(proc.pid)
        assert children
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []


def test_listings_are_persisted_so_a_warm_start_spawns_nothing(write_config: Any, tmp_path: Path) -> None:
    """After one discovery, `tools` lists from the saved listing without starting the server."""
    marker = tmp_path / "started"
    config = write_config({"echo": echo_server(env={"ECHO_START_MARKER": str(marker)})})
    command = [*proxy_command("tools", "--config", str(config))]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO, env=os.environ.copy())
    assert first.returncode == 0 and "echo__echo" in first.stdout
    assert marker.exists()
    marker.unlink()
    second = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO, env=os.environ.copy())
    assert second.returncode == 0 and "echo__echo" in second.stdout
    assert not marker.exists()
    assert sys.executable  # the same interpreter ran both


class TestSubscriptionsAndEras:
    async def test_resource_subscription_reaches_the_upstream_and_updates_come_back(self, write_config: Any) -> None:
        """`resources/subscribe` is forwarded to the owner, and its `resources/updated` reaches the client."""
        updated = anyio.Event()
        uris: list[str] = []

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ResourceUpdatedNotification):
                uris.append(message.params.uri)
                updated.set()

        config = write_config({"echo": echo_server()})
        async with proxy_session(config, message_handler=on_message) as session:
            subscribe = types.SubscribeRequest(params=types.SubscribeRequestParams(uri="echo://static"))
            await session.send_request(subscribe, types.EmptyResult)
            assert _text(await session.call_tool("echo__subscriptions", {})) == "echo://static"
            await session.call_tool("echo__touch", {"uri": "echo://static"})
            with anyio.fail_after(5):
                await updated.wait()
        assert uris == ["echo://static"]

    async def test_a_2026_era_client_lists_and_calls_through_the_proxy(self, write_config: Any) -> None:
        """A client speaking protocol 2026-07-28 (no handshake) is served on the same stdio endpoint."""
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters

        config = write_config({"echo": echo_server()})
        command, *args = proxy_command("--config", str(config))
        params = StdioServerParameters(command=command, args=args, env=dict(os.environ), cwd=str(REPO))
        async with Client(params, mode="2026-07-28") as client:
            assert client.protocol_version == "2026-07-28"
            tools = await client.list_tools()
            assert "echo__echo" in [t.name for t in tools.tools]
            result = await client.call_tool("echo__echo", {"text": "modern"})
            assert _text(result) == "modern"


async def test_large_aggregates_are_paginated_with_an_opaque_cursor(write_config: Any) -> None:
    """More tools than fit a page come in pages linked by `nextCursor`; a forged cursor is rejected."""
    config = write_config({"big": echo_server("big", "--extra-tools", "1200")})
    async with proxy_session(config) as session:
        first = await session.list_tools()
        assert first.next_cursor is not None
        second = await session.list_tools(params=types.PaginatedRequestParams(cursor=first.next_cursor))
        names = [t.name for t in first.tools] + [t.name for t in second.tools]
        assert second.next_cursor is None
        assert len(names) == len(set(names)) and {"big__extra_0", "big__extra_1199", "big__echo"} <= set(names)
        with pytest.raises(MCPError) as caught:
            await session.list_tools(params=types.PaginatedRequestParams(cursor="not-a-cursor"))
        assert caught.value.code == types.INVALID_PARAMS
