"""The document tools end to end: the proxy subprocess in App mode against the App double.

One proxy per tool: its request, its answer, the message for each HTTP status it words, input the
schema refuses before the App is asked, and the activity-log entries.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession

from tests.app_double import AppDouble, app_double, proxy_for

pytestmark = pytest.mark.anyio

DOC = "7d1c6f0e-5b7a-4c4e-9a55-2f0b6c1d9e01"
OTHER = "7d1c6f0e-5b7a-4c4e-9a55-2f0b6c1d9e02"
AUTH = "Authentication failed. Check your API key."
RATE = "Rate limit exceeded. Please try again later."
MODEL = {"name": "claude-sonnet-4", "provider": "anthropic"}


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _check_statuses(
    app: AppDouble,
    session: ClientSession,
    route: tuple[str, str],
    tool: str,
    args: dict[str, Any],
    expected: dict[int, str],
) -> None:
    """Each status, answered once by the App, gives the tool's message as an `isError` result."""
    for status, message in expected.items():
        app.reply(*route, {"error": "from the App"}, status, once=True)
        result = await session.call_tool(tool, args)
        assert (result.is_error, _text(result)) == (True, message), status


def _document_requests(app: AppDouble) -> int:
    return sum(r.path.startswith("/api/documents") for r in app.requests)


async def _check_refused(app: AppDouble, session: ClientSession, tool: str, bad: list[dict[str, Any]]) -> None:
    """Each argument set is refused by the schema without a request to the App."""
    asked = _document_requests(app)
    for args in bad:
        result = await session.call_tool(tool, args)
        assert result.is_error, args
        assert _text(result).startswith(f"Invalid arguments for {tool}"), _text(result)
    assert _document_requests(app) == asked


async def _check_logged(app: AppDouble, tool: str, successes: int, failures: int) -> None:
    """The activity log got one entry per call, under the documents sentinel (posted in the background)."""
    with anyio.fail_after(5):
        while True:
            entries = [e for e in app.activity() if e["itemName"] == tool]
            if len(entries) >= successes + failures:
                break
            await anyio.sleep(0.05)
    assert {(e["serverName"], e["serverUuid"]) for e in entries} == {("Document System", "pluggedin_documents")}
    assert sorted(e["success"] for e in entries) == [False] * failures + [True] * successes


async def test_create_document() -> None:
    tool, route = "pluggedin_create_document", ("POST", "/api/documents/ai")
    async with app_double() as app, proxy_for(app) as session:
        created = {"success": True, "documentId": DOC, "message": "Document created", "url": f"/library/{DOC}"}
        app.reply(*route, created, 201)
        args = {"title": "Plan", "content": "# Plan", "metadata": {"model": MODEL}}
        result = await session.call_tool(tool, args)
        assert not result.is_error
        assert _text(result) == f"Document created successfully!\nID: {DOC}\nTitle: Plan\nURL: /library/{DOC}"
        [request] = app.seen(*route)
        assert request.body == {
            "title": "Plan",
            "content": "# Plan",
            "format": "md",
            "category": "other",
            "metadata": {"model": MODEL, "visibility": "private"},
        }
        assert request.authorization is not None and request.authorization.startswith("Bearer ")

        expected = {
            400: "Invalid document data provided",
            401: AUTH,
            413: "Document content too large (max 10MB)",
            429: RATE,
            500: "Document service error (500)",
        }
        await _check_statuses(app, session, route, tool, args, expected)
        await _check_refused(
            app,
            session,
            tool,
            [
                {"title": "", "content": "x", "metadata": {"model": MODEL}},
                {"title": "t", "content": "x"},
                {"title": "t", "content": "x", "metadata": {"model": {"name": "m"}}},
                {"title": "t", "content": "x", "metadata": {"model": MODEL}, "format": "pdf"},
                {"title": "t", "content": "x", "metadata": {"model": MODEL}, "tags": ["t"] * 21},
                {"title": "t", "content": "x", "metadata": {"model": MODEL, "colour": "red"}},
                {"title": "t", "content": "x", "metadata": {"model": MODEL, "generationParams": {"topP": 2}}},
            ],
        )
        await _check_logged(app, tool, successes=1, failures=len(expected))


