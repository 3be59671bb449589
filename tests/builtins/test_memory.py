"""The memory, CBP and Jungian built-ins end to end: the proxy subprocess in App mode against the App double.

Each test runs one proxy and checks, for one tool: the request the App got, the text the client got,
how every failing status is worded, that bad arguments fail before any App call, and the activity log.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession

from tests.app_double import AppDouble, app_double, proxy_for

pytestmark = pytest.mark.anyio

AUTH_FAILED = "Authentication failed. Check your API key."
RATE_LIMITED = "Rate limit exceeded. Please try again later."
MEMORY = {"serverName": "Memory System", "serverUuid": "pluggedin_memory"}
CBP = {"serverName": "CBP System", "serverUuid": "pluggedin_cbp"}
JUNGIAN = {"serverName": "Jungian Intelligence", "serverUuid": "pluggedin_jungian"}
SESSION = "5a1f6c2e-0d3b-4c8e-9f71-2b6a4d9e0c13"
MEMORY_A = "8c2d4e6f-1a3b-4c5d-8e7f-901a2b3c4d5e"
MEMORY_B = "9d3e5f70-2b4c-4d6e-9f80-a12b3c4d5e6f"
PATTERN = "1b2c3d4e-5f60-4718-89ab-cdef01234567"


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _ok(session: ClientSession, tool: str, args: dict[str, Any]) -> str:
    result = await session.call_tool(tool, args)
    assert result.is_error is False, _text(result)
    return _text(result)


async def _rejected(session: ClientSession, app: AppDouble, tool: str, args: dict[str, Any]) -> str:
    """The error text for arguments the proxy must refuse without calling the App."""
    before = len(app.requests)
    result = await session.call_tool(tool, args)
    assert result.is_error is True, _text(result)
    assert [r for r in app.requests[before:] if r.path != "/api/notifications/mcp-activity"] == []
    return _text(result)


async def _assert_failures(
    session: ClientSession,
    app: AppDouble,
    route: tuple[str, str],
    tool: str,
    args: dict[str, Any],
    *,
    failure: str,
    not_found: str,
) -> None:
    """Every failing answer of `route`, served once each, is worded as the tool promises."""
    method, path = route
    cases = [
        (401, {"error": "Invalid API key"}, AUTH_FAILED),
        (404, {"success": False, "error": "Session not found"}, not_found),
        (429, {"error": "Too many requests", "retryAfter": 30}, RATE_LIMITED),
        (400, {"success": False, "error": "Invalid request body"}, f"{failure}: Invalid request body"),
        (500, {"success": False, "error": "database is down"}, f"{failure}: database is down"),
        (503, None, f"{failure}: HTTP 503"),
        (200, {"success": False, "error": "embedding service failed"}, f"{failure}: embedding service failed"),
    ]
    for status, body, message in cases:
        app.reply(method, path, body, status, once=True)
        result = await session.call_tool(tool, args)
        assert (result.is_error, _text(result)) == (True, message), status


async def _logged(app: AppDouble, tool: str, count: int) -> list[dict[str, Any]]:
    """The activity entries for `tool`, once `count` have arrived (the proxy posts them in the background)."""
    with anyio.fail_after(5):
        while True:
            entries = [e for e in app.activity() if e["itemName"] == tool]
            if len(entries) >= count:
                return entries
            await anyio.sleep(0.05)


async def _assert_logged(app: AppDouble, tool: str, source: dict[str, str], successes: int, failures: int) -> None:
    """Each call that reached the handler was logged once with `source`; refused arguments were not logged."""
    await _logged(app, tool, successes + failures)
    await anyio.sleep(0.2)  # room for entries that should not exist
    entries = await _logged(app, tool, successes + failures)
    assert len(entries) == successes + failures
    assert all({k: e[k] for k in source} == source for e in entries)
    assert all(e["action"] == "tool_call" and isinstance(e["executionTime"], int) for e in entries)
    assert sum(e["success"] for e in entries) == successes
    assert AUTH_FAILED in [e.get("errorMessage") for e in entries if not e["success"]]


async def test_all_nine_tools_are_listed_in_order_with_their_schemas() -> None:
    async with app_double() as app, proxy_for(app) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    names = [
        "pluggedin_memory_session_start",
        "pluggedin_memory_session_end",
        "pluggedin_memory_observe",
        "pluggedin_memory_search",
        "pluggedin_memory_details",
        "pluggedin_cbp_query",
        "pluggedin_cbp_feedback",
        "pluggedin_memory_search_with_context",
        "pluggedin_memory_individuation",
    ]
    assert [name for name in tools if name in names] == names
    hints = {
        name: (a.read_only_hint, a.destructive_hint, a.idempotent_hint)
        for name in names
        if (a := tools[name].annotations) is not None
    }
    assert hints == {
        "pluggedin_memory_session_start": (False, False, False),
        "pluggedin_memory_session_end": (False, False, False),
        "pluggedin_memory_observe": (False, False, False),
        "pluggedin_memory_search": (True, False, True),
        "pluggedin_memory_details": (True, False, True),
        "pluggedin_cbp_query": (True, False, False),
        "pluggedin_cbp_feedback": (False, False, False),
        "pluggedin_memory_search_with_context": (True, False, False),
        "pluggedin_memory_individuation": (True, False, True),
    }
    for name in names:
        schema = tools[name].input_schema
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["additionalProperties"] is False
        assert schema["description"] and schema["examples"]
    required = {name: tools[name].input_schema.get("required", []) for name in names}
    assert required["pluggedin_memory_observe"] == ["session_uuid", "type", "content"]
    assert required["pluggedin_cbp_feedback"] == ["pattern_uuid", "rating", "feedback_type"]
    assert required["pluggedin_memory_individuation"] == []
    observe = tools["pluggedin_memory_observe"].input_schema["properties"]
    assert (observe["content"]["minLength"], observe["content"]["maxLength"]) == (1, 10_000)
    assert len(observe["type"]["enum"]) == 10
    search = tools["pluggedin_memory_search"].input_schema["properties"]
    assert (search["top_k"]["minimum"], search["top_k"]["maximum"], search["top_k"]["default"]) == (1, 50, 10)
    assert search["include_gut"]["default"] is False
    assert tools["pluggedin_cbp_query"].input_schema["properties"]["context"]["default"] == "contextual"
    context = tools["pluggedin_memory_search_with_context"].input_schema["properties"]
    assert context["include_archetypes"]["default"] is True
    assert tools["pluggedin_memory_individuation"].input_schema["properties"] == {}


async def test_session_start() -> None:
    tool, route = "pluggedin_memory_session_start", ("POST", "/api/memory/sessions")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(
            *route, {"success": True, "data": {"uuid": SESSION, "memorySessionId": "ms_V1StGXR8Z5jdHi6BmyTxa"}}, 201
        )
        text = await _ok(session, tool, {"content_session_id": "thread-1"})
        assert text.startswith(
            f"Memory session started.\nSession UUID: {SESSION}\nMemory Session ID: ms_V1StGXR8Z5jdHi6BmyTxa\n"
        )
        assert "pluggedin_memory_observe" in text and "pluggedin_memory_session_end" in text
        await _ok(session, tool, {"content_session_id": "thread-2", "agent_uuid": MEMORY_A})
        assert [r.body for r in app.seen(*route)] == [
            {"content_session_id": "thread-1"},
            {"content_session_id": "thread-2", "agent_uuid": MEMORY_A},
        ]
        assert app.seen(*route)[0].authorization is not None

        app.reply(*route, {"success": True, "data": {}}, 201, once=True)
        result = await session.call_tool(tool, {"content_session_id": "thread-3"})
        assert result.is_error is True and "names no session" in _text(result)

        assert "content_session_id" in await _rejected(session, app, tool, {})
        assert "content_session_id" in await _rejected(session, app, tool, {"content_session_id": ""})
        assert "Additional properties" in await _rejected(session, app, tool, {"content_session_id": "t", "x": 1})
        await _assert_failures(
            session, app, route, tool, {"content_session_id": "t"},
            failure="Failed to start memory session",
            not_found="The App has no memory sessions endpoint; it may be too old for the memory tools.",
        )  # fmt: skip
        await _assert_logged(app, tool, MEMORY, successes=2, failures=8)


async def test_session_end() -> None:
    tool, route = "pluggedin_memory_session_end", ("PATCH", "/api/memory/sessions/ms_V1StGXR8Z5jdHi6BmyTxa")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(*route, {"success": True, "data": {"status": "completed"}})
        text = await _ok(session, tool, {"memory_session_id": "ms_V1StGXR8Z5jdHi6BmyTxa"})
        assert text.startswith("Memory session ended.\n") and "Z-report" in text
        assert [r.body for r in app.seen(*route)] == [{"action": "end"}]

        assert "does not match" in await _rejected(session, app, tool, {"memory_session_id": "../ms_1"})
        assert "memory_session_id" in await _rejected(session, app, tool, {})
        await _assert_failures(
            session, app, route, tool, {"memory_session_id": "ms_V1StGXR8Z5jdHi6BmyTxa"},
            failure="Failed to end memory session",
            not_found="Memory session not found. Check the memory session ID from pluggedin_memory_session_start.",
        )  # fmt: skip
        await _assert_logged(app, tool, MEMORY, successes=1, failures=7)


async def test_observe_sends_the_observation_and_caps_content_where_the_app_does() -> None:
    tool, route = "pluggedin_memory_observe", ("POST", f"/api/memory/sessions/{SESSION}/observations")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(*route, {"success": True, "data": {"uuid": MEMORY_A, "type": "insight"}}, 201)
        args = {
            "session_uuid": SESSION,
            "type": "error_pattern",
            "content": "kubeconfig expired",
            "outcome": "failure",
            "metadata": {"tool_name": "deploy", "attempt": 2},
        }
        text = await _ok(session, tool, args)
        assert text == f"Observation recorded.\nUUID: {MEMORY_A}\nType: error_pattern"
        # The largest content the App takes passes; the path carries the session, the body the rest.
        await _ok(session, tool, {"session_uuid": SESSION, "type": "insight", "content": "x" * 10_000})
        bodies = [r.body for r in app.seen(*route)]
        assert bodies[0] == {k: v for k, v in args.items() if k != "session_uuid"}
        assert bodies[1] == {"type": "insight", "content": "x" * 10_000}

        app.reply(*route, {"success": True}, 201, once=True)
        assert "UUID: (not returned)" in await _ok(
            session, tool, {"session_uuid": SESSION, "type": "decision", "content": "c"}
        )

        too_long = {"session_uuid": SESSION, "type": "insight", "content": "x" * 10_001}
        assert "is too long" in await _rejected(session, app, tool, too_long)
        assert "is not a 'uuid'" in await _rejected(
            session, app, tool, {**too_long, "session_uuid": "..", "content": "c"}
        )
        assert "is not one of" in await _rejected(session, app, tool, {**too_long, "type": "gossip", "content": "c"})
        assert "is not one of" in await _rejected(session, app, tool, {**too_long, "outcome": "meh", "content": "c"})
        await _assert_failures(
            session, app, route, tool, {"session_uuid": SESSION, "type": "insight", "content": "c"},
            failure="Failed to record observation",
            not_found="Memory session not found. Check the session UUID from pluggedin_memory_session_start.",
        )  # fmt: skip
        await _assert_logged(app, tool, MEMORY, successes=3, failures=7)


async def test_search_reads_the_fields_the_app_sends() -> None:
    tool, route = "pluggedin_memory_search", ("POST", "/api/memory/search")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(
            *route,
            {"success": True, "data": [
                {"uuid": MEMORY_A, "ringType": "procedures", "content": "Rotate keys with vault",
                 "similarity": 0.874, "decayStage": "summary", "tokenCount": 40, "tags": ["ops", "vault"],
                 "createdAt": "2025-01-01T00:00:00Z"},
                {"uuid": MEMORY_B, "ringType": "shocks", "summary": "Outage after a bad migration",
                 "relevanceScore": 0.4, "currentDecayStage": "essence", "decayStage": "full", "tags": []},
            ]},
            once=True,
        )  # fmt: skip
        text = await _ok(session, tool, {"query": "rotate keys"})
        assert app.seen(*route)[0].body == {"query": "rotate keys", "top_k": 10, "include_gut": False}
        assert text == (
            'Found 2 memories for: "rotate keys"\n\n'
            f"---\nUUID: {MEMORY_A}\nRing: procedures | Decay: summary\nSimilarity: 87%\n"
            "Content: Rotate keys with vault\nTags: ops, vault\n\n"
            f"---\nUUID: {MEMORY_B}\nRing: shocks | Decay: essence\nRelevance: 40%\n"
            "Content: Outage after a bad migration\n\n"
            "Call pluggedin_memory_details with the UUIDs you need for their full content."
        )

        app.reply(
            *route,
            {
                "success": True,
                "data": [{"uuid": MEMORY_A, "essence": "kernel", "similarity": 0.5, "relevanceScore": 0.25}],
            },
            once=True,
        )
        args = {"query": "q", "ring_types": ["longterm"], "agent_uuid": SESSION, "top_k": 3, "include_gut": True}
        text = await _ok(session, tool, args)
        assert app.seen(*route)[1].body == args
        assert "Relevance: 25% | Similarity: 50%\nContent: kernel\n" in text
        assert "Decay: unknown" in text

        app.reply(*route, {"success": True, "data": []}, once=True)
        assert await _ok(session, tool, {"query": "nothing"}) == 'No memories found for: "nothing"'

        assert "less than the minimum" in await _rejected(session, app, tool, {"query": "q", "top_k": 0})
        assert "greater than the maximum" in await _rejected(session, app, tool, {"query": "q", "top_k": 51})
        assert "is too long" in await _rejected(session, app, tool, {"query": "q" * 1001})
        assert "is not one of" in await _rejected(session, app, tool, {"query": "q", "ring_types": ["attic"]})
        await _assert_failures(
            session, app, route, tool, {"query": "q"},
            failure="Failed to search memories",
            not_found="The App has no memory search endpoint; it may be too old for the memory tools.",
        )  # fmt: skip
        await _assert_logged(app, tool, MEMORY, successes=3, failures=7)


async def test_details_reads_the_current_decay_stage() -> None:
    tool, route = "pluggedin_memory_details", ("POST", "/api/memory/search/details")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(
            *route,
            {"success": True, "data": [
                {"uuid": MEMORY_A, "ringType": "longterm", "contentFull": "The whole story", "contentSummary": "Story",
                 "currentDecayStage": "full", "relevanceScore": 0.91, "successScore": 0.5, "reinforcementCount": 3,
                 "accessCount": 12, "tags": ["ops"]},
                {"uuid": MEMORY_B, "ringType": "practice", "contentEssence": "Gist", "decayStage": "essence",
                 "relevanceScore": 0.2},
            ]},
            once=True,
        )  # fmt: skip
        text = await _ok(session, tool, {"memory_uuids": [MEMORY_A, MEMORY_B]})
        assert app.seen(*route)[0].body == {"memory_uuids": [MEMORY_A, MEMORY_B]}
        assert text == (
            "Memory details (2):\n\n"
            f"===== {MEMORY_A} =====\nRing: longterm | Decay Stage: full\nRelevance: 91%\nSuccess: 50%\n"
            "Reinforcements: 3 | Accessed: 12 times\n\nFull Content:\nThe whole story\nTags: ops\n\n"
            f"===== {MEMORY_B} =====\nRing: practice | Decay Stage: essence\nRelevance: 20%\n"
            "Reinforcements: 0 | Accessed: 0 times\n\nFull Content:\nGist\n"
        )

        app.reply(*route, {"success": True, "data": []}, once=True)
        assert await _ok(session, tool, {"memory_uuids": [MEMORY_A]}) == "No memories found for these UUIDs."

        assert "should be non-empty" in await _rejected(session, app, tool, {"memory_uuids": []})
        assert "is too long" in await _rejected(session, app, tool, {"memory_uuids": [MEMORY_A] * 21})
        await _assert_failures(
            session, app, route, tool, {"memory_uuids": [MEMORY_A]},
            failure="Failed to get memory details",
            not_found="Memories not found. The memory UUIDs may be wrong, or the memories may have decayed away.",
        )  # fmt: skip
        await _assert_logged(app, tool, MEMORY, successes=2, failures=7)


async def test_cbp_query_asks_with_a_query_string() -> None:
    tool, route = "pluggedin_cbp_query", ("GET", "/api/memory/cbp")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(
            *route,
            {"success": True, "data": [
                {"uuid": PATTERN, "patternType": "error_recovery", "description": "Refetch first",
                 "pattern": "Run git pull --rebase before pushing again", "confidence": 0.8, "occurrenceCount": 14,
                 "successRate": 0.755, "similarity": 0.66, "context": "post_error", "averageRating": 4.34},
                {"uuid": MEMORY_A, "patternType": "best_practice", "description": "Small commits",
                 "confidence": 0.5, "occurrenceCount": 3, "successRate": 1, "similarity": 0.4, "context": "contextual",
                 "averageRating": None},
            ]},
            once=True,
        )  # fmt: skip
        args = {
            "query": "push rejected",
            "context": "post_error",
            "tool_name": "git_push",
            "error_message": "non-fast-forward",
        }
        text = await _ok(session, tool, args)
        assert app.seen(*route)[0].query == {k: [v] for k, v in args.items()}
        assert app.seen(*route)[0].body is None
        assert text == (
            'Found 2 collective pattern(s) for: "push rejected"\n\n'
            f"---\nUUID: {PATTERN}\nType: error_recovery | Context: post_error\n"
            "Confidence: 80% | Success Rate: 76%\nSeen: 14 times | Similarity: 66%\n"
            "Pattern: Run git pull --rebase before pushing again\nCommunity Rating: 4.3/5\n\n"
            f"---\nUUID: {MEMORY_A}\nType: best_practice | Context: contextual\n"
            "Confidence: 50% | Success Rate: 100%\nSeen: 3 times | Similarity: 40%\nPattern: Small commits\n\n"
            "Rate a pattern that helped or misled you with pluggedin_cbp_feedback."
        )

        app.reply(*route, {"success": True, "data": []}, once=True)
        assert await _ok(session, tool, {"query": "paging"}) == 'No collective patterns found for: "paging"'
        assert app.seen(*route)[1].query == {"query": ["paging"], "context": ["contextual"]}

        assert "is not one of" in await _rejected(session, app, tool, {"query": "q", "context": "later"})
        assert "is too long" in await _rejected(session, app, tool, {"query": "q", "tool_name": "t" * 201})
        await _assert_failures(
            session, app, route, tool, {"query": "q"},
            failure="Failed to query collective best practices",
            not_found="No collective patterns match this query.",
        )  # fmt: skip
        await _assert_logged(app, tool, CBP, successes=2, failures=7)


async def test_cbp_feedback() -> None:
    tool, route = "pluggedin_cbp_feedback", ("POST", "/api/memory/cbp/feedback")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(*route, {"success": True})
        args = {"pattern_uuid": PATTERN, "rating": 4, "feedback_type": "helpful", "comment": "saved me an hour"}
        text = await _ok(session, tool, args)
        assert text == f"Feedback recorded for pattern {PATTERN}.\nRating: 4/5 (helpful)"
        assert [r.body for r in app.seen(*route)] == [args]

        base = {"pattern_uuid": PATTERN, "rating": 3, "feedback_type": "outdated"}
        assert "greater than the maximum" in await _rejected(session, app, tool, {**base, "rating": 6})
        assert "is not of type 'integer'" in await _rejected(session, app, tool, {**base, "rating": 2.5})
        assert "is not one of" in await _rejected(session, app, tool, {**base, "feedback_type": "meh"})
        assert "feedback_type" in await _rejected(session, app, tool, {"pattern_uuid": PATTERN, "rating": 3})
        await _assert_failures(
            session, app, route, tool, base,
            failure="Failed to submit feedback",
            not_found="Pattern not found. Check the pattern UUID from pluggedin_cbp_query.",
        )  # fmt: skip
        await _assert_logged(app, tool, CBP, successes=1, failures=7)


async def test_search_with_context_reads_the_array_the_app_sends_and_the_older_object() -> None:
    tool, route = "pluggedin_memory_search_with_context", ("POST", "/api/memory/archetype/inject")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(
            *route,
            {"success": True, "data": [
                {"uuid": PATTERN, "patternType": "error_recovery", "pattern": "Roll back, then fix forward",
                 "confidence": 0.9, "similarity": 0.7, "archetype": "shadow", "archetypeLabel": "Shadow",
                 "archetypeWeight": 0.44},
                {"uuid": MEMORY_A, "patternType": "best_practice", "description": "Test migrations on a copy",
                 "confidence": 0.6, "archetype": "sage", "archetypeWeight": 0.36},
            ]},
            once=True,
        )  # fmt: skip
        text = await _ok(session, tool, {"query": "migration rollback", "outcome": "failure"})
        assert app.seen(*route)[0].body == {
            "query": "migration rollback",
            "outcome": "failure",
            "include_archetypes": True,
        }
        assert text == (
            "Archetype: Shadow (44%)\n\n"
            "## Collective Patterns (2)\n\n"
            f"- [Shadow] Roll back, then fix forward\n  Confidence: 90% | Similarity: 70%\n  UUID: {PATTERN}\n"
            f"- [sage] Test migrations on a copy\n  Confidence: 60%\n  UUID: {MEMORY_A}"
        )

        app.reply(
            *route,
            {"success": True, "data": {
                "memories": [{"uuid": MEMORY_B, "ringType": "longterm", "contentSummary": "We use blue-green deploys",
                              "relevanceScore": 0.8}],
                "patterns": [{"patternType": "workflow", "pattern": "Deploy behind a flag", "confidence": 0.5}],
                "archetypeWeights": {"hero": 0.5, "sage": 0.3, "shadow": "n/a"},
            }},
            once=True,
        )  # fmt: skip
        args = {"query": "deploy", "tool_name": "kubectl", "include_archetypes": False}
        text = await _ok(session, tool, args)
        assert app.seen(*route)[1].body == args
        assert text == (
            "Archetype: hero (50%)\n\n"
            "## Personal Memories (1)\n\n- [longterm] We use blue-green deploys\n  Relevance: 80%\n\n"
            "## Collective Patterns (1)\n\n- [workflow] Deploy behind a flag\n  Confidence: 50%"
        )

        for empty in ([], {"memories": [], "patterns": []}, None):
            app.reply(*route, {"success": True, "data": empty}, once=True)
            assert await _ok(session, tool, {"query": "q"}) == 'No memories or patterns found for: "q"'

        assert "is not one of" in await _rejected(session, app, tool, {"query": "q", "outcome": "maybe"})
        assert "query" in await _rejected(session, app, tool, {"tool_name": "t"})
        await _assert_failures(
            session, app, route, tool, {"query": "q"},
            failure="Failed to search memories with archetype context",
            not_found="No memories or patterns match this query.",
        )  # fmt: skip
        await _assert_logged(app, tool, JUNGIAN, successes=5, failures=7)


async def test_individuation() -> None:
    tool, route = "pluggedin_memory_individuation", ("GET", "/api/memory/individuation")
    async with app_double() as app, proxy_for(app) as session:
        app.reply(
            *route,
            {"success": True, "data": {
                "total": 62, "level": "integrating", "weeklyTrend": "rising", "tip": "Rate a pattern this week.",
                "components": {"memoryDepth": 20, "learningVelocity": 14.5, "collectiveContribution": 8,
                               "selfAwareness": 19.0},
            }},
            once=True,
        )  # fmt: skip
        text = await _ok(session, tool, {})
        assert [(r.query, r.body) for r in app.seen(*route)] == [({}, None)]
        assert text == (
            "# Individuation Score: 62/100 (integrating)\n\n"
            "## Components\n- Memory Depth: 20/25\n- Learning Velocity: 14.5/25\n"
            "- Collective Contribution: 8/25\n- Self-Awareness: 19/25\n\n"
            "Weekly Trend: rising\n\nTip: Rate a pattern this week."
        )

        app.reply(*route, {"success": True, "data": {"total": 0}}, once=True)
        text = await _ok(session, tool, {})
        assert text.startswith("# Individuation Score: 0/100 (unknown)\n") and "- Self-Awareness: 0/25" in text
        assert text.endswith("Weekly Trend: unknown")

        assert "Additional properties" in await _rejected(session, app, tool, {"verbose": True})
        await _assert_failures(
            session, app, route, tool, {},
            failure="Failed to get the individuation score",
            not_found="No individuation score yet: the memory system has too little to go on.",
        )  # fmt: skip
        await _assert_logged(app, tool, JUNGIAN, successes=2, failures=7)
