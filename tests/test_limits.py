"""The sliding window behind the per-client rate limit."""

from __future__ import annotations

from pluggedin_proxy.proxy.limits import SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Client:
    """Stands for a downstream connection: weakly referenceable, one per client."""


def test_each_key_has_its_own_window_and_slots_free_as_it_slides() -> None:
    clock = Clock()
    window = SlidingWindow(2, 60, clock=clock)
    a, b = Client(), Client()
    assert window.acquire(a) is None and window.acquire(a) is None
    assert window.acquire(a) == 60
    assert window.acquire(b) is None
    clock.now = 30
    assert window.acquire(a) == 30
    clock.now = 60.5
    assert window.acquire(a) is None


def test_string_keys_work_and_zero_means_no_limit() -> None:
    clock = Clock()
    assert SlidingWindow(1, 60, clock=clock).acquire("k") is None
    limited = SlidingWindow(1, 60, clock=clock)
    limited.acquire("k")
    assert limited.acquire("k") == 60
    unlimited = SlidingWindow(0)
    assert all(unlimited.acquire("k") is None for _ in range(1000))
