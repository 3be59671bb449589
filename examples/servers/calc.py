"""A tiny calculator and text MCP server built on `MCPServer`, for trying the proxy with a second upstream.

Its `echo` tool deliberately shares a name with the one in `tests/servers/echo_server.py`, so the two together
exercise the proxy's handling of tool-name collisions.

Run over stdio:

    python examples/servers/calc.py
"""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

PURE = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def build_server() -> MCPServer:
    """Build the calculator server."""
    server = MCPServer("calc", version="1.0.0")

    @server.tool(annotations=PURE)
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @server.tool(annotations=PURE)
    def multiply(a: float, b: float) -> float:
        """Multiply two numbers."""
        return a * b

    @server.tool(annotations=PURE)
    def word_count(text: str) -> int:
        """Count the whitespace-separated words in the text."""
        return len(text.split())

    @server.tool(annotations=PURE)
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.prompt()
    def explain_math(expression: str) -> str:
        """Ask the model to explain how to evaluate an expression."""
        return f"Explain, step by step, how to evaluate this expression: {expression}"

    return server


if __name__ == "__main__":
    server = build_server()
    server.run()
