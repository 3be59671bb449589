"""The self-hosted App served by real uvicorn on a loopback socket, with the echo fixture as its server."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.streams.text import TextReceiveStream

from pluggedin_proxy import selfhost
from pluggedin_proxy.selfhost import create_app, serve_app
from pluggedin_proxy.selfhost.cli import main
from pluggedin_proxy.selfhost.identity import NAMESPACE
from tests.conftest import REPO, echo_server

pytestmark = pytest.mark.anyio

KEY = "selfhost-test-key-0123456789abcdefghij"
OTHER_KEY = "another-valid-key-0123456789abcdefghij"
# Starting the App includes spawning and listing the echo server.
TIMEOUT = 30


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config with the echo fixture as its only server, with instructions and a description."""
    entry = echo_server("echo") | {"instructions": "Echo carefully.", "description": "The echo fixture"}
    path = tmp_path_factory.mktemp("config") / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"echo": entry}}))
    return path


@pytest.fixture(scope="module")
def discovered(config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory in which the App has already discovered the echo server."""
    data = tmp_path_factory.mktemp("discovered")

    async def discover() -> None:
        with anyio.fail_after(TIMEOUT):
            async with running_app(config, data) as client:
                await get_json(client, "/api/tools")

    anyio.run(discover)
    return data


@pytest.fixture
def data_dir(discovered: Path, tmp_path: Path) -> Path:
    """A fresh copy of `discovered`: the App starts from the persisted listings without spawning anything."""
    path = tmp_path / "data"
    shutil.copytree(discovered, path)
    return path


@asynccontextmanager
async def running_app(config: Path, data_dir: Path, *, key: str | None = KEY) -> AsyncIterator[httpx2.AsyncClient]:
    """The App served on a kernel-picked loopback port, and a client for it (sending `key` when given)."""
    app = create_app(config, api_keys=[KEY], data_dir=data_dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_app, app, sock=sock))
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            yield client
        tg.cancel_scope.cancel()


async def get_json(client: httpx2.AsyncClient, path: str, **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_package_exports_exactly_its_public_api():
    """`pluggedin_proxy.selfhost` exposes the App, its factory and the server runner, nothing else."""
    assert selfhost.__all__ == ["SelfHostedApp", "create_app", "serve_app"]
    assert all(hasattr(selfhost, name) for name in selfhost.__all__)


async def test_a_request_without_an_authorization_header_is_rejected(config: Path, data_dir: Path):
    """Without `Authorization`, every API route answers 401 with an `error` string."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir, key=None) as client:
            response = await client.get("/api/mcp-servers")
    assert response.status_code == 401
    assert isinstance(response.json()["error"], str)


async def test_a_request_with_an_unknown_key_is_rejected(config: Path, data_dir: Path):
    """A well-formed Bearer header with a key the App does not know gets 401."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir, key=OTHER_KEY) as client:
            response = await client.get("/api/tools")
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid API key"}


async def test_a_lower_case_bearer_scheme_is_rejected(config: Path, data_dir: Path):
    """As in the App, the header must start with exactly `Bearer `; `bearer KEY` gets 401."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.get("/api/mcp-servers", headers={"Authorization": f"bearer {KEY}"})
    assert response.status_code == 401


async def test_health_needs_no_key_and_counts_the_servers(config: Path, data_dir: Path):
    """`/health` answers without authentication."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir, key=None) as client:
            response = await client.get("/health")
    assert response.json() == {"status": "ok", "servers": 1}


async def test_an_unknown_route_is_a_json_404(config: Path, data_dir: Path):
    """Routes the App does not have answer 404 with an `error` string."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.get("/api/no-such-route")
    assert response.status_code == 404
    assert "error" in response.json()


async def test_mcp_servers_is_a_byte_identical_array_across_calls(config: Path, data_dir: Path):
    """Two calls return the very same bytes, so the proxy never respawns a server for nothing."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            first = await client.get("/api/mcp-servers")
            await client.post("/api/discover/all")
            second = await client.get("/api/mcp-servers")
    assert isinstance(first.json(), list)
    assert first.content == second.content


async def test_mcp_servers_is_byte_identical_across_an_app_restart(config: Path, data_dir: Path):
    """A restarted App gives the same UUIDs and the same bytes (`created_at` is persisted on first sight)."""
    (data_dir / "app.db").unlink()
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            before = await client.get("/api/mcp-servers")
        async with running_app(config, data_dir) as client:
            after = await client.get("/api/mcp-servers")
    assert before.content == after.content


async def test_a_stdio_server_entry_carries_its_connection_and_instructions(config: Path, data_dir: Path):
    """The entry has the App's keys in the App's order, a stable UUID, and the config's instructions."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            [entry] = await get_json(client, "/api/mcp-servers")
    assert list(entry)[:13] == [
        "uuid",
        "name",
        "description",
        "type",
        "command",
        "args",
        "env",
        "url",
        "status",
        "slug",
        "created_at",
        "profile_uuid",
        "source",
    ]
    assert uuid.UUID(entry["uuid"]).version == 5
    assert entry | {"uuid": None, "created_at": None, "profile_uuid": None} == {
        "uuid": None,
        "name": "echo",
        "description": "The echo fixture",
        "type": "STDIO",
        "command": sys.executable,
        "args": ["-m", "tests.servers.echo_server", "--name", "echo"],
        "env": {},
        "url": None,
        "status": "ACTIVE",
        "slug": "echo",
        "created_at": None,
        "profile_uuid": None,
        "source": "PLUGGEDIN",
        "cwd": str(REPO),
        "customInstructions": [{"role": "user", "content": "Echo carefully."}],
        "customInstructionsDescription": "Instructions for using echo",
    }


async def test_an_http_server_entry_carries_its_headers(write_config: Callable[..., Path], data_dir: Path):
    """An HTTP server is STREAMABLE_HTTP with its headers under `streamableHTTPOptions` and `headers`."""
    # Port 9 (discard) refuses connections, so the background discovery fails fast; the entry does not need it.
    remote = {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Team": "blue"}}
    config = write_config({"My Remote": remote})
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            [entry] = await get_json(client, "/api/mcp-servers")
    assert entry["type"] == "STREAMABLE_HTTP"
    assert (entry["url"], entry["command"], entry["slug"]) == ("http://127.0.0.1:9/mcp", None, "my-remote")
    assert entry["streamableHTTPOptions"] == {"headers": {"X-Team": "blue"}}
    assert entry["headers"] == {"X-Team": "blue"}


async def test_tools_are_prefixed_with_the_server_slug_when_asked(config: Path, data_dir: Path):
    """`prefix_tools=true` names each tool `{slug}__{name}` and tags it with its server."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            [server] = await get_json(client, "/api/mcp-servers")
            body = await get_json(client, "/api/tools", prefix_tools="true")
    echo = next(tool for tool in body["tools"] if tool["name"] == "echo__echo")
    assert (echo["_serverUuid"], echo["_serverName"], echo["_serverSlug"]) == (server["uuid"], "echo", "echo")
    assert all(tool["name"].startswith("echo__") for tool in body["tools"])


async def test_tools_keep_their_own_names_without_prefix_tools(config: Path, data_dir: Path):
    """Without `prefix_tools=true`, tools carry the names their server gave them."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            body = await get_json(client, "/api/tools")
    names = [tool["name"] for tool in body["tools"]]
    assert {"echo", "fail", "weird/name:x"} <= set(names)


async def test_tools_keep_annotations_and_output_schema(config: Path, data_dir: Path):
    """Unlike the App, a tool keeps the `annotations` and `outputSchema` its server declared."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            body = await get_json(client, "/api/tools")
    echo = next(tool for tool in body["tools"] if tool["name"] == "echo")
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    assert echo["inputSchema"] == schema
    assert echo["outputSchema"] == schema
    assert echo["annotations"] == {"readOnlyHint": True}
    assert echo["description"] == "Return the text unchanged, also as structured content."


async def test_asking_for_inactive_tools_finds_none(config: Path, data_dir: Path):
    """Every tool is active here, so `status=INACTIVE` lists nothing."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            body = await get_json(client, "/api/tools", status="INACTIVE")
    assert body == {"tools": []}


async def test_prompts_are_a_bare_array_with_arguments(config: Path, data_dir: Path):
    """`/api/prompts` is an array of `{name, description, arguments}`."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            prompts = await get_json(client, "/api/prompts")
    argument = {"name": "name", "description": "Who to greet", "required": True}
    assert prompts == [{"name": "greet", "description": "Greet someone", "arguments": [argument]}]


async def test_resources_are_a_bare_array_with_mime_types(config: Path, data_dir: Path):
    """`/api/resources` is an array of `{uri, name, mimeType}`."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            resources = await get_json(client, "/api/resources")
    assert resources == [{"uri": "echo://static", "name": "static", "mimeType": "text/plain"}]


async def test_resource_templates_carry_their_mime_type_as_media_type(config: Path, data_dir: Path):
    """`/api/resource-templates` uses the App's key, `mediaType`, not MCP's `mimeType`."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            templates = await get_json(client, "/api/resource-templates")
    assert templates == [{"uriTemplate": "echo://item/{id}", "name": "item", "mediaType": "text/plain"}]


async def test_resolving_a_prompt_answers_with_its_servers_entry(config: Path, data_dir: Path):
    """`resolve/prompt` returns the owner's complete `/api/mcp-servers` item, byte for byte."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            servers = await client.get("/api/mcp-servers")
            resolved = await client.get("/api/resolve/prompt", params={"name": "greet"})
    assert resolved.status_code == 200
    assert servers.content == b"[" + resolved.content + b"]"


async def test_resolving_a_listed_resource_answers_with_its_servers_entry(config: Path, data_dir: Path):
    """`resolve/resource` finds the server listing the URI and returns its complete entry."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            [server] = await get_json(client, "/api/mcp-servers")
            resolved = await get_json(client, "/api/resolve/resource", uri="echo://static")
    assert resolved == server


async def test_resolving_a_resource_also_matches_templates(config: Path, data_dir: Path):
    """A URI that only a resource template matches still resolves to the template's server."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            [server] = await get_json(client, "/api/mcp-servers")
            resolved = await get_json(client, "/api/resolve/resource", uri="echo://item/42")
    assert resolved == server


@pytest.mark.parametrize(
    ("path", "params"),
    [("/api/resolve/prompt", {"name": "no-such-prompt"}), ("/api/resolve/resource", {"uri": "nowhere://x"})],
)
async def test_resolving_something_nobody_offers_is_404(
    config: Path, data_dir: Path, path: str, params: dict[str, str]
):
    """An unknown prompt name or resource URI gets 404 with an `error` string."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.get(path, params=params)
    assert response.status_code == 404
    assert "error" in response.json()


@pytest.mark.parametrize("path", ["/api/resolve/prompt", "/api/resolve/resource"])
async def test_resolving_without_the_query_parameter_is_400(config: Path, data_dir: Path, path: str):
    """`resolve/prompt` without `name` and `resolve/resource` without `uri` get 400."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.get(path)
    assert response.status_code == 400
    assert "error" in response.json()


async def test_discovering_all_servers_reports_each_one(config: Path, data_dir: Path):
    """`POST /api/discover/all` waits for discovery and names each server's result."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.post("/api/discover/all", json={"force_refresh": True})
    assert response.status_code == 200
    message = response.json()["message"]
    assert "echo: 18 tools, 1 prompt, 1 resource, 1 resource template" in message


async def test_discovering_one_server_by_uuid(config: Path, data_dir: Path):
    """`POST /api/discover/{uuid}` discovers that server, with or without a body."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            [server] = await get_json(client, "/api/mcp-servers")
            response = await client.post(f"/api/discover/{server['uuid']}")
    assert response.status_code == 200
    assert "echo: 18 tools" in response.json()["message"]


async def test_discovering_a_target_that_is_neither_all_nor_a_uuid_is_400(config: Path, data_dir: Path):
    """A discover target must be `all` or a UUID."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.post("/api/discover/everything")
    assert response.status_code == 400
    assert "error" in response.json()


async def test_discovering_an_unknown_uuid_is_404(config: Path, data_dir: Path):
    """A UUID that names no configured server gets 404."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.post(f"/api/discover/{uuid.uuid4()}")
    assert response.status_code == 404
    assert "error" in response.json()


async def test_reported_activity_is_stored_and_listed_newest_first(config: Path, data_dir: Path):
    """Each `mcp-activity` report is stored with its fields; the listing shows the newest first."""
    first = {"action": "tool_call", "serverName": "echo", "itemName": "echo", "success": True, "executionTime": 12}
    second = {"action": "prompt_get", "serverName": "echo", "serverUuid": "pluggedin_discovery", "success": True}
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            answers = [await client.post("/api/notifications/mcp-activity", json=body) for body in (first, second)]
            listed = await get_json(client, "/api/notifications/mcp-activity")
    assert [answer.json() for answer in answers] == [{"success": True}, {"success": True}]
    newest, oldest = listed["activity"]
    assert (newest["action"], newest["serverUuid"], newest["externalId"]) == ("prompt_get", None, "pluggedin_discovery")
    assert (oldest["action"], oldest["itemName"], oldest["success"], oldest["executionTime"]) == (
        "tool_call",
        "echo",
        True,
        12,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"serverName": "echo", "success": True},
        {"action": "dance", "serverName": "echo", "success": True},
        {"action": "tool_call", "serverName": "echo", "success": "true"},
        ["not", "an", "object"],
    ],
    ids=["no action", "unknown action", "string success", "array"],
)
async def test_activity_that_breaks_the_schema_is_400_with_details(config: Path, data_dir: Path, body: Any):
    """A body that is JSON but not a valid report gets 400 `{error, details}`."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.post("/api/notifications/mcp-activity", json=body)
            listed = await get_json(client, "/api/notifications/mcp-activity")
    assert response.status_code == 400
    assert set(response.json()) == {"error", "details"}
    assert listed == {"activity": []}


async def test_activity_that_is_not_json_is_400(config: Path, data_dir: Path):
    """An unparseable body gets 400 `{error}`."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.post("/api/notifications/mcp-activity", content=b"{not json")
    assert response.status_code == 400
    assert list(response.json()) == ["error"]


async def test_a_failed_tool_call_raises_an_alert_notification(config: Path, data_dir: Path):
    """As in the App, a failed call report also creates an ALERT notification."""
    report = {"action": "tool_call", "serverName": "echo", "itemName": "fail", "success": False, "errorMessage": "no"}
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            await client.post("/api/notifications/mcp-activity", json=report)
            listed = await get_json(client, "/api/notifications")
    [alert] = listed["notifications"]
    assert (alert["type"], alert["severity"], alert["title"]) == ("ALERT", "ALERT", "Tool execution failed")
    assert alert["message"] == 'Tool "fail" from echo failed: no'


async def test_a_custom_notification_is_created_and_listed(config: Path, data_dir: Path):
    """`POST /api/notifications/custom` creates an unread CUSTOM notification."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            created = await client.post("/api/notifications/custom", json={"title": "Hi", "message": "Deploy done"})
            listed = await get_json(client, "/api/notifications")
    assert created.json() == {"success": True, "message": "Notification created successfully"}
    assert listed["success"] is True
    [notification] = listed["notifications"]
    assert uuid.UUID(notification["id"])
    expected = {"type": "CUSTOM", "title": "Hi", "message": "Deploy done", "severity": "INFO", "read": False}
    assert {key: notification[key] for key in expected} == expected
    assert (notification["completed"], notification["link"]) == (False, None)


async def test_notifications_are_listed_newest_first_up_to_the_limit(config: Path, data_dir: Path):
    """`limit` caps the list, which starts with the newest notification."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            for n in range(3):
                await client.post("/api/notifications/custom", json={"message": f"note {n}"})
            listed = await get_json(client, "/api/notifications", limit="2", onlyUnread="true")
            too_many = await client.get("/api/notifications", params={"limit": "101"})
    assert [item["message"] for item in listed["notifications"]] == ["note 2", "note 1"]
    assert too_many.status_code == 400


async def test_a_custom_notification_without_a_message_is_400(config: Path, data_dir: Path):
    """`message` is required and must not be empty."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.post("/api/notifications/custom", json={"title": "Hi", "message": ""})
    assert response.status_code == 400
    assert set(response.json()) == {"error", "details"}


async def test_marking_a_notification_completed_toggles_it(config: Path, data_dir: Path):
    """Each `PATCH .../completed` flips `completed`; a second call undoes the first."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            await client.post("/api/notifications/custom", json={"message": "task"})
            [notification] = (await get_json(client, "/api/notifications"))["notifications"]
            path = f"/api/notifications/{notification['id']}/completed"
            states = []
            for _ in range(2):
                answer = await client.patch(path)
                assert answer.json()["success"] is True
                [after] = (await get_json(client, "/api/notifications"))["notifications"]
                states.append(after["completed"])
    assert states == [True, False]


async def test_a_deleted_notification_is_gone(config: Path, data_dir: Path):
    """`DELETE /api/notifications/{id}` removes it; deleting it again is 404."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            await client.post("/api/notifications/custom", json={"message": "bye"})
            [notification] = (await get_json(client, "/api/notifications"))["notifications"]
            deleted = await client.delete(f"/api/notifications/{notification['id']}")
            again = await client.delete(f"/api/notifications/{notification['id']}")
            listed = await get_json(client, "/api/notifications")
    assert deleted.json()["success"] is True
    assert again.status_code == 404
    assert listed["notifications"] == []


@pytest.mark.parametrize(("method", "suffix"), [("PATCH", "/completed"), ("DELETE", "")])
async def test_a_notification_id_that_is_not_a_uuid_is_400(config: Path, data_dir: Path, method: str, suffix: str):
    """Both notification routes reject a malformed id with 400."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.request(method, f"/api/notifications/not-a-uuid{suffix}")
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize(("method", "suffix"), [("PATCH", "/completed"), ("DELETE", "")])
async def test_an_unknown_notification_id_is_404(config: Path, data_dir: Path, method: str, suffix: str):
    """Both notification routes answer 404 for a UUID that names no notification."""
    with anyio.fail_after(TIMEOUT):
        async with running_app(config, data_dir) as client:
            response = await client.request(method, f"/api/notifications/{uuid.uuid4()}{suffix}")
    assert response.status_code == 404
    assert "error" in response.json()


async def _line_containing(stream: Any, marker: str) -> str:
    buffered = ""
    async for chunk in TextReceiveStream(stream):
        buffered += chunk
        while "\n" in buffered:
            line, buffered = buffered.split("\n", 1)
            if marker in line:
                return line
    pytest.fail(f"the process ended without writing {marker!r}; stderr ended with: {buffered!r}")


async def test_the_entry_point_announces_its_port_and_serves_tools(config: Path, data_dir: Path):
    """`python -m pluggedin_proxy.selfhost --port 0` writes its real URL on stderr and serves `/api/tools`."""
    command = [sys.executable, "-m", "pluggedin_proxy.selfhost", "--config", str(config), "--port", "0"]
    command += ["--api-key", KEY, "--data-dir", str(data_dir)]
    with anyio.fail_after(TIMEOUT):
        process = await anyio.open_process(command, cwd=REPO, env=dict(os.environ))
        try:
            line = await _line_containing(process.stderr, "listening on")
            assert line.startswith("pluggedin-mcp app listening on http://127.0.0.1:")
            assert line.endswith("(1 server)")
            url = line.split()[4]
            async with httpx2.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
                body = await get_json(client, "/api/tools", prefix_tools="true")
            assert "echo__echo" in [tool["name"] for tool in body["tools"]]
        finally:
            process.terminate()
            await process.wait()
            await process.aclose()


def test_the_entry_point_without_any_api_key_exits_1_saying_how_to_give_one(
    config: Path, capsys: pytest.CaptureFixture[str]
):
    """With no `--api-key` and no environment keys, the App refuses to start and explains."""
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "--port", "0"])
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert "--api-key" in error
    assert "PLUGGEDIN_APP_API_KEYS" in error


