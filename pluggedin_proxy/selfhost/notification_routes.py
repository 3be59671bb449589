"""The App API routes for the activity log and notifications (reference §2.10 and §2.12).

`POST /api/notifications/mcp-activity` records each call the proxy reports; a failed tool call, prompt
get or resource read also raises an ALERT notification that expires after 7 days, as in the App.
`GET /api/notifications/mcp-activity` (not in the App) lists what was recorded, newest first.
Notifications are listed newest first, created by `POST /api/notifications/custom` (type CUSTOM,
expiring after 30 days), toggled by `PATCH /api/notifications/{id}/completed` and deleted by
`DELETE /api/notifications/{id}`. Database calls run in a worker thread.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pluggedin_proxy.selfhost.bodies import ActivityReport, BodyError, CustomNotification, parse_body
from pluggedin_proxy.selfhost.identity import is_uuid
from pluggedin_proxy.selfhost.shapes import activity_item, notification_item
from pluggedin_proxy.selfhost.store import AppStore

__all__ = [
    "create_custom_notification",
    "delete_notification",
    "list_activity",
    "list_notifications",
    "report_activity",
    "toggle_completed",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# How long notifications live, as the App sets them.
ALERT_LIFETIME = timedelta(days=7)
CUSTOM_LIFETIME = timedelta(days=30)
# `GET /api/notifications?limit=` accepts 1..100, as the App does.
MAX_NOTIFICATIONS = 100
# `GET /api/notifications/mcp-activity` returns this many rows unless `?limit=` (1..1000) says otherwise.
DEFAULT_ACTIVITY_ROWS = 100
MAX_ACTIVITY_ROWS = 1000

_FAILURE_TITLES = {
    "tool_call": ("Tool execution failed", "Tool"),
    "prompt_get": ("Prompt retrieval failed", "Prompt"),
    "resource_read": ("Resource read failed", "Resource"),
}
_BAD_ID = "Invalid notification ID format. Please use the UUID from the notification list."
_UNKNOWN_ID = "Notification not found or not accessible"


async def _db(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs))


async def report_activity(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`POST /api/notifications/mcp-activity`: record one call; `{"success": true}`."""
    try:
        report = parse_body(await request.body(), ActivityReport)
    except BodyError as exc:
        return _body_error(exc)
    server_uuid, external_id = report.server_uuid, report.external_id
    if server_uuid is not None and not is_uuid(server_uuid):
        # The proxy's own tools report pseudo-ids (`pluggedin_discovery`); the App files them as external ids.
        server_uuid, external_id = None, external_id or server_uuid
    await _db(
        store.add_activity,
        profile_uuid,
        action=report.action,
        server_name=report.server_name,
        server_uuid=server_uuid,
        external_id=external_id,
        source=report.source,
        item_name=report.item_name,
        success=report.success,
        error_message=report.error_message,
        execution_time=report.execution_time,
    )
    if report.is_failed_call:
        title, message, metadata = _alert(report, profile_uuid)
        await _db(
            store.add_notification,
            profile_uuid,
            type="ALERT",
            title=title,
            message=message,
            severity="ALERT",
            metadata=metadata,
            expires_in=ALERT_LIFETIME,
        )
    return JSONResponse({"success": True})


