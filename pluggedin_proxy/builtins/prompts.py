"""The proxy's own prompt, `pluggedin_proxy_capabilities`, and the instructions it sends on `initialize`."""

from __future__ import annotations

import mcp_types as types

from pluggedin_proxy.builtins.base import ActivitySource
from pluggedin_proxy.settings import Mode

__all__ = ["CAPABILITIES", "CAPABILITIES_ACTIVITY", "capabilities_result", "server_instructions"]

CAPABILITIES = types.Prompt(
    name="pluggedin_proxy_capabilities",
    title="What this proxy can do",
    description="An overview of pluggedin-mcp: the servers behind it, its own tools, and how to use them well.",
)
CAPABILITIES_ACTIVITY = ActivitySource("Proxy System", "pluggedin_proxy")

_OVERVIEW = """# pluggedin-mcp: what it can do for you

This MCP server is a proxy. Behind it are several MCP servers; you see all of their tools, prompts
and resources here, and every call is routed to the server that offers it.

## Names
- Tools and prompts of the servers behind the proxy are named `<server>__<name>`, so two servers
  may both offer `search` without a clash. Resources keep their own URIs.
- A server whose owner wrote instructions for it has a prompt `<server>__instructions`; its tools
  also carry those instructions in their `metadata`. Read them before using that server's tools.
- The proxy's own tools start with `pluggedin_`.

## The proxy's own tools
"""

_FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Setup", "help on configuring the proxy and connecting the plugged.in App.", ("pluggedin_setup",)),
    (
        "Discovery",
        "see which servers are connected and what they offer; `force_refresh` re-discovers them "
        "(the lists update and you are told they changed), `server_uuid` targets one server.",
        ("pluggedin_discover_tools",),
    ),
    (
        "Knowledge base",
        "ask questions answered from the documents in your plugged.in library, with sources.",
        ("pluggedin_ask_knowledge_base",),
    ),
    (
        "Documents",
        "save what you produce (reports, analyses, code) to the library, list, search, read and update it.",
        (
            "pluggedin_create_document",
            "pluggedin_list_documents",
            "pluggedin_search_documents",
            "pluggedin_get_document",
            "pluggedin_update_document",
        ),
    ),
    (
        "Notifications",
        "tell the user something (optionally by email), list notifications, mark them done or delete them.",
        (
            "pluggedin_send_notification",
            "pluggedin_list_notifications",
            "pluggedin_mark_notification_done",
            "pluggedin_delete_notification",
        ),
    ),
    (
        "Clipboard",
        "keep values between steps or between agents: named entries, or a stack with push and pop; "
        "text, JSON or images, with an expiry.",
        (
            "pluggedin_clipboard_set",
            "pluggedin_clipboard_get",
            "pluggedin_clipboard_delete",
            "pluggedin_clipboard_list",
            "pluggedin_clipboard_push",
            "pluggedin_clipboard_pop",
        ),
    ),
    (
        "Memory",
        "remember across sessions: start a session, record observations, search what was learnt, end the "
        "session to consolidate it; look up patterns other agents found useful and rate them.",
        (
            "pluggedin_memory_session_start",
            "pluggedin_memory_session_end",
            "pluggedin_memory_observe",
            "pluggedin_memory_search",
            "pluggedin_memory_details",
            "pluggedin_cbp_query",
            "pluggedin_cbp_feedback",
            "pluggedin_memory_search_with_context",
            "pluggedin_memory_individuation",
        ),
    ),
)

_TIPS = """
## Good habits
- Call `pluggedin_discover_tools` when a tool you expect is missing.
- Tool results are passed through unchanged from the server that produced them.
- If a server is down, its calls fail with a message naming it; the other servers keep working.
"""


def capabilities_result(listed: set[str], mode: Mode) -> types.GetPromptResult:
    """The capabilities guide, naming only the built-in tools this proxy lists."""
    parts = [_OVERVIEW]
    for family, what, names in _FAMILIES:
        present = [n for n in names if n in listed]
        if present:
            parts.append(f"- **{family}**: {what} ({', '.join(f'`{n}`' for n in present)})\n")
    missing = [family for family, _, names in _FAMILIES if not any(n in listed for n in names)]
    if missing and mode != "app":
        parts.append(
            "\nNot available here, because this proxy is not connected to the plugged.in App: "
            + ", ".join(missing).lower()
            + ". Call `pluggedin_setup` with topic `api_key` to connect it.\n"
        )
    parts.append(_TIPS)
    message = types.PromptMessage(role="user", content=types.TextContent(text="".join(parts)))
    return types.GetPromptResult(description=CAPABILITIES.description, messages=[message])


def server_instructions(mode: Mode) -> str:
    """What the proxy tells a client on `initialize`."""
    base = (
        "pluggedin-mcp aggregates several MCP servers behind one endpoint. Tool and prompt names are "
        "'<server>__<name>'; resources keep their servers' URIs. The prompt pluggedin_proxy_capabilities "
        "explains everything the proxy offers; call pluggedin_discover_tools when something seems missing."
    )
    if mode != "app":
        return base
    return base + (
        " Connected to the plugged.in App: use pluggedin_ask_knowledge_base for questions about the user's "
        "documents, pluggedin_create_document to save substantial work, the clipboard tools to pass values "
        "between steps, pluggedin_send_notification for things the user must see, and the memory tools "
        "(start a session, observe, search, end it) to learn across conversations; pluggedin_cbp_query "
        "returns patterns that helped others, and pluggedin_cbp_feedback rates them."
    )
