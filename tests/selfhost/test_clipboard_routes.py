"""The self-hosted App's clipboard routes, served by real uvicorn on a loopback socket.

The config lists no servers, so an App starts without spawning anything; each test gets a fresh data
directory (and so an empty clipboard).
"""

from __future__ import annotations

import functools
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from pluggedin_proxy.selfhost import create_app, serve_app

pytestmark = pytest.mark.anyio

KEY = "selfhost-clipboard-key-0123456789abcdefghij"
TIMEOUT = 30
ENTRY_KEYS = [
    "uuid", "name", "idx", "value", "contentType", "encoding", "sizeBytes", "visibility", "createdByTool",
    "createdByModel", "source", "createdAt", "updatedAt", "expiresAt",
]  # fmt: skip
PNG = "iVBORw0KGgo" + "A" * 2000 + "="


def empty_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {}}))
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return empty_config(tmp_path / "config")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@asynccontextmanager
async def running_app(config: Path, data_dir: Path) -> AsyncIterator[httpx2.AsyncClient]:
    """The App served on a kernel-picked loopback port, and a client for it sending the key."""
    app = create_app(config, api_keys=[KEY], data_dir=data_dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    headers = {"Authorization": f"Bearer {KEY}"}
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            port = await tg.start(functools.partial(serve_app, app, sock=sock))
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
                yield client
            tg.cancel_scope.cancel()


async def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def moment(timestamp: str) -> datetime:
    assert timestamp.endswith("Z") and len(timestamp) == len("2026-01-01T00:00:00.000Z"), timestamp
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


async def test_a_named_entry_is_stored_with_the_apps_shape_and_read_back(config: Path, data_dir: Path):
    """`POST` answers `{success, entry}` in the App's key order, expiring in 24 h; `GET ?name=` returns it."""
    async with running_app(config, data_dir) as client:
        created = await ok(await client.post("/api/clipboard", json={"name": "greeting", "value": "héllo"}))
        got = await ok(await client.get("/api/clipboard", params={"name": "greeting"}))
    assert created["success"] is True
    entry = created["entry"]
    assert list(entry) == ENTRY_KEYS
    assert uuid.UUID(entry["uuid"])
    expected = {"name": "greeting", "idx": None, "value": "héllo", "contentType": "text/plain", "encoding": "utf-8"}
    assert {key: entry[key] for key in expected} == expected
    assert (entry["sizeBytes"], entry["visibility"], entry["source"]) == (6, "private", "ui")
    assert (entry["createdByTool"], entry["createdByModel"]) == (None, None)
    lifetime = moment(entry["expiresAt"]) - moment(entry["createdAt"])
    assert timedelta(hours=24) <= lifetime < timedelta(hours=24, seconds=5)
    assert got == {"entry": entry}


async def test_setting_a_name_again_replaces_the_entry(config: Path, data_dir: Path):
    """Named entries are upserted: same uuid and creation time, new value and metadata."""
    async with running_app(config, data_dir) as client:
        first = (await ok(await client.post("/api/clipboard", json={"name": "n", "value": "one"})))["entry"]
        body = {"name": "n", "value": '{"a": 1}', "contentType": "application/json", "source": "mcp"}
        second = (await ok(await client.post("/api/clipboard", json=body)))["entry"]
        listed = await ok(await client.get("/api/clipboard"))
    assert (second["uuid"], second["createdAt"]) == (first["uuid"], first["createdAt"])
    assert (second["value"], second["contentType"], second["source"]) == ('{"a": 1}', "application/json", "mcp")
    assert listed["total"] == 1


async def test_setting_a_taken_index_is_409_and_keeps_the_entry(config: Path, data_dir: Path):
    """Indexed entries are never overwritten by a set."""
    async with running_app(config, data_dir) as client:
        await ok(await client.post("/api/clipboard", json={"idx": 3, "value": "first"}))
        conflict = await client.post("/api/clipboard", json={"idx": 3, "value": "second"})
        got = await ok(await client.get("/api/clipboard", params={"idx": "3"}))
    assert conflict.status_code == 409
    assert "3 already exists" in conflict.json()["error"]
    assert got["entry"]["value"] == "first"


async def test_push_takes_the_next_index_and_pop_takes_the_highest_back(config: Path, data_dir: Path):
    """Push starts at 0 and goes one past the highest index; pop is LIFO and ignores named entries."""
    async with running_app(config, data_dir) as client:
        pushed = [(await ok(await client.post("/api/clipboard/push", json={"value": v})))["entry"] for v in "ab"]
        await ok(await client.post("/api/clipboard", json={"idx": 7, "value": "set"}))
        await ok(await client.post("/api/clipboard", json={"name": "kept", "value": "named"}))
        after_gap = (await ok(await client.post("/api/clipboard/push", json={"value": "c"})))["entry"]
        popped = [(await ok(await client.post("/api/clipboard/pop", json={})))["entry"] for _ in range(4)]
        empty = await client.post("/api/clipboard/pop", json={})
        named = await ok(await client.get("/api/clipboard", params={"name": "kept"}))
    assert [entry["idx"] for entry in pushed] == [0, 1]
    assert after_gap["idx"] == 8
    assert [(entry["idx"], entry["value"]) for entry in popped] == [(8, "c"), (7, "set"), (1, "b"), (0, "a")]
    assert list(popped[0]) == ENTRY_KEYS
    assert empty.status_code == 404
    assert empty.json() == {"error": "No indexed entries to pop"}
    assert named["entry"]["value"] == "named"


async def test_a_list_is_newest_first_paged_filtered_and_cuts_image_values(config: Path, data_dir: Path):
    """`GET` without name or idx pages the entries; images are cut to 1000 characters, but not in a get."""
    async with running_app(config, data_dir) as client:
        image = {"name": "pic", "value": PNG, "contentType": "image/png", "encoding": "base64"}
        await ok(await client.post("/api/clipboard", json=image))
        for value in ("one", "two", "three"):
            await ok(await client.post("/api/clipboard/push", json={"value": value}))
        page = await ok(await client.get("/api/clipboard", params={"limit": "2", "offset": "1"}))
        everything = await ok(await client.get("/api/clipboard"))
        images = await ok(await client.get("/api/clipboard", params={"contentType": "image/png"}))
        single = await ok(await client.get("/api/clipboard", params={"name": "pic"}))
    assert [entry["value"] for entry in page["entries"]] == ["two", "one"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert (everything["limit"], everything["offset"], len(everything["entries"])) == (50, 0, 4)
    [listed_image] = images["entries"]
    assert images["total"] == 1
    assert listed_image["value"] == PNG[:1000]
    assert listed_image["sizeBytes"] == len(PNG)
    assert single["entry"]["value"] == PNG


async def test_deleting_by_name_by_index_and_everything(config: Path, data_dir: Path):
    """DELETE takes a JSON body; a miss is 404; clearAll reports how many went."""
    async with running_app(config, data_dir) as client:
        for body in ({"name": "a", "value": "1"}, {"idx": 4, "value": "2"}, {"name": "b", "value": "3"}):
            await ok(await client.post("/api/clipboard", json=body))
        await ok(await client.post("/api/clipboard/push", json={"value": "4"}))
        by_name = await client.request("DELETE", "/api/clipboard", json={"name": "a"})
        by_index = await client.request("DELETE", "/api/clipboard", json={"idx": 4})
        missing = await client.request("DELETE", "/api/clipboard", json={"name": "a"})
        cleared = await client.request("DELETE", "/api/clipboard", json={"clearAll": True})
        listed = await ok(await client.get("/api/clipboard"))
    assert by_name.json() == by_index.json() == {"success": True, "deleted": 1}
    assert missing.status_code == 404
    assert missing.json() == {"error": "Clipboard entry not found"}
    assert cleared.json() == {"success": True, "deleted": 2}
    assert listed["total"] == 0


async def test_reading_a_missing_entry_is_404(config: Path, data_dir: Path):
    async with running_app(config, data_dir) as client:
        response = await client.get("/api/clipboard", params={"idx": "0"})
    assert response.status_code == 404
    assert response.json() == {"error": "Clipboard entry not found"}


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "/api/clipboard", {"value": "x"}, "Either name or idx must be provided"),
        ("POST", "/api/clipboard", {"name": "n"}, None),
        ("POST", "/api/clipboard", {"name": "n", "value": "x", "encoding": "utf8"}, None),
        ("POST", "/api/clipboard", {"name": "n", "value": "x", "ttlSeconds": 0}, None),
        ("POST", "/api/clipboard", {"idx": "1", "value": "x"}, None),
        ("POST", "/api/clipboard/push", {"value": "x", "contentType": "t/" + "x" * 255}, None),
        ("DELETE", "/api/clipboard", {"clearAll": False}, "Either name, idx, or clearAll must be provided"),
    ],
)
async def test_a_body_that_breaks_the_schema_is_400_with_details(
    config: Path, data_dir: Path, method: str, path: str, body: dict[str, Any], message: str | None
):
    async with running_app(config, data_dir) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == 400
    details = response.json()["details"]
    assert details
    if message is not None:
        assert details == [{"code": "custom", "path": [], "message": message}]


