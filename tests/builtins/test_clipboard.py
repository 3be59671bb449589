"""The six clipboard built-ins end to end: the proxy subprocess in App mode against the App double.

Each tool's test runs one proxy and checks the request the App got, what the client got (text or an
image), how each failing status is worded, and the activity log. One test checks the arguments the
proxy refuses without calling the App; the last runs the real self-hosted App instead of the double.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession

from tests.app_double import AppDouble, app_double, proxy_for
from tests.conftest import KEY, proxy_session, selfhosted_app

pytestmark = pytest.mark.anyio

AUTH_FAILED = "Authentication failed. Check your API key."
RATE_LIMITED = "Rate limit exceeded. Please try again later."
TOO_LARGE = "Clipboard entry too large. Maximum size is 2MB."
NOT_FOUND = "Clipboard entry not found"
CLIPBOARD = {"serverName": "Clipboard System", "serverUuid": "pluggedin_clipboard"}
ACTIVITY_PATH = "/api/notifications/mcp-activity"
TOOLS = [
    "pluggedin_clipboard_set",
    "pluggedin_clipboard_get",
    "pluggedin_clipboard_delete",
    "pluggedin_clipboard_list",
    "pluggedin_clipboard_push",
    "pluggedin_clipboard_pop",
]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg=="
WRITE_DEFAULTS = {"contentType": "text/plain", "encoding": "utf-8", "visibility": "private"}


def entry(**changes: Any) -> dict[str, Any]:
    """A clipboard entry as the App sends it."""
    base = {
        "uuid": "3f1c2b7a-9d84-4e61-a0b2-5c6d7e8f9a01",
        "name": "draft",
        "idx": None,
        "value": "Hello there",
        "contentType": "text/plain",
        "encoding": "utf-8",
        "sizeBytes": 11,
        "visibility": "private",
        "createdByTool": None,
        "createdByModel": None,
        "source": "mcp",
        "createdAt": "2026-08-14T09:30:00.000Z",
        "updatedAt": "2026-08-14T09:30:00.000Z",
        "expiresAt": "2026-08-15T09:30:00.000Z",
    }
    return base | changes


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _ok(session: ClientSession, tool: str, args: dict[str, Any] | None = None) -> types.CallToolResult:
    result = await session.call_tool(tool, args or {})
    assert result.is_error is False, _text(result)
    return result


async def _ok_text(session: ClientSession, tool: str, args: dict[str, Any] | None = None) -> str:
    result = await _ok(session, tool, args)
    assert [block.type for block in result.content] == ["text"]
    return _text(result)


async def _assert_failures(
    session: ClientSession,
    app: AppDouble,
    route: tuple[str, str],
    tool: str,
    args: dict[str, Any],
    cases: list[tuple[int, Any, str]],
) -> None:
    """Each `(status, body)` answer of `route`, served once, is reported as its message."""
    method, path = route
    for status, body, message in cases:
        app.reply(method, path, body, status, once=True)
        result = await session.call_tool(tool, args)
        assert (result.is_error, _text(result)) == (True, message), status


def _common_cases(failure: str) -> list[tuple[int, Any, str]]:
    return [
        (401, {"error": "Invalid API key"}, AUTH_FAILED),
        (429, {"error": "Too many requests", "retryAfter": 60}, RATE_LIMITED),
        (500, {"error": "Internal server error"}, f"{failure}: Internal server error"),
        (503, None, f"{failure}: HTTP 503"),
    ]


async def _logged(app: AppDouble, tool: str, count: int) -> list[dict[str, Any]]:
    """The activity entries for `tool`, once `count` have arrived (the proxy posts them in the background)."""
    with anyio.fail_after(5):
        while len(found := [a for a in app.activity() if a.get("itemName") == tool]) < count:  # noqa: ASYNC110
            await anyio.sleep(0.05)  # the proxy, another process, posts them
    return found


def _assert_logged(entries: list[dict[str, Any]], outcomes: list[str | None]) -> None:
    """The entries come from the Clipboard System; each outcome is `None` (success) or the error message."""
    assert len(entries) == len(outcomes)
    for logged, error in zip(entries, outcomes, strict=True):
        assert {key: logged[key] for key in ("action", "serverName", "serverUuid")} == {
            "action": "tool_call",
            **CLIPBOARD,
        }
        assert logged["success"] is (error is None)
        assert logged.get("errorMessage") == error
        assert isinstance(logged["executionTime"], int)


async def test_the_six_tools_are_listed_in_order_with_their_hints_and_schemas():
    """All six are listed after the notification tools, with the TypeScript proxy's hints and defaults."""
    async with app_double() as app, proxy_for(app) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert [name for name in tools if "clipboard" in name] == TOOLS
    hints = {
        name: (tool.annotations.read_only_hint, tool.annotations.destructive_hint, tool.annotations.idempotent_hint)
        for name, tool in tools.items()
        if name in TOOLS and tool.annotations is not None
    }
    assert hints == {
        "pluggedin_clipboard_set": (False, False, False),
        "pluggedin_clipboard_get": (True, False, True),
        "pluggedin_clipboard_delete": (False, True, True),
        "pluggedin_clipboard_list": (True, False, True),
        "pluggedin_clipboard_push": (False, False, False),
        "pluggedin_clipboard_pop": (False, True, False),
    }
    set_schema = tools["pluggedin_clipboard_set"].input_schema
    assert set_schema["required"] == ["value"]
    assert set_schema["additionalProperties"] is False
    assert set_schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert set_schema["properties"]["contentType"]["pattern"] == r"^[\w.-]+/[\w.+-]+$"
    assert set_schema["properties"]["ttlSeconds"]["maximum"] == 31_536_000
    assert "name" not in tools["pluggedin_clipboard_push"].input_schema["properties"]
    assert tools["pluggedin_clipboard_get"].input_schema["properties"]["limit"]["default"] == 50
    assert tools["pluggedin_clipboard_pop"].input_schema["properties"] == {}


