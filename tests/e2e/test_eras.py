"""Both protocol eras through the proxy over stdio: each client's era and capabilities reach the upstream.

The upstream is the conformance fixture (it speaks both eras), plus `mcp-server-time` from PyPI, which
speaks only the handshake era. Clients are the SDK's `Client`: `mode="legacy"` for the handshake era
and the default probe, which lands on 2026-07-28.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError, types
from mcp.client import ClientRequestContext
from mcp.client.stdio import StdioServerParameters
from mcp.shared.subscriptions import ToolsListChanged

from tests.conftest import REPO, proxy_command, time_server

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"


def _fixture() -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "tests.servers.conformance_server"], "cwd": str(REPO)}


def _proxy(config: Path) -> StdioServerParameters:
    command, *args = proxy_command("--config", str(config), "--no-prefix", "--rate-limit", "0")
    return StdioServerParameters(command=command, args=args, env=dict(os.environ), cwd=str(REPO))


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _give_name(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


class TestModernClients:
    async def test_input_requests_come_back_to_the_client_and_its_answers_reach_the_server(
        self, write_config: Any
    ) -> None:
        config = write_config({"fixture": _fixture()})
        async with Client(_proxy(config), elicitation_callback=_give_name) as client:
            assert client.protocol_version == MODERN
            result = await client.call_tool("test_input_required_result_elicitation", {})
        assert _text(result) == "Hello, Ada!"

    async def test_the_server_sees_only_the_capabilities_the_client_declared(self, write_config: Any) -> None:
        # Without a sampling capability the fixture must refuse, as it would talking to the client directly.
        config = write_config({"fixture": _fixture()})
        async with Client(_proxy(config), elicitation_callback=_give_name) as client:
            with pytest.raises(MCPError) as refused:
                await client.call_tool("test_missing_capability", {})
        assert refused.value.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY

    async def test_list_changes_arrive_on_the_listen_stream(self, write_config: Any) -> None:
        config = write_config({"fixture": _fixture()})
        async with Client(_proxy(config)) as client:
            await client.list_tools()
            async with client.listen(tools_list_changed=True) as subscription:
                await client.call_tool("test_trigger_tool_change", {})
                with anyio.fail_after(20):
                    event = await subscription.__anext__()
        assert isinstance(event, ToolsListChanged)

    async def test_logs_arrive_only_when_the_request_asks_for_them(self, write_config: Any) -> None:
        config = write_config({"fixture": _fixture()})
        heard: list[types.LoggingMessageNotificationParams] = []

        async def collect(params: types.LoggingMessageNotificationParams) -> None:
            heard.append(params)

        async with Client(_proxy(config), logging_callback=collect) as client:
            await client.call_tool("test_logging_tool", {})
            assert heard == []
            await client.call_tool("test_logging_tool", {}, meta={types.LOG_LEVEL_META_KEY: "info"})
        assert len(heard) == 3 and all(p.level == "info" for p in heard)

    async def test_a_handshake_only_server_still_answers(self, write_config: Any) -> None:
        config = write_config({"time": time_server()})
        async with Client(_proxy(config)) as client:
            assert client.protocol_version == MODERN
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
        assert result.is_error is False and '"timezone": "UTC"' in _text(result)


class TestHandshakeClients:
    async def test_elicitation_is_relayed_to_the_client(self, write_config: Any) -> None:
        config = write_config({"fixture": _fixture()})
        async with Client(_proxy(config), mode="legacy", elicitation_callback=_give_name) as client:
            assert client.protocol_version != MODERN
            result = await client.call_tool("test_input_required_result_elicitation", {})
        assert _text(result) == "Hello, Ada!"

    async def test_a_client_without_elicitation_is_never_asked(self, write_config: Any) -> None:
        config = write_config({"fixture": _fixture()})
        async with Client(_proxy(config), mode="legacy") as client:
            with pytest.raises(MCPError) as refused:
                await client.call_tool("test_input_required_result_elicitation", {})
        assert refused.value.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY
