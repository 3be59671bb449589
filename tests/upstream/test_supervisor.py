"""The circuit breaker and the per-server call cap, on their own."""

from __future__ import annotations

import time

import anyio
import pytest

from pluggedin_proxy.errors import UpstreamUnavailable
from pluggedin_proxy.upstream import supervisor as module
from pluggedin_proxy.upstream.supervisor import Gate, Supervisor

pytestmark = pytest.mark.anyio


class TestSupervisor:
    def test_failures_in_a_row_open_the_circuit_and_a_success_closes_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        now = [1000.0]
        monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
        supervisor = Supervisor("s")
        for _ in range(module.FAILURES_TO_OPEN - 1):
            supervisor.failed("boom")
            supervisor.admit()
        assert supervisor.state == "failing"
        supervisor.failed("boom")
        assert supervisor.state == "open"
        with pytest.raises(UpstreamUnavailable, match="unavailable after 3 failures in a row \\(last: boom\\)"):
            supervisor.admit()
        now[0] += module.COOLDOWN_INITIAL
        supervisor.admit()  # the cooldown is over: one probe goes through
        assert supervisor.state == "half-open"
        supervisor.succeeded()
        assert (supervisor.state, supervisor.failures) == ("ready", 0)

    def test_a_failed_probe_opens_the_circuit_for_longer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        now = [0.0]
        monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
        supervisor = Supervisor("s")
        waits = []
        for _ in range(module.FAILURES_TO_OPEN):
            supervisor.failed("boom")
        for _ in range(8):
            waits.append(supervisor.status()["retryInSeconds"])
            now[0] += module.COOLDOWN_MAX
            supervisor.admit()
            supervisor.failed("again")
        assert supervisor.state == "open"
        assert max(waits) <= module.COOLDOWN_MAX
        assert waits[-1] > waits[0]

    def test_restarts_are_counted(self) -> None:
        supervisor = Supervisor("s")
        for _ in range(3):
            supervisor.starting()
            supervisor.succeeded()
        assert supervisor.status() | {"lastError": None} == {
            "state": "ready",
            "failures": 0,
            "restarts": 2,
            "lastError": None,
        }


class TestGate:
    async def test_calls_beyond_the_cap_wait_their_turn(self) -> None:
        gate = Gate("s", limit=2)
        running = 0
        most = 0

        async def call() -> None:
            nonlocal running, most
            async with gate.slot():
                running += 1
                most = max(most, running)
                await anyio.sleep(0.01)
                running -= 1

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(call)
        assert most == 2 and gate.in_flight == 0 and gate.waiting == 0

    async def test_a_full_queue_refuses_at_once(self) -> None:
        gate = Gate("s", limit=1, queue_limit=1)
        release = anyio.Event()

        async def hold() -> None:
            async with gate.slot():
                await release.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold)
            tg.start_soon(hold)
            await anyio.sleep(0.05)
            assert (gate.in_flight, gate.waiting) == (1, 1)
            started = time.monotonic()
            with pytest.raises(UpstreamUnavailable, match="busy: 1 calls in flight and 1 waiting"):
                async with gate.slot():
                    pass
            assert time.monotonic() - started < 1
            release.set()

    async def test_waiting_longer_than_the_queue_timeout_is_refused(self) -> None:
        gate = Gate("s", limit=1, queue_timeout=0.1)
        release = anyio.Event()

        async def hold() -> None:
            async with gate.slot():
                await release.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold)
            await anyio.sleep(0.02)
            with pytest.raises(UpstreamUnavailable, match="no call slot came free within 0.1 s"):
                async with gate.slot():
                    pass
            release.set()
        assert gate.waiting == 0
