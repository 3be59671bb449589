"""Keeping each upstream server in check: its health, its circuit breaker and its share of calls.

`Supervisor` follows one server (all its sessions) through the states idle → starting → ready →
failing → open → half-open. Start failures, connections that die and calls that time out count as
failures; a success resets the count. After `FAILURES_TO_OPEN` failures in a row the circuit opens:
requests fail fast, with a message saying why and when the next attempt is, until a cooldown
passes (exponential with jitter, capped). The first request after that is a probe (half-open):
success closes the circuit, failure opens it again for longer. A server that never fails costs
one attribute read per request.

`Gate` caps the calls in flight to one server. Callers beyond the cap wait in a bounded queue for
at most a queue timeout; when the queue is full they are refused at once. Either way one busy
server never holds up requests to the others.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from pluggedin_proxy.errors import UpstreamUnavailable
from pluggedin_proxy.upstream.connect import StderrTail

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_QUEUE_LIMIT",
    "DEFAULT_QUEUE_TIMEOUT",
    "Gate",
    "State",
    "Supervisor",
]

logger = logging.getLogger(__name__)

State = Literal["idle", "starting", "ready", "failing", "open", "half-open"]

FAILURES_TO_OPEN = 3
COOLDOWN_INITIAL = 1.0
COOLDOWN_MAX = 60.0

DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_QUEUE_LIMIT = 1024
DEFAULT_QUEUE_TIMEOUT = 60.0


@dataclass
class Supervisor:
    """The health of one upstream server, and its circuit breaker."""

    name: str
    state: State = "idle"
    failures: int = 0
    """Failures in a row."""
    last_error: str | None = None
    starts: int = 0
    restarts: int = 0
    """Starts after the first: crashes, dropped connections, reaped sessions."""
    tail: StderrTail | None = None
    """The stderr of its latest stdio child."""
    _cooldown: float = 0.0
    _retry_at: float = 0.0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def admit(self) -> None:
        """Let a request through unless the circuit is open.

        Raises:
            UpstreamUnavailable: the circuit is open; the message says when the next attempt is.
        """
        if self.state != "open":
            return
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise UpstreamUnavailable(
                f"server {self.name!r} is unavailable after {self.failures} failures in a row "
                f"(last: {self.last_error}); the next attempt is in {math.ceil(wait)} s",
                server_name=self.name,
            )
        self.state = "half-open"
        logger.info("server %r: trying again after its cooldown", self.name)

    def starting(self) -> None:
        if self.starts:
            self.restarts += 1
        self.starts += 1
        if self.state != "half-open":
            self.state = "starting"

    def succeeded(self) -> None:
        """A start or a call went well: the circuit closes."""
        if self.state != "ready":
            if self.state == "half-open":
                logger.info("server %r is back", self.name)
            self.state = "ready"
        self.failures = 0
        self._cooldown = 0.0

    def failed(self, error: str) -> None:
        """A start failed, a connection died or a call timed out."""
        self.failures += 1
        self.last_error = error
        if self.state == "half-open" or self.failures >= FAILURES_TO_OPEN:
            self._cooldown = min(COOLDOWN_MAX, max(COOLDOWN_INITIAL, self._cooldown * 2))
            delay = self._cooldown * (0.5 + self._rng.random() / 2)
            self._retry_at = time.monotonic() + delay
            self.state = "open"
            logger.warning(
                "server %r failed %d times in a row (last: %s); pausing it for %.1f s",
                self.name,
                self.failures,
                error,
                delay,
            )
        else:
            self.state = "failing"

    def stopped(self) -> None:
        """Every session closed without a failure (reaped, retired or shut down)."""
        if self.state in ("ready", "starting"):
            self.state = "idle"

    def status(self) -> dict[str, Any]:
        """What `doctor` and `/health` show."""
        status: dict[str, Any] = {
            "state": self.state,
            "failures": self.failures,
            "restarts": self.restarts,
            "lastError": self.last_error,
        }
        if self.state == "open":
            status["retryInSeconds"] = max(0, math.ceil(self._retry_at - time.monotonic()))
        return status


class Gate:
    """At most `limit` calls in flight to one server; a bounded, timed queue for the rest."""

    def __init__(
        self,
        name: str,
        *,
        limit: int = DEFAULT_MAX_CONCURRENCY,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
    ) -> None:
        self.name = name
        self.limit = limit
        self.queue_limit = queue_limit
        self.queue_timeout = queue_timeout
        self.waiting = 0
        self._semaphore = anyio.Semaphore(limit, fast_acquire=True)

    @property
    def in_flight(self) -> int:
        return self.limit - self._semaphore.value

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the server's call slots for the duration of a call.

        Raises:
            UpstreamUnavailable: the queue is full, or no slot came free within the queue timeout.
        """
        semaphore = self._semaphore
        if semaphore.value == 0:
            await self._wait_for_slot()
        else:
            await semaphore.acquire()
        try:
            yield
        finally:
            semaphore.release()

    async def _wait_for_slot(self) -> None:
        if self.waiting >= self.queue_limit:
            raise UpstreamUnavailable(
                f"server {self.name!r} is busy: {self.limit} calls in flight and {self.waiting} waiting",
                server_name=self.name,
            )
        self.waiting += 1
        try:
            with anyio.fail_after(self.queue_timeout):
                await self._semaphore.acquire()
        except TimeoutError:
            raise UpstreamUnavailable(
                f"server {self.name!r} is busy: no call slot came free within {self.queue_timeout:g} s "
                f"({self.limit} calls in flight)",
                server_name=self.name,
            ) from None
        finally:
            self.waiting -= 1
