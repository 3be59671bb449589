"""The router with tool pins: changed tools reported, withheld when pinning is enforced, and approvals taken in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from pluggedin_proxy.catalog.base import DiscoveryResult, ServerListing
from pluggedin_proxy.catalog.pins import PinStore
from pluggedin_proxy.errors import ToolWithheld, UnknownName
from pluggedin_proxy.proxy.router import Router
from pluggedin_proxy.upstream.spec import ServerSpec

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}}


def tool(name: str, description: str = "As first seen.") -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=SCHEMA)


def spec(server_id: str) -> ServerSpec:
    return ServerSpec(id=server_id, name=f"{server_id} server", slug=server_id, transport="stdio", command="x")


class FakeCatalog:
    """A catalog whose listings a test sets directly; each change moves the version on."""

    def __init__(self, offer: Mapping[str, Sequence[types.Tool]]) -> None:
        self.version = 0
        self._specs = [spec(server_id) for server_id in offer]
        self._listings = {server_id: ServerListing(tools=tuple(tools)) for server_id, tools in offer.items()}

    def serve(self, server_id: str, *tools: types.Tool) -> None:
        self._listings[server_id] = ServerListing(tools=tools)
        self.version += 1

    async def servers(self) -> Sequence[ServerSpec]:
        return self._specs

    async def listings(self) -> Mapping[str, ServerListing]:
        return self._listings

    async def discover(self, server_ids: Sequence[str] | None = None) -> list[DiscoveryResult]:
        return []


def router(catalog: FakeCatalog, pins: PinStore, **options: Any) -> Router:
    return Router(catalog, pins=pins, **options)  # type: ignore[arg-type]  # the fake implements what the router uses


@pytest.fixture
def pins_path(tmp_path: Path) -> Path:
    return tmp_path / "pins.json"


async def test_a_new_tool_is_recorded_and_served(pins_path: Path) -> None:
    """Trust on first use: the first view lists the tool, and its pin is on disk."""
    view = await router(FakeCatalog({"a": [tool("echo")]}), PinStore(pins_path, enforce=True)).view()
    assert [t.name for t in view.tools] == ["a__echo"]
    assert view.changed_tools == {} and view.withheld == {}
    assert len(PinStore(pins_path)) == 1


async def test_a_changed_tool_is_still_served_but_reported_when_pinning_is_not_enforced(pins_path: Path) -> None:
    """Without `--pin-tools` a change is only reported; the tool is listed and routed as before."""
    catalog = FakeCatalog({"a": [tool("echo")]})
    r = router(catalog, PinStore(pins_path))
    await r.view()
    catalog.serve("a", tool("echo", "Rewritten."))
    view = await r.view()
    assert list(view.changed_tools) == ["a__echo"]
    assert [t.name for t in view.tools] == ["a__echo"]
    assert (await r.tool("a__echo")).name == "echo"


async def test_a_changed_tool_is_withheld_from_the_view_when_pinning_is_enforced(pins_path: Path) -> None:
    """With `--pin-tools` a changed tool is neither listed nor in the wire list nor in the schema lookup."""
    catalog = FakeCatalog({"a": [tool("echo"), tool("other")]})
    await router(catalog, PinStore(pins_path)).view()  # first run: both pinned
    catalog.serve("a", tool("echo", "Rewritten."), tool("other"))
    view = await router(catalog, PinStore(pins_path, enforce=True)).view()  # second run
    assert [t.name for t in view.tools] == ["a__other"]
    assert [t["name"] for t in view.tool_wire] == ["a__other"]
    assert "a__echo" not in view.tools_by_name
    assert list(view.changed_tools) == ["a__echo"] and "a__echo" in view.withheld


async def test_calling_a_withheld_tool_says_it_changed_and_how_to_approve_it(pins_path: Path) -> None:
    """The call fails with `ToolWithheld`, naming the tool, its server and the approve command."""
    catalog = FakeCatalog({"a": [tool("echo")]})
    r = router(catalog, PinStore(pins_path, enforce=True))
    await r.view()
    catalog.serve("a", tool("echo", "Rewritten."))
    with pytest.raises(ToolWithheld) as caught:
        await r.tool("a__echo")
    message = str(caught.value)
    assert "changed since it was approved" in message and "'a server'" in message
    assert "pluggedin-mcp tools --approve a__echo" in message
    with pytest.raises(UnknownName):
        await r.tool("a__nothing")


async def test_withholding_a_tool_moves_no_other_tool_into_its_name(pins_path: Path) -> None:
    """Without prefixes, the first of two same-named tools is withheld; the second keeps its prefixed name."""
    catalog = FakeCatalog({"a": [tool("echo")], "b": [tool("echo")]})
    r = router(catalog, PinStore(pins_path, enforce=True), prefix=False)
    assert [t.name for t in (await r.view()).tools] == ["echo", "b__echo"]
    catalog.serve("a", tool("echo", "Rewritten."))
    assert [t.name for t in (await r.view()).tools] == ["b__echo"]
    with pytest.raises(ToolWithheld):
        await r.tool("echo")


async def test_an_approval_by_another_process_is_taken_in_without_a_restart(pins_path: Path) -> None:
    """After `tools --approve` writes the pins, the running router lists and routes the tool again."""
    catalog = FakeCatalog({"a": [tool("echo")]})
    r = router(catalog, PinStore(pins_path, enforce=True))
    await r.view()
    catalog.serve("a", tool("echo", "Rewritten."))
    withholding = await r.view()
    change = withholding.withheld["a__echo"]
    PinStore(pins_path).approve(change.server_id, change.tool, change.digest)
    approved = await r.view()
    assert [t.name for t in approved.tools] == ["a__echo"]
    assert approved.version > withholding.version  # what caches of the tool list key on
    assert (await r.tool("a__echo")).name == "echo"


async def test_tools_are_hashed_only_when_the_view_is_rebuilt(pins_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing and routing from an unchanged view never hashes; a rebuild hashes only tools that are new objects."""
    store = PinStore(pins_path)
    hashed: list[str] = []
    digest = store.digest

    def counting_digest(t: types.Tool) -> str:
        hashed.append(t.name)
        return digest(t)

    monkeypatch.setattr(store, "digest", counting_digest)
    catalog = FakeCatalog({"a": [tool("echo")], "b": [tool("other")]})
    r = router(catalog, store)
    await r.view()
    for _ in range(3):
        await r.view()
        await r.tool("a__echo")
    assert sorted(hashed) == ["echo", "other"]
    catalog.serve("b", tool("other", "Rewritten."))
    await r.view()
    assert sorted(hashed) == ["echo", "other", "other"]