@pytest.mark.parametrize(
    ("value", "encoding", "error"),
    [
        ("not base64!", "base64", "Invalid base64 encoding: contains invalid characters"),
        ("abc", "base64", "Invalid base64 encoding: incorrect padding"),
        ("xyz0", "hex", "Invalid hex encoding: contains non-hexadecimal characters"),
        ("abc", "hex", "Invalid hex encoding: odd number of characters"),
    ],
)
async def test_a_value_not_in_its_declared_encoding_is_400(
    config: Path, data_dir: Path, value: str, encoding: str, error: str
):
    async with running_app(config, data_dir) as client:
        response = await client.post("/api/clipboard/push", json={"value": value, "encoding": encoding})
    assert response.status_code == 400
    assert response.json() == {"error": error}


@pytest.mark.parametrize("query", [{"limit": "101"}, {"limit": "0"}, {"offset": "-1"}, {"idx": "one"}])
async def test_bad_query_parameters_are_400(config: Path, data_dir: Path, query: dict[str, str]):
    async with running_app(config, data_dir) as client:
        response = await client.get("/api/clipboard", params=query)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid parameters"


async def test_a_value_over_2_mb_is_413_and_one_of_exactly_2_mb_is_stored(config: Path, data_dir: Path):
    """The limit counts the UTF-8 bytes of the value as sent."""
    async with running_app(config, data_dir) as client:
        too_large = await client.post("/api/clipboard", json={"name": "big", "value": "é" * (1024 * 1024 + 1)})
        at_limit = await client.post("/api/clipboard/push", json={"value": "x" * 2_097_152})
    assert too_large.status_code == 413
    assert too_large.json() == {"error": "Value exceeds maximum size of 2097152 bytes (2048KB)"}
    assert at_limit.status_code == 200
    assert at_limit.json()["entry"]["sizeBytes"] == 2_097_152