async def list_activity(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`GET /api/notifications/mcp-activity[?limit=]`: `{"activity": [...]}`, newest first."""
    try:
        limit = _limit(request.query_params.get("limit"), MAX_ACTIVITY_ROWS)
    except ValueError:
        return _error(400, f"limit must be a whole number from 1 to {MAX_ACTIVITY_ROWS}")
    rows = await _db(store.list_activity, profile_uuid, limit=DEFAULT_ACTIVITY_ROWS if limit is None else limit)
    return JSONResponse({"activity": [activity_item(row) for row in rows]})


async def list_notifications(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`GET /api/notifications[?onlyUnread=true][&limit=N]`: `{"success": true, "notifications": [...]}`."""
    try:
        limit = _limit(request.query_params.get("limit"), MAX_NOTIFICATIONS)
    except ValueError:
        issue = {"code": "custom", "path": ["limit"], "message": f"Limit must be between 1 and {MAX_NOTIFICATIONS}"}
        return JSONResponse({"error": "Invalid query parameters", "details": [issue]}, status_code=400)
    only_unread = request.query_params.get("onlyUnread") == "true"
    rows = await _db(store.list_notifications, profile_uuid, only_unread=only_unread, limit=limit)
    return JSONResponse({"success": True, "notifications": [notification_item(row) for row in rows]})


async def create_custom_notification(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`POST /api/notifications/custom`: create a CUSTOM notification; `{"success": true, "message"}`."""
    try:
        body = parse_body(await request.body(), CustomNotification)
    except BodyError as exc:
        return _body_error(exc)
    priority = {"ALERT": "high", "WARNING": "medium"}.get(body.severity, "low")
    await _db(
        store.add_notification,
        profile_uuid,
        type="CUSTOM",
        title=body.title or "Custom notification",
        message=body.message,
        severity=body.severity,
        metadata={"source": {"type": "api", "profileUuid": profile_uuid}, "task": {"priority": priority}},
        expires_in=CUSTOM_LIFETIME,
    )
    if not body.send_email:
        return JSONResponse({"success": True, "message": "Notification created successfully"})
    logger.info("a custom notification asked for an email; the self-hosted App sends none")
    message = "Notification created (the self-hosted App sends no email)"
    return JSONResponse({"success": True, "message": message, "emailSent": False})


async def toggle_completed(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`PATCH /api/notifications/{id}/completed`: flip `completed` (calling twice undoes it)."""
    notification_id = request.path_params["id"]
    if not is_uuid(notification_id):
        return _error(400, _BAD_ID)
    completed = await _db(store.toggle_completed, profile_uuid, notification_id.lower())
    if completed is None:
        return _error(404, _UNKNOWN_ID)
    return JSONResponse({"success": True, "message": "Notification completed status toggled", "completed": completed})


async def delete_notification(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`DELETE /api/notifications/{id}`."""
    notification_id = request.path_params["id"]
    if not is_uuid(notification_id):
        return _error(400, _BAD_ID)
    if not await _db(store.delete_notification, profile_uuid, notification_id.lower()):
        return _error(404, _UNKNOWN_ID)
    return JSONResponse({"success": True, "message": "Notification deleted successfully"})


def _alert(report: ActivityReport, profile_uuid: str) -> tuple[str, str, dict[str, Any]]:
    """Title, message and metadata of the ALERT the App raises for a failed call."""
    title, noun = _FAILURE_TITLES[report.action]
    message = f'{noun} "{report.item_name}" from {report.server_name} failed'
    if report.error_message:
        message += f": {report.error_message}"
    if report.execution_time:
        message += f" ({report.execution_time:g}ms)"
    source = {
        "type": "mcp",
        "profileUuid": profile_uuid,
        "mcpServer": report.server_name,
        "mcpServerUuid": report.server_uuid,
    }
    activity = {
        "action": report.action,
        "itemName": report.item_name,
        "success": False,
        "errorMessage": report.error_message,
        "executionTime": report.execution_time,
    }
    # Absent, not null, as JSON.stringify drops the App's `undefined` values.
    return title, message, {"source": _present(source), "mcpActivity": _present(activity)}


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _limit(raw: str | None, maximum: int) -> int | None:
    """The `limit` query parameter, `None` when absent.

    Raises:
        ValueError: it is not a whole number from 1 to `maximum`.
    """
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValueError(raw)
    return int(raw)


def _body_error(exc: BodyError) -> Response:
    body: dict[str, Any] = {"error": exc.message}
    if exc.details is not None:
        body["details"] = exc.details
    return JSONResponse(body, status_code=400)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
