"""Every built-in's name, schema and annotations against the reference table.

The table below is transcribed from `reference/pluggedin-proxy.md` Appendix A (the schemas the
TypeScript proxy emits on the wire). Each row: annotations (read-only, destructive, idempotent),
schema style, required fields, and per-field keywords that must match exactly (enums, defaults,
bounds, types). Paths into nested objects are written `a.b`; array items `a[]`.
"""

from __future__ import annotations

from typing import Any

import pytest

from pluggedin_proxy.builtins import ALL_TOOLS
from pluggedin_proxy.builtins.base import SCHEMA_DRAFT

MODEL = {"type": "object"}
CATEGORY = ["report", "analysis", "documentation", "guide", "research", "code", "other"]
VISIBILITY = ["private", "workspace", "public"]
MIME = r"^[\w.-]+/[\w.+-]+$"
OUTCOME = ["success", "failure", "neutral"]
OBSERVATION = [
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
]
CLIPBOARD_WRITE = {
    "value": {"type": "string"},
    "contentType": {"type": "string", "pattern": MIME, "maxLength": 256, "default": "text/plain"},
    "encoding": {"enum": ["utf-8", "base64", "hex"], "default": "utf-8"},
    "visibility": {"enum": VISIBILITY, "default": "private"},
    "createdByTool": {"maxLength": 255},
    "createdByModel": {"maxLength": 255},
    "ttlSeconds": {"type": "integer", "minimum": 1, "maximum": 31536000},
}

