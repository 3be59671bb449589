"""Request bodies the App accepts, validated as strictly as the App's zod schemas.

Types are not coerced (`"true"` is not a boolean), unknown keys are ignored, and a failure is reported
as a list of zod-style issues (`code`, `path`, `message`) under `details`, which is what the App sends.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

__all__ = ["ActivityReport", "BodyError", "CustomNotification", "parse_body"]

ModelT = TypeVar("ModelT", bound=BaseModel)

CALL_ACTIONS = frozenset({"tool_call", "prompt_get", "resource_read"})


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, alias_generator=to_camel, populate_by_name=True)


class ActivityReport(_Body):
    """`POST /api/notifications/mcp-activity`: one call the proxy made."""

    action: Literal["tool_call", "prompt_get", "resource_read", "install", "uninstall"]
    server_name: str
    """The server's name as the proxy knows it."""
    success: bool
    server_uuid: str | None = None
    """The server's UUID, or a pseudo-id such as `pluggedin_discovery` for the proxy's own tools."""
    external_id: str | None = None
    source: Literal["REGISTRY", "COMMUNITY"] | None = None
    item_name: str | None = None
    """The tool or prompt name, or the resource URI."""
    error_message: str | None = None
    execution_time: float | None = None
    """Milliseconds."""

    @property
    def is_failed_call(self) -> bool:
        """Whether this reports a failed tool call, prompt get or resource read (the App then raises an ALERT)."""
        return not self.success and self.action in CALL_ACTIONS


class CustomNotification(_Body):
    """`POST /api/notifications/custom`: a notification the user's agent sends."""

    title: str | None = None
    message: str = Field(min_length=1)
    severity: Literal["INFO", "SUCCESS", "WARNING", "ALERT"] = "INFO"
    send_email: bool = False
    """Accepted for compatibility; the self-hosted App sends no email."""


class BodyError(Exception):
    """Raised when a request body is not JSON (`details` is `None`) or does not fit its schema."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def parse_body(raw: bytes, model: type[ModelT]) -> ModelT:
    """Validate a JSON request body against `model`.

    Raises:
        BodyError: the body is not JSON, or not what `model` describes.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        raise BodyError("Invalid JSON in request body") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = [
            {"code": error["type"], "path": list(error["loc"]), "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise BodyError("Invalid request data", issues) from None
