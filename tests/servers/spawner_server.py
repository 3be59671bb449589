"""A low-level MCP server that starts a long-lived grandchild, as `npx` or a language server wrapper would.

Its one tool, `spawn`, starts a Python process in this server's process group that ignores SIGTERM and
sleeps, waits until that process says it is ready, and answers `{"server": PID, "grandchild": PID}`. The
grandchild stays when this server exits (it exits when its stdin closes), so only a kill of the whole process
group, escalated to SIGKILL, removes it: what the proxy's lifecycle tests need.

Run from the repository root, over stdio:

    python -m tests.servers.spawner_server
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import anyio
import anyio.to_thread
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

# Ignores SIGTERM, says so, then outlives any test; a test that fails still kills it with its group.
GRANDCHILD = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)

SPAWN = types.Tool(
    name="spawn",
    description="Start a grandchild in this server's process group; return both process ids.",
    input_schema={"type": "object", "properties": {}},
)


def start_grandchild(children: list[subprocess.Popen[bytes]]) -> int:
    """Start the grandchild (same process group, no shell) and return its pid once it ignores SIGTERM."""
    child = subprocess.Popen(
        [sys.executable, "-c", GRANDCHILD], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    children.append(child)  # kept, so no `Popen` is collected while its process runs
    assert child.stdout is not None
    if child.stdout.readline() != b"ready\n":
        raise RuntimeError("the grandchild did not start")
    # Its stdout stays open and unread: it writes nothing more.
    return child.pid


def build_server() -> Server[Any]:
    children: list[subprocess.Popen[bytes]] = []

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[SPAWN])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name != "spawn":
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        grandchild = await anyio.to_thread.run_sync(start_grandchild, children)
        answer = json.dumps({"server": os.getpid(), "grandchild": grandchild})
        return types.CallToolResult(content=[types.TextContent(text=answer)])

    return Server("spawner", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve() -> None:
    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(serve)
