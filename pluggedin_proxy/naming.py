"""Exposed names and the exact index that maps them back to `(server, original name)`.

Tools and prompts are exposed as `<server-slug>__<name>`. Slugs follow the plugged.in App's rules
(lower-case letters, digits and single hyphens, at most 50 characters, unique), so a slug never
contains an underscore and the first `__` always ends it. Clients only accept names matching
`^[A-Za-z0-9_-]{1,64}$`: a name that breaks that rule is also exposed under a stable alias
(legal characters, truncated, plus a short hash of the full name) while the full name stays
callable. Names are resolved through the index, never by parsing, and a collision never
overwrites: the later entry gets a disambiguated name and a warning is logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "MAX_NAME_LENGTH",
    "SEPARATOR",
    "NameIndex",
    "NamedEntry",
    "is_client_safe",
    "slugify",
    "unique_slugs",
]

logger = logging.getLogger(__name__)

SEPARATOR = "__"
MAX_NAME_LENGTH = 64
MAX_SLUG_LENGTH = 50
# Hex digits of the full name's hash kept in an alias: enough to make collisions implausible.
ALIAS_HASH_LENGTH = 8

_CLIENT_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def slugify(name: str) -> str:
    """The App's slug for a server name: `My Server (v2)` becomes `my-server-v2`."""
    slug = re.sub(r"[^a-z0-9 -]", "", name.lower())
    slug = re.sub(r"-+", "-", slug.replace(" ", "-")).strip("-")
    slug = slug[:MAX_SLUG_LENGTH].strip("-")
    return slug or "server"


def unique_slugs(names: Iterable[str]) -> list[str]:
    """Slugs for `names`, in order, made unique the way the App does (`-1`, `-2`, …)."""
    taken: set[str] = set()
    result: list[str] = []
    for name in names:
        base = slugify(name)
        slug, n = base, 0
        while slug in taken:
            n += 1
            suffix = f"-{n}"
            slug = base[: MAX_SLUG_LENGTH - len(suffix)].rstrip("-") + suffix
        taken.add(slug)
        result.append(slug)
    return result


def is_client_safe(name: str) -> bool:
    """Whether every common client accepts `name` as a tool or prompt name."""
    return bool(_CLIENT_SAFE.match(name))


def _alias(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:ALIAS_HASH_LENGTH]
    stem = _UNSAFE_CHARS.sub("_", name)[: MAX_NAME_LENGTH - ALIAS_HASH_LENGTH - 1]
    return f"{stem}_{digest}"


@dataclass(frozen=True, slots=True)
class NamedEntry:
    """One exposed name and what it stands for."""

    exposed: str
    """The name clients see in listings."""
    server_id: str
    original: str
    """The name the upstream server knows."""
    full: str
    """`<slug>__<original>` (or `original` without prefixing); always callable, even when aliased."""


class NameIndex:
    """Exposed names of one kind (tools or prompts) across servers, and the way back."""

    def __init__(self, entries: Iterable[tuple[str, str, str]], *, prefix: bool = True) -> None:
        """Index `(server_id, slug, original)` triples, in listing order."""
        self._entries: list[NamedEntry] = []
        self._by_name: dict[str, NamedEntry] = {}
        self._seen: set[tuple[str, str]] = set()
        for server_id, slug, original in entries:
            self._add(server_id, slug, original, prefix=prefix)

    def _add(self, server_id: str, slug: str, original: str, *, prefix: bool) -> None:
        if (server_id, original) in self._seen:
            logger.warning("server %r lists %r twice; keeping the first", server_id, original)
            return
        self._seen.add((server_id, original))
        full = f"{slug}{SEPARATOR}{original}" if prefix else original
        if full in self._by_name:
            owner = self._by_name[full]
            # Only possible without prefixing (slugs are unique): keep both, prefix the newcomer.
            logger.warning(
                "name %r is offered by servers %r and %r; exposing the second as %r",
                original,
                owner.server_id,
                server_id,
                f"{slug}{SEPARATOR}{original}",
            )
            full = f"{slug}{SEPARATOR}{original}"
        exposed = full if is_client_safe(full) else _alias(full)
        while exposed in self._by_name:
            exposed = _alias(exposed + server_id)
        entry = NamedEntry(exposed=exposed, server_id=server_id, original=original, full=full)
        self._entries.append(entry)
        self._by_name[exposed] = entry
        self._by_name.setdefault(full, entry)

    def __iter__(self) -> Iterator[NamedEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def without(self, exposed: Container[str]) -> NameIndex:
        """This index minus the entries exposed as one of `exposed`; every other entry keeps its names.

        Indexing the rest afresh could hand a removed entry's name to another server's item.
        """
        index = NameIndex(())
        for entry in self._entries:
            if entry.exposed not in exposed:
                index._entries.append(entry)
                index._seen.add((entry.server_id, entry.original))
                index._by_name[entry.exposed] = entry
                index._by_name.setdefault(entry.full, entry)
        return index

    def resolve(self, name: str) -> NamedEntry | None:
        """The entry an exposed, full or aliased name stands for, if any."""
        return self._by_name.get(name)