def test_the_entry_point_rejects_a_key_the_proxy_would_ignore(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    """A key shorter than 32 characters (here from the environment) is refused, without echoing it."""
    monkeypatch.setenv("PLUGGEDIN_APP_API_KEYS", f"{KEY},short-key")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "--port", "0"])
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert "32" in error
    assert "short-key" not in error


def test_the_entry_point_reports_a_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A config file that does not exist exits 1 with one line naming it."""
    missing = tmp_path / "missing.json"
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(missing), "--api-key", KEY])
    assert exited.value.code == 1
    assert str(missing) in capsys.readouterr().err


async def test_a_server_uuid_comes_from_the_config_path_and_key_alone(config: Path, discovered: Path, tmp_path: Path):
    """The UUID is `uuid5` of the absolute config path and the server key, whatever the data directory."""
    uuids = []
    with anyio.fail_after(TIMEOUT):
        for name in ("one", "two"):
            shutil.copytree(discovered, tmp_path / name)
            async with running_app(config, tmp_path / name) as client:
                [entry] = await get_json(client, "/api/mcp-servers")
            uuids.append(entry["uuid"])
    assert uuids == [expected_uuid(config, "echo")] * 2


def expected_uuid(config: Path, key: str) -> str:
    """The documented derivation: `uuid5(NAMESPACE, "<absolute config path>\\0<server key>")`."""
    return str(uuid.uuid5(NAMESPACE, f"{config.resolve()}\0{key}"))
