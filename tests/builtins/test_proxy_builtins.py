"""The built-ins as a whole, end to end: which are listed where, the App being down, the rate limit,
custom instructions, the capabilities prompt, discovery and notifications.

The proxy runs as a subprocess; the App is the contract-faithful double on loopback, or the real
self-hosted App where it serves the route.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from pydantic import TypeAdapter

from pluggedin_proxy.builtins import ALL_TOOLS
from tests.app_double import AppDouble, app_double, proxy_for
from tests.conftest import KEY, echo_server, proxy_session, selfhosted_app

pytestmark = pytest.mark.anyio

SERVER = str(uuid.UUID(int=1))
RAW: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
ALL_NAMES = [t.name for t in ALL_TOOLS]


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _names(session: ClientSession) -> list[str]:
    return [t.name for t in (await session.list_tools()).tools]


async def _raw_tools(session: ClientSession) -> list[dict[str, Any]]:
    """`tools/list` as sent, with fields the SDK's types would drop."""
    result = await session.send_request(types.ListToolsRequest(), RAW)
    return list(result["tools"])


async def _eventually(check: Any, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not check():  # noqa: ASYNC110  # the state lives in another process
            await anyio.sleep(0.05)


def _app_server(**extra: Any) -> dict[str, Any]:
    """One stdio server row of `GET /api/mcp-servers`, running the echo fixture."""
    entry = echo_server()
    return {"uuid": SERVER, "name": "Echo", "slug": "echo", "type": "STDIO", **entry, **extra}


def _app_tool(name: str = "echo") -> dict[str, Any]:
    return {
        "name": f"echo__{name}",
        "description": "Echo text back",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        "_serverUuid": SERVER,
        "_serverSlug": "echo",
    }


def _with_server(app: AppDouble, **extra: Any) -> None:
    app.reply("GET", "/api/mcp-servers", [_app_server(**extra)])
    app.reply("GET", "/api/tools", {"tools": [_app_tool()]})


class TestListing:
    async def test_app_mode_lists_every_builtin_but_setup_then_the_servers_tools(self) -> None:
        async with app_double() as app:
            _with_server(app)
            async with proxy_for(app) as session:
                names = await _names(session)
        assert names == [n for n in ALL_NAMES if n != "pluggedin_setup"] + ["echo__echo"]

    async def test_local_mode_lists_only_the_builtins_that_work_without_the_app(self, write_config: Any) -> None:
        async with proxy_session(write_config({"echo": echo_server()})) as session:
            names = await _names(session)
            guidance = await session.call_tool("pluggedin_send_notification", {"message": "x"})
        assert names[:2] == ["pluggedin_setup", "pluggedin_discover_tools"]
        assert not [n for n in names[2:] if n.startswith("pluggedin_")]
        assert guidance.is_error and "needs the plugged.in App" in _text(guidance)
        assert "local config file" in _text(guidance)

    async def test_with_nothing_configured_every_builtin_is_listed_and_app_ones_explain_setup(self) -> None:
        async with proxy_session(None) as session:
            names = await _names(session)
            for name in ("pluggedin_ask_knowledge_base", "pluggedin_send_notification", "pluggedin_memory_search"):
                result = await session.call_tool(name, {})
                assert result.is_error, name
                assert "--pluggedin-api-key" in _text(result) and "pluggedin-mcp login" in _text(result)
            setup = await session.call_tool("pluggedin_setup", {"topic": "troubleshooting"})
        assert names == ALL_NAMES
        assert not setup.is_error and "pluggedin-mcp doctor" in _text(setup)

    async def test_an_app_that_is_down_from_the_start_still_leaves_the_builtins(self) -> None:
        async with app_double() as app:
            for path in ("/api/mcp-servers", "/api/tools"):
                app.reply("GET", path, {"error": "down"}, 503)
            async with proxy_for(app) as session:
                names = await _names(session)
                prompts = [p.name for p in (await session.list_prompts()).prompts]
        assert names == [n for n in ALL_NAMES if n != "pluggedin_setup"]
        assert prompts == ["pluggedin_proxy_capabilities"]

    async def test_an_app_going_down_keeps_the_builtins_and_serves_the_rest_from_cache(self) -> None:
        async with app_double() as app:
            _with_server(app)
            async with proxy_for(app, "--cache-ttl", "0.3") as session:
                assert "echo__echo" in await _names(session)
                for path in ("/api/mcp-servers", "/api/tools"):
                    app.reply("GET", path, {"error": "down"}, 500)
                await anyio.sleep(0.8)
                names = await _names(session)
                result = await session.call_tool("echo__echo", {"text": "still here"})
        assert names == [n for n in ALL_NAMES if n != "pluggedin_setup"] + ["echo__echo"]
        assert _text(result) == "still here"

    async def test_builtin_results_and_schemas_pass_client_validation(self) -> None:
        """Every listed schema is valid JSON Schema, and the SDK client accepts the listing."""
        from jsonschema import Draft7Validator

        async with proxy_session(None) as session:
            tools = (await session.list_tools()).tools
        for tool in tools:
            Draft7Validator.check_schema(tool.input_schema)
            assert tool.annotations is not None and tool.annotations.read_only_hint is not None


class TestRateLimit:
    async def test_calls_beyond_the_limit_get_a_clear_error_and_other_requests_still_work(
        self, write_config: Any
    ) -> None:
        async with proxy_session(write_config({"echo": echo_server()}), "--rate-limit", "3") as session:
            for i in range(3):
                await session.call_tool("echo__echo", {"text": str(i)})
            with pytest.raises(MCPError) as caught:
                await session.call_tool("pluggedin_setup", {})
            assert "Rate limit exceeded" in caught.value.error.message
            assert "3 tool calls per minute per session" in caught.value.error.message
            assert isinstance(caught.value.error.data, dict) and caught.value.error.data["retryAfter"] >= 1
            assert "echo__echo" in await _names(session)

    async def test_zero_disables_the_limit(self, write_config: Any) -> None:
        async with proxy_session(write_config({"echo": echo_server()}), "--rate-limit", "0") as session:
            for i in range(70):
                assert not (await session.call_tool("pluggedin_setup", {"topic": "api_key"})).is_error, i


class TestInstructions:
    async def test_local_instructions_become_tool_metadata_and_a_prompt(self, write_config: Any) -> None:
        entry = {**echo_server(), "instructions": "Read-only access.\nAllowed operations: echo, pid"}
        async with proxy_session(write_config({"echo": entry})) as session:
            tools = {t["name"]: t for t in await _raw_tools(session)}
            prompts = [p.name for p in (await session.list_prompts()).prompts]
            prompt = await session.get_prompt("echo__instructions")
        metadata = tools["echo__echo"]["_meta"]["plugged.in/metadata"]
        assert tools["echo__echo"]["description"].endswith(metadata["formattedContext"])
        assert metadata["server"] == "echo"
        assert metadata["instructions"] == "Read-only access.\nAllowed operations: echo, pid"
        assert metadata["constraints"] == {"readonly": True, "allowedOperations": ["echo", "pid"]}
        assert metadata["formattedContext"].startswith("### Server Context: echo\n\n- Read-only access.")
        assert "**Constraints:**" in metadata["formattedContext"]
        assert "_meta" not in tools["pluggedin_setup"]
        assert prompts[:2] == ["pluggedin_proxy_capabilities", "echo__instructions"]
        assert [(m.role, m.content.text) for m in prompt.messages if isinstance(m.content, types.TextContent)] == [
            ("user", "Read-only access.\nAllowed operations: echo, pid")
        ]

    async def test_app_instructions_are_converted_to_prompt_messages(self) -> None:
        instructions = [
            {"role": "system", "content": "No deletes, ever."},
            {"role": "user", "content": {"type": "text", "text": "Prefer summaries."}},
            {"role": "assistant", "content": "Understood."},
            "Plain string.",
        ]
        async with app_double() as app:
            _with_server(app, customInstructions=instructions, customInstructionsDescription="Echo rules")
            async with proxy_for(app) as session:
                listed = {p.name: p for p in (await session.list_prompts()).prompts}
                prompt = await session.get_prompt("echo__instructions")
                tools = {t["name"]: t for t in await _raw_tools(session)}
        assert listed["echo__instructions"].description == "Echo rules"
        assert [(m.role, m.content.text) for m in prompt.messages if isinstance(m.content, types.TextContent)] == [
            ("user", "System: No deletes, ever."),
            ("user", "Prefer summaries."),
            ("assistant", "Understood."),
            ("user", "Plain string."),
        ]
        assert tools["echo__echo"]["_meta"]["plugged.in/metadata"]["constraints"] == {"noDeletes": True}
        assert "_serverSlug" not in tools["echo__echo"] and "_serverUuid" not in tools["echo__echo"]


class TestCapabilitiesPrompt:
    async def test_it_is_listed_first_and_logged_as_the_proxy(self) -> None:
        async with app_double() as app:
            async with proxy_for(app) as session:
                init_prompts = [p.name for p in (await session.list_prompts()).prompts]
                result = await session.get_prompt("pluggedin_proxy_capabilities")
                await _eventually(lambda: app.activity())
        text = result.messages[0].content
        assert init_prompts[0] == "pluggedin_proxy_capabilities"
        assert result.messages[0].role == "user" and isinstance(text, types.TextContent)
        assert "pluggedin_clipboard_push" in text.text and "Not available here" not in text.text
        assert app.activity()[0] | {"executionTime": 0} == {
            "action": "prompt_get",
            "serverName": "Proxy System",
            "serverUuid": "pluggedin_proxy",
            "itemName": "pluggedin_proxy_capabilities",
            "success": True,
            "executionTime": 0,
        }

    async def test_in_local_mode_it_says_what_needs_the_app(self, write_config: Any) -> None:
        async with proxy_session(write_config({"echo": echo_server()})) as session:
            result = await session.get_prompt("pluggedin_proxy_capabilities")
            instructions = session.initialize_result
        text = result.messages[0].content
        assert isinstance(text, types.TextContent)
        assert "pluggedin_discover_tools" in text.text and "pluggedin_clipboard_push" not in text.text
        assert "Not available here" in text.text
        assert instructions is not None and "pluggedin_proxy_capabilities" in (instructions.instructions or "")


class TestLocalDiscovery:
    async def test_force_refresh_reports_each_server_and_announces_the_change(
        self, write_config: Any, tmp_path: Path
    ) -> None:
        changed = anyio.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                changed.set()

        servers = {"echo": echo_server(), "broken": echo_server("broken", env={"ECHO_EXIT_AT_START": "1"})}
        async with proxy_session(write_config(servers), message_handler=on_message) as session:
            summary = await session.call_tool("pluggedin_discover_tools", {})
            forced = await session.call_tool("pluggedin_discover_tools", {"force_refresh": True})
            with anyio.fail_after(10):
                await changed.wait()
            one = await session.call_tool("pluggedin_discover_tools", {"server_uuid": "echo", "force_refresh": True})
            unknown = await session.call_tool("pluggedin_discover_tools", {"server_uuid": "nope"})
        assert "`echo__echo`" in _text(summary) and "Servers that could not be listed" in _text(summary)
        assert "- echo: ok —" in _text(forced)
        assert "- broken: failed —" in _text(forced) and "ECHO_EXIT_AT_START" in _text(forced)
        assert "- echo: ok —" in _text(one) and "broken" not in _text(one).split("\n\n")[0]
        assert unknown.is_error and "No server 'nope'" in _text(unknown)


class TestAppDiscovery:
    async def test_cached_data_is_summarised_without_asking_the_app_to_discover(self) -> None:
        async with app_double() as app:
            _with_server(app, customInstructions="Be brief.")
            app.reply("GET", "/api/prompts", [{"name": "greet", "description": "Say hello", "arguments": []}])
            async with proxy_for(app) as session:
                result = await session.call_tool("pluggedin_discover_tools", {})
                await _eventually(lambda: app.activity())
        text = _text(result)
        assert not result.is_error and text.startswith("Returning cached discovery data for all servers.")
        assert "`echo__echo`: Echo text back" in text and "`greet`: Say hello" in text
        assert "Server instructions" in text and "Be brief." in text
        assert app.seen("POST", "/api/discover/all") == []
        assert app.activity()[-1]["serverUuid"] == "pluggedin_discovery_cache"
        assert app.activity()[-1]["serverName"] == "Discovery System"

    async def test_with_nothing_cached_the_app_discovers_and_its_message_is_shown(self) -> None:
        async with app_double() as app:
            app.reply("POST", "/api/discover/all", {"message": "Discovery initiated for 1 server."})
            async with proxy_for(app) as session:
                result = await session.call_tool("pluggedin_discover_tools", {})
                app.reply("POST", f"/api/discover/{SERVER}", {"error": "boom"}, 500)
                failed = await session.call_tool("pluggedin_discover_tools", {"server_uuid": SERVER})
                await _eventually(lambda: len(app.activity()) >= 2)
        assert _text(result).startswith("No cached dynamic data found. Discovery initiated for 1 server.")
        assert [r.body for r in app.seen("POST", "/api/discover/all")] == [{"force_refresh": False}]
        assert failed.is_error
        assert _text(failed) == "Failed to trigger discovery via API: API Error (500): boom"
        assert [(a["serverUuid"], a["success"]) for a in app.activity()] == [
            ("pluggedin_discovery", True),
            ("pluggedin_discovery", False),
        ]

    async def test_force_refresh_runs_in_the_background_then_refreshes_and_announces(self) -> None:
        changed = anyio.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                changed.set()

        async with app_double() as app:
            _with_server(app)
            app.reply("POST", f"/api/discover/{SERVER}", {"message": "Discovery force-initiated."})
            async with proxy_for(app, message_handler=on_message) as session:
                assert "echo__echo" in await _names(session)
                app.reply("GET", "/api/tools", {"tools": [_app_tool(), _app_tool("pid")]})
                result = await session.call_tool(
                    "pluggedin_discover_tools", {"server_uuid": SERVER, "force_refresh": True}
                )
                with anyio.fail_after(10):
                    await changed.wait()
                names = await _names(session)
        assert _text(result).startswith(f"🔄 Force refresh initiated for server {SERVER}")
        assert [r.body for r in app.seen("POST", f"/api/discover/{SERVER}")] == [{"force_refresh": True}]
        assert names[-2:] == ["echo__echo", "echo__pid"]


NOTIFICATION = {
    "id": "6f1c1a52-3c1e-4bfb-9d7c-3a5f2b8d9e01",
    "profile_uuid": "p",
    "type": "CUSTOM",
    "title": "Build finished",
    "message": "All green",
    "read": False,
    "completed": True,
    "link": "https://example.test/run/1",
    "severity": "SUCCESS",
    "metadata": {},
    "created_at": "2026-11-21T10:00:00.000Z",
    "expires_at": "2026-12-21T10:00:00.000Z",
}


class TestNotifications:
    async def test_send_list_mark_and_delete_call_the_app_and_report_back(self) -> None:
        nid = NOTIFICATION["id"]
        async with app_double() as app:
            app.reply("POST", "/api/notifications/custom", {"success": True, "message": "Notification sent"})
            app.reply("GET", "/api/notifications", {"success": True, "notifications": [NOTIFICATION]})
            app.reply("PATCH", f"/api/notifications/{nid}/completed", {"success": True, "message": "Marked"})
            app.reply("DELETE", f"/api/notifications/{nid}", {"success": True, "message": "Deleted it"})
            async with proxy_for(app) as session:
                sent = await session.call_tool("pluggedin_send_notification", {"message": "Hi"})
                listed = await session.call_tool("pluggedin_list_notifications", {"onlyUnread": True, "limit": 5})
                marked = await session.call_tool("pluggedin_mark_notification_done", {"notificationId": nid})
                deleted = await session.call_tool("pluggedin_delete_notification", {"notificationId": nid})
                await _eventually(lambda: len(app.activity()) >= 4)
        assert _text(sent) == "Notification sent"
        assert app.seen("POST", "/api/notifications/custom")[0].body == {
            "message": "Hi",
            "severity": "INFO",
            "sendEmail": False,
        }
        assert app.seen("GET", "/api/notifications")[0].query == {"onlyUnread": ["true"], "limit": ["5"]}
        text = _text(listed)
        assert text.startswith("Found 1 notification(s) (unread only):")
        for line in (
            "**Build finished**",
            f"ID: {nid}",
            "Type: CUSTOM | Severity: SUCCESS",
            "Status: Unread | Completed",
            "Created: 2026-11-21T10:00:00.000Z",
            "Message: All green",
            "Link: https://example.test/run/1",
        ):
            assert line in text
        assert app.seen("PATCH", f"/api/notifications/{nid}/completed")[0].body == {}
        assert _text(marked) == "Marked" and _text(deleted) == "Deleted it"
        assert {(a["serverName"], a["serverUuid"]) for a in app.activity()} == {
            ("Notification System", "pluggedin_notifications")
        }
        assert [a["itemName"] for a in app.activity()] == [
            "pluggedin_send_notification",
            "pluggedin_list_notifications",
            "pluggedin_mark_notification_done",
            "pluggedin_delete_notification",
        ]

    async def test_app_statuses_get_their_documented_messages(self) -> None:
        nid = NOTIFICATION["id"]
        async with app_double() as app, proxy_for(app) as session:
            app.reply("PATCH", f"/api/notifications/{nid}/completed", {"error": "Not found"}, 404)
            app.reply("DELETE", f"/api/notifications/{nid}", {"error": "x"}, 502)
            app.reply("POST", "/api/notifications/custom", {"error": "Too many requests"}, 429)
            marked = await session.call_tool("pluggedin_mark_notification_done", {"notificationId": nid})
            deleted = await session.call_tool("pluggedin_delete_notification", {"notificationId": nid})
            sent = await session.call_tool("pluggedin_send_notification", {"message": "x"})
            empty = await session.call_tool("pluggedin_send_notification", {"message": ""})
            await _eventually(lambda: len(app.activity()) >= 3)
        assert marked.is_error and _text(marked) == "Notification not found or not accessible"
        assert deleted.is_error and _text(deleted) == "Notification service error (502)"
        assert sent.is_error and _text(sent) == "Notification service error (429)"
        assert empty.is_error and "message" in _text(empty)
        assert len(app.seen("POST", "/api/notifications/custom")) == 1
        # Arguments refused before anything ran are not activities: the App would raise an alert for each.
        assert [a["success"] for a in app.activity()] == [False, False, False]


async def test_notifications_round_trip_through_the_self_hosted_app(tmp_path: Path) -> None:
    with selfhosted_app(tmp_path, {"echo": echo_server()}) as url:
        async with proxy_session(None, "--pluggedin-api-key", KEY, "--pluggedin-api-base-url", url) as session:
            sent = await session.call_tool(
                "pluggedin_send_notification", {"title": "Deploy", "message": "v2 is live", "severity": "SUCCESS"}
            )
            listed = _text(await session.call_tool("pluggedin_list_notifications", {}))
            nid = next(line.split()[1] for line in listed.splitlines() if line.startswith("ID: "))
            marked = await session.call_tool("pluggedin_mark_notification_done", {"notificationId": nid})
            after = _text(await session.call_tool("pluggedin_list_notifications", {}))
            deleted = await session.call_tool("pluggedin_delete_notification", {"notificationId": nid})
            missing = await session.call_tool("pluggedin_delete_notification", {"notificationId": nid})
    assert not sent.is_error
    assert "**Deploy**" in listed and "Message: v2 is live" in listed and "Severity: SUCCESS" in listed
    assert not marked.is_error and "| Completed" in after
    assert not deleted.is_error
    assert missing.is_error and _text(missing) == "Notification not found or not accessible"