async def test_set_posts_the_arguments_with_defaults_and_source_and_reports_the_entry():
    """`POST /api/clipboard` gets the arguments, the schema defaults and `source: "mcp"`."""
    tool = "pluggedin_clipboard_set"
    async with app_double() as app, proxy_for(app) as session:
        app.reply("POST", "/api/clipboard", {"success": True, "entry": entry()}, once=True)
        named = await _ok_text(session, tool, {"name": "draft", "value": "Hello there"})
        indexed_entry = entry(name=None, idx=2, sizeBytes=4, expiresAt="2026-08-14T10:30:00.000Z")
        app.reply("POST", "/api/clipboard", {"success": True, "entry": indexed_entry}, once=True)
        args = {"idx": 2, "value": "e30=", "contentType": "application/json", "encoding": "base64"}
        args |= {"visibility": "workspace", "createdByTool": "planner", "createdByModel": "m-1", "ttlSeconds": 3600}
        indexed = await _ok_text(session, tool, args)
        cases = [
            (400, {"error": "Invalid request body", "details": []}, "Invalid clipboard data: Invalid request body"),
            (409, {"error": "Index 2 already exists."}, "Index conflict: Index 2 already exists."),
            (413, {"error": "Value exceeds maximum size"}, TOO_LARGE),
            *_common_cases("Failed to set clipboard entry"),
        ]
        await _assert_failures(session, app, ("POST", "/api/clipboard"), tool, {"idx": 2, "value": "x"}, cases)
        logged = await _logged(app, tool, 2 + len(cases))
    first, second = (request.body for request in app.seen("POST", "/api/clipboard")[:2])
    assert first == {"name": "draft", "value": "Hello there", **WRITE_DEFAULTS, "source": "mcp"}
    assert second == args | {"source": "mcp"}
    assert named == 'Clipboard entry set successfully!\nname="draft"\nSize: 11 bytes\nExpires: 2026-08-15T09:30:00.000Z'
    assert indexed == "Clipboard entry set successfully!\nidx=2\nSize: 4 bytes\nExpires: 2026-08-14T10:30:00.000Z"
    _assert_logged(logged, [None, None, *(message for _, _, message in cases)])


