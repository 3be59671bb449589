"""Memory built-ins: sessions, observations and search in the App's memory system, plus its patterns.

Five tools the TypeScript proxy listed (session start and end, observe, search, details) and four it
could call but never listed: collective best practices (`pluggedin_cbp_query`, `pluggedin_cbp_feedback`)
and the Jungian layer (`pluggedin_memory_search_with_context`, `pluggedin_memory_individuation`).
All call `/api/memory/...` on the App, which answers `{success, data | error}`; see
`reference/pluggedin-proxy.md` §2.2 rows #25–#33 and §4.3–§4.4.

Where the TypeScript proxy misread the App, these read what the App sends: search results carry
`content`, `similarity` and `decayStage`, details carry `currentDecayStage`, and the archetype search
answers a list of patterns (the older `{memories, patterns, archetypeWeights}` object still works).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import mcp_types as types

from pluggedin_proxy.builtins.base import (
    ActivitySource,
    BuiltinTool,
    ToolCall,
    ToolFailure,
    app_failure,
    hints,
    text,
    zod_schema,
)

__all__ = ["CBP", "JUNGIAN", "MEMORY", "TOOLS"]

MEMORY = ActivitySource("Memory System", "pluggedin_memory")
CBP = ActivitySource("CBP System", "pluggedin_cbp")
JUNGIAN = ActivitySource("Jungian Intelligence", "pluggedin_jungian")

APP_TIMEOUT = 30.0
AUTH_FAILED = "Authentication failed. Check your API key."
RATE_LIMITED = "Rate limit exceeded. Please try again later."
# The App rejects longer observations with a 400; the TypeScript proxy allowed 50,000 characters.
OBSERVATION_MAX_CHARS = 10_000
OBSERVE_NAME = "pluggedin_memory_observe"

_UUID = {"type": "string", "format": "uuid"}
_OUTCOMES = ["success", "failure", "neutral"]
_EXAMPLE_UUID = "3f2b8c1e-9a4d-4e6f-8b2a-7c5d1e0f9a3b"


# Talking to the App


async def _data(
    call: ToolCall,
    method: str,
    path: str,
    *,
    failure: str,
    not_found: str,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
) -> Any:
    """The `data` of a successful App answer; anything else raises `ToolFailure` worded for the model.

    `failure` starts the message for statuses without one of their own (and for a `success: false`
    answer), followed by the App's `error` or the status.
    """
    reply = await call.require_app().send(method, path, params=params, json=json, timeout=APP_TIMEOUT)
    if not reply.ok:
        messages = {401: AUTH_FAILED, 404: not_found, 429: RATE_LIMITED}
        raise app_failure(reply, messages, f"{failure}: {{error}}")
    if reply.field("success") is False:
        error = reply.field("error")
        raise ToolFailure(f"{failure}: {error if isinstance(error, str) and error else 'the App reported a failure'}")
    return reply.field("data")


# Reading the App's answers


def _items(data: Any) -> list[dict[str, Any]]:
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _first(item: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first of `keys` that `item` has a non-empty value for, else `None`."""
    for key in keys:
        value = item.get(key)
        if value is not None and value != "" and value != []:
            return value
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _percent(value: Any) -> str | None:
    """A 0–1 score as a whole percentage (half rounds up), or `None` when it is not a number."""
    return f"{math.floor(value * 100 + 0.5)}%" if _is_number(value) else None


def _amount(value: Any) -> str:
    """A count or score as written: whole numbers without decimals, others with one; `0` when missing."""
    if not _is_number(value):
        return "0"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _tags(item: Mapping[str, Any]) -> list[str]:
    """A `Tags:` line when `item` has tags, then the blank line that ends every item."""
    tags = item.get("tags")
    listed = ["Tags: " + ", ".join(str(tag) for tag in tags)] if isinstance(tags, list) and tags else []
    return [*listed, ""]


def _joined(*parts: str | None) -> str:
    return " | ".join(part for part in parts if part)


# Sessions and observations


