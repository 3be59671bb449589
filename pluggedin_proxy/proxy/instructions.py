"""Servers' custom instructions: as context on their tools, and as prompts clients can get.

A server's owner may write instructions for it (`customInstructions` in the App, `instructions` in
a local config). The proxy attaches them to each of the server's tools: the object the TypeScript
proxy sends as a non-standard `metadata` field (`server`, `instructions`, `constraints`,
`formattedContext`) goes into the tool's `_meta` under `plugged.in/metadata` (the SDK, rightly, sends
no unknown fields), and the formatted context is appended to the description, which is what the
model reads. They are also served as a prompt named `<server-slug>__instructions`. Constraints are
read from the text the way the TypeScript proxy reads them; like it, the proxy reports them and
does not enforce them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import mcp_types as types

from pluggedin_proxy.naming import SEPARATOR
from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = [
    "METADATA_KEY",
    "PROMPT_SUFFIX",
    "constraints_of",
    "formatted_context",
    "prompt_name",
    "prompt_result",
    "prompts_for",
]

PROMPT_SUFFIX = "instructions"
METADATA_KEY = "plugged.in/metadata"

_FLAGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("readonly", ("read-only", "readonly")),
    ("noWrites", ("no write", "no mutation")),
    ("noDeletes", ("no delete", "no deletion")),
    ("noUpdates", ("no update", "no modification")),
)
_RATE = re.compile(r"(\d+)\s+requests?\s+per\s+(second|minute|hour)", re.IGNORECASE)
_ALLOWED = re.compile(r"allowed\s+operations?\s*:\s*([^\n.]+)", re.IGNORECASE)
_DENIED = re.compile(r"(?:denied|forbidden|prohibited)\s+operations?\s*:\s*([^\n.]+)", re.IGNORECASE)
_FLAG_WORDS = {
    "readonly": "read-only",
    "noWrites": "no writes",
    "noDeletes": "no deletes",
    "noUpdates": "no updates",
}


def constraints_of(text: str) -> dict[str, Any]:
    """The constraints a text states, by case-insensitive phrase: flags, a rate limit, operation lists."""
    lowered = text.lower()
    found: dict[str, Any] = {flag: True for flag, phrases in _FLAGS if any(p in lowered for p in phrases)}
    if rate := _RATE.search(text):
        found["rateLimit"] = {"count": int(rate.group(1)), "unit": rate.group(2).lower()}
    for key, pattern in (("allowedOperations", _ALLOWED), ("deniedOperations", _DENIED)):
        if match := pattern.search(text):
            operations = [op.strip().lower() for op in re.split(r"[,;]", match.group(1)) if op.strip()]
            if operations:
                found[key] = operations
    return found


def formatted_context(server_name: str, text: str, constraints: dict[str, Any]) -> str:
    """Markdown a model can read: the instructions under a heading, then a summary of constraints."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not any(line.startswith("#") for line in lines):
        lines = [line if line.startswith(("-", "*")) else f"- {line}" for line in lines]
    parts = [f"### Server Context: {server_name}", "", *lines]
    summary = [_FLAG_WORDS[flag] for flag in _FLAG_WORDS if constraints.get(flag)]
    if rate := constraints.get("rateLimit"):
        summary.append(f"at most {rate['count']} requests per {rate['unit']}")
    if allowed := constraints.get("allowedOperations"):
        summary.append("allowed operations: " + ", ".join(allowed))
    if denied := constraints.get("deniedOperations"):
        summary.append("denied operations: " + ", ".join(denied))
    if summary:
        parts += ["", "**Constraints:** " + "; ".join(summary)]
    return "\n".join(parts)


def tool_metadata(spec: ServerSpec) -> dict[str, Any] | None:
    """The `metadata` object attached to each tool of `spec`, or `None` without instructions."""
    if spec.instructions is None:
        return None
    text = spec.instructions.text
    constraints = constraints_of(text)
    return {
        "server": spec.name,
        "instructions": text,
        "constraints": constraints,
        "formattedContext": formatted_context(spec.name, text, constraints),
    }


def prompt_name(spec: ServerSpec) -> str:
    return f"{spec.slug}{SEPARATOR}{PROMPT_SUFFIX}"


def prompts_for(servers: Iterable[ServerSpec]) -> list[types.Prompt]:
    """One prompt per server with instructions."""
    return [
        types.Prompt(
            name=prompt_name(spec),
            title=f"Instructions for {spec.name}",
            description=spec.instructions.description or f"How to use the tools of {spec.name}",
        )
        for spec in servers
        if spec.instructions is not None
    ]


def prompt_result(spec: ServerSpec) -> types.GetPromptResult:
    """The instructions of `spec` as prompt messages."""
    assert spec.instructions is not None
    messages = [
        types.PromptMessage(role=role, content=types.TextContent(text=text))  # type: ignore[arg-type]
        for role, text in spec.instructions.messages
    ]
    return types.GetPromptResult(description=spec.instructions.description, messages=messages)
