"""Request bodies the App accepts, validated as strictly as the App's zod schemas.

Types are not coerced (`"true"` is not a boolean), unknown keys are ignored, and a failure is reported
as a list of zod-style issues (`code`, `path`, `message`) under `details`, which is what the App sends.
Query strings (`parse_query`) are the exception: their values are text, so numbers are coerced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

__all__ = [
    "ActivityReport",
    "BodyError",
    "ClipboardDelete",
    "ClipboardPush",
    "ClipboardQuery",
    "ClipboardSet",
    "CustomNotification",
    "parse_body",
    "parse_query",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

CALL_ACTIONS = frozenset({"tool_call", "prompt_get", "resource_read"})

_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX = re.compile(r"[0-9A-Fa-f]*")


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


class ClipboardPush(_Body):
    """`POST /api/clipboard/push`: a value to store at the next index."""

    value: str
    content_type: str = Field("text/plain", max_length=256)
    encoding: Literal["utf-8", "base64", "hex"] = "utf-8"
    visibility: Literal["private", "workspace", "public"] = "private"
    created_by_tool: str | None = Field(None, max_length=255)
    created_by_model: str | None = Field(None, max_length=255)
    source: Literal["ui", "sdk", "mcp"] = "ui"
    ttl_seconds: int | None = Field(None, gt=0)
    """Seconds until the entry expires; the route's default when absent."""

    @property
    def encoding_problem(self) -> str | None:
        """Why `value` is not written in `encoding`, in the App's words; `None` when it is."""
        if self.encoding == "base64":
            if not _BASE64.fullmatch(self.value):
                return "Invalid base64 encoding: contains invalid characters"
            if len(self.value) % 4:
                return "Invalid base64 encoding: incorrect padding"
        elif self.encoding == "hex":
            if not _HEX.fullmatch(self.value):
                return "Invalid hex encoding: contains non-hexadecimal characters"
            if len(self.value) % 2:
                return "Invalid hex encoding: odd number of characters"
        return None


class ClipboardSet(ClipboardPush):
    """`POST /api/clipboard`: a value to store under a name, an index, or both."""

    name: str | None = Field(None, max_length=255)
    idx: int | None = None

    @model_validator(mode="after")
    def _named_or_indexed(self) -> Self:
        if self.name is None and self.idx is None:
            raise PydanticCustomError("custom", "Either name or idx must be provided")
        return self


class ClipboardDelete(_Body):
    """`DELETE /api/clipboard` (a JSON body on DELETE): the entry to remove, or all of them."""

    name: str | None = None
    idx: int | None = None
    clear_all: bool = False

    @model_validator(mode="after")
    def _says_what(self) -> Self:
        if not self.clear_all and self.name is None and self.idx is None:
            raise PydanticCustomError("custom", "Either name, idx, or clearAll must be provided")
        return self


class ClipboardQuery(BaseModel):
    """`GET /api/clipboard` query parameters: filters, and a page of at most 100 entries."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    name: str | None = None
    idx: int | None = None
    content_type: str | None = None
    limit: int = Field(50, ge=1, le=100)
    offset: int = Field(0, ge=0)


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


def parse_query(params: Mapping[str, str], model: type[ModelT]) -> ModelT:
    """Validate query parameters against `model`; an empty value counts as absent, as in the App.

    Raises:
        BodyError: the parameters are not what `model` describes.
    """
    try:
        return model.model_validate({key: value for key, value in params.items() if value})
    except ValidationError as exc:
        raise BodyError("Invalid parameters", _issues(exc)) from None


def _issues(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"code": error["type"], "path": list(error["loc"]), "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]
