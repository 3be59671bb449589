"""The local catalog: servers from a config file, listings discovered from the servers themselves.

Discovery connects to every server concurrently through the upstream pool (each with its own
deadline; one slow or broken server never holds up or breaks the others) and lists its tools,
prompts, resources and templates, following every page. Good listings are persisted next to the
user's cache, keyed by the config file and each server's connection key, so the next start lists
from disk without spawning anything; a server whose connection fields changed is discovered again.
Concurrent requests for the same discovery share one run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types

from pluggedin_proxy.catalog.base import Activity, DiscoveryResult, ServerListing
from pluggedin_proxy.catalog.config import load_config
from pluggedin_proxy.errors import ProxyError
from pluggedin_proxy.upstream.pool import Profile, Upstream, UpstreamPool
from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["LocalCatalog", "default_cache_dir", "list_everything", "read_persisted_listings"]

logger = logging.getLogger(__name__)

# How long one server may take to start and list everything during discovery.
DEFAULT_DISCOVERY_TIMEOUT = 30.0
# Upper bound on pages followed per list, against an upstream that never stops paginating.
MAX_PAGES = 100
# A failed discovery is remembered (across runs too) and only retried on its own after this many
# seconds, so a broken server does not slow every start; a name miss or `--refresh` retries sooner.
RETRY_FAILED_AFTER = 300.0


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/pluggedin-mcp`, else `~/.cache/pluggedin-mcp`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pluggedin-mcp"


async def list_everything(upstream: Upstream) -> ServerListing:
    """Everything `upstream` offers, every page of every list its capabilities announce (and mark it listed)."""
    caps = upstream.capabilities
    session = upstream.session

    async def pages(method: Callable[..., Awaitable[Any]], attr: str) -> tuple[Any, ...]:
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await method(params=params)
            items.extend(getattr(result, attr))
            cursor = result.next_cursor
            if not cursor:
                break
        return tuple(items)

    tools = await pages(session.list_tools, "tools") if caps.tools is not None else ()
    prompts = await pages(session.list_prompts, "prompts") if caps.prompts is not None else ()
    resources: tuple[Any, ...] = ()
    templates: tuple[Any, ...] = ()
    if caps.resources is not None:
        resources = await pages(session.list_resources, "resources")
        templates = await pages(session.list_resource_templates, "resource_templates")
    upstream.listed = True
    return ServerListing(
        tools=tools,
        prompts=prompts,
        resources=resources,
        templates=templates,
        instructions=upstream.instructions,
    )


class LocalCatalog:
    """Servers from a local config file; listings from live discovery, persisted between runs."""

    def __init__(
        self,
        config_path: Path,
        pool: UpstreamPool,
        *,
        profile: Callable[[], Profile] = frozenset,
        discovery_timeout: float = DEFAULT_DISCOVERY_TIMEOUT,
        cache_dir: Path | None = None,
        specs: Sequence[ServerSpec] | None = None,
    ) -> None:
        """Read the config now (raising `ConfigError`); discover lazily."""
        self.config_path = config_path
        self._specs = list(specs) if specs is not None else load_config(config_path)
        self._pool = pool
        self._profile = profile
        self._timeout = discovery_timeout
        self._cache_file = (cache_dir or default_cache_dir()) / f"listings-{_path_hash(config_path)}.json"
        self._listings: dict[str, ServerListing] = {}
        self._inflight: dict[str, anyio.Event] = {}
        self._version = 0
        # What `listings` last returned, for the version it was built at, and until when it holds
        # (the next retry of a failed server); every request asks, so this is the common path.
        self._result: tuple[int, float, dict[str, ServerListing]] | None = None
        self._load_persisted()

    async def __aenter__(self) -> LocalCatalog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    @property
    def version(self) -> int:
        return self._version

    # Discovery always knows which server offers what: nothing is shared.
    async def shared_prompts(self) -> tuple[types.Prompt, ...]:
        return ()

    async def shared_resources(self) -> tuple[types.Resource, ...]:
        return ()

    async def shared_templates(self) -> tuple[types.ResourceTemplate, ...]:
        return ()

    async def owner_of_prompt(self, name: str) -> str | None:
        return None

    async def owner_of_resource(self, uri: str) -> str | None:
        return None

    def record(self, activity: Activity) -> None:
        return None  # a local catalog keeps no activity log

    async def servers(self) -> Sequence[ServerSpec]:
        return self._specs

    def spec(self, server_id: str) -> ServerSpec | None:
        return next((s for s in self._specs if s.id == server_id), None)

    async def listings(self) -> Mapping[str, ServerListing]:
        now = time.time()
        result = self._result
        if result is not None and result[0] == self._version and now < result[1]:
            return result[2]
        missing = [
            s.id
            for s in self._specs
            if (known := self._listings.get(s.id)) is None
            or (known.error is not None and now - known.discovered_at > RETRY_FAILED_AFTER)
        ]
        if missing:
            await self._discover(missing)
        listings = {s.id: self._listings[s.id] for s in self._specs if s.id in self._listings}
        retry_at = min(
            (lst.discovered_at + RETRY_FAILED_AFTER for lst in listings.values() if lst.error is not None),
            default=math.inf,
        )
        self._result = (self._version, retry_at, listings)
        return listings

    async def discover(self, server_ids: Sequence[str] | None = None) -> list[DiscoveryResult]:
        ids = list(server_ids) if server_ids is not None else [s.id for s in self._specs]
        unknown = [i for i in ids if self.spec(i) is None]
        if unknown:
            raise ProxyError(f"no server with id {unknown[0]!r} in {self.config_path}")
        await self._discover(ids)
        return [DiscoveryResult(server=spec, listing=self._listings[spec.id]) for spec in self._specs if spec.id in ids]

    async def reload(self) -> None:
        return None  # the listings come from the servers themselves; `discover` re-lists them

    def invalidate(self, server_id: str | None = None) -> None:
        if server_id is None:
            self._listings.clear()
        else:
            self._listings.pop(server_id, None)
        self._version += 1

    def update(self, server_id: str, listing: ServerListing) -> bool:
        """Replace one server's listing with a fresher one; return whether anything changed."""
        previous = self._listings.get(server_id)
        if previous is not None and _same_offer(previous, listing):
            return False
        self._listings[server_id] = listing
        self._version += 1
        self._persist()
        return True

    async def _discover(self, server_ids: list[str]) -> None:
        """Discover these servers, joining discoveries already running for any of them."""
        while server_ids:
            waited: list[str] = []
            mine: list[str] = []
            for server_id in server_ids:
                (waited if server_id in self._inflight else mine).append(server_id)
            for server_id in mine:
                self._inflight[server_id] = anyio.Event()
            try:
                async with anyio.create_task_group() as tg:
                    for server_id in mine:
                        spec = self.spec(server_id)
                        assert spec is not None
                        tg.start_soon(self._discover_one, spec)
                    for server_id in waited:
                        tg.start_soon(self._inflight[server_id].wait)
            finally:
                for server_id in mine:
                    self._inflight.pop(server_id).set()
            self._version += 1
            self._persist()
            # A discovery we only waited for may have been cancelled with its caller: run it ourselves.
            server_ids = [server_id for server_id in waited if server_id not in self._listings]

    async def _discover_one(self, spec: ServerSpec) -> None:
        started = time.monotonic()
        try:
            with anyio.fail_after(self._timeout):
                upstream = await self._pool.get(spec, self._profile())
                listing = await list_everything(upstream)
                if spec.isolation == "per-client":
                    self._pool.release(upstream)  # clients get sessions of their own; this one only listed
        except TimeoutError:
            listing = self._failed(spec, f"did not answer within {self._timeout:g}s")
        except ProxyError as exc:
            listing = self._failed(spec, str(exc))
        except Exception as exc:  # an upstream bug must not stop the other servers' discovery
            listing = self._failed(spec, f"discovery failed: {getattr(exc, 'message', None) or exc}")
        else:
            logger.info(
                "discovered %r in %.2fs: %d tools, %d prompts, %d resources, %d templates",
                spec.name,
                time.monotonic() - started,
                len(listing.tools),
                len(listing.prompts),
                len(listing.resources),
                len(listing.templates),
            )
        self._listings[spec.id] = listing

    def _failed(self, spec: ServerSpec, reason: str) -> ServerListing:
        logger.warning("discovery of %r failed: %s", spec.name, reason)
        return ServerListing(error=reason)

    def _load_persisted(self) -> None:
        try:
            data = json.loads(self._cache_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable listing cache %s: %s", self._cache_file, exc)
            return
        servers = data.get("servers", {}) if isinstance(data, dict) else {}
        for spec in self._specs:
            saved = servers.get(spec.id)
            if isinstance(saved, dict) and saved.get("key") == spec.connection_key:
                try:
                    self._listings[spec.id] = ServerListing.from_json(saved["listing"])
                except (KeyError, TypeError, ValueError) as exc:
                    logger.debug("ignoring persisted listing of %r: %s", spec.name, exc)

    def _persist(self) -> None:
        servers = {
            spec.id: {"key": spec.connection_key, "listing": listing.to_json()}
            for spec in self._specs
            if (listing := self._listings.get(spec.id)) is not None
        }
        payload = json.dumps({"config": str(self.config_path), "servers": servers}, separators=(",", ":"))
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._cache_file.parent, prefix=".listings-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
            os.replace(tmp, self._cache_file)
        except OSError as exc:
            logger.warning("could not persist listings to %s: %s", self._cache_file, exc)


def read_persisted_listings(config_path: Path, cache_dir: Path | None = None) -> dict[str, ServerListing]:
    """The listings saved for a config file, whatever their connection keys, for `doctor`."""
    cache_file = (cache_dir or default_cache_dir()) / f"listings-{_path_hash(config_path)}.json"
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
        return {sid: ServerListing.from_json(saved["listing"]) for sid, saved in data.get("servers", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _path_hash(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]


def _same_offer(a: ServerListing, b: ServerListing) -> bool:
    def key(listing: ServerListing) -> dict[str, Any]:
        data = listing.to_json()
        data.pop("discovered_at")
        return data

    return a.error == b.error and key(a) == key(b)