async def test_get_reads_one_entry_as_json_or_as_an_image_and_summarises_a_list():
    """A single entry comes back as its JSON, a base64 image as image content, a list as a summary."""
    tool = "pluggedin_clipboard_get"
    route = ("GET", "/api/clipboard")
    text_entry = entry(value='{"plan": "ship", "note": "ça va"}', contentType="application/json")
    image_entry = entry(name="logo", value=PNG, contentType="image/png", encoding="base64", sizeBytes=len(PNG))
    hex_image = entry(name="raw", value="89504e47", contentType="image/png", encoding="hex")
    listing = {
        "entries": [
            entry(createdByTool="planner"),
            entry(name=None, idx=0, value="x" * 150, sizeBytes=150),
            entry(name="logo", value=PNG[:20], contentType="image/png", encoding="base64", sizeBytes=len(PNG)),
        ],
        "total": 7,
        "limit": 3,
        "offset": 0,
    }
    async with app_double() as app, proxy_for(app) as session:
        app.reply(*route, {"entry": text_entry}, once=True)
        as_json = await _ok_text(session, tool, {"name": "draft"})
        app.reply(*route, {"entry": image_entry}, once=True)
        as_image = await _ok(session, tool, {"idx": 1, "contentType": "image/png"})
        app.reply(*route, {"entry": hex_image}, once=True)
        hex_as_json = await _ok_text(session, tool, {"name": "raw"})
        app.reply(*route, listing, once=True)
        summary = await _ok_text(session, tool, {"limit": 3})
        cases = [
            (404, {"error": "Clipboard entry not found"}, NOT_FOUND),
            *_common_cases("Failed to get clipboard entries"),
        ]
        await _assert_failures(session, app, route, tool, {"name": "gone"}, cases)
        logged = await _logged(app, tool, 4 + len(cases))
    queries = [request.query for request in app.seen(*route)[:4]]
    assert queries == [
        {"name": ["draft"], "limit": ["50"], "offset": ["0"]},
        {"idx": ["1"], "contentType": ["image/png"], "limit": ["50"], "offset": ["0"]},
        {"name": ["raw"], "limit": ["50"], "offset": ["0"]},
        {"limit": ["3"], "offset": ["0"]},
    ]
    assert json.loads(as_json) == text_entry
    assert as_json == json.dumps(text_entry, indent=2, ensure_ascii=False)
    assert as_image.content == [types.ImageContent(data=PNG, mime_type="image/png")]
    assert json.loads(hex_as_json) == hex_image
    assert summary == (
        "Found 7 clipboard entries (showing 3):\n\n"
        '1. name="draft"\n   Type: text/plain\n   Size: 11 bytes\n   Created: 2026-08-14T09:30:00.000Z\n'
        "   Created by: planner\n   Preview: Hello there\n\n"
        "2. idx=0\n   Type: text/plain\n   Size: 150 bytes\n   Created: 2026-08-14T09:30:00.000Z\n"
        f"   Preview: {'x' * 100}...\n\n"
        f'3. name="logo"\n   Type: image/png\n   Size: {len(PNG)} bytes\n   Created: 2026-08-14T09:30:00.000Z\n'
    )
    _assert_logged(logged, [None] * 4 + [message for _, _, message in cases])


async def test_delete_sends_a_json_body_and_counts_what_went():
    """`DELETE /api/clipboard` carries `{name?, idx?, clearAll}` as its body."""
    tool = "pluggedin_clipboard_delete"
    route = ("DELETE", "/api/clipboard")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(*route, {"success": True, "deleted": 1}, once=True)
        one = await _ok_text(session, tool, {"name": "draft"})
        app.reply(*route, {"success": True, "deleted": 2}, once=True)
        two = await _ok_text(session, tool, {"idx": 0})
        app.reply(*route, {"success": True, "deleted": 5}, once=True)
        cleared = await _ok_text(session, tool, {"clearAll": True})
        cases = [
            (404, {"error": "Clipboard entry not found"}, NOT_FOUND),
            *_common_cases("Failed to delete clipboard entry"),
        ]
        await _assert_failures(session, app, route, tool, {"name": "gone"}, cases)
        logged = await _logged(app, tool, 3 + len(cases))
    bodies = [request.body for request in app.seen(*route)[:3]]
    assert bodies == [{"name": "draft", "clearAll": False}, {"idx": 0, "clearAll": False}, {"clearAll": True}]
    assert (one, two, cleared) == (
        "Deleted 1 clipboard entry",
        "Deleted 2 clipboard entries",
        "Cleared all clipboard entries (5 removed)",
    )
    _assert_logged(logged, [None] * 3 + [message for _, _, message in cases])


