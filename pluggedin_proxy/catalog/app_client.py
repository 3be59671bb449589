"""The client for the plugged.in App management API.

`AppClient` speaks the contract the App serves to proxies: server configs, listings, resolution,
discovery and the activity log (and, for the built-in tools, any other path through `request`).
Every call sends `Authorization: Bearer <key>` and has its own timeout. Idempotent GETs are retried
with exponential backoff and jitter; a `429` is retried after its `Retry-After` when that is short,
and reported otherwise. Failures are translated once, in `_translate`, into `CatalogAuthError`
(the key was rejected) or `CatalogUnavailable` (down, slow, overloaded or answering nonsense),
with messages that name the App and the status but never the key or a response body. Each HTTP
exchange is timed into `metrics` under its path template (`PATH_TEMPLATES`), never the path itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
from pydantic import SecretStr, ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from pluggedin_proxy import __version__
from pluggedin_proxy.catalog.app_models import (
    AppPrompt,
    AppResource,
    AppServer,
    AppTemplate,
    AppTool,
    ListKind,
    parse_list,
)
from pluggedin_proxy.catalog.base import Activity
from pluggedin_proxy.errors import CatalogAuthError, CatalogUnavailable
from pluggedin_proxy.metrics import NO_METRICS, Metrics

__all__ = ["PATH_TEMPLATES", "Activity", "AppClient", "AppReply", "RateLimited", "path_template"]

logger = logging.getLogger(__name__)

# Per-call timeouts (seconds), as the TypeScript proxy uses them, with one where it had none.
LIST_TIMEOUT = 10.0
DISCOVER_TIMEOUT = 30.0
ACTIVITY_TIMEOUT = 5.0
# Attempts for idempotent calls, and the longest `Retry-After` worth waiting for inside a call.
GET_ATTEMPTS = 3
MAX_RETRY_AFTER_WAIT = 5.0

# Every path the proxy calls on the App, as metrics label it: a label must never carry an id (or
# anything a user typed), so `{id}` stands for one such segment, and a path not listed is `other`.
# A literal template comes before the `{id}` one it would also match.
PATH_TEMPLATES = (
    "/api/mcp-servers",
    "/api/tools",
    "/api/prompts",
    "/api/resources",
    "/api/resource-templates",
    "/api/resolve/prompt",
    "/api/resolve/resource",
    "/api/discover/all",
    "/api/discover/{id}",
    "/api/notifications",
    "/api/notifications/mcp-activity",
    "/api/notifications/custom",
    "/api/notifications/{id}",
    "/api/notifications/{id}/completed",
    "/api/documents",
    "/api/documents/ai",
    "/api/documents/search",
    "/api/documents/{id}",
    "/api/clipboard",
    "/api/clipboard/push",
    "/api/clipboard/pop",
    "/api/rag/query",
    "/api/memory/sessions",
    "/api/memory/sessions/{id}",
    "/api/memory/sessions/{id}/observations",
    "/api/memory/search",
    "/api/memory/search/details",
    "/api/memory/cbp",
    "/api/memory/cbp/feedback",
    "/api/memory/archetype/inject",
    "/api/memory/individuation",
)
_TEMPLATE_PARTS = tuple((template, template.split("/")) for template in PATH_TEMPLATES)


class RateLimited(CatalogUnavailable):
    """Raised when the App answered 429; `retry_after` says when to come back, if it said."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class AppReply:
    """An App answer taken as it is, for callers that give each status its own meaning."""

    status: int
    body: Any
    """Parsed JSON, the text when the body is not JSON, or `None` when empty."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def field(self, name: str) -> Any:
        """One top-level field of a JSON object body, or `None`."""
        return self.body.get(name) if isinstance(self.body, dict) else None


class AppClient:
    """An open connection to one plugged.in App, authenticated with one API key."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        prefix_tools: bool = True,
        timeout: float = LIST_TIMEOUT,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.metrics = metrics
        self.prefix_tools = prefix_tools
        self.timeout = timeout
        self._client = httpx2.AsyncClient(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key.get_secret_value()}",
                "User-Agent": f"pluggedin-mcp/{__version__}",
                "Accept": "application/json",
            },
            transport=transport,
            follow_redirects=True,
        )
        self.last_latency: float | None = None

    async def __aenter__(self) -> AppClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._client.__aexit__(*exc_info)

    # The proxy's contract

    async def servers(self) -> list[AppServer]:
        """`GET /api/mcp-servers`: the active servers and how to reach them."""
        items = await self._list("servers", "/api/mcp-servers")
        return self._parse_items(AppServer, items, "/api/mcp-servers")

    async def tools(self) -> list[AppTool]:
        """`GET /api/tools`, prefixed by the App as the TypeScript proxy asks for."""
        params = {"prefix_tools": "true"} if self.prefix_tools else None
        items = await self._list("tools", "/api/tools", params=params)
        return self._parse_items(AppTool, items, "/api/tools")

    async def prompts(self) -> list[AppPrompt]:
        return self._parse_items(AppPrompt, await self._list("prompts", "/api/prompts"), "/api/prompts")

    async def resources(self) -> list[AppResource]:
        return self._parse_items(AppResource, await self._list("resources", "/api/resources"), "/api/resources")

    async def templates(self) -> list[AppTemplate]:
        path = "/api/resource-templates"
        return self._parse_items(AppTemplate, await self._list("templates", path), path)

    async def resolve_prompt(self, name: str) -> str | None:
        """The uuid of the server owning prompt `name`, or `None` when the App knows none."""
        return await self._resolve("/api/resolve/prompt", {"name": name})

    async def resolve_resource(self, uri: str) -> str | None:
        """The uuid of the server owning resource `uri`, or `None` when the App knows none."""
        return await self._resolve("/api/resolve/resource", {"uri": uri})

    async def discover(self, server_uuid: str | None = None, *, force: bool = False) -> str:
        """`POST /api/discover/{all|uuid}`: ask the App to re-discover; returns its message."""
        target = server_uuid or "all"
        body = await self.request(
            "POST", f"/api/discover/{target}", json={"force_refresh": force}, timeout=DISCOVER_TIMEOUT
        )
        message = body.get("message") if isinstance(body, dict) else None
        return message if isinstance(message, str) else "discovery started"

    async def log_activity(self, activity: Activity) -> None:
        """Record one call in the App's activity log; failures are logged at debug level and dropped."""
        try:
            await self.request(
                "POST", "/api/notifications/mcp-activity", json=activity.to_json(), timeout=ACTIVITY_TIMEOUT
            )
        except (CatalogUnavailable, CatalogAuthError) as exc:
            logger.debug("activity log entry dropped: %s", exc)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> AppReply:
        """One call, once, whatever the status; for the built-in tools, which word each status themselves.

        Raises:
            CatalogUnavailable: the App is unreachable or did not answer in time.
        """
        timeout = self.timeout if timeout is None else timeout
        response = await self._exchange(method, path, params=params, json_body=json, timeout=timeout)
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        return AppReply(response.status_code, body)

    # Plumbing

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = None,
        retry: bool | None = None,
    ) -> Any:
        """One call to the App, parsed as JSON (`None` for an empty body).

        Idempotent methods are retried unless `retry=False`.

        Raises:
            CatalogAuthError: the App rejected the key.
            CatalogUnavailable: the App is unreachable, slow, overloaded, failing or malformed.
        """
        timeout = self.timeout if timeout is None else timeout
        retryable = method in ("GET", "HEAD") if retry is None else retry
        attempts = GET_ATTEMPTS if retryable else 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=_wait_for_retry,
            retry=retry_if_exception(_worth_retrying),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(method, path, params=params, json_body=json, timeout=timeout)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self, method: str, path: str, *, params: Mapping[str, Any] | None, json_body: Any, timeout: float
    ) -> Any:
        what = f"{method} {path}"
        response = await self._exchange(method, path, params=params, json_body=json_body, timeout=timeout)
        status = response.status_code
        if status in (401, 403):
            raise CatalogAuthError(
                f"the plugged.in App at {self.base_url} rejected the API key (HTTP {status} on {what}); "
                "check the key with `pluggedin-mcp doctor` or store a new one with `pluggedin-mcp login`"
            )
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            when = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            raise RateLimited(f"the plugged.in App rate-limited {what} (HTTP 429{when})", retry_after)
        if status == 404:
            raise _NotFound(what)
        if status >= 400:
            raise CatalogUnavailable(f"the plugged.in App failed on {what} (HTTP {status})")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CatalogUnavailable(f"the plugged.in App sent a malformed response to {what} (not JSON)") from None

    async def _exchange(
        self, method: str, path: str, *, params: Mapping[str, Any] | None, json_body: Any, timeout: float
    ) -> httpx2.Response:
        """One HTTP exchange, timed and counted under its path template.

        Raises:
            CatalogUnavailable: the App is unreachable or did not answer in time.
        """
        template = path_template(path)
        started = time.monotonic()
        try:
            with self._translate(f"{method} {path}", timeout):
                response = await self._client.request(method, path, params=params, json=json_body, timeout=timeout)
        except CatalogUnavailable as exc:
            reason = "timeout" if isinstance(exc.__cause__, httpx2.TimeoutException) else "unreachable"
            self.metrics.app_request(method, template, time.monotonic() - started, reason)
            raise
        self.last_latency = time.monotonic() - started
        status = response.status_code
        self.metrics.app_request(method, template, self.last_latency, str(status) if status >= 400 else None)
        return response

    @contextlib.contextmanager
    def _translate(self, what: str, timeout: float) -> Iterator[None]:
        try:
            yield
        except httpx2.TimeoutException as exc:
            raise CatalogUnavailable(
                f"the plugged.in App at {self.base_url} did not answer {what} within {timeout:g}s"
            ) from exc
        except httpx2.TransportError as exc:
            raise CatalogUnavailable(
                f"cannot reach the plugged.in App at {self.base_url} ({type(exc).__name__})"
            ) from exc

    async def _list(
        self, kind: ListKind, path: str, *, params: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> list[Any]:
        body = await self.request("GET", path, params=params, timeout=timeout)
        try:
            return parse_list(kind, body)
        except ValueError:
            raise CatalogUnavailable(f"the plugged.in App sent a malformed response to GET {path}") from None

    def _parse_items(self, model: Any, items: list[Any], path: str) -> list[Any]:
        parsed: list[Any] = []
        for item in items:
            try:
                parsed.append(model.model_validate(item))
            except ValidationError as exc:
                # One odd entry must not hide the rest; say which kind of field was wrong, not its value.
                fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
                logger.warning("skipping an entry of GET %s the proxy cannot read (fields: %s)", path, fields)
        return parsed

    async def _resolve(self, path: str, params: Mapping[str, str]) -> str | None:
        try:
            body = await self.request("GET", path, params=params)
        except _NotFound:
            return None
        uuid = body.get("uuid") if isinstance(body, dict) else None
        if not isinstance(uuid, str):
            raise CatalogUnavailable(f"the plugged.in App sent a malformed response to GET {path}")
        return uuid


class _NotFound(CatalogUnavailable):
    """The App answered 404; for resolution that means 'nobody owns it'."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the plugged.in App does not know {what} (HTTP 404)")


def path_template(path: str) -> str:
    """The entry of `PATH_TEMPLATES` that `path` (without its query) matches, or `other`."""
    segments = path.split("/")
    for template, parts in _TEMPLATE_PARTS:
        if len(parts) == len(segments) and all(
            part == segment or (part == "{id}" and segment) for part, segment in zip(parts, segments, strict=True)
        ):
            return template
    return "other"


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, RateLimited):
        return exc.retry_after is not None and exc.retry_after <= MAX_RETRY_AFTER_WAIT
    return isinstance(exc, CatalogUnavailable) and not isinstance(exc, _NotFound)


_backoff = wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2)


def _wait_for_retry(retry_state: Any) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return exc.retry_after
    return float(_backoff(retry_state))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
