"""Sliding-window rate limits, one window per key (a downstream session, a credential, a client address)."""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """At most `limit` events per `window` seconds for each key; `limit <= 0` allows everything.

    Keys are held weakly when they can be (session objects), so a closed session's window goes with it.
    """

    def __init__(self, limit: int, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._weak: MutableMapping[Any, deque[float]] = weakref.WeakKeyDictionary()
        self._strong: dict[Hashable, deque[float]] = {}

    def acquire(self, key: Any) -> float | None:
        """Count one event for `key`; `None` if allowed, else the seconds until one would be."""
        if self.limit <= 0:
            return None
        now = self._clock()
        events = self._events(key)
        horizon = now - self.window
        while events and events[0] <= horizon:
            events.popleft()
        if len(events) >= self.limit:
            return events[0] + self.window - now
        events.append(now)
        return None

    def _events(self, key: Any) -> deque[float]:
        try:
            return self._weak.setdefault(key, deque())
        except TypeError:
            # Strings and tuples cannot be weakly referenced; prune empty windows as they are met.
            if len(self._strong) > 10_000:
                horizon = self._clock() - self.window
                for stale in [k for k, v in self._strong.items() if not v or v[-1] <= horizon]:
                    del self._strong[stale]
            return self._strong.setdefault(key, deque())
