"""The App API's JSON shapes, built from config specs, discovered listings and stored rows.

Every function returns plain dicts whose keys are inserted in one fixed order, so the same input always
serialises to the same bytes: the proxy hashes each `/api/mcp-servers` entry and respawns a server
whose JSON changed. Optional keys are omitted (not `null`) where the App omits them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mcp_types as types

from pluggedin_proxy.naming import SEPARATOR
from pluggedin_proxy.selfhost.identity import SERVER_TYPES
from pluggedin_proxy.selfhost.store import ActivityRow, ClipboardEntry, Notification
from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = [
    "ServerRecord",
    "activity_item",
    "clipboard_item",
    "notification_item",
    "prompt_item",
    "resource_item",
    "server_entry",
    "template_item",
    "tool_item",
]

# In a list of clipboard entries, an image's value is cut to this many characters, as in the App.
IMAGE_LIST_CHARS = 1000


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """One configured server with the identity the App gives it."""

    spec: ServerSpec
    uuid: str
    profile_uuid: str
    created_at: str
    """When this App first saw the server; fixed from then on."""
    description: str | None = None


def server_entry(record: ServerRecord) -> dict[str, Any]:
    """The server's `/api/mcp-servers` item (also what `/api/resolve/*` answer)."""
    spec = record.spec
    entry: dict[str, Any] = {
        "uuid": record.uuid,
        "name": spec.name,
        "description": record.description,
        "type": SERVER_TYPES[spec.transport],
        "command": spec.command,
        "args": list(spec.args),
        "env": dict(spec.env),
        "url": spec.url,
        "status": "ACTIVE",
        "slug": spec.slug,
        "created_at": record.created_at,
        "profile_uuid": record.profile_uuid,
        "source": "PLUGGEDIN",
    }
    if spec.cwd is not None:
        # Not an App column: a stdio server configured with a working directory needs it to start.
        entry["cwd"] = spec.cwd
    if spec.headers:
        # The TypeScript proxy reads `streamableHTTPOptions.headers`; the top-level copy serves older readers.
        entry["streamableHTTPOptions"] = {"headers": dict(spec.headers)}
        entry["headers"] = dict(spec.headers)
    if spec.instructions is not None:
        # The shape the App's editor saves: a list of role/content messages.
        entry["customInstructions"] = [{"role": r, "content": t} for r, t in spec.instructions.messages]
        entry["customInstructionsDescription"] = spec.instructions.description
    return entry


def tool_item(tool: types.Tool, record: ServerRecord, *, prefix: bool) -> dict[str, Any]:
    """One `/api/tools` item; `title`, `outputSchema` and `annotations` are kept, unlike in the App."""
    item: dict[str, Any] = {"name": f"{record.spec.slug}{SEPARATOR}{tool.name}" if prefix else tool.name}
    if tool.title is not None:
        item["title"] = tool.title
    if tool.description is not None:
        item["description"] = tool.description
    item["inputSchema"] = tool.input_schema
    if tool.output_schema is not None:
        item["outputSchema"] = tool.output_schema
    if tool.annotations is not None:
        item["annotations"] = tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
    item["_serverUuid"] = record.uuid
    item["_serverName"] = record.spec.name
    item["_serverSlug"] = record.spec.slug
    return item


def prompt_item(prompt: types.Prompt) -> dict[str, Any]:
    """One `/api/prompts` item."""
    item: dict[str, Any] = {"name": prompt.name}
    if prompt.description is not None:
        item["description"] = prompt.description
    item["arguments"] = [
        argument.model_dump(mode="json", by_alias=True, exclude_none=True, include={"name", "description", "required"})
        for argument in prompt.arguments or ()
    ]
    return item


def resource_item(resource: types.Resource) -> dict[str, Any]:
    """One `/api/resources` item; the name falls back to the URI as in the App."""
    item: dict[str, Any] = {"uri": str(resource.uri), "name": resource.name or str(resource.uri)}
    if resource.description is not None:
        item["description"] = resource.description
    if resource.mime_type is not None:
        item["mimeType"] = resource.mime_type
    return item


def template_item(template: types.ResourceTemplate) -> dict[str, Any]:
    """One `/api/resource-templates` item; the MIME type goes under `mediaType`, the App's key."""
    item: dict[str, Any] = {"uriTemplate": template.uri_template}
    if template.name:
        item["name"] = template.name
    if template.description is not None:
        item["description"] = template.description
    if template.mime_type is not None:
        item["mediaType"] = template.mime_type
    return item


def activity_item(activity: ActivityRow) -> dict[str, Any]:
    """One reported call, with the keys the proxy sent it under."""
    return {
        "id": activity.id,
        "action": activity.action,
        "serverName": activity.server_name,
        "serverUuid": activity.server_uuid,
        "externalId": activity.external_id,
        "source": activity.source,
        "itemName": activity.item_name,
        "success": activity.success,
        "errorMessage": activity.error_message,
        "executionTime": activity.execution_time,
        "created_at": activity.created_at,
    }


def notification_item(notification: Notification) -> dict[str, Any]:
    """One `/api/notifications` item, as the App's row."""
    return {
        "id": notification.id,
        "profile_uuid": notification.profile_uuid,
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "read": notification.read,
        "link": notification.link,
        "severity": notification.severity,
        "completed": notification.completed,
        "metadata": dict(notification.metadata),
        "created_at": notification.created_at,
        "expires_at": notification.expires_at,
    }


def clipboard_item(entry: ClipboardEntry, *, listed: bool = False) -> dict[str, Any]:
    """One clipboard entry as the App sends it; in a list (`listed`) an image's value is cut short."""
    image = entry.content_type.startswith("image/")
    return {
        "uuid": entry.uuid,
        "name": entry.name,
        "idx": entry.idx,
        "value": entry.value[:IMAGE_LIST_CHARS] if listed and image else entry.value,
        "contentType": entry.content_type,
        "encoding": entry.encoding,
        "sizeBytes": entry.size_bytes,
        "visibility": entry.visibility,
        "createdByTool": entry.created_by_tool,
        "createdByModel": entry.created_by_model,
        "source": entry.source,
        "createdAt": entry.created_at,
        "updatedAt": entry.updated_at,
        "expiresAt": entry.expires_at,
    }
