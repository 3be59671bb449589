"""Shared fixtures: a clean environment per test, config files, and the proxy as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

KEY = "test_key_for_the_selfhosted_app_0123456789"
"""The API key the self-hosted App started by `selfhosted_app` accepts."""

_STRIPPED_PREFIXES = ("PLUGGEDIN_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT", "REQUESTS_CA")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environ(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No plugged.in settings, keyring, proxies or CA overrides leak in; HOME, config and cache are per test."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.upper().startswith(_STRIPPED_PREFIXES):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    # A developer's real keyring must never be read by a test or by a proxy a test starts.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        yield home
    finally:
        keyring.set_keyring(previous)


def echo_server(name: str = "echo", *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A config entry for the echo fixture server."""
    entry: dict[str, Any] = {
        "command": sys.executable,
        "args": ["-m", "tests.servers.echo_server", "--name", name, *args],
        "cwd": str(REPO),
    }
    if env:
        entry["env"] = env
    return entry


def example_server(name: str) -> dict[str, Any]:
    """A config entry for one of the bundled example servers."""
    return {"command": sys.executable, "args": [str(EXAMPLES / "servers" / f"{name}.py")]}


def time_server() -> dict[str, Any]:
    """`mcp-server-time` from PyPI, installed beside the proxy."""
    exe = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent)) or shutil.which("mcp-server-time")
    if exe is None:
        pytest.fail("mcp-server-time is not installed (pip install -e '.[test]')")
    return {"command": exe, "args": ["--local-timezone", "UTC"]}


def everything_server() -> dict[str, Any]:
    """`@modelcontextprotocol/server-everything` from npm, over stdio."""
    exe = os.environ.get("SERVER_EVERYTHING_BIN") or shutil.which("mcp-server-everything")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("server-everything is not installed; .ci/run installs it and sets SERVER_EVERYTHING_BIN")
        pytest.skip("server-everything not installed (npm install @modelcontextprotocol/server-everything)")
    return {"command": exe, "args": ["stdio"]}


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write an `mcpServers` config file and return its path."""

    def write(servers: dict[str, Any], name: str = "mcp.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({"mcpServers": servers}))
        return path

    return write


def proxy_command(*args: str) -> list[str]:
    """The proxy's command line, run from this checkout's interpreter."""
    return [sys.executable, "-m", "pluggedin_proxy", *args]


@asynccontextmanager
async def proxy_session(
    config: Path | None, *extra: str, errlog: Any = None, **session_options: Any
) -> AsyncIterator[ClientSession]:
    """An initialized client session with `pluggedin-mcp [--config CONFIG] EXTRA…` running as a subprocess."""
    config_args = ("--config", str(config)) if config is not None else ()
    command, *args = proxy_command(*config_args, "--log-level", "debug", *extra)
    params = StdioServerParameters(command=command, args=args, env=dict(os.environ), cwd=str(REPO))
    log = errlog if errlog is not None else sys.stderr
    async with stdio_client(params, errlog=log) as (read, write), ClientSession(read, write, **session_options) as s:
        await s.initialize()
        yield s


@contextmanager
def selfhosted_app(tmp_path: Path, servers: dict[str, Any], key: str = KEY) -> Iterator[str]:
    """Run `python -m pluggedin_proxy.selfhost` on a free port; yields its base URL once it listens."""
    config = tmp_path / "app.json"
    config.write_text(json.dumps({"mcpServers": servers}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pluggedin_proxy.selfhost", "--config", str(config), "--port", "0",
         "--api-key", key, "--data-dir", str(tmp_path / "app-data")],
        stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                yield found.group(1)
                break
        else:
            pytest.fail("the self-hosted App exited before listening")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class HttpEcho:
    """The echo fixture served over Streamable HTTP as a real process, started and stopped at will."""

    def __init__(self, name: str = "web") -> None:
        self.name = name
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> int:
        """Start on the remembered port (a fresh one the first time); return once it is accepting."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.http_echo", "--port", str(self.port), "--name", self.name],
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self._proc = proc
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("LISTENING "):
                self.port = int(line.split()[1])
                return self.port
        pytest.fail("the HTTP echo server exited before listening")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


@contextmanager
def http_echo(name: str = "web") -> Iterator[HttpEcho]:
    server = HttpEcho(name)
    server.start()
    try:
        yield server
    finally:
        server.stop()
