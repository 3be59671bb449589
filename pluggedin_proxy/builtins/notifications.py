"""The notification tools: send one to the user, list them, mark one done, delete one.

They call the App's notification routes (the self-hosted App serves them too). Marking done is a
toggle on the App side, as the tool's description warns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import mcp_types as types

from pluggedin_proxy.builtins.base import (
    ActivitySource,
    BuiltinTool,
    ToolCall,
    ToolFailure,
    app_failure,
    hand_schema,
    hints,
    text,
)
from pluggedin_proxy.errors import CatalogUnavailable

if TYPE_CHECKING:
    from pluggedin_proxy.catalog.app_client import AppReply

__all__ = ["TOOLS"]

ACTIVITY = ActivitySource("Notification System", "pluggedin_notifications")
SEND_TIMEOUT = 30.0
TIMEOUT = 15.0
_NOT_FOUND = {404: "Notification not found or not accessible"}


async def _send(call: ToolCall, method: str, path: str, **options: Any) -> AppReply:
    try:
        return await call.require_app().send(method, path, **options)
    except CatalogUnavailable as exc:
        raise ToolFailure(f"Notification service temporarily unavailable: {exc}") from exc


async def _send_notification(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    body: dict[str, Any] = {"message": args["message"], "severity": args["severity"], "sendEmail": args["sendEmail"]}
    if args.get("title"):
        body["title"] = args["title"]
    reply = await _send(call, "POST", "/api/notifications/custom", json=body, timeout=SEND_TIMEOUT)
    if not reply.ok:
        raise app_failure(reply, {}, "Notification service error ({status})")
    return text(reply.field("message") or "Notification sent successfully")


async def _list_notifications(call: ToolCall) -> types.CallToolResult:
    args = call.arguments
    params: dict[str, str] = {}
    if args["onlyUnread"]:
        params["onlyUnread"] = "true"
    if args.get("limit") is not None:
        params["limit"] = str(args["limit"])
    reply = await _send(call, "GET", "/api/notifications", params=params, timeout=TIMEOUT)
    if not reply.ok:
        raise app_failure(reply, {}, "Notification service error ({status})")
    items = reply.field("notifications")
    notifications = [n for n in items if isinstance(n, dict)] if isinstance(items, list) else []
    header = f"Found {len(notifications)} notification(s)" + (" (unread only)" if args["onlyUnread"] else "")
    if not notifications:
        return text(header + ".")
    blocks = [header + ":"]
    for item in notifications:
        status = "Read" if item.get("read") else "Unread"
        if item.get("completed"):
            status += " | Completed"
        lines = [
            f"**{item.get('title') or '(untitled)'}**",
            f"ID: {item.get('id')} (pass it to pluggedin_mark_notification_done or pluggedin_delete_notification)",
            f"Type: {item.get('type') or '-'} | Severity: {item.get('severity') or '-'}",
            f"Status: {status}",
            # Timestamps are shown as the App sends them (ISO 8601): locale formats are not portable.
            f"Created: {item.get('created_at') or item.get('createdAt') or '-'}",
            f"Message: {item.get('message') or ''}",
        ]
        if item.get("link"):
            lines.append(f"Link: {item['link']}")
        blocks.append("\n".join(lines))
    blocks.append(
        "Tip: pluggedin_mark_notification_done toggles an item's completed state; calling it twice undoes it."
    )
    return text("\n\n".join(blocks))


async def _mark_done(call: ToolCall) -> types.CallToolResult:
    notification_id = quote(call.arguments["notificationId"], safe="")
    path = f"/api/notifications/{notification_id}/completed"
    reply = await _send(call, "PATCH", path, json={}, timeout=TIMEOUT)
    if not reply.ok:
        raise app_failure(reply, _NOT_FOUND, "Notification service error ({status})")
    return text(reply.field("message") or "Notification completion status updated")


async def _delete(call: ToolCall) -> types.CallToolResult:
    notification_id = quote(call.arguments["notificationId"], safe="")
    reply = await _send(call, "DELETE", f"/api/notifications/{notification_id}", timeout=TIMEOUT)
    if not reply.ok:
        raise app_failure(reply, _NOT_FOUND, "Notification service error ({status})")
    return text(reply.field("message") or "Notification deleted")


_ID = {
    "type": "string",
    "minLength": 1,
    "description": "The notification's ID, as pluggedin_list_notifications shows it.",
}

TOOLS: tuple[BuiltinTool, ...] = (
    BuiltinTool(
        name="pluggedin_send_notification",
        description=(
            "Send the user a notification in their plugged.in App (and by email if asked): for results, "
            "warnings or anything they should see even when not watching this conversation."
        ),
        input_schema=hand_schema(
            {
                "title": {"type": "string", "description": "A short title (the App supplies one if omitted)."},
                "message": {"type": "string", "minLength": 1, "description": "What to tell the user."},
                "severity": {
                    "type": "string",
                    "enum": ["INFO", "SUCCESS", "WARNING", "ALERT"],
                    "default": "INFO",
                    "description": "How important it is.",
                },
                "sendEmail": {"type": "boolean", "default": False, "description": "Also send it by email."},
            },
            required=["message"],
        ),
        annotations=hints(read_only=False, destructive=False, idempotent=False),
        handler=_send_notification,
        activity=ACTIVITY,
    ),
    BuiltinTool(
        name="pluggedin_list_notifications",
        description="List the user's notifications in the plugged.in App, newest first, optionally only unread ones.",
        input_schema=hand_schema(
            {
                "onlyUnread": {"type": "boolean", "default": False, "description": "Only unread notifications."},
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                    "description": "At most this many notifications.",
                },
            }
        ),
        annotations=hints(read_only=True, destructive=False, idempotent=True),
        handler=_list_notifications,
        activity=ACTIVITY,
    ),
    BuiltinTool(
        name="pluggedin_mark_notification_done",
        description=(
            "Mark a notification as done (completed). The App toggles this state: marking it again undoes it."
        ),
        input_schema=hand_schema({"notificationId": _ID}, required=["notificationId"]),
        annotations=hints(read_only=False, destructive=False, idempotent=True),
        handler=_mark_done,
        activity=ACTIVITY,
    ),
    BuiltinTool(
        name="pluggedin_delete_notification",
        description="Delete a notification from the user's plugged.in App for good.",
        input_schema=hand_schema({"notificationId": _ID}, required=["notificationId"]),
        annotations=hints(read_only=False, destructive=True, idempotent=True),
        handler=_delete,
        activity=ACTIVITY,
    ),
)
