"""A low-level MCP server that reports how it was started: its arguments and its environment.

It takes any arguments at all (nothing parses them), so a test can pass shell metacharacters, quotes and
newlines and check that they arrive byte for byte. Run from the repository root, over stdio:

    python -m tests.servers.argv_server [ANY ARGUMENTS...]

Tools:

- `argv`: the arguments after the module name, as a JSON list of the hex of their bytes (`os.fsencode`).
- `environ`: the environment, as a JSON object.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

Ctx = ServerRequestContext[Any]

TOOLS = [
    types.Tool(name="argv", description="This server's arguments, hex-encoded bytes.", input_schema={"type": "object"}),
    types.Tool(name="environ", description="This server's environment.", input_schema={"type": "object"}),
]


def build_server() -> Server[Any]:
    """The server; each call answers with one text block of JSON."""

    async def list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name == "argv":
            text = json.dumps([os.fsencode(arg).hex() for arg in sys.argv[1:]])
        elif params.name == "environ":
            text = json.dumps(dict(os.environ))
        else:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        return types.CallToolResult(content=[types.TextContent(text=text)])

    return Server("argv", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve() -> None:
    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(serve)
