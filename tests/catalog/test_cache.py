"""`Cached`: fresh from memory, one fetch for many callers, stale while revalidating, stale if the source fails."""

from __future__ import annotations

import anyio
import pytest

from pluggedin_proxy.catalog.cache import Cached
from pluggedin_proxy.errors import CatalogError, CatalogUnavailable

pytestmark = pytest.mark.anyio


class Source:
    """A fetch function that returns the queued values in turn, counting calls.

    A value that is an exception is raised instead. When `gate` is set, each fetch waits for it first.
    """

    def __init__(self, *values: object) -> None:
        self.values = list(values)
        self.calls = 0
        self.started = anyio.Event()
        self.gate: anyio.Event | None = None

    async def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        value = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        if isinstance(value, BaseException):
            raise value
        return value


async def test_fresh_value_is_served_without_fetching_again() -> None:
    """Within the TTL, `get` answers from memory."""
    source = Source("v1", "v2")
    cache = Cached("tool list", source, ttl=60)
    assert await cache.get() == "v1"
    assert await cache.get() == "v1"
    assert source.calls == 1
    assert cache.stats.hits == 1
    assert cache.stats.misses == 1


async def test_concurrent_first_gets_share_one_fetch() -> None:
    """Callers arriving while the first fetch runs wait for it instead of fetching themselves."""
    source = Source("v1")
    source.gate = anyio.Event()
    cache = Cached("tool list", source, ttl=60)
    results: list[object] = []

    async def get() -> None:
        results.append(await cache.get())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(get)
            await source.started.wait()
            await anyio.wait_all_tasks_blocked()
            source.gate.set()
    assert results == ["v1"] * 5
    assert source.calls == 1


async def test_stale_value_is_served_at_once_while_refreshing_in_the_background() -> None:
    """Past the TTL, with a task group bound, `get` returns the old value and one background fetch runs."""
    source = Source("v1", "v2")
    cache = Cached("tool list", source, ttl=0)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            cache.bind(tg)
            assert await cache.get() == "v1"
            source.gate = anyio.Event()
            source.started = anyio.Event()
            assert await cache.get() == "v1"
            assert await cache.get() == "v1"
            await source.started.wait()
            source.gate.set()
            assert await cache.refresh() == "v2"
            assert source.calls == 2
            assert await cache.get() == "v2"


async def test_invalidated_value_is_served_while_refreshing() -> None:
    """After `invalidate()`, the old value keeps serving until the background fetch brings the new one."""
    source = Source("v1", "v2")
    cache = Cached("tool list", source, ttl=60)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            cache.bind(tg)
            assert await cache.get() == "v1"
            cache.invalidate()
            assert cache.stale
            assert await cache.get() == "v1"
            assert await cache.refresh() == "v2"
            assert await cache.get() == "v2"
            assert not cache.stale
    assert source.calls == 2


async def test_stale_value_keeps_serving_when_the_refresh_fails() -> None:
    """When the background refresh fails, the old value is still served and the failure is remembered."""
    source = Source("v1", CatalogUnavailable("the plugged.in App failed on GET /api/tools (HTTP 503)"))
    cache = Cached("tool list", source, ttl=0)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            cache.bind(tg)
            assert await cache.get() == "v1"
            assert await cache.get() == "v1"
            assert await cache.refresh() == "v1"  # joins the failing background refresh
            assert cache.last_error == "the plugged.in App failed on GET /api/tools (HTTP 503)"
            assert await cache.get() == "v1"
    assert cache.stats.refresh_errors >= 1


async def test_stale_value_keeps_serving_when_an_inline_refresh_fails() -> None:
    """Without a task group, a stale `get` refreshes inline and still falls back to the old value."""
    source = Source("v1", CatalogUnavailable("down"))
    cache = Cached("tool list", source, ttl=0)
    assert await cache.get() == "v1"
    assert await cache.get() == "v1"
    assert cache.last_error == "down"


async def test_refresh_falls_back_to_the_earlier_value_when_the_source_fails() -> None:
    """An explicit `refresh()` with an earlier value returns that value when the source fails."""
    source = Source("v1", CatalogUnavailable("down"))
    cache = Cached("tool list", source, ttl=60)
    assert await cache.get() == "v1"
    assert await cache.refresh() == "v1"
    assert cache.last_error == "down"


async def test_successful_refresh_clears_the_last_error() -> None:
    """Once the source answers again, `last_error` is cleared."""
    source = Source("v1", CatalogUnavailable("down"), "v2")
    cache = Cached("tool list", source, ttl=0)
    assert await cache.get() == "v1"
    assert await cache.get() == "v1"
    assert cache.last_error == "down"
    assert await cache.get() == "v2"
    assert cache.last_error is None


async def test_no_value_and_a_failing_source_raise_the_catalog_error() -> None:
    """With nothing cached, the source's `CatalogError` reaches the caller."""
    failure = CatalogUnavailable("cannot reach the plugged.in App at https://plugged.in (ConnectError)")
    cache = Cached("tool list", Source(failure), ttl=60)
    with pytest.raises(CatalogUnavailable) as raised:
        await cache.get()
    assert raised.value is failure
    assert cache.last_error == str(failure)


async def test_callers_sharing_a_failed_first_fetch_all_get_the_error() -> None:
    """A caller that joined the first fetch gets its `CatalogError` too."""
    source = Source(CatalogUnavailable("down"))
    source.gate = anyio.Event()
    cache = Cached("tool list", source, ttl=60)
    errors: list[BaseException] = []

    async def get() -> None:
        try:
            await cache.get()
        except CatalogError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(get)
            tg.start_soon(get)
            await source.started.wait()
            await anyio.wait_all_tasks_blocked()
            source.gate.set()
    assert len(errors) == 2
    assert source.calls == 1


async def test_on_change_is_called_only_when_the_value_changed() -> None:
    """The first value and each different one call `on_change`; an equal one does not."""
    changes = 0

    def on_change() -> None:
        nonlocal changes
        changes += 1

    cache = Cached("tool list", Source(("a",), ("a",), ("b",)), ttl=0, on_change=on_change)
    await cache.get()
    assert changes == 1
    await cache.get()  # stale: refetched inline, equal value
    assert changes == 1
    await cache.get()  # stale: refetched inline, new value
    assert changes == 2


async def test_a_failed_refresh_does_not_call_on_change() -> None:
    """A refresh that fails leaves the value alone and does not report a change."""
    changes = 0

    def on_change() -> None:
        nonlocal changes
        changes += 1

    cache = Cached("tool list", Source("v1", CatalogUnavailable("down")), ttl=0, on_change=on_change)
    await cache.get()
    await cache.get()
    assert changes == 1


async def test_age_is_none_before_the_first_fetch() -> None:
    """An empty cache has no age and counts as stale."""
    cache = Cached("tool list", Source("v1"), ttl=60)
    assert cache.age is None
    assert cache.stale
    await cache.get()
    assert cache.age is not None
    assert not cache.stale
