"""The benchmark's upstream: a minimal MCP server that answers as fast as the SDK lets it.

It is built on the low-level `mcp.server.Server` with its tool list made once at start, so
the time a call takes is the SDK's and the transport's, and what the proxy adds shows
plainly. It imports nothing but the SDK, so it runs by file path from any directory.

Tools:

- `echo(text)`: the text back, as one text block.
- `blob(size)`: a text of `size` bytes.
- `dummy_0` … `dummy_<N-1>` with `--tools N`: extra tools that only make the listing longer.

Run over stdio (the default), or over Streamable HTTP on loopback:

    python benchmarks/echo_server.py [--tools N]
    python benchmarks/echo_server.py --http [--port 0]

In HTTP mode it writes `listening on http://127.0.0.1:PORT/mcp` to stderr once it accepts
connections, with the port the kernel gave it when `--port 0`.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

import anyio
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

# Ceiling on `blob(size)`, well past the 100 KB workload, against a typo that would fill memory.
MAX_BLOB = 16 * 1024 * 1024

Ctx = ServerRequestContext[Any]


def _tool(name: str, description: str, **props: str) -> types.Tool:
    schema = {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(props)}
    return types.Tool(name=name, description=description, input_schema=schema)


def build_server(extra_tools: int = 0) -> Server[Any]:
    """An echo server offering `echo`, `blob` and `extra_tools` dummy tools."""
    tools = [
        _tool("echo", "Return the text unchanged.", text="string"),
        _tool("blob", "Return a text of `size` bytes.", size="integer"),
    ]
    tools += [_tool(f"dummy_{i}", f"Dummy tool {i}; returns its text.", text="string") for i in range(extra_tools)]
    listing = types.ListToolsResult(tools=tools)

    async def list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return listing

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        if params.name == "blob":
            size = args.get("size")
            if not isinstance(size, int) or not 0 <= size <= MAX_BLOB:
                raise MCPError(types.INVALID_PARAMS, f"size must be an integer from 0 to {MAX_BLOB}")
            text = "x" * size
        elif params.name == "echo" or params.name.startswith("dummy_"):
            text = str(args.get("text", ""))
        else:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}")
        return types.CallToolResult(content=[types.TextContent(text=text)])

    return Server("bench-echo", version="1", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(server: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(server: Server[Any], port: int) -> None:
    import uvicorn

    # Binding first lets `--port 0` report the port the kernel chose.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            sys.stderr.write(f"listening on {url}\n")
            sys.stderr.flush()

    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    await AnnouncingServer(config).serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tools", type=int, default=0, metavar="N", help="register N extra dummy tools")
    parser.add_argument("--http", action="store_true", help="serve Streamable HTTP on loopback instead of stdio")
    parser.add_argument("--port", type=int, default=0, help="HTTP port (0: any free port)")
    args = parser.parse_args()
    server = build_server(args.tools)
    if args.http:
        anyio.run(serve_http, server, args.port)
    else:
        anyio.run(serve_stdio, server)


if __name__ == "__main__":
    main()