async def test_an_expired_entry_is_gone(config: Path, data_dir: Path):
    """An entry past its `ttlSeconds` can no longer be read, listed or popped."""
    async with running_app(config, data_dir) as client:
        created = await ok(await client.post("/api/clipboard", json={"idx": 0, "value": "brief", "ttlSeconds": 1}))
        await ok(await client.post("/api/clipboard", json={"name": "lasting", "value": "stays", "ttlSeconds": 60}))
        lifetime = moment(created["entry"]["expiresAt"]) - moment(created["entry"]["createdAt"])
        await anyio.sleep(1.1)
        got = await client.get("/api/clipboard", params={"idx": "0"})
        listed = await ok(await client.get("/api/clipboard"))
        popped = await client.post("/api/clipboard/pop", json={})
    assert timedelta(seconds=1) <= lifetime < timedelta(seconds=2)
    assert got.status_code == 404
    assert [entry["name"] for entry in listed["entries"]] == ["lasting"]
    assert popped.status_code == 404


async def test_entries_persist_across_a_restart(config: Path, data_dir: Path):
    async with running_app(config, data_dir) as client:
        await ok(await client.post("/api/clipboard/push", json={"value": "kept"}))
    async with running_app(config, data_dir) as client:
        got = await ok(await client.get("/api/clipboard", params={"idx": "0"}))
    assert got["entry"]["value"] == "kept"


async def test_each_config_has_its_own_clipboard(config: Path, data_dir: Path, tmp_path: Path):
    """Two configs sharing a data directory are two profiles: neither sees the other's entries."""
    other = empty_config(tmp_path / "other")
    async with running_app(config, data_dir) as client:
        await ok(await client.post("/api/clipboard", json={"name": "mine", "value": "1"}))
        await ok(await client.post("/api/clipboard/push", json={"value": "2"}))
    async with running_app(other, data_dir) as client:
        listed = await ok(await client.get("/api/clipboard"))
        missing = await client.get("/api/clipboard", params={"name": "mine"})
        popped = await client.post("/api/clipboard/pop", json={})
        pushed = await ok(await client.post("/api/clipboard/push", json={"value": "theirs"}))
        cleared = await ok(await client.request("DELETE", "/api/clipboard", json={"clearAll": True}))
    async with running_app(config, data_dir) as client:
        still = await ok(await client.get("/api/clipboard"))
    assert listed["total"] == 0
    assert (missing.status_code, popped.status_code) == (404, 404)
    assert pushed["entry"]["idx"] == 0
    assert cleared["deleted"] == 1
    assert still["total"] == 2


async def test_the_clipboard_needs_the_api_key(config: Path, data_dir: Path):
    async with running_app(config, data_dir) as client:
        response = await client.get("/api/clipboard", headers={"Authorization": "Bearer wrong-key-0123456789abcdef"})
    assert response.status_code == 401
