"""A cached value with a time to live, refreshed the way a proxy in front of a flaky source needs.

`Cached.get()` serves a fresh value from memory. A stale value is served at once while one
background refresh runs (stale-while-revalidate). When the source fails, the last good value keeps
being served (stale-if-error) and the failure is remembered for `doctor` and `/health`. Only with
no value at all does a caller wait for the source, and concurrent callers share that one fetch
(single flight). The owner supplies a task group for the background refreshes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
import anyio.abc

from pluggedin_proxy.errors import CatalogError

__all__ = ["CacheStats", "Cached"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class CacheStats:
    """Counters for `/metrics` and `doctor`."""

    hits: int = 0
    misses: int = 0
    stale_serves: int = 0
    refresh_errors: int = 0


class Cached(Generic[T]):
    """One value fetched from a slow or unreliable source, kept for `ttl` seconds."""

    def __init__(
        self,
        name: str,
        fetch: Callable[[], Awaitable[T]],
        *,
        ttl: float,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self.ttl = ttl
        self._on_change = on_change
        self._value: T | None = None
        self._has_value = False
        self._fetched_at = 0.0
        self._refreshing: anyio.Event | None = None
        self._spawn: Callable[..., object] | None = None
        self.last_error: str | None = None
        self._last_exc: CatalogError | None = None
        self.stats = CacheStats()

    def bind(self, task_group: anyio.abc.TaskGroup) -> None:
        """Run background refreshes in `task_group`; without one, stale values are refreshed inline."""
        self._spawn = task_group.start_soon

    @property
    def age(self) -> float | None:
        """Seconds since the value was fetched, or `None` if there is none."""
        return time.monotonic() - self._fetched_at if self._has_value else None

    def peek(self) -> T | None:
        """The value held now, without fetching."""
        return self._value if self._has_value else None

    @property
    def stale(self) -> bool:
        age = self.age
        return age is None or age >= self.ttl

    async def get(self) -> T:
        """The value: fresh, or stale while refreshing, or fetched now when there is none.

        Raises:
            CatalogError: there is no value and the source failed.
        """
        if not self._has_value:
            self.stats.misses += 1
            return await self.refresh()
        if not self.stale:
            self.stats.hits += 1
            return self._value  # type: ignore[return-value]
        self.stats.stale_serves += 1
        if self._spawn is None:
            return await self.refresh()
        if self._refreshing is None:
            # Claimed now, not when the task starts, so a `refresh` in between joins it.
            self._refreshing = anyio.Event()
            self._spawn(self._refresh_in_background)
        return self._value  # type: ignore[return-value]

    async def refresh(self) -> T:
        """Fetch now, joining a fetch already running; on failure fall back to the value held.

        Raises:
            CatalogError: the source failed and there is no earlier value to fall back on.
        """
        if self._refreshing is not None:
            await self._refreshing.wait()
        else:
            self._refreshing = anyio.Event()
            await self._run_refresh()
        if not self._has_value:
            raise self._last_exc or CatalogError(f"could not fetch the {self.name}")
        return self._value  # type: ignore[return-value]

    def invalidate(self) -> None:
        """Make the value stale so the next `get` refreshes it (the old value still serves if that fails)."""
        if self._has_value:
            self._fetched_at = time.monotonic() - self.ttl - 1

    async def _refresh_in_background(self) -> None:
        try:
            await self._run_refresh()
        except Exception:  # a bug in a fetch must not take down the owner's task group
            logger.exception("refreshing the cached %s failed", self.name)

    async def _run_refresh(self) -> None:
        """Fetch once for the refresh the caller claimed in `_refreshing`, and release its waiters."""
        event = self._refreshing
        try:
            await self._do_refresh()
        except CatalogError as exc:
            self.stats.refresh_errors += 1
            self.last_error = str(exc)
            self._last_exc = exc
            if self._has_value:
                logger.warning("serving the cached %s: the refresh failed: %s", self.name, exc)
        finally:
            if event is not None:
                event.set()
            self._refreshing = None

    async def _do_refresh(self) -> None:
        value = await self._fetch()
        changed = not self._has_value or value != self._value
        self._value = value
        self._has_value = True
        self._fetched_at = time.monotonic()
        self.last_error = None
        if changed and self._on_change is not None:
            self._on_change()