async def test_list_shows_the_apps_whole_answer():
    """`pluggedin_clipboard_list` pretty-prints the App's JSON as it came."""
    tool = "pluggedin_clipboard_list"
    route = ("GET", "/api/clipboard")
    page = {"entries": [entry(), entry(name=None, idx=3)], "total": 2, "limit": 10, "offset": 5}
    async with app_double() as app, proxy_for(app) as session:
        app.reply(*route, page, once=True)
        shown = await _ok_text(session, tool, {"contentType": "text/plain", "limit": 10, "offset": 5})
        app.reply(*route, {"entries": [], "total": 0, "limit": 50, "offset": 0}, once=True)
        await _ok_text(session, tool)
        cases = _common_cases("Failed to list clipboard entries")
        await _assert_failures(session, app, route, tool, {}, cases)
        logged = await _logged(app, tool, 2 + len(cases))
    queries = [request.query for request in app.seen(*route)[:2]]
    assert queries == [
        {"contentType": ["text/plain"], "limit": ["10"], "offset": ["5"]},
        {"limit": ["50"], "offset": ["0"]},
    ]
    assert shown == json.dumps(page, indent=2)
    _assert_logged(logged, [None] * 2 + [message for _, _, message in cases])


async def test_push_posts_the_value_with_defaults_and_source_and_reports_the_index():
    tool = "pluggedin_clipboard_push"
    route = ("POST", "/api/clipboard/push")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(*route, {"success": True, "entry": entry(name=None, idx=4, sizeBytes=6)}, once=True)
        pushed = await _ok_text(session, tool, {"value": "step 1", "createdByTool": "cleaner"})
        cases = [
            (400, {"error": "Invalid base64 encoding"}, "Invalid clipboard data: Invalid base64 encoding"),
            (413, {"error": "Value exceeds maximum size"}, TOO_LARGE),
            *_common_cases("Failed to push to clipboard"),
        ]
        await _assert_failures(session, app, route, tool, {"value": "x"}, cases)
        logged = await _logged(app, tool, 1 + len(cases))
    assert app.seen(*route)[0].body == {
        "value": "step 1",
        "createdByTool": "cleaner",
        **WRITE_DEFAULTS,
        "source": "mcp",
    }
    assert pushed == "Pushed to clipboard at index 4\nSize: 6 bytes\nExpires: 2026-08-15T09:30:00.000Z"
    _assert_logged(logged, [None, *(message for _, _, message in cases)])


async def test_pop_posts_an_empty_body_and_returns_the_entry_or_its_image():
    tool = "pluggedin_clipboard_pop"
    route = ("POST", "/api/clipboard/pop")
    popped_entry = entry(name=None, idx=3)
    async with app_double() as app, proxy_for(app) as session:
        app.reply(*route, {"success": True, "entry": popped_entry}, once=True)
        as_json = await _ok_text(session, tool)
        image_entry = entry(name=None, idx=2, value=PNG, contentType="image/png", encoding="base64")
        app.reply(*route, {"success": True, "entry": image_entry}, once=True)
        as_image = await _ok(session, tool)
        app.reply(*route, {"success": True}, once=True)
        malformed = await session.call_tool(tool, {})
        cases = [
            (404, {"error": "No indexed entries to pop"}, "No indexed entries to pop"),
            *_common_cases("Failed to pop from clipboard"),
        ]
        await _assert_failures(session, app, route, tool, {}, cases)
        logged = await _logged(app, tool, 3 + len(cases))
    assert [request.body for request in app.seen(*route)] == [{}] * (3 + len(cases))
    assert json.loads(as_json) == popped_entry
    assert as_image.content == [types.ImageContent(data=PNG, mime_type="image/png")]
    assert malformed.is_error is True
    assert "without a clipboard entry" in _text(malformed)
    _assert_logged(logged, [None, None, _text(malformed), *(message for _, _, message in cases)])


REFUSED = [
    ("pluggedin_clipboard_set", {"value": "x"}, "a name or an idx"),
    ("pluggedin_clipboard_set", {"name": "n", "value": "x", "contentType": "text plain"}, "does not match"),
    ("pluggedin_clipboard_set", {"name": "n", "value": "x", "contentType": "t/" + "x" * 255}, "too long"),
    ("pluggedin_clipboard_set", {"name": "n", "value": "x", "contentType": "image/png"}, "base64"),
    ("pluggedin_clipboard_set", {"idx": 1, "value": "x", "ttlSeconds": 0}, "ttlSeconds"),
    ("pluggedin_clipboard_set", {"idx": 1, "value": "x", "ttlSeconds": 31_536_001}, "ttlSeconds"),
    ("pluggedin_clipboard_set", {"idx": 1.5, "value": "x"}, "idx"),
    ("pluggedin_clipboard_set", {"name": "n", "value": "x", "colour": "red"}, "colour"),
    ("pluggedin_clipboard_push", {"value": "x", "contentType": "image/jpeg", "encoding": "hex"}, "base64"),
    ("pluggedin_clipboard_push", {"value": "x", "encoding": "utf8"}, "encoding"),
    ("pluggedin_clipboard_push", {"contentType": "text/plain"}, "value"),
    ("pluggedin_clipboard_delete", {}, "clearAll"),
    ("pluggedin_clipboard_delete", {"clearAll": False}, "clearAll"),
    ("pluggedin_clipboard_get", {"limit": 101}, "limit"),
    ("pluggedin_clipboard_list", {"offset": -1}, "offset"),
    ("pluggedin_clipboard_pop", {"idx": 1}, "idx"),
]


