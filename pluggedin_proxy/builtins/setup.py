"""`pluggedin_setup`: help on getting started, API keys, configuration and troubleshooting.

It needs nothing and calls nothing. The same texts tell a caller of an App-backed tool, without
an App, what is missing and how to add it.
"""

from __future__ import annotations

import mcp_types as types

from pluggedin_proxy.builtins.base import BuiltinTool, ToolCall, hand_schema, hints, text
from pluggedin_proxy.settings import Mode

__all__ = ["SETUP", "TOOLS", "guidance_for"]

TOPICS: dict[str, str] = {
    "getting_started": """# Getting started with pluggedin-mcp

pluggedin-mcp is one MCP server in front of many. Your client connects to it once and sees the
tools, prompts and resources of every server you configure, named `<server>__<name>`.

Two ways to tell it which servers exist:

1. **A local config file** (no account needed): list servers in `~/.config/pluggedin-mcp/config.json`
   in the `mcpServers` format that Claude Desktop, Cursor and VS Code use, then restart your client.
2. **The plugged.in App**: manage servers at https://plugged.in and start the proxy with your API key
   (`--pluggedin-api-key`, `PLUGGEDIN_API_KEY`, or `pluggedin-mcp login` once). The App mode also
   enables the knowledge base, documents, notifications, clipboard and memory tools.

Next: `pluggedin_setup` with topic `api_key`, `configuration` or `troubleshooting`.""",
    "api_key": """# API keys

An API key connects pluggedin-mcp to your plugged.in App: your servers, your knowledge base,
documents, notifications, clipboard and memory.

1. Sign in at https://plugged.in and open Settings, then API keys; create a key.
2. Give it to the proxy in one of these ways (the first found wins):
   - the `--pluggedin-api-key KEY` argument in your MCP client's config for this server;
   - the `PLUGGEDIN_API_KEY` environment variable;
   - `pluggedin-mcp login` in a terminal, which stores it in your OS keyring;
   - `~/.config/pluggedin/credentials.json` with `{"api_key": "…"}`.
3. Restart your MCP client. `pluggedin-mcp doctor` shows which key is used (never the key itself)
   and whether the App accepts it.

A self-hosted App (`pluggedin-mcp app`) works the same way with `--pluggedin-api-base-url`.""",
    "configuration": """# Configuration

Add the proxy to your MCP client like any stdio server:

```json
{"mcpServers": {"pluggedin": {"command": "pluggedin-mcp", "args": []}}}
```

Add `"--pluggedin-api-key", "KEY"` to `args` for the App mode. Without a key, the proxy reads its
servers from `~/.config/pluggedin-mcp/config.json` (or `--config FILE`), e.g.

```json
{"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}}}
```

Useful options: `--no-prefix` (one server, names unchanged), `--transport streamable-http --port N`
(serve over HTTP), `--log-level debug` (logs go to stderr). `pluggedin-mcp --help` lists them all.""",
    "troubleshooting": """# Troubleshooting

- Run `pluggedin-mcp doctor` in a terminal: it checks the config file, the API key, the App and
  every server, and says what is wrong.
- `pluggedin-mcp tools` lists what the proxy offers; `pluggedin-mcp call NAME key=value` tries one tool.
- A server that fails to start is reported with the last lines it wrote to stderr; the others keep working.
- Changed servers in the App? Call `pluggedin_discover_tools` with `force_refresh: true`.
- Logs go to stderr (your client's MCP log); add `--log-level debug` for more.""",
}

_DEFAULT_TOPIC = "getting_started"


async def _setup(call: ToolCall) -> types.CallToolResult:
    return text(TOPICS[call.arguments.get("topic", _DEFAULT_TOPIC)])


SETUP = BuiltinTool(
    name="pluggedin_setup",
    description=(
        "Get help setting up pluggedin-mcp: getting started, API keys, client configuration and "
        "troubleshooting. Works without an API key."
    ),
    input_schema=hand_schema(
        {
            "topic": {
                "type": "string",
                "enum": list(TOPICS),
                "default": _DEFAULT_TOPIC,
                "description": "What to explain.",
            }
        }
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_setup,
    needs_app=False,
)

TOOLS: tuple[BuiltinTool, ...] = (SETUP,)


def guidance_for(tool_name: str, mode: Mode) -> str:
    """Why `tool_name` cannot run without the plugged.in App, and how to connect one."""
    where = (
        "This proxy serves servers from a local config file, without the plugged.in App."
        if mode == "local"
        else "This proxy is not connected to the plugged.in App yet."
    )
    return (
        f"{tool_name} needs the plugged.in App. {where}\n\n"
        "To connect it, get an API key at https://plugged.in (Settings, API keys), then either add "
        "`--pluggedin-api-key YOUR_KEY` to this server's arguments in your MCP client's config, set "
        "PLUGGEDIN_API_KEY, or run `pluggedin-mcp login` in a terminal, and restart your client. "
        "Call pluggedin_setup with topic `api_key` for details."
    )