# name: ((read-only, destructive, idempotent), style, required, {field path: keywords})
REFERENCE: dict[str, tuple[tuple[bool, bool, bool], str, set[str], dict[str, dict[str, Any]]]] = {
    "pluggedin_setup": (
        (True, False, True),
        "hand",
        set(),
        {
            "topic": {
                "enum": ["getting_started", "api_key", "configuration", "troubleshooting"],
                "default": "getting_started",
            }
        },
    ),
    "pluggedin_discover_tools": (
        (True, False, False),
        "zod",
        set(),
        {"server_uuid": {"type": "string"}, "force_refresh": {"type": "boolean", "default": False}},
    ),
    "pluggedin_ask_knowledge_base": (
        (True, False, False),
        "zod",
        {"query"},
        {"query": {"type": "string", "minLength": 1, "maxLength": 1000}},
    ),
    "pluggedin_create_document": (
        (False, False, False),
        "zod",
        {"title", "content", "metadata"},
        {
            "title": {"minLength": 1, "maxLength": 255},
            "content": {"minLength": 1},
            "format": {"enum": ["md", "txt", "json", "html"], "default": "md"},
            "tags": {"type": "array", "maxItems": 20},
            "category": {"enum": CATEGORY, "default": "other"},
            "metadata": {"type": "object"},
            "metadata.model": MODEL,
            "metadata.visibility": {"enum": VISIBILITY, "default": "private"},
            "metadata.conversationContext": {"type": "array"},
            "metadata.sourceDocuments": {"type": "array"},
            "metadata.generationParams.temperature": {"minimum": 0, "maximum": 2},
            "metadata.generationParams.topP": {"minimum": 0, "maximum": 1},
        },
    ),
    "pluggedin_list_documents": (
        (True, False, True),
        "zod",
        set(),
        {
            "filters.source": {"enum": ["all", "upload", "ai_generated", "api"], "default": "all"},
            "filters.category": {"enum": CATEGORY},
            "filters.tags": {"type": "array"},
            "sort": {"enum": ["date_desc", "date_asc", "title", "size"], "default": "date_desc"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            "offset": {"type": "integer", "minimum": 0, "default": 0},
        },
    ),
    "pluggedin_search_documents": (
        (True, False, True),
        "zod",
        {"query"},
        {
            "query": {"minLength": 1, "maxLength": 500},
            "filters": {"type": "object"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
        },
    ),
    "pluggedin_get_document": (
        (True, False, True),
        "zod",
        {"documentId"},
        {
            "documentId": {"type": "string"},
            "includeContent": {"type": "boolean", "default": False},
            "includeVersions": {"type": "boolean", "default": False},
        },
    ),
    "pluggedin_update_document": (
        (False, False, False),
        "zod",
        {"documentId", "operation", "content"},
        {
            "operation": {"enum": ["replace", "append", "prepend"]},
            "content": {"minLength": 1},
            "metadata.model": MODEL,
        },
    ),
    "pluggedin_send_notification": (
        (False, False, False),
        "hand",
        {"message"},
        {
            "title": {"type": "string"},
            "message": {"type": "string"},
            "severity": {"enum": ["INFO", "SUCCESS", "WARNING", "ALERT"], "default": "INFO"},
            "sendEmail": {"type": "boolean", "default": False},
        },
    ),
    "pluggedin_list_notifications": (
        (True, False, True),
        "hand",
        set(),
        {
            "onlyUnread": {"type": "boolean", "default": False},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        },
    ),
    "pluggedin_mark_notification_done": ((False, False, True), "hand", {"notificationId"}, {}),
    "pluggedin_delete_notification": ((False, True, True), "hand", {"notificationId"}, {}),
    "pluggedin_clipboard_set": (
        (False, False, False),
        "zod",
        {"value"},
        {"name": {"maxLength": 255}, "idx": {"type": "integer"}, **CLIPBOARD_WRITE},
    ),
    "pluggedin_clipboard_get": (
        (True, False, True),
        "zod",
        set(),
        {
            "idx": {"type": "integer"},
            "limit": {"minimum": 1, "maximum": 100, "default": 50},
            "offset": {"minimum": 0, "default": 0},
        },
    ),
    "pluggedin_clipboard_delete": (
        (False, True, True),
        "zod",
        set(),
        {"idx": {"type": "integer"}, "clearAll": {"type": "boolean", "default": False}},
    ),
    "pluggedin_clipboard_list": (
        (True, False, True),
        "zod",
        set(),
        {"limit": {"minimum": 1, "maximum": 100, "default": 50}, "offset": {"minimum": 0, "default": 0}},
    ),
    "pluggedin_clipboard_push": ((False, False, False), "zod", {"value"}, CLIPBOARD_WRITE),
    "pluggedin_clipboard_pop": ((False, True, False), "zod", set(), {}),
    "pluggedin_memory_session_start": (
        (False, False, False),
        "zod",
        {"content_session_id"},
        {"content_session_id": {"minLength": 1}, "agent_uuid": {"type": "string"}},
    ),
    "pluggedin_memory_session_end": (
        (False, False, False),
        "zod",
        {"memory_session_id"},
        {"memory_session_id": {"pattern": "^[a-zA-Z0-9_-]+$"}},
    ),
    "pluggedin_memory_observe": (
        (False, False, False),
        "zod",
        {"session_uuid", "type", "content"},
        {
            "type": {"enum": OBSERVATION},
            # Deliberately 10,000 where the TypeScript proxy said 50,000: the App rejects more.
            "content": {"minLength": 1, "maxLength": 10000},
            "outcome": {"enum": OUTCOME},
            "metadata": {"type": "object"},
        },
    ),
    "pluggedin_memory_search": (
        (True, False, True),
        "zod",
        {"query"},
        {
            "query": {"minLength": 1, "maxLength": 1000},
            "ring_types[]": {"enum": ["procedures", "practice", "longterm", "shocks"]},
            "top_k": {"minimum": 1, "maximum": 50, "default": 10},
            "include_gut": {"type": "boolean", "default": False},
        },
    ),
    "pluggedin_memory_details": (
        (True, False, True),
        "zod",
        {"memory_uuids"},
        {"memory_uuids": {"type": "array", "minItems": 1, "maxItems": 20}},
    ),
    "pluggedin_cbp_query": (
        (True, False, False),
        "zod",
        {"query"},
        {
            "query": {"minLength": 1, "maxLength": 2000},
            "context": {"enum": ["proactive_warning", "post_error", "contextual"], "default": "contextual"},
            "tool_name": {"maxLength": 200},
            "error_message": {"maxLength": 1000},
        },
    ),
    "pluggedin_cbp_feedback": (
        (False, False, False),
        "zod",
        {"pattern_uuid", "rating", "feedback_type"},
        {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "feedback_type": {"enum": ["helpful", "inaccurate", "outdated", "dangerous"]},
            "comment": {"maxLength": 1000},
        },
    ),
    "pluggedin_memory_search_with_context": (
        (True, False, False),
        "zod",
        {"query"},
        {
            "query": {"minLength": 1, "maxLength": 2000},
            "tool_name": {"maxLength": 200},
            "outcome": {"enum": OUTCOME},
            "include_archetypes": {"type": "boolean", "default": True},
        },
    ),
    "pluggedin_memory_individuation": ((True, False, True), "zod", set(), {}),
}

BY_NAME = {tool.name: tool for tool in ALL_TOOLS}


def _field(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in path.split("."):
        items = part.endswith("[]")
        node = node["properties"][part.removesuffix("[]")]
        if items:
            node = node["items"]
    return node


def test_every_tool_of_the_typescript_proxy_is_built_in_in_its_order() -> None:
    assert [tool.name for tool in ALL_TOOLS] == list(REFERENCE)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_schema_and_annotations_match_the_reference(name: str) -> None:
    (read_only, destructive, idempotent), style, required, fields = REFERENCE[name]
    wire = BY_NAME[name].wire
    schema = wire["inputSchema"]
    hints = wire["annotations"]
    assert (hints["readOnlyHint"], hints["destructiveHint"], hints["idempotentHint"]) == (
        read_only,
        destructive,
        idempotent,
    )
    assert schema["type"] == "object"
    assert set(schema.get("required", ())) == required
    if style == "zod":
        assert schema["$schema"] == SCHEMA_DRAFT
        assert schema["additionalProperties"] is False
        assert isinstance(schema["description"], str) and schema["description"]
    else:
        assert "$schema" not in schema and "additionalProperties" not in schema
    for path, expected in fields.items():
        actual = _field(schema, path)
        assert {key: actual.get(key) for key in expected} == expected, path
    assert isinstance(wire["description"], str) and len(wire["description"]) > 20
