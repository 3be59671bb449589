"""`pluggedin_ask_knowledge_base` end to end: the proxy subprocess in App mode against the App double."""

from __future__ import annotations

import json
import socket
from datetime import datetime
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.app_double import AppDouble, app_double, proxy_for

pytestmark = pytest.mark.anyio

TOOL = "pluggedin_ask_knowledge_base"
RAG = "/api/rag/query"
DOC_A = "0b9e7c1e-1111-4a3e-9c1e-000000000001"
DOC_B = "0b9e7c1e-2222-4a3e-9c1e-000000000002"


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _logged(app: AppDouble, count: int) -> list[dict[str, Any]]:
    """The activity entries for the tool, once `count` have arrived (the proxy posts them in the background)."""
    with anyio.fail_after(5):
        while True:
            entries = [e for e in app.activity() if e["itemName"] == TOOL]
            if len(entries) >= count:
                return entries
            await anyio.sleep(0.05)


async def test_answers_questions_with_sources_and_words_each_failure() -> None:
    async with app_double() as app, proxy_for(app) as session:
        app.reply(
            "POST",
            RAG,
            {"answer": "Deploys run on Fridays.\n---\nRollbacks need approval.", "sources": ["ops.md", "policy.md"],
             "documentIds": [DOC_A, DOC_B]},
            once=True,
        )  # fmt: skip
        result = await session.call_tool(TOOL, {"query": "When do deploys run?"})
        assert not result.is_error
        assert [r.body for r in app.seen("POST", RAG)] == [{"query": "When do deploys run?", "includeMetadata": True}]
        answer = json.loads(_text(result))
        assert answer["answer"] == "Deploys run on Fridays.\n---\nRollbacks need approval."
        assert answer["sources"] == [
            {"name": "ops.md", "id": DOC_A, "version": None, "relevance": None},
            {"name": "policy.md", "id": DOC_B, "version": None, "relevance": None},
        ]
        assert answer["metadata"]["query"] == "When do deploys run?"
        assert answer["metadata"]["sourceCount"] == 2
        assert datetime.fromisoformat(answer["metadata"]["timestamp"]).tzinfo is not None
        assert _text(result).startswith('{\n  "answer"')  # pretty-printed

        # Ids without names, with the optional parallel arrays.
        app.reply(
            "POST",
            RAG,
            {"answer": "x", "documentIds": [DOC_A], "documentVersions": [3], "relevanceScores": [0.9]},
            once=True,
        )
        answer = json.loads(_text(await session.call_tool(TOOL, {"query": "q"})))
        assert answer["sources"] == [{"id": DOC_A, "version": 3, "relevance": 0.9}]
        assert answer["metadata"]["sourceCount"] == 1

        # A plain-text answer, as the App sends without metadata.
        app.reply("POST", RAG, "Just the chunks.", once=True)
        answer = json.loads(_text(await session.call_tool(TOOL, {"query": "q"})))
        assert (answer["answer"], answer["sources"], answer["metadata"]["sourceCount"]) == ("Just the chunks.", [], 0)

        expected = {
            400: "RAG service error (400)",
            401: "Authentication failed. Check your API key.",
            429: "Rate limit exceeded. Please try again later.",
            500: "RAG service error (500)",
            503: "RAG service error (503)",
        }
        for status, message in expected.items():
            app.reply("POST", RAG, {"error": "nope"}, status, once=True)
            result = await session.call_tool(TOOL, {"query": "q"})
            assert (result.is_error, _text(result)) == (True, message)

        asked = len(app.seen("POST", RAG))
        for bad in ({"query": ""}, {"query": "x" * 1001}, {}, {"query": "q", "extra": 1}):
            result = await session.call_tool(TOOL, bad)
            assert result.is_error
            assert _text(result).startswith(f"Invalid arguments for {TOOL}")
        assert len(app.seen("POST", RAG)) == asked

        entries = await _logged(app, 3 + len(expected))  # refused arguments are not activities
    assert {(e["serverName"], e["serverUuid"], e["action"]) for e in entries} == {
        ("RAG System", "pluggedin_rag", "tool_call")
    }
    assert len(entries) == 3 + len(expected) and sum(e["success"] for e in entries) == 3
    failures = {e["errorMessage"] for e in entries if not e["success"]}
    assert set(expected.values()) <= failures


async def test_an_unreachable_app_is_reported_as_unavailable() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = AppDouble()
    gone.url = f"http://127.0.0.1:{port}"
    async with proxy_for(gone) as session:
        result = await session.call_tool(TOOL, {"query": "anyone there?"})
    assert result.is_error
    assert _text(result).startswith("RAG service temporarily unavailable (cannot reach the plugged.in App")