async def test_arguments_the_proxy_refuses_never_reach_the_app_nor_the_activity_log():
    """Schema violations and the rules JSON Schema cannot express fail as `isError` before anything runs."""
    async with app_double() as app, proxy_for(app) as session:
        for tool, args, complaint in REFUSED:
            result = await session.call_tool(tool, args)
            assert result.is_error is True, (tool, args)
            assert _text(result).startswith(f"Invalid arguments for {tool}: "), _text(result)
            assert complaint in _text(result), (tool, args, _text(result))
        app.reply("POST", "/api/clipboard/pop", {"error": "No indexed entries to pop"}, 404)
        await session.call_tool("pluggedin_clipboard_pop", {})
        await _logged(app, "pluggedin_clipboard_pop", 1)
        await anyio.sleep(0.2)  # anything logged for the refusals, posted earlier, would be here by now
    assert [request.path for request in app.requests if request.path.startswith("/api/clipboard")] == [
        "/api/clipboard/pop"
    ]
    assert [logged["itemName"] for logged in app.activity()] == ["pluggedin_clipboard_pop"]


# Against the real self-hosted App


async def test_a_round_trip_through_the_proxy_and_the_self_hosted_app(tmp_path: Path):
    """set, get, push, push, pop, list and delete, with the real App storing the entries."""
    args = ("--pluggedin-api-key", KEY, "--pluggedin-api-base-url")
    with selfhosted_app(tmp_path, {}) as url:
        async with proxy_session(None, *args, url) as session:
            stored = await _ok_text(session, "pluggedin_clipboard_set", {"name": "plan", "value": "ship it"})
            got = json.loads(await _ok_text(session, "pluggedin_clipboard_get", {"name": "plan"}))
            image_args = {"value": PNG, "contentType": "image/png", "encoding": "base64"}
            first = await _ok_text(session, "pluggedin_clipboard_push", image_args)
            second = await _ok_text(session, "pluggedin_clipboard_push", {"value": "step two"})
            popped = json.loads(await _ok_text(session, "pluggedin_clipboard_pop"))
            image = await _ok(session, "pluggedin_clipboard_get", {"idx": 0})
            listed = json.loads(await _ok_text(session, "pluggedin_clipboard_list"))
            deleted = await _ok_text(session, "pluggedin_clipboard_delete", {"name": "plan"})
            missing = await session.call_tool("pluggedin_clipboard_get", {"name": "plan"})
            cleared = await _ok_text(session, "pluggedin_clipboard_delete", {"clearAll": True})
            empty = await session.call_tool("pluggedin_clipboard_pop", {})
    assert re.fullmatch(r'Clipboard entry set successfully!\nname="plan"\nSize: 7 bytes\nExpires: \S+Z', stored)
    assert (got["name"], got["value"], got["source"], got["contentType"]) == ("plan", "ship it", "mcp", "text/plain")
    assert first.startswith("Pushed to clipboard at index 0\n")
    assert second.startswith("Pushed to clipboard at index 1\n")
    assert (popped["idx"], popped["value"], popped["source"]) == (1, "step two", "mcp")
    assert image.content == [types.ImageContent(data=PNG, mime_type="image/png")]
    assert listed["total"] == 2
    assert {(e["name"], e["idx"]) for e in listed["entries"]} == {("plan", None), (None, 0)}
    assert deleted == "Deleted 1 clipboard entry"
    assert (missing.is_error, _text(missing)) == (True, NOT_FOUND)
    assert cleared == "Cleared all clipboard entries (1 removed)"
    assert (empty.is_error, _text(empty)) == (True, "No indexed entries to pop")
