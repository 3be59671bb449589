"""The App API routes for the clipboard (reference app-api §2.14; proxy endpoint rows #20-#24).

Each profile has its own clipboard of entries, each with a name, an index, or both:

- `GET /api/clipboard` reads one entry when `name` or `idx` is given (404 when there is none), else a
  page of entries, newest first, with image values cut short: `{entries, total, limit, offset}`;
- `POST /api/clipboard` stores a named entry (replacing one of that name) or an indexed one (409 when
  the index is taken);
- `DELETE /api/clipboard` (a JSON body) removes one entry (404 when none matched) or all of them;
- `POST /api/clipboard/push` stores an entry at the next index, `POST /api/clipboard/pop` removes and
  returns the highest-indexed one (404 when there is none).

Values are limited to 2 MB (413) and must match their declared encoding (400); entries expire after
`ttlSeconds`, 24 hours by default. The self-hosted App has no rate limits, so it never answers 429.
Database calls run in a worker thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pluggedin_proxy.selfhost.bodies import (
    BodyError,
    ClipboardDelete,
    ClipboardPush,
    ClipboardQuery,
    ClipboardSet,
    parse_body,
    parse_query,
)
from pluggedin_proxy.selfhost.shapes import clipboard_item
from pluggedin_proxy.selfhost.store import AppStore, ClipboardWrite

__all__ = ["delete_clipboard", "get_clipboard", "pop_clipboard", "push_clipboard", "set_clipboard"]

P = ParamSpec("P")
T = TypeVar("T")

MAX_VALUE_BYTES = 2_097_152
DEFAULT_LIFETIME = timedelta(hours=24)

_TOO_LARGE = f"Value exceeds maximum size of {MAX_VALUE_BYTES} bytes ({MAX_VALUE_BYTES // 1024}KB)"
_NOT_FOUND = "Clipboard entry not found"


async def _db(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs))


async def get_clipboard(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`GET /api/clipboard[?name=|idx=][&contentType=][&limit=][&offset=]`."""
    try:
        query = parse_query(request.query_params, ClipboardQuery)
    except BodyError as exc:
        return _body_error(exc)
    entries, total = await _db(
        store.list_clipboard,
        profile_uuid,
        name=query.name,
        idx=query.idx,
        content_type=query.content_type,
        limit=query.limit,
        offset=query.offset,
    )
    if query.name is not None or query.idx is not None:
        if not entries:
            return _error(404, _NOT_FOUND)
        return JSONResponse({"entry": clipboard_item(entries[0])})
    listed = [clipboard_item(entry, listed=True) for entry in entries]
    return JSONResponse({"entries": listed, "total": total, "limit": query.limit, "offset": query.offset})


async def set_clipboard(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`POST /api/clipboard`: `{"success": true, "entry"}`."""
    try:
        body = parse_body(await request.body(), ClipboardSet)
    except BodyError as exc:
        return _body_error(exc)
    write = _write(body)
    if (refusal := _refusal(write, body.encoding_problem)) is not None:
        return refusal
    entry = await _db(store.set_clipboard, profile_uuid, write, name=body.name, idx=body.idx)
    if entry is None:
        return _error(409, f"Index {body.idx} already exists. Use push for auto-increment or delete first.")
    return JSONResponse({"success": True, "entry": clipboard_item(entry)})


async def delete_clipboard(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`DELETE /api/clipboard` with `{name?, idx?, clearAll?}`: `{"success": true, "deleted": N}`."""
    try:
        body = parse_body(await request.body(), ClipboardDelete)
    except BodyError as exc:
        return _body_error(exc)
    if body.clear_all:
        deleted = await _db(store.delete_clipboard, profile_uuid)
    else:
        deleted = await _db(store.delete_clipboard, profile_uuid, name=body.name, idx=body.idx)
        if not deleted:
            return _error(404, _NOT_FOUND)
    return JSONResponse({"success": True, "deleted": deleted})


async def push_clipboard(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`POST /api/clipboard/push`: `{"success": true, "entry"}` with the entry's new index."""
    try:
        body = parse_body(await request.body(), ClipboardPush)
    except BodyError as exc:
        return _body_error(exc)
    write = _write(body)
    if (refusal := _refusal(write, body.encoding_problem)) is not None:
        return refusal
    entry = await _db(store.push_clipboard, profile_uuid, write)
    return JSONResponse({"success": True, "entry": clipboard_item(entry)})


async def pop_clipboard(request: Request, store: AppStore, profile_uuid: str) -> Response:
    """`POST /api/clipboard/pop`: `{"success": true, "entry"}`, the entry taken out."""
    entry = await _db(store.pop_clipboard, profile_uuid)
    if entry is None:
        return _error(404, "No indexed entries to pop")
    return JSONResponse({"success": True, "entry": clipboard_item(entry)})


def _refusal(write: ClipboardWrite, encoding_problem: str | None) -> Response | None:
    """The answer refusing a value that is too large or not in its declared encoding, if it is."""
    if write.size_bytes > MAX_VALUE_BYTES:
        return _error(413, _TOO_LARGE)
    if encoding_problem is not None:
        return _error(400, encoding_problem)
    return None


def _write(body: ClipboardPush) -> ClipboardWrite:
    lifetime = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds is not None else DEFAULT_LIFETIME
    return ClipboardWrite(
        value=body.value,
        content_type=body.content_type,
        encoding=body.encoding,
        visibility=body.visibility,
        created_by_tool=body.created_by_tool,
        created_by_model=body.created_by_model,
        source=body.source,
        expires_in=lifetime,
    )


def _body_error(exc: BodyError) -> Response:
    body: dict[str, Any] = {"error": exc.message}
    if exc.details is not None:
        body["details"] = exc.details
    return JSONResponse(body, status_code=400)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