async def _session_start(call: ToolCall) -> types.CallToolResult:
    data = await _data(
        call,
        "POST",
        "/api/memory/sessions",
        json=call.arguments,
        failure="Failed to start memory session",
        not_found="The App has no memory sessions endpoint; it may be too old for the memory tools.",
    )
    session = data if isinstance(data, dict) else {}
    session_uuid, memory_session_id = session.get("uuid"), session.get("memorySessionId")
    if not isinstance(session_uuid, str) or not isinstance(memory_session_id, str):
        raise ToolFailure("Failed to start memory session: the App's answer names no session")
    return text(
        "Memory session started.\n"
        f"Session UUID: {session_uuid}\n"
        f"Memory Session ID: {memory_session_id}\n\n"
        "Pass the session UUID to pluggedin_memory_observe while you work, and the memory session ID "
        "to pluggedin_memory_session_end when you are done."
    )


async def _session_end(call: ToolCall) -> types.CallToolResult:
    session_id = quote(call.arguments["memory_session_id"], safe="")
    await _data(
        call,
        "PATCH",
        f"/api/memory/sessions/{session_id}",
        json={"action": "end"},
        failure="Failed to end memory session",
        not_found="Memory session not found. Check the memory session ID from pluggedin_memory_session_start.",
    )
    return text(
        "Memory session ended.\n"
        "The App is now writing its Z-report (a compressed summary of the session) in the background."
    )


