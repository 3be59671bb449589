"""What the App client records: exchanges by path template, never an id, and failures by reason."""

from __future__ import annotations

import re
import socket

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from pluggedin_proxy.catalog.app_client import PATH_TEMPLATES, AppClient, path_template
from pluggedin_proxy.errors import CatalogUnavailable
from pluggedin_proxy.metrics import PrometheusMetrics
from tests.conftest import REPO

pytestmark = pytest.mark.anyio

KEY = "pg_in_metrics_test_key_0123456789"
UUID = "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b"
# A string literal naming an App path in the package, f-string fields included.
APP_PATH = re.compile(r"""f?"(/api/[^"]*)\"""")


def errors(metrics: PrometheusMetrics) -> dict[tuple[str, str, str], float]:
    body, _ = metrics.render()
    return {
        (s.labels["method"], s.labels["path"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(body.decode())
        if family.name == "pluggedin_app_request_errors"
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_ids_and_user_text_in_a_path_become_a_placeholder() -> None:
    """A path is labelled by its template; a literal segment wins over `{id}`; an unlisted path is `other`."""
    assert path_template("/api/tools") == "/api/tools"
    assert path_template(f"/api/documents/{UUID}") == "/api/documents/{id}"
    assert path_template("/api/documents/search") == "/api/documents/search"
    assert path_template("/api/notifications/my%20note/completed") == "/api/notifications/{id}/completed"
    assert path_template("/api/discover/all") == "/api/discover/all"
    assert path_template(f"/api/discover/{UUID}") == "/api/discover/{id}"
    assert path_template("/api/documents/") == "other"
    assert path_template(f"/api/secret/{KEY}") == "other"


def test_every_app_path_the_proxy_calls_has_a_template() -> None:
    """Each `/api/…` path written in the proxy's code (not the self-hosted App's) is labelled by a template."""
    written = [
        (source.name, path)
        for source in (REPO / "pluggedin_proxy").rglob("*.py")
        if "selfhost" not in source.parts
        for path in APP_PATH.findall(source.read_text())
    ]
    assert len(written) > 20
    assert [(name, path) for name, path in written if path_template(re.sub(r"\{[^}]*\}", "x1", path)) == "other"] == []
    assert len(set(PATH_TEMPLATES)) == len(PATH_TEMPLATES)


async def test_unreachable_and_silent_apps_are_counted_by_reason() -> None:
    """A refused connection counts as `unreachable`, an App that never answers as `timeout`."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
    metrics = PrometheusMetrics()
    async with AppClient(f"http://127.0.0.1:{refused_port}", SecretStr(KEY), metrics=metrics) as client:
        with pytest.raises(CatalogUnavailable):
            await client.send("GET", f"/api/documents/{UUID}")

    # Accepted by the kernel's backlog, never answered.
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as silent:
        port = silent.extra(anyio.abc.SocketAttribute.local_port)
        async with AppClient(f"http://127.0.0.1:{port}", SecretStr(KEY), metrics=metrics) as client:
            with pytest.raises(CatalogUnavailable):
                await client.send("POST", "/api/rag/query", json={"query": "q"}, timeout=0.2)

    assert errors(metrics) == {
        ("GET", "/api/documents/{id}", "unreachable"): 1,
        ("POST", "/api/rag/query", "timeout"): 1,
    }
    body, _ = metrics.render()
    assert UUID.encode() not in body and KEY.encode() not in body
