"""Tool pinning: each upstream tool's definition as first seen, so that a silent rewrite is noticed.

A tool's digest is the sha256 of the canonical JSON of its name, description and input and output
schemas. The first time a server offers a tool, that digest is recorded and the tool is trusted
(trust on first use). When the server later offers a different definition under the same name,
the tool is *changed*: the change is logged once per process (naming the server and the tool,
never the description), kept in the store for `doctor` and `/health`, and, when the store is
enforced (`--pin-tools`), the router withholds the tool until a person approves the new
definition with `pluggedin-mcp tools --approve NAME`. Approving adds the digest to the tool's
approved versions; a tool that changes back to a version approved before is trusted again.

Pins live in the user's data directory, not the cache (clearing a cache must not reset trust):
one file per catalog source, keyed by the config file's path or by the App's base URL and a hash
of the API key, never the key itself. Several processes may share a file (one proxy per client,
and the `tools --approve` command), so every write merges with what is on disk first and lands
atomically (temporary file, then rename); a running proxy that withholds a tool notices when the
file changes and takes approvals in without a restart. An unreadable file is reported, moved
aside and replaced by a fresh one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mcp_types as types

from pluggedin_proxy.catalog.local import _path_hash

__all__ = ["OfferedTool", "PinStore", "ToolChange", "app_pins_path", "config_pins_path", "default_data_dir"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Approved versions kept per tool: enough for a tool shown both as the App stored it and as its
# server lists it live, small enough that the file stays small.
MAX_APPROVED = 5
# The fields a pin covers: what a model reads (description, schema texts) and what a call must fit.
_PINNED_FIELDS = ("name", "description", "inputSchema", "outputSchema")


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/pluggedin-mcp`, else `~/.local/share/pluggedin-mcp`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pluggedin-mcp"


def config_pins_path(config_path: Path, data_dir: Path | None = None) -> Path:
    """The pin file of a local config file, keyed as its listings cache is."""
    return (data_dir or default_data_dir()) / f"pins-{_path_hash(config_path)}.json"


def app_pins_path(base_url: str, api_key: str, data_dir: Path | None = None) -> Path:
    """The pin file of one App and API key (each key may see other servers); the key is only hashed."""
    key_hash = hashlib.sha256(api_key.encode()).hexdigest()
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{key_hash}".encode()).hexdigest()[:16]
    return (data_dir or default_data_dir()) / f"pins-app-{digest}.json"


@dataclass(frozen=True, slots=True)
class OfferedTool:
    """One tool as a server offers it, with the name the proxy exposes it under."""

    server_id: str
    server_name: str
    exposed: str
    tool: types.Tool


@dataclass(frozen=True, slots=True)
class ToolChange:
    """A tool whose current definition matches none of its approved versions."""

    server_id: str
    server_name: str
    tool: str
    """The name the server knows."""
    exposed: str
    """The name clients see, and the one `tools --approve` takes."""
    digest: str
    """The digest of the current, unapproved definition."""
    since: float
    """When this definition was first noticed (seconds since the epoch)."""


@dataclass(slots=True)
class _Pin:
    """What the store knows of one tool of one server."""

    approved: dict[str, float] = field(default_factory=dict)
    """Approved digests, each with when it was approved (or first seen)."""
    change: ToolChange | None = None
    changed_at: float = 0.0
    """When `change` was last set or cleared: the newer of two writers wins."""


_Pins = dict[str, dict[str, _Pin]]


class PinStore:
    """The approved definitions of every upstream tool of one catalog source, persisted as JSON."""

    def __init__(
        self,
        path: Path,
        *,
        enforce: bool = False,
        hash_output_schema: bool = True,
        warn: bool = True,
        source: str = "",
    ) -> None:
        """Read `path` now (a missing file is an empty store).

        `enforce` asks the router to withhold changed tools. `hash_output_schema=False` leaves
        output schemas out of the digest, for a source that does not keep them (the App). `warn`
        logs each change once (off for a command that shows changes itself). `source` names the
        catalog in the file, for people reading it.
        """
        self.path = path
        self.enforce = enforce
        self._warn_changes = warn
        self._fields = _PINNED_FIELDS if hash_output_schema else tuple(f for f in _PINNED_FIELDS if f != "outputSchema")
        self._source = source
        self._pins: _Pins = self._read() or {}
        self._signature = self._stat()
        # Per (server, tool): the tool object last hashed and its digest; views rebuilt for another
        # server's news hand in the same objects again.
        self._digests: dict[tuple[str, str], tuple[types.Tool, str]] = {}
        self._warned: set[tuple[str, str, str]] = set()
        self._write_failed = False

    def digest(self, tool: types.Tool) -> str:
        """The pinned digest of `tool`: sha256 over the canonical JSON of its pinned fields."""
        wire = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
        pinned = {key: wire[key] for key in self._fields if key in wire}
        canonical = json.dumps(pinned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def check(self, offered: Iterable[OfferedTool]) -> dict[str, ToolChange]:
        """Compare every offered tool with its pins: record new tools, return the changed ones by exposed name."""
        now = time.time()
        changes: dict[str, ToolChange] = {}
        dirty = False
        for item in offered:
            digest = self._digest_of(item)
            pin = self._pins.setdefault(item.server_id, {}).get(item.tool.name)
            if pin is None:
                self._pins[item.server_id][item.tool.name] = _Pin(approved={digest: now})
                dirty = True
                continue
            if digest in pin.approved:
                if pin.change is not None:  # changed back to an approved version
                    pin.change, pin.changed_at = None, now
                    dirty = True
                continue
            change = pin.change
            if change is None or change.digest != digest:
                change = ToolChange(item.server_id, item.server_name, item.tool.name, item.exposed, digest, now)
            elif (change.exposed, change.server_name) != (item.exposed, item.server_name):
                change = replace(change, exposed=item.exposed, server_name=item.server_name)
            if change != pin.change:
                pin.change, pin.changed_at = change, now
                dirty = True
            changes[item.exposed] = change
        if dirty:
            self._save()  # merges: another process may have approved some of these meanwhile
            changes = {
                name: c for name, c in changes.items() if c.digest not in self._pins[c.server_id][c.tool].approved
            }
        for change in changes.values():
            self._warn(change)
        return changes

    def approve(self, server_id: str, tool: str, digest: str) -> None:
        """Approve one definition of a tool: it is served again, and a later change is noticed anew."""
        now = time.time()
        pin = self._pins.setdefault(server_id, {}).setdefault(tool, _Pin())
        pin.approved[digest] = now
        _trim(pin)
        if pin.change is not None and pin.change.digest in pin.approved:
            pin.change, pin.changed_at = None, now
        self._save()

    def changes(self) -> list[ToolChange]:
        """Every change recorded and not approved yet, oldest first (as last noticed by any process)."""
        found = [pin.change for tools in self._pins.values() for pin in tools.values() if pin.change is not None]
        return sorted(found, key=lambda change: change.since)

    def __len__(self) -> int:
        """How many tools are pinned."""
        return sum(len(tools) for tools in self._pins.values())

    def reload_if_changed(self) -> bool:
        """Take in what another process wrote since we last read or wrote; return whether the file changed."""
        signature = self._stat()
        if signature == self._signature:
            return False
        self._signature = signature
        on_disk = self._read()
        if on_disk is not None:
            self._pins = _merge(on_disk, self._pins)
        return True

    def _digest_of(self, item: OfferedTool) -> str:
        key = (item.server_id, item.tool.name)
        cached = self._digests.get(key)
        if cached is not None and cached[0] is item.tool:
            return cached[1]
        digest = self.digest(item.tool)
        self._digests[key] = (item.tool, digest)
        return digest

    def _warn(self, change: ToolChange) -> None:
        key = (change.server_id, change.tool, change.digest)
        if not self._warn_changes or key in self._warned:
            return
        self._warned.add(key)
        if self.enforce:
            logger.warning(
                "server %r changed its tool %r since it was approved; withheld until approved "
                "(review it, then run `pluggedin-mcp tools --approve %s`)",
                change.server_name,
                change.exposed,
                change.exposed,
            )
        else:
            logger.warning(
                "server %r changed its tool %r since it was approved; still served (--pin-tools withholds "
                "changed tools); review it, then run `pluggedin-mcp tools --approve %s` to accept it",
                change.server_name,
                change.exposed,
                change.exposed,
            )

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read(self) -> _Pins | None:
        """The pins on disk; `None` when there is no file, or an unreadable one (moved aside)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
                raise ValueError("not a pin file")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            logger.warning(
                "ignoring unreadable tool pins %s (%s); starting afresh, old file kept as %s", self.path, exc, aside
            )
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            return None
        return _parse(data["servers"])

    def _save(self) -> None:
        on_disk = self._read()
        if on_disk is not None:
            self._pins = _merge(on_disk, self._pins)
        payload = json.dumps(
            {"version": FORMAT_VERSION, "source": self._source, "servers": _dump(self._pins)},
            indent=1,
            sort_keys=True,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".pins-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(payload)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            if not self._write_failed:  # once: the proxy keeps working with the pins in memory
                logger.warning("could not save tool pins to %s: %s", self.path, exc)
            self._write_failed = True
            return
        self._signature = self._stat()


def _trim(pin: _Pin) -> None:
    if len(pin.approved) > MAX_APPROVED:
        newest = sorted(pin.approved.items(), key=lambda item: item[1])[-MAX_APPROVED:]
        pin.approved = dict(newest)


def _merge(theirs: _Pins, ours: _Pins) -> _Pins:
    """Both writers' pins: approvals united, each tool's change as its newer writer left it."""
    merged: _Pins = {}
    for server_id in theirs.keys() | ours.keys():
        a, b = theirs.get(server_id, {}), ours.get(server_id, {})
        tools: dict[str, _Pin] = {}
        for name in a.keys() | b.keys():
            pa, pb = a.get(name, _Pin()), b.get(name, _Pin())
            approved = dict(pa.approved)
            for digest, when in pb.approved.items():
                approved[digest] = max(when, approved.get(digest, when))
            newer = pb if pb.changed_at >= pa.changed_at else pa
            pin = _Pin(approved=approved, change=newer.change, changed_at=newer.changed_at)
            _trim(pin)
            if pin.change is not None and pin.change.digest in pin.approved:
                pin.change = None
            tools[name] = pin
        merged[server_id] = tools
    return merged


def _dump(pins: _Pins) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    for server_id, tools in pins.items():
        entries: dict[str, Any] = {}
        for name, pin in tools.items():
            entry: dict[str, Any] = {"approved": pin.approved, "changedAt": pin.changed_at}
            if (change := pin.change) is not None:
                entry["changed"] = {
                    "digest": change.digest,
                    "since": change.since,
                    "exposed": change.exposed,
                    "server": change.server_name,
                }
            entries[name] = entry
        servers[server_id] = entries
    return servers


def _parse(servers: Mapping[str, Any]) -> _Pins:
    """The pins in a file's `servers` object; malformed entries are skipped, not fatal."""
    pins: _Pins = {}
    for server_id, tools in servers.items():
        if not isinstance(tools, dict):
            continue
        for name, entry in tools.items():
            try:
                approved = {str(d): float(t) for d, t in entry["approved"].items()}
                changed = entry.get("changed")
                change = None
                if changed is not None:
                    change = ToolChange(
                        server_id=server_id,
                        server_name=str(changed["server"]),
                        tool=name,
                        exposed=str(changed["exposed"]),
                        digest=str(changed["digest"]),
                        since=float(changed["since"]),
                    )
                pin = _Pin(approved=approved, change=change, changed_at=float(entry.get("changedAt", 0.0)))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                logger.debug("ignoring the malformed pin of %r on server %r: %s", name, server_id, exc)
                continue
            pins.setdefault(server_id, {})[name] = pin
    return pins