async def _observe(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    session = quote(args["session_uuid"], safe="")  # the schema checked it is a UUID
    body = {key: args[key] for key in ("type", "content", "outcome", "metadata") if key in args}
    data = await _data(
        call,
        "POST",
        f"/api/memory/sessions/{session}/observations",
        json=body,
        failure="Failed to record observation",
        not_found="Memory session not found. Check the session UUID from pluggedin_memory_session_start.",
    )
    recorded = _first(data, "uuid") if isinstance(data, dict) else None
    return text(f"Observation recorded.\nUUID: {recorded or '(not returned)'}\nType: {args['type']}")


# Search and details


async def _search(call: ToolCall) -> types.CallToolResult:
    query = call.arguments["query"]
    data = await _data(
        call,
        "POST",
        "/api/memory/search",
        json=call.arguments,
        failure="Failed to search memories",
        not_found="The App has no memory search endpoint; it may be too old for the memory tools.",
    )
    results = _items(data)
    if not results:
        return text(f'No memories found for: "{query}"')
    lines = [f'Found {len(results)} memories for: "{query}"', ""]
    for result in results:
        relevance, similarity = _percent(result.get("relevanceScore")), _percent(result.get("similarity"))
        lines += [
            "---",
            f"UUID: {result.get('uuid')}",
            _joined(
                f"Ring: {result.get('ringType') or 'unknown'}",
                f"Decay: {_first(result, 'currentDecayStage', 'decayStage') or 'unknown'}",
            ),
            _joined(relevance and f"Relevance: {relevance}", similarity and f"Similarity: {similarity}")
            or "Relevance: unknown",
            f"Content: {_first(result, 'content', 'summary', 'essence') or '(no content)'}",
        ]
        lines += _tags(result)
    lines.append("Call pluggedin_memory_details with the UUIDs you need for their full content.")
    return text("\n".join(lines))


async def _details(call: ToolCall) -> types.CallToolResult:
    data = await _data(
        call,
        "POST",
        "/api/memory/search/details",
        json={"memory_uuids": call.arguments["memory_uuids"]},
        failure="Failed to get memory details",
        not_found="Memories not found. The memory UUIDs may be wrong, or the memories may have decayed away.",
    )
    details = _items(data)
    if not details:
        return text("No memories found for these UUIDs.")
    lines = [f"Memory details ({len(details)}):", ""]
    for detail in details:
        success = _percent(detail.get("successScore"))
        content = _first(detail, "contentFull", "contentCompressed", "contentSummary", "contentEssence")
        lines += [
            f"===== {detail.get('uuid')} =====",
            _joined(
                f"Ring: {detail.get('ringType') or 'unknown'}",
                f"Decay Stage: {_first(detail, 'currentDecayStage', 'decayStage') or 'unknown'}",
            ),
            f"Relevance: {_percent(detail.get('relevanceScore')) or '0%'}",
            *([f"Success: {success}"] if success else []),
            f"Reinforcements: {_amount(detail.get('reinforcementCount'))} | "
            f"Accessed: {_amount(detail.get('accessCount'))} times",
            "",
            "Full Content:",
            str(content or "(no content)"),
        ]
        lines += _tags(detail)
    return text("\n".join(lines))


# Collective best practices


async def _cbp_query(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    query = args["query"]
    params: dict[str, Any] = {k: args[k] for k in ("query", "context", "tool_name", "error_message") if k in args}
    data = await _data(
        call,
        "GET",
        "/api/memory/cbp",
        params=params,
        failure="Failed to query collective best practices",
        not_found="No collective patterns match this query.",
    )
    patterns = _items(data)
    if not patterns:
        return text(f'No collective patterns found for: "{query}"')
    lines = [f'Found {len(patterns)} collective pattern(s) for: "{query}"', ""]
    for pattern in patterns:
        rating = pattern.get("averageRating")
        lines += [
            "---",
            f"UUID: {pattern.get('uuid')}",
            f"Type: {pattern.get('patternType') or 'unknown'} | Context: {pattern.get('context') or 'unknown'}",
            f"Confidence: {_percent(pattern.get('confidence')) or '0%'} | "
            f"Success Rate: {_percent(pattern.get('successRate')) or '0%'}",
            f"Seen: {_amount(pattern.get('occurrenceCount'))} times | "
            f"Similarity: {_percent(pattern.get('similarity')) or '0%'}",
            f"Pattern: {_first(pattern, 'pattern', 'description') or '(no text)'}",
            *([f"Community Rating: {rating:.1f}/5"] if _is_number(rating) else []),
            "",
        ]
    lines.append("Rate a pattern that helped or misled you with pluggedin_cbp_feedback.")
    return text("\n".join(lines))


async def _cbp_feedback(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    await _data(
        call,
        "POST",
        "/api/memory/cbp/feedback",
        json=args,
        failure="Failed to submit feedback",
        not_found="Pattern not found. Check the pattern UUID from pluggedin_cbp_query.",
    )
    return text(
        f"Feedback recorded for pattern {args['pattern_uuid']}.\nRating: {args['rating']}/5 ({args['feedback_type']})"
    )


# Jungian intelligence


def _archetyped(data: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    """Personal memories, collective patterns and archetype weights from either answer shape.

    The App answers a list of patterns, each with its `archetype`, `archetypeLabel` and `archetypeWeight`;
    earlier designs answered `{memories, patterns, archetypeWeights}`.
    """
    if isinstance(data, list):
        patterns = _items(data)
        weights = {
            str(_first(p, "archetypeLabel", "archetype")): float(p["archetypeWeight"])
            for p in patterns
            if _first(p, "archetypeLabel", "archetype") and _is_number(p.get("archetypeWeight"))
        }
        return [], patterns, weights
    found = data if isinstance(data, dict) else {}
    given = found.get("archetypeWeights")
    weights = {str(k): float(v) for k, v in given.items() if _is_number(v)} if isinstance(given, dict) else {}
    return _items(found.get("memories")), _items(found.get("patterns")), weights


async def _search_with_context(call: ToolCall) -> types.CallToolResult:
    query = call.arguments["query"]
    data = await _data(
        call,
        "POST",
        "/api/memory/archetype/inject",
        json=call.arguments,
        failure="Failed to search memories with archetype context",
        not_found="No memories or patterns match this query.",
    )
    memories, patterns, weights = _archetyped(data)
    if not memories and not patterns:
        return text(f'No memories or patterns found for: "{query}"')
    lines: list[str] = []
    if weights:
        dominant = max(weights, key=lambda name: weights[name])
        lines += [f"Archetype: {dominant} ({_percent(weights[dominant])})", ""]
    if memories:
        lines += [f"## Personal Memories ({len(memories)})", ""]
        for memory in memories:
            summary = _first(memory, "contentSummary", "contentEssence", "content", "uuid")
            lines.append(f"- [{memory.get('ringType') or 'memory'}] {summary}")
            if relevance := _percent(memory.get("relevanceScore")):
                lines.append(f"  Relevance: {relevance}")
        lines.append("")
    if patterns:
        lines += [f"## Collective Patterns ({len(patterns)})", ""]
        for pattern in patterns:
            kind = _first(pattern, "archetypeLabel", "archetype", "patternType") or "pattern"
            lines.append(f"- [{kind}] {_first(pattern, 'pattern', 'description') or '(no text)'}")
            confidence, similarity = _percent(pattern.get("confidence")), _percent(pattern.get("similarity"))
            if scores := _joined(
                confidence and f"Confidence: {confidence}", similarity and f"Similarity: {similarity}"
            ):
                lines.append(f"  {scores}")
            if pattern.get("uuid"):
                lines.append(f"  UUID: {pattern['uuid']}")
    return text("\n".join(lines).rstrip())


async def _individuation(call: ToolCall) -> types.CallToolResult:
    data = await _data(
        call,
        "GET",
        "/api/memory/individuation",
        failure="Failed to get the individuation score",
        not_found="No individuation score yet: the memory system has too little to go on.",
    )
    score = data if isinstance(data, dict) else {}
    parts = score.get("components")
    components = parts if isinstance(parts, dict) else {}
    lines = [
        f"# Individuation Score: {_amount(score.get('total'))}/100 ({score.get('level') or 'unknown'})",
        "",
        "## Components",
        f"- Memory Depth: {_amount(components.get('memoryDepth'))}/25",
        f"- Learning Velocity: {_amount(components.get('learningVelocity'))}/25",
        f"- Collective Contribution: {_amount(components.get('collectiveContribution'))}/25",
        f"- Self-Awareness: {_amount(components.get('selfAwareness'))}/25",
        "",
        f"Weekly Trend: {score.get('weeklyTrend') or 'unknown'}",
    ]
    if tip := score.get("tip"):
        lines += ["", f"Tip: {tip}"]
    return text("\n".join(lines))


# Declarations


def _schema(
    description: str, properties: dict[str, Any], required: list[str], examples: list[dict[str, Any]]
) -> dict[str, Any]:
    """A Zod-style schema with the `examples` the TypeScript proxy attached to its memory tools."""
    return {**zod_schema(description, properties, required), "examples": examples}


SESSION_START = BuiltinTool(
    name="pluggedin_memory_session_start",
    description=(
        "Open a memory session so that what happens in this conversation can be remembered. Returns the "
        "session UUID (for pluggedin_memory_observe) and the memory session ID (for pluggedin_memory_session_end)."
    ),
    input_schema=_schema(
        "Open a memory session tied to a conversation.",
        {
            "content_session_id": {
                "type": "string",
                "minLength": 1,
                "description": "Your own id for this conversation or thread; memories are linked to it.",
            },
            "agent_uuid": {**_UUID, "description": "The agent this session belongs to, if any."},
        },
        ["content_session_id"],
        [
            {"content_session_id": "thread-2024-06-01-release"},
            {"content_session_id": "run-42", "agent_uuid": _EXAMPLE_UUID},
        ],
    ),
    annotations=hints(read_only=False, destructive=False, idempotent=False),
    handler=_session_start,
    activity=MEMORY,
)

SESSION_END = BuiltinTool(
    name="pluggedin_memory_session_end",
    description=(
        "Close a memory session. The App then writes a Z-report, a compressed summary of the session, "
        "and files its observations into long-term memory."
    ),
    input_schema=_schema(
        "Close a memory session.",
        {
            "memory_session_id": {
                "type": "string",
                "minLength": 1,
                "pattern": "^[a-zA-Z0-9_-]+$",
                "description": "The memory session ID that pluggedin_memory_session_start returned (ms_…).",
            }
        },
        ["memory_session_id"],
        [{"memory_session_id": "ms_V1StGXR8Z5jdHi6BmyTxa"}],
    ),
    annotations=hints(read_only=False, destructive=False, idempotent=False),
    handler=_session_end,
    activity=MEMORY,
)

OBSERVE = BuiltinTool(
    name=OBSERVE_NAME,
    description=(
        "Record one observation in an open memory session: a tool call or result, a preference, a decision, "
        "an error or success pattern, an insight. The App sorts observations into memory rings "
        "(procedures, practice, longterm, shocks)."
    ),
    input_schema=_schema(
        "Record an observation in a memory session.",
        {
            "session_uuid": {**_UUID, "description": "The session UUID that pluggedin_memory_session_start returned."},
            "type": {
                "type": "string",
                "enum": [
                    "tool_call",
                    "tool_result",
                    "user_preference",
                    "error_pattern",
                    "decision",
                    "success_pattern",
                    "failure_pattern",
                    "workflow_step",
                    "insight",
                    "context_switch",
                ],
                "description": "What kind of observation this is.",
            },
            "content": {
                "type": "string",
                "minLength": 1,
                "maxLength": OBSERVATION_MAX_CHARS,
                "description": f"What to remember (at most {OBSERVATION_MAX_CHARS:,} characters).",
            },
            "outcome": {
                "type": "string",
                "enum": _OUTCOMES,
                "description": "How it turned out; successes are more likely to be kept.",
            },
            "metadata": {
                "type": "object",
                "additionalProperties": {},
                "description": "Anything else worth keeping, e.g. tool_name, mcp_server, error_code.",
            },
        },
        ["session_uuid", "type", "content"],
        [
            {
                "session_uuid": _EXAMPLE_UUID,
                "type": "error_pattern",
                "content": "The deploy script fails when the staging cluster's kubeconfig has expired",
                "outcome": "failure",
                "metadata": {"tool_name": "deploy", "mcp_server": "ci"},
            },
            {
                "session_uuid": _EXAMPLE_UUID,
                "type": "user_preference",
                "content": "Prefers concise answers with code first",
            },
        ],
    ),
    annotations=hints(read_only=False, destructive=False, idempotent=False),
    handler=_observe,
    activity=MEMORY,
)

SEARCH = BuiltinTool(
    name="pluggedin_memory_search",
    description=(
        "Search your memories by meaning. Each result is short (UUID, ring, decay stage, similarity and a "
        "condensed text); call pluggedin_memory_details with the UUIDs you need for their full content."
    ),
    input_schema=_schema(
        "Search memories by semantic similarity.",
        {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": 1000,
                "description": "What you are looking for, in plain words.",
            },
            "ring_types": {
                "type": "array",
                "items": {"type": "string", "enum": ["procedures", "practice", "longterm", "shocks"]},
                "description": "Only search these memory rings.",
            },
            "agent_uuid": {**_UUID, "description": "Only search this agent's memories."},
            "top_k": {
                "type": "integer",
                "minimum": 1,
                "maximum": 50,
                "default": 10,
                "description": "How many results at most.",
            },
            "include_gut": {
                "type": "boolean",
                "default": False,
                "description": "Also return collective gut patterns shared across users.",
            },
        },
        ["query"],
        [
            {"query": "how we rotate database credentials"},
            {"query": "flaky tests", "ring_types": ["shocks"], "top_k": 5},
        ],
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_search,
    activity=MEMORY,
)

DETAILS = BuiltinTool(
    name="pluggedin_memory_details",
    description=(
        "Get the full content and history of memories found with pluggedin_memory_search: decay stage, "
        "relevance, success, reinforcements, access count and the most complete text still kept."
    ),
    input_schema=_schema(
        "Get full details of selected memories.",
        {
            "memory_uuids": {
                "type": "array",
                "items": _UUID,
                "minItems": 1,
                "maxItems": 20,
                "description": "UUIDs from pluggedin_memory_search (1 to 20).",
            }
        },
        ["memory_uuids"],
        [{"memory_uuids": [_EXAMPLE_UUID]}],
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_details,
    activity=MEMORY,
)

CBP_QUERY = BuiltinTool(
    name="pluggedin_cbp_query",
    description=(
        "Ask the collective best practices: anonymised patterns learnt across all plugged.in users. Use it "
        "before a risky tool call (proactive_warning), after a failure (post_error), or for general advice "
        "(contextual)."
    ),
    input_schema=_schema(
        "Query collective best practices.",
        {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2000,
                "description": "The situation or question, in plain words.",
            },
            "context": {
                "type": "string",
                "enum": ["proactive_warning", "post_error", "contextual"],
                "default": "contextual",
                "description": "When you ask: before a tool call, after an error, or in general.",
            },
            "tool_name": {
                "type": "string",
                "maxLength": 200,
                "description": "The tool concerned, for proactive_warning and post_error.",
            },
            "error_message": {"type": "string", "maxLength": 1000, "description": "The error, for post_error."},
        },
        ["query"],
        [
            {"query": "git push rejected as non-fast-forward", "context": "post_error", "tool_name": "git_push"},
            {"query": "paginating a REST API"},
        ],
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=False),
    handler=_cbp_query,
    activity=CBP,
)

CBP_FEEDBACK = BuiltinTool(
    name="pluggedin_cbp_feedback",
    description="Rate a collective pattern from pluggedin_cbp_query, so good advice rises and bad advice fades.",
    input_schema=_schema(
        "Rate a collective pattern.",
        {
            "pattern_uuid": {**_UUID, "description": "The pattern's UUID from pluggedin_cbp_query."},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5, "description": "1 (useless) to 5 (very useful)."},
            "feedback_type": {
                "type": "string",
                "enum": ["helpful", "inaccurate", "outdated", "dangerous"],
                "description": "What best describes the pattern.",
            },
            "comment": {"type": "string", "maxLength": 1000, "description": "Anything else to say about it."},
        },
        ["pattern_uuid", "rating", "feedback_type"],
        [{"pattern_uuid": _EXAMPLE_UUID, "rating": 5, "feedback_type": "helpful"}],
    ),
    annotations=hints(read_only=False, destructive=False, idempotent=False),
    handler=_cbp_feedback,
    activity=CBP,
)

SEARCH_WITH_CONTEXT = BuiltinTool(
    name="pluggedin_memory_search_with_context",
    description=(
        "Search collective patterns weighted by Jungian archetype (Shadow for warnings, Sage for knowledge, "
        "Hero for workflows, Trickster for creative workarounds), chosen from the outcome and tool you give."
    ),
    input_schema=_schema(
        "Search patterns with archetype weighting.",
        {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2000,
                "description": "What you are looking for, in plain words.",
            },
            "tool_name": {
                "type": "string",
                "maxLength": 200,
                "description": "The tool you are about to use or just used.",
            },
            "outcome": {
                "type": "string",
                "enum": _OUTCOMES,
                "description": "How the last step went; a failure favours warnings and fixes.",
            },
            "include_archetypes": {
                "type": "boolean",
                "default": True,
                "description": "Weight the patterns by archetype.",
            },
        },
        ["query"],
        [{"query": "database migration rollback", "outcome": "failure"}],
    ),
    annotations=hints(read_only=True, destructive=False, idempotent=False),
    handler=_search_with_context,
    activity=JUNGIAN,
)

INDIVIDUATION = BuiltinTool(
    name="pluggedin_memory_individuation",
    description=(
        "Show how far your memory has matured: an individuation score out of 100 made of memory depth, "
        "learning velocity, collective contribution and self-awareness, with the weekly trend and a tip."
    ),
    input_schema=_schema("Get the individuation score; takes no arguments.", {}, [], [{}]),
    annotations=hints(read_only=True, destructive=False, idempotent=True),
    handler=_individuation,
    activity=JUNGIAN,
)

TOOLS: tuple[BuiltinTool, ...] = (
    SESSION_START,
    SESSION_END,
    OBSERVE,
    SEARCH,
    DETAILS,
    CBP_QUERY,
    CBP_FEEDBACK,
    SEARCH_WITH_CONTEXT,
    INDIVIDUATION,
)