async def test_list_documents_and_the_listing_order() -> None:
    tool, route = "pluggedin_list_documents", ("GET", "/api/documents")
    async with app_double() as app, proxy_for(app) as session:
        names = [t.name for t in (await session.list_tools()).tools]
        ours = ["pluggedin_ask_knowledge_base", "pluggedin_create_document", tool, "pluggedin_search_documents",
                "pluggedin_get_document", "pluggedin_update_document"]  # fmt: skip
        assert [n for n in names if n in ours] == ours

        documents = [
            {"id": DOC, "title": "Plan", "description": "The plan", "source": "ai_generated", "tags": ["a", "b"],
             "createdAt": "2026-01-02T03:04:05.000Z", "aiMetadata": {"model": MODEL}},
            {"id": OTHER, "title": "Scan", "description": None, "source": "upload", "tags": [],
             "createdAt": "2026-01-01T00:00:00.000Z", "aiMetadata": None},
        ]  # fmt: skip
        app.reply(*route, {"documents": documents, "total": 7, "limit": 20, "offset": 0})
        result = await session.call_tool(tool, {})
        assert not result.is_error
        assert _text(result) == (
            "Found 7 document(s) (showing 2)\n\n"
            f"1. **Plan**\n   ID: {DOC}\n   Created: 2026-01-02T03:04:05.000Z\n"
            "   Source: ai_generated (claude-sonnet-4)\n   Tags: a, b\n   Description: The plan\n\n"
            f"2. **Scan**\n   ID: {OTHER}\n   Created: 2026-01-01T00:00:00.000Z\n   Source: upload\n"
        )
        assert app.seen(*route)[-1].query == {"sort": ["date_desc"], "limit": ["20"], "offset": ["0"]}

        filters = {"tags": ["x", "y"], "modelName": "claude", "dateFrom": "2026-01-01T00:00:00Z", "category": "code"}
        await session.call_tool(tool, {"filters": filters, "sort": "title", "limit": 5, "offset": 10})
        assert app.seen(*route)[-1].query == {
            "tags": ["x", "y"],
            "modelName": ["claude"],
            "dateFrom": ["2026-01-01T00:00:00Z"],
            "category": ["code"],
            "source": ["all"],
            "sort": ["title"],
            "limit": ["5"],
            "offset": ["10"],
        }

        expected = {401: AUTH, 429: RATE, 500: "Failed to list documents", 400: "Failed to list documents"}
        await _check_statuses(app, session, route, tool, {}, expected)
        await _check_refused(
            app,
            session,
            tool,
            [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"sort": "random"}, {"filters": {"dateTo": "yesterday"}},
             {"filters": {"source": "email"}}],
        )  # fmt: skip
        await _check_logged(app, tool, successes=2, failures=len(expected))


async def test_search_documents() -> None:
    tool, route = "pluggedin_search_documents", ("POST", "/api/documents/search")
    async with app_double() as app, proxy_for(app) as session:
        results = [
            {"id": DOC, "title": "Plan", "snippet": "…the plan…", "relevanceScore": 0.8734, "source": "ai_generated",
             "aiMetadata": {"model": MODEL}},
            {"id": OTHER, "title": "Scan", "snippet": "…scan…", "relevanceScore": 0.5, "source": "upload"},
        ]  # fmt: skip
        app.reply(*route, {"results": results, "total": 2, "limit": 10, "offset": 0, "hasMore": False})
        result = await session.call_tool(tool, {"query": "plan"})
        assert not result.is_error
        assert _text(result) == (
            'Search results for "plan" (2 found):\n\n'
            f"1. **Plan**\n   ID: {DOC}\n   Relevance: 87.3%\n   Snippet: …the plan…\n"
            "   Source: ai_generated (claude-sonnet-4)\n\n"
            f"2. **Scan**\n   ID: {OTHER}\n   Relevance: 50.0%\n   Snippet: …scan…\n   Source: upload\n"
        )
        assert app.seen(*route)[-1].body == {"query": "plan", "limit": 10}
        await session.call_tool(tool, {"query": "plan", "filters": {"modelProvider": "anthropic"}, "limit": 3})
        assert app.seen(*route)[-1].body == {
            "query": "plan",
            "filters": {"modelProvider": "anthropic", "source": "all"},
            "limit": 3,
        }

        expected = {401: AUTH, 429: RATE, 500: "Failed to search documents"}
        await _check_statuses(app, session, route, tool, {"query": "plan"}, expected)
        await _check_refused(app, session, tool, [{"query": ""}, {"query": "q" * 501}, {"query": "q", "limit": 51}, {}])
        await _check_logged(app, tool, successes=2, failures=len(expected))


