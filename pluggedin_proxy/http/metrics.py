"""`GET /metrics`: the proxy's Prometheus metrics, with what is alive read at the moment of the scrape.

Counters and histograms are recorded as requests pass (see `pluggedin_proxy.metrics`); sessions,
live upstreams and the App caches' counters are read here, on each scrape, from objects the proxy
already keeps, so nothing on the hot path keeps gauges up to date. Reading them never starts a
server or asks the catalog anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pluggedin_proxy.catalog.remote import RemoteCatalog
from pluggedin_proxy.metrics import LiveState, PrometheusMetrics
from pluggedin_proxy.proxy.server import Proxy

__all__ = ["METRICS_PATH", "metrics_route"]

METRICS_PATH = "/metrics"


def metrics_route(proxy: Proxy, metrics: PrometheusMetrics, sessions: Callable[[], Mapping[str, int]]) -> Route:
    """The `/metrics` route over `metrics`; `sessions` counts the open downstream sessions by transport."""

    def live() -> LiveState:
        view = proxy.router.current
        # Servers known but not running show as 0 rather than vanishing from the gauge.
        upstreams = dict.fromkeys((spec.name for spec in view.servers.values()), 0) if view is not None else {}
        processes = 0
        for upstream in proxy.pool.live():
            upstreams[upstream.spec.name] = upstreams.get(upstream.spec.name, 0) + 1
            processes += upstream.spec.transport == "stdio"
        caches = proxy.catalog.caches if isinstance(proxy.catalog, RemoteCatalog) else []
        return LiveState(
            http_sessions=sessions(),
            upstream_sessions=upstreams,
            upstream_processes=processes,
            caches=[(cache.name.replace(" ", "_"), cache.stats) for cache in caches],
        )

    metrics.watch(live)

    async def endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return Route(METRICS_PATH, endpoint, methods=["GET"])
