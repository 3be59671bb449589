"""The official MCP conformance suites, run through the proxy by `scripts/conformance --proxy`.

`@modelcontextprotocol/conformance` 0.1.16 (`--suite all`) and 0.2.0-alpha.12 (`--suite all` at
2026-07-28 and at 2025-11-25) test `pluggedin-mcp --no-prefix --transport streamable-http` with the
project's conformance fixture behind it, once as a stdio upstream and once as a Streamable HTTP
upstream. The script installs Node 22 and the harnesses under `.ci/cache/` on first use (npm needed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

RUNS = [
    f"proxy-{upstream}-upstream-conformance-{suite}"
    for upstream in ("stdio", "http")
    for suite in ("0.1.16", "0.2.0-alpha.12-2026-07-28", "0.2.0-alpha.12-2025-11-25")
]
SUMMARY = re.compile(r"^(\S+): (\d+) passed, (\d+) failed, (\d+) warnings", re.MULTILINE)


@pytest.mark.timeout(1500)
def test_every_conformance_check_passes_through_the_proxy() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        [str(REPO / "scripts" / "conformance"), "--proxy"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
    )
    output = done.stdout + done.stderr
    results = {name: (int(passed), int(failed)) for name, passed, failed, _ in SUMMARY.findall(output)}
    assert sorted(results) == sorted(RUNS), output
    assert {name: failed for name, (_, failed) in results.items() if failed} == {}, output
    assert all(passed > 40 for passed, _ in results.values()), output
    assert done.returncode == 0, output