async def test_get_document() -> None:
    tool, path = "pluggedin_get_document", f"/api/documents/{DOC}"
    route = ("GET", path)
    async with app_double() as app, proxy_for(app) as session:
        document = {
            "id": DOC,
            "title": "Plan",
            "description": "The plan",
            "source": "ai_generated",
            "version": 3,
            "tags": ["a"],
            "createdAt": "2026-01-02T03:04:05.000Z",
            "aiMetadata": {
                "model": {**MODEL, "version": "4"},
                "prompt": "write a plan",
                "visibility": "private",
                "lastUpdatedBy": {"name": "gpt-4o", "provider": "openai"},
                "conversationContext": ["hi", "plan please"],
                "generationParams": {"temperature": 0.7, "maxTokens": 1000},
                "timestamp": "2026-01-02T03:04:05.000Z",
                "reviewer": {"name": "ada"},
            },
            "content": "# Plan\nStep one.",
            "contentEncoding": "utf-8",
            "versions": [
                {"versionNumber": 3, "createdAt": "2026-01-03T00:00:00Z", "createdByModel": {"name": "gpt-4o"},
                 "changeSummary": "tightened"},
                {"versionNumber": 1, "createdAt": "2026-01-02T03:04:05Z"},
            ],
        }  # fmt: skip
        app.reply(*route, document)
        head = (
            f"**Plan**\n\nID: {DOC}\nCreated: 2026-01-02T03:04:05.000Z\nSource: ai_generated (claude-sonnet-4)\n"
            "Version: 3\nTags: a\n\nDescription: The plan\n\n--- AI Metadata ---\n"
            "Model: claude-sonnet-4 (anthropic v4)\nPrompt: write a plan\nVisibility: private\n"
            "Last Updated By: gpt-4o (openai)\nConversation Context: 2 messages\n"
            "Generation Parameters:\n  - Temperature: 0.7\n  - Max Tokens: 1000\n"
            'Additional Metadata:\n  - reviewer: {"name": "ada"}\n\n'
        )
        result = await session.call_tool(tool, {"documentId": DOC})
        assert (result.is_error, _text(result)) == (False, head)
        assert app.seen(*route)[-1].query == {"includeContent": ["false"], "includeVersions": ["false"]}

        result = await session.call_tool(tool, {"documentId": DOC, "includeContent": True, "includeVersions": True})
        assert _text(result) == (
            head + "--- Content ---\n# Plan\nStep one.\n\n--- Version History ---\n"
            "v3 - 2026-01-03T00:00:00Z by gpt-4o - tightened\nv1 - 2026-01-02T03:04:05Z\n"
        )
        assert app.seen(*route)[-1].query == {"includeContent": ["true"], "includeVersions": ["true"]}

        expected = {
            401: AUTH,
            404: "Document not found or not accessible",
            429: RATE,
            500: "Failed to retrieve document",
        }
        await _check_statuses(app, session, route, tool, {"documentId": DOC}, expected)
        await _check_refused(
            app, session, tool, [{"documentId": "../etc"}, {"documentId": DOC[:-1]}, {"includeContent": True}]
        )
        await _check_logged(app, tool, successes=2, failures=len(expected))


async def test_update_document() -> None:
    tool, route = "pluggedin_update_document", ("PATCH", f"/api/documents/{DOC}")
    async with app_double() as app, proxy_for(app) as session:
        updated = {"success": True, "documentId": DOC, "version": 4, "fileWritten": True, "message": "Updated"}
        app.reply(*route, updated, once=True)
        args = {"documentId": DOC, "operation": "append", "content": "More.", "metadata": {"model": MODEL}}
        result = await session.call_tool(tool, args)
        assert (result.is_error, _text(result)) == (
            False,
            f"Document updated successfully!\nID: {DOC}\nOperation: append\nNew version: 4",
        )
        assert app.seen(*route)[-1].body == args

        # What the App's CSRF check answers to an API client: the tool must say so, not claim success.
        app.reply(*route, {"error": "Invalid origin", "code": "CSRF_INVALID_ORIGIN"}, 403, once=True)
        result = await session.call_tool(tool, args)
        assert result.is_error
        assert "refused the update (HTTP 403)" in _text(result)
        assert "CSRF" in _text(result)
        assert "not changed" in _text(result)
        assert "success" not in _text(result).lower()

        app.reply(*route, {"error": "Not implemented", "details": "Updates are read-only here"}, 501, once=True)
        assert _text(await session.call_tool(tool, args)) == "Updates are read-only here"

        expected = {
            400: "Invalid update data provided",
            401: AUTH,
            404: "Document not found or not accessible",
            429: RATE,
            500: "Failed to update document",
        }
        await _check_statuses(app, session, route, tool, args, expected)
        await _check_refused(
            app,
            session,
            tool,
            [
                {**args, "documentId": "not-a-uuid"},
                {**args, "operation": "delete"},
                {**args, "content": ""},
                {**args, "metadata": {"changeSummary": "no model"}},
            ],
        )
        await _check_logged(app, tool, successes=1, failures=2 + len(expected))
