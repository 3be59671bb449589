"""The self-hosted App's SQLite database: server first-sight times, the activity log, notifications, clipboard.

One file, `<data dir>/app.db`, opened by `AppStore` with the stdlib `sqlite3`. Every method is short
and synchronous; the App calls them through `anyio.to_thread.run_sync`, so one lock serialises them
across worker threads. Every row carries the profile UUID of the config file it belongs to, so two
configs sharing a data directory never see each other's notifications.

Tables:

- `servers`: when each server UUID was first seen, so `created_at` in `/api/mcp-servers` is the same
  on every call and across restarts (the proxy respawns a server whose JSON changes).
- `mcp_activity`: what the proxy reported through `POST /api/notifications/mcp-activity`.
- `notifications`: custom notifications and the ALERTs created for failed calls.
- `clipboards`: clipboard entries, each with a unique name or a unique index (or both) in its profile.
  Expired entries are deleted by the next clipboard call of their profile, as the App's clean-up does.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["ActivityRow", "AppStore", "ClipboardEntry", "ClipboardWrite", "Notification", "utc_timestamp"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS servers (
    uuid TEXT PRIMARY KEY,
    config_path TEXT NOT NULL,
    key TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mcp_activity (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_uuid TEXT NOT NULL,
    action TEXT NOT NULL,
    server_name TEXT NOT NULL,
    server_uuid TEXT,
    external_id TEXT,
    source TEXT,
    item_name TEXT,
    success INTEGER NOT NULL,
    error_message TEXT,
    execution_time REAL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    profile_uuid TEXT NOT NULL,
    type TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    link TEXT,
    severity TEXT,
    completed INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE TABLE IF NOT EXISTS clipboards (
    uuid TEXT PRIMARY KEY,
    profile_uuid TEXT NOT NULL,
    name TEXT,
    idx INTEGER,
    value TEXT NOT NULL,
    content_type TEXT NOT NULL,
    encoding TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    visibility TEXT NOT NULL,
    created_by_tool TEXT,
    created_by_model TEXT,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS mcp_activity_profile ON mcp_activity (profile_uuid, id);
CREATE INDEX IF NOT EXISTS notifications_profile ON notifications (profile_uuid);
CREATE UNIQUE INDEX IF NOT EXISTS clipboards_name ON clipboards (profile_uuid, name);
CREATE UNIQUE INDEX IF NOT EXISTS clipboards_idx ON clipboards (profile_uuid, idx);
"""

_ACTIVITY_COLUMNS = (
    "id, action, server_name, server_uuid, external_id, source, item_name, success, error_message, "
    "execution_time, created_at"
)
_NOTIFICATION_COLUMNS = (
    "id, profile_uuid, type, title, message, read, link, severity, completed, metadata, created_at, expires_at"
)
_CLIPBOARD_COLUMNS = (
    "uuid, name, idx, value, content_type, encoding, size_bytes, visibility, created_by_tool, created_by_model, "
    "source, created_at, updated_at, expires_at"
)
_CLIPBOARD_INSERT = f"INSERT INTO clipboards (profile_uuid, {_CLIPBOARD_COLUMNS}) VALUES ({', '.join('?' * 15)})"
# What a named set replaces on a name clash: everything but the identity (uuid, name, idx) and `created_at`.
_CLIPBOARD_REPLACED = (
    "value", "content_type", "encoding", "size_bytes", "visibility", "created_by_tool", "created_by_model",
    "source", "updated_at", "expires_at",
)  # fmt: skip


def utc_timestamp(after: timedelta | None = None) -> str:
    """Now (or `after` from now) as the App writes timestamps: ISO 8601, milliseconds, `Z`."""
    moment = datetime.now(UTC) + (after or timedelta())
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One call the proxy reported."""

    id: int
    action: str
    server_name: str
    server_uuid: str | None
    external_id: str | None
    source: str | None
    item_name: str | None
    success: bool
    error_message: str | None
    execution_time: float | None
    """Milliseconds, as the proxy measured them."""
    created_at: str


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification of a profile."""

    id: str
    profile_uuid: str
    type: str
    title: str
    message: str
    read: bool
    link: str | None
    severity: str | None
    completed: bool
    metadata: Mapping[str, Any]
    created_at: str
    expires_at: str | None


