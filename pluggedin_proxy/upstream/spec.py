"""What the proxy needs to know to reach one upstream MCP server.

A `ServerSpec` is produced by a catalog (local config or the plugged.in App) and consumed by the
upstream pool. Only the connection fields (transport, command, args, env, cwd, url, headers) decide
whether two specs reach the same process or session: `connection_key` hashes exactly those, in a
canonical form, so a renamed server or a re-ordered JSON object never respawns anything.

What a spec may carry is defined here too, so both catalogs check it alike as they build specs: env
names match `ENV_NAME`, header names `HEADER_NAME` (an RFC 7230 token), and neither env nor header
values hold NUL, CR or LF (`has_unsafe_chars`). Arguments are never checked: they reach the child
verbatim, without a shell.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ENV_NAME",
    "HEADER_NAME",
    "CustomInstructions",
    "Isolation",
    "ServerSpec",
    "Transport",
    "has_unsafe_chars",
    "shown_name",
    "without_unsafe_chars",
]

Transport = Literal["stdio", "sse", "streamable-http"]
Isolation = Literal["shared", "per-client"]

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What an environment variable's name may be (POSIX, lower case allowed); match with `fullmatch`."""
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""What an HTTP header's name may be: an RFC 7230 token; match with `fullmatch`."""
# A NUL ends a C string early; CR and LF would start a new header line or environment entry.
_UNSAFE_CHARS = ("\x00", "\r", "\n")
_NAME_PREFIX = re.compile(r"[A-Za-z0-9_.-]*")


@dataclass(frozen=True, slots=True)
class CustomInstructions:
    """What a server's owner wants every client to know when using it."""

    messages: tuple[tuple[str, str], ...]
    """`(role, text)` pairs, role `user` or `assistant`, as served by the server's instructions prompt."""
    description: str | None = None
    text: str = ""
    """The instructions as written: every message's text, one per line."""

    @classmethod
    def parse(cls, value: Any, description: str | None = None) -> CustomInstructions | None:
        """Read instructions as the App stores them: a JSON array of messages, or plain text.

        Strings and `user`/`assistant` messages keep their role; `system` messages (and messages
        without a role) become user messages starting `System: `, since prompts carry no system
        role; any other single value becomes one assistant message. Returns `None` when empty.
        """
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = [value]
        if value is None:
            return None
        items = value if isinstance(value, list) else None
        messages: list[tuple[str, str]] = []
        texts: list[str] = []
        if items is None:
            text = _message_text(value)
            if text:
                messages.append(("assistant", text))
                texts.append(text)
        for item in items or ():
            role = item.get("role") if isinstance(item, dict) else "user"
            text = _message_text(item.get("content") if isinstance(item, dict) else item)
            if not text:
                continue
            texts.append(text)
            if role in ("user", "assistant"):
                messages.append((role, text))
            else:
                messages.append(("user", f"System: {text}"))
        return cls(tuple(messages), description, "\n".join(texts)) if messages else None


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One upstream MCP server: its identity, how to reach it, and per-server options."""

    id: str
    """Stable identifier: the config key locally, the server UUID in App mode."""
    name: str
    """Human name shown in logs, errors and `doctor`."""
    slug: str
    """Prefix of exposed tool and prompt names (`<slug>__<name>`); never contains an underscore."""
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    """Extra environment for a stdio server, sorted by key; merged over the inherited environment."""
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """Extra HTTP headers for SSE and Streamable HTTP servers, sorted by name."""
    instructions: CustomInstructions | None = None
    """Custom instructions attached to this server's tools and served as a prompt."""
    timeout: float | None = None
    """Per-request timeout in seconds, restarted by each progress notification; `None` means the proxy default."""
    isolation: Isolation = "shared"
    """`shared`: one upstream session serves every client; `per-client`: each downstream session gets its own."""
    max_concurrency: int | None = None
    """Calls in flight at once; `None` means the proxy default."""
    max_clients: int | None = None
    """With `per-client` isolation, sessions at once; `None` means the proxy default."""
    idle_timeout: float | None = None
    """Seconds unused after which a session is closed; `None` means never (shared) or the proxy default."""
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Catalog-specific fields kept for diagnostics; never part of the connection key."""
    connection_key: str = field(init=False, repr=False, compare=False)
    """A short hash of the canonical connection fields; equal keys share one upstream."""

    def __post_init__(self) -> None:
        # Computed once: every request looks its upstream up by this key.
        object.__setattr__(self, "connection_key", self._hash_connection())

    def _hash_connection(self) -> str:
        canonical = {
            "transport": self.transport,
            "command": self.command,
            "args": list(self.args),
            "env": sorted(self.env),
            "cwd": self.cwd,
            "url": self.url,
            "headers": sorted((k.lower(), v) for k, v in self.headers),
        }
        blob = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def target(self) -> str:
        """Where the server lives, safe to show: the program name or the URL without credentials."""
        if self.transport == "stdio":
            return self.command or "?"
        return _strip_userinfo(self.url or "?")


def has_unsafe_chars(value: str) -> bool:
    """Whether `value` holds a NUL, CR or LF, which no environment or header value may carry."""
    return any(c in value for c in _UNSAFE_CHARS)


def without_unsafe_chars(value: str) -> str:
    """`value` with every NUL, CR and LF removed."""
    for c in _UNSAFE_CHARS:
        value = value.replace(c, "")
    return value


def shown_name(name: str) -> str:
    """An invalid variable or header name as it may appear in a message.

    It is cut at its first unusual character, where a pasted `KEY=value` or `Name: value` would start its
    value, and kept short.
    """
    prefix = _NAME_PREFIX.match(name)
    kept = prefix.group(0)[:64] if prefix else ""
    return repr(kept + "…") if len(kept) < len(name) else repr(kept)


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, dict):
        text = content.get("text")
        return text.strip() if isinstance(text, str) else json.dumps(content)
    if isinstance(content, list):
        return "\n".join(t for t in (_message_text(c) for c in content) if t)
    return "" if content is None else json.dumps(content)


def _strip_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    # Query strings often carry tokens (`?api_key=`); the path is enough to recognise a server.
    path = path.split("?", 1)[0]
    return f"{scheme}://{host}{slash}{path}"