@dataclass(frozen=True, slots=True)
class ClipboardWrite:
    """What a clipboard set or push stores."""

    value: str
    content_type: str
    encoding: str
    visibility: str
    created_by_tool: str | None
    created_by_model: str | None
    source: str
    expires_in: timedelta

    @property
    def size_bytes(self) -> int:
        """The value's size as the App counts it: the bytes of its UTF-8 text, whatever its encoding."""
        return len(self.value.encode())


@dataclass(frozen=True, slots=True)
class ClipboardEntry:
    """One clipboard entry of a profile."""

    uuid: str
    name: str | None
    idx: int | None
    value: str
    content_type: str
    encoding: str
    size_bytes: int
    visibility: str
    created_by_tool: str | None
    created_by_model: str | None
    source: str
    created_at: str
    updated_at: str
    expires_at: str | None


class AppStore:
    """The App's SQLite file; thread-safe, every method a short transaction."""

    def __init__(self, path: Path) -> None:
        """Open (creating the file, its folders and the tables if needed) the database at `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False)
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def first_seen(self, config_path: str, servers: Sequence[tuple[str, str]]) -> dict[str, str]:
        """`created_at` of each `(uuid, key)`, recording now for servers never seen before."""
        if not servers:
            return {}
        now = utc_timestamp()
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR IGNORE INTO servers (uuid, config_path, key, created_at) VALUES (?, ?, ?, ?)",
                [(server_uuid, config_path, key, now) for server_uuid, key in servers],
            )
            placeholders = ", ".join("?" for _ in servers)
            rows = self._conn.execute(
                f"SELECT uuid, created_at FROM servers WHERE uuid IN ({placeholders})",
                [server_uuid for server_uuid, _ in servers],
            ).fetchall()
        return {row[0]: row[1] for row in rows}

    def add_activity(
        self,
        profile_uuid: str,
        *,
        action: str,
        server_name: str,
        server_uuid: str | None,
        external_id: str | None,
        source: str | None,
        item_name: str | None,
        success: bool,
        error_message: str | None,
        execution_time: float | None,
    ) -> ActivityRow:
        """Record one reported call."""
        created_at = utc_timestamp()
        values = (action, server_name, server_uuid, external_id, source, item_name, success, error_message)
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "INSERT INTO mcp_activity (profile_uuid, action, server_name, server_uuid, external_id, source,"
                " item_name, success, error_message, execution_time, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (profile_uuid, *values, execution_time, created_at),
            )
        assert cursor.lastrowid is not None
        return ActivityRow(cursor.lastrowid, *values, execution_time, created_at)

    def list_activity(self, profile_uuid: str, *, limit: int) -> list[ActivityRow]:
        """The profile's most recent reported calls, newest first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ACTIVITY_COLUMNS} FROM mcp_activity WHERE profile_uuid = ? ORDER BY id DESC LIMIT ?",
                (profile_uuid, limit),
            ).fetchall()
        return [_activity(row) for row in rows]

    def add_notification(
        self,
        profile_uuid: str,
        *,
        type: str,
        title: str,
        message: str,
        severity: str | None,
        metadata: Mapping[str, Any],
        expires_in: timedelta | None,
        link: str | None = None,
    ) -> Notification:
        """Create an unread, not completed notification."""
        notification = Notification(
            id=str(uuid.uuid4()),
            profile_uuid=profile_uuid,
            type=type,
            title=title,
            message=message,
            read=False,
            link=link,
            severity=severity,
            completed=False,
            metadata=dict(metadata),
            created_at=utc_timestamp(),
            expires_at=utc_timestamp(expires_in) if expires_in is not None else None,
        )
        row = (
            notification.id,
            profile_uuid,
            type,
            title,
            message,
            False,
            link,
            severity,
            False,
            json.dumps(notification.metadata, separators=(",", ":")),
            notification.created_at,
            notification.expires_at,
        )
        with self._lock, self._conn:
            self._conn.execute(
                f"INSERT INTO notifications ({_NOTIFICATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return notification

    def list_notifications(self, profile_uuid: str, *, only_unread: bool, limit: int | None) -> list[Notification]:
        """The profile's notifications, newest first."""
        query = f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE profile_uuid = ?"
        if only_unread:
            query += " AND read = 0"
        # rowid follows insertion, so ties within one millisecond still come out newest first.
        query += " ORDER BY rowid DESC LIMIT ?"
        with self._lock:
            rows = self._conn.execute(query, (profile_uuid, -1 if limit is None else limit)).fetchall()
        return [_notification(row) for row in rows]

    def toggle_completed(self, profile_uuid: str, notification_id: str) -> bool | None:
        """Flip `completed` and return its new value, or `None` if the profile has no such notification."""
        with self._lock, self._conn:
            row = self._conn.execute(
                "UPDATE notifications SET completed = 1 - completed WHERE id = ? AND profile_uuid = ?"
                " RETURNING completed",
                (notification_id, profile_uuid),
            ).fetchone()
        return None if row is None else bool(row[0])

    def delete_notification(self, profile_uuid: str, notification_id: str) -> bool:
        """Delete one notification; return whether the profile had it."""
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "DELETE FROM notifications WHERE id = ? AND profile_uuid = ?", (notification_id, profile_uuid)
            )
        return cursor.rowcount > 0

    def set_clipboard(
        self, profile_uuid: str, write: ClipboardWrite, *, name: str | None, idx: int | None
    ) -> ClipboardEntry | None:
        """Store a named entry (replacing the profile's entry of that name) or an indexed one.

        Returns `None`, storing nothing, when `idx` is already taken in the profile.
        """
        query = _CLIPBOARD_INSERT
        if name is not None:
            replaced = ", ".join(f"{column} = excluded.{column}" for column in _CLIPBOARD_REPLACED)
            query += f" ON CONFLICT (profile_uuid, name) DO UPDATE SET {replaced}"
        with self._lock, self._conn:
            self._purge_expired(profile_uuid)
            try:
                stored = self._conn.execute(
                    f"{query} RETURNING {_CLIPBOARD_COLUMNS}", _clipboard_row(profile_uuid, write, name, idx)
                ).fetchone()
            except sqlite3.IntegrityError:
                return None
        return _clipboard(stored)

    def push_clipboard(self, profile_uuid: str, write: ClipboardWrite) -> ClipboardEntry:
        """Store an entry at the profile's next index: one past the highest, or 0 for the first."""
        with self._lock, self._conn:
            self._purge_expired(profile_uuid)
            (highest,) = self._conn.execute(
                "SELECT MAX(idx) FROM clipboards WHERE profile_uuid = ?", (profile_uuid,)
            ).fetchone()
            idx = 0 if highest is None else highest + 1
            stored = self._conn.execute(
                f"{_CLIPBOARD_INSERT} RETURNING {_CLIPBOARD_COLUMNS}", _clipboard_row(profile_uuid, write, None, idx)
            ).fetchone()
        return _clipboard(stored)

    def list_clipboard(
        self,
        profile_uuid: str,
        *,
        name: str | None = None,
        idx: int | None = None,
        content_type: str | None = None,
        limit: int = -1,
        offset: int = 0,
    ) -> tuple[list[ClipboardEntry], int]:
        """The profile's entries matching every filter given, newest first, and how many match in all."""
        where, params = _clipboard_filter(profile_uuid, name=name, idx=idx, content_type=content_type)
        with self._lock, self._conn:
            self._purge_expired(profile_uuid)
            rows = self._conn.execute(
                f"SELECT {_CLIPBOARD_COLUMNS} FROM clipboards WHERE {where}"
                " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            (total,) = self._conn.execute(f"SELECT COUNT(*) FROM clipboards WHERE {where}", params).fetchone()
        return [_clipboard(row) for row in rows], total

    def delete_clipboard(self, profile_uuid: str, *, name: str | None = None, idx: int | None = None) -> int:
        """Delete the profile's entries matching `name` and `idx` (all of them when neither is given)."""
        where, params = _clipboard_filter(profile_uuid, name=name, idx=idx)
        with self._lock, self._conn:
            self._purge_expired(profile_uuid)
            cursor = self._conn.execute(f"DELETE FROM clipboards WHERE {where}", params)
        return cursor.rowcount

    def pop_clipboard(self, profile_uuid: str) -> ClipboardEntry | None:
        """Delete and return the profile's highest-indexed entry, or `None` when it has no indexed entry."""
        with self._lock, self._conn:
            self._purge_expired(profile_uuid)
            row = self._conn.execute(
                f"DELETE FROM clipboards WHERE uuid = (SELECT uuid FROM clipboards WHERE profile_uuid = ?"
                f" AND idx IS NOT NULL ORDER BY idx DESC LIMIT 1) RETURNING {_CLIPBOARD_COLUMNS}",
                (profile_uuid,),
            ).fetchone()
        return None if row is None else _clipboard(row)

    def _purge_expired(self, profile_uuid: str) -> None:
        """Delete the profile's expired entries (the caller holds the lock and the transaction)."""
        self._conn.execute(
            "DELETE FROM clipboards WHERE profile_uuid = ? AND expires_at IS NOT NULL AND expires_at <= ?",
            (profile_uuid, utc_timestamp()),
        )


def _clipboard_row(profile_uuid: str, write: ClipboardWrite, name: str | None, idx: int | None) -> tuple[Any, ...]:
    """A new entry's values, in `_CLIPBOARD_INSERT` order."""
    now = utc_timestamp()
    return (
        profile_uuid,
        str(uuid.uuid4()),
        name,
        idx,
        write.value,
        write.content_type,
        write.encoding,
        write.size_bytes,
        write.visibility,
        write.created_by_tool,
        write.created_by_model,
        write.source,
        now,
        now,
        utc_timestamp(write.expires_in),
    )


def _clipboard_filter(
    profile_uuid: str, *, name: str | None, idx: int | None, content_type: str | None = None
) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause (and its parameters) for the profile's entries matching every filter given."""
    clauses: list[str] = ["profile_uuid = ?"]
    params: list[Any] = [profile_uuid]
    for column, value in (("name", name), ("idx", idx), ("content_type", content_type)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), tuple(params)


def _activity(row: tuple[Any, ...]) -> ActivityRow:
    (id_, action, server_name, server_uuid, external_id, source, item_name, success, error, elapsed, created_at) = row
    return ActivityRow(
        id=id_,
        action=action,
        server_name=server_name,
        server_uuid=server_uuid,
        external_id=external_id,
        source=source,
        item_name=item_name,
        success=bool(success),
        error_message=error,
        execution_time=elapsed,
        created_at=created_at,
    )


def _notification(row: tuple[Any, ...]) -> Notification:
    (id_, profile, type_, title, message, read, link, severity, completed, metadata, created_at, expires_at) = row
    return Notification(
        id=id_,
        profile_uuid=profile,
        type=type_,
        title=title,
        message=message,
        read=bool(read),
        link=link,
        severity=severity,
        completed=bool(completed),
        metadata=json.loads(metadata),
        created_at=created_at,
        expires_at=expires_at,
    )


def _clipboard(row: tuple[Any, ...]) -> ClipboardEntry:
    return ClipboardEntry(*row)
