"""Upstream security policies through the real `pluggedin-mcp` process: what each flag refuses, that the
other servers keep working, that the defaults refuse nothing local, and that secrets stay out of the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import ClientSession

from tests.conftest import REPO, echo_server, http_echo, proxy_command, proxy_session

pytestmark = pytest.mark.anyio

"""The policy reaches `open_transport` only once `UpstreamPool` passes it on (see upstream/policy.py)."""

# Fake secrets, made up for these tests.
PG_KEY = "pg_in_" + "Zq7" * 21 + "y"
SECRET_VALUE = "fake-service-key-0042"
API_KEY = "fake_api_key_for_redaction_0123456789"
LEAK_LINE = f"connecting to https://bob:hunter2-fake@db.internal/x with Bearer fake0bearer0token0123 and {PG_KEY}"
MASKED_LINE = "connecting to https://***@db.internal/x with Bearer *** and pg_in_***"

# Writes `$LEAK` to stderr, then serves the argv test server: the proxy logs the line at debug level.
LEAKY_SERVER = (
    "import os, runpy, sys; sys.stderr.write(os.environ['LEAK'] + '\\n'); sys.stderr.flush(); "
    "runpy.run_module('tests.servers.argv_server', run_name='__main__')"
)
PYTHON = os.path.basename(sys.executable)


def argv_server(*args: str, **env: str) -> dict[str, Any]:
    """A config entry for the argv test server."""
    return {"command": sys.executable, "args": ["-m", "tests.servers.argv_server", *args], "cwd": str(REPO), "env": env}


def leaky_server(**env: str) -> dict[str, Any]:
    """A config entry for a server that writes `$LEAK` to stderr, then serves the argv test server."""
    return {"command": sys.executable, "args": ["-c", LEAKY_SERVER], "cwd": str(REPO), "env": env}


def via_shell(name: str) -> dict[str, Any]:
    """An echo server started through `sh`: a working server whose command is not the interpreter's."""
    return {"command": "sh", "args": ["-c", f'exec "{sys.executable}" -m tests.servers.echo_server --name {name}'],
            "cwd": str(REPO)}  # fmt: skip


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `pluggedin-mcp ARGS` from the checkout, with stdin closed."""
    return subprocess.run(
        proxy_command(*args), capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, **env}, stdin=subprocess.DEVNULL,
    )  # fmt: skip


async def tool_names(session: ClientSession) -> set[str]:
    return {tool.name for tool in (await session.list_tools()).tools}


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


class TestDefaults:
    async def test_local_stdio_and_loopback_http_servers_work_without_flags(self, write_config: Any):
        """By default nothing local is refused: a stdio server and a Streamable HTTP server on 127.0.0.1."""
        with http_echo() as web:
            config = write_config(
                {"echo": echo_server(), "web": {"type": "http", "url": f"http://127.0.0.1:{web.port}/mcp"}}
            )
            async with proxy_session(config) as session:
                assert {"echo__echo", "web__echo"} <= await tool_names(session)
                assert text_of(await session.call_tool("web__echo", {"text": "local"})) == "local"

    async def test_arguments_reach_a_server_verbatim_through_the_proxy(self, write_config: Any):
        """A config argument with shell metacharacters, quotes and a newline arrives byte for byte."""
        strange = ['a b; rm -rf x $(id) "q" \n', "`id` && echo $HOME > /dev/null", "C:\\dir\\x.exe", ""]
        async with proxy_session(write_config({"argv": argv_server(*strange)})) as session:
            result = await session.call_tool("argv__argv", {})
            assert json.loads(text_of(result)) == [os.fsencode(arg).hex() for arg in strange]


class TestSecrets:
    def test_an_error_quoting_the_api_key_is_masked_when_the_command_line_prints_it(self, write_config: Any):
        """An upstream error message that repeats the API key or a bearer token is printed with `***`."""
        config = write_config({"echo": echo_server()})
        message = f"message=rejected {API_KEY} and Bearer fake0bearer0token0123"
        done = run(
            "call", "echo__raise_error", "code=-32000", message, "--config", str(config), PLUGGEDIN_API_KEY=API_KEY
        )
        assert done.returncode == 1
        assert (
            done.stderr.splitlines()[-1]
            == "pluggedin-mcp: the server answered with error -32000: rejected *** and Bearer ***"
        )
        assert API_KEY not in done.stdout + done.stderr

    async def test_secret_patterns_a_server_writes_to_stderr_are_masked_in_the_proxy_log(
        self, write_config: Any, tmp_path: Path
    ):
        """URL passwords, bearer tokens and plugged.in keys never reach the proxy's stderr, even at debug level."""
        log = tmp_path / "stderr.log"
        with log.open("w") as errlog:
            config = write_config({"leaky": leaky_server(LEAK=LEAK_LINE)})
            async with proxy_session(config, errlog=errlog) as session:
                assert "leaky__argv" in await tool_names(session)
        text = log.read_text()
        assert f"[leaky stderr] {MASKED_LINE}" in text
        assert "hunter2-fake" not in text and "fake0bearer0token0123" not in text and PG_KEY not in text

    async def test_a_servers_secret_env_value_is_masked_in_the_proxy_log(self, write_config: Any, tmp_path: Path):
        """A value under a secret-looking name (`*_KEY`) is masked wherever it shows up once the server connects."""
        log = tmp_path / "stderr.log"
        with log.open("w") as errlog:
            leaky = leaky_server(LEAK=f"using key {SECRET_VALUE}", SERVICE_API_KEY=SECRET_VALUE)
            config = write_config({"leaky": leaky})
            async with proxy_session(config, errlog=errlog) as session:
                assert "leaky__argv" in await tool_names(session)
        text = log.read_text()
        assert "[leaky stderr] using key ***" in text
        assert SECRET_VALUE not in text


class TestAllowCommand:
    async def test_an_unlisted_command_is_refused_and_the_other_servers_keep_working(
        self, write_config: Any, tmp_path: Path
    ):
        """With `--allow-command`, a server started through `sh` is refused with a clear error; echo still works."""
        config = write_config({"echo": echo_server(), "shell": via_shell("shell")})
        log = tmp_path / "stderr.log"
        with log.open("w") as errlog:
            async with proxy_session(config, "--allow-command", PYTHON, errlog=errlog) as session:
                names = await tool_names(session)
                assert "echo__echo" in names and not any(name.startswith("shell__") for name in names)
                assert text_of(await session.call_tool("echo__echo", {"text": "fine"})) == "fine"
        assert "server 'shell' was refused: its command 'sh' is not allowed by --allow-command" in log.read_text()

    def test_the_allowlist_from_the_environment_shows_the_refusal_in_tools_and_doctor(self, write_config: Any):
        """`PLUGGEDIN_ALLOW_COMMANDS` works like the flag; `tools` and `doctor` report the refused server."""
        config = write_config({"echo": echo_server(), "shell": via_shell("shell")})
        listed = run("tools", "--refresh", "--config", str(config), PLUGGEDIN_ALLOW_COMMANDS=f"npx, {PYTHON}")
        assert listed.returncode == 0, listed.stderr
        assert "echo__echo" in listed.stdout and "shell__" not in listed.stdout
        assert "its command 'sh' is not allowed by --allow-command (allowed: npx, " in listed.stderr
        doctor = run("doctor", "--config", str(config))
        (line,) = [line for line in doctor.stdout.splitlines() if line.strip().startswith("shell")]
        assert "FAILED" in line and "not allowed by --allow-command" in line

    async def test_with_the_interpreter_listed_its_servers_run(self, write_config: Any):
        """A listed command runs as before."""
        config = write_config({"echo": echo_server()})
        async with proxy_session(config, "--allow-command", sys.executable) as session:
            assert text_of(await session.call_tool("echo__echo", {"text": "allowed"})) == "allowed"


class TestBlockPrivateUpstreams:
    async def test_a_loopback_http_server_is_refused_and_the_other_servers_keep_working(
        self, write_config: Any, tmp_path: Path
    ):
        """With `--block-private-upstreams`, an HTTP server on 127.0.0.1 is refused; stdio servers still work."""
        with http_echo() as web:
            config = write_config(
                {"echo": echo_server(), "web": {"type": "http", "url": f"http://127.0.0.1:{web.port}/mcp"}}
            )
            log = tmp_path / "stderr.log"
            with log.open("w") as errlog:
                async with proxy_session(config, "--block-private-upstreams", errlog=errlog) as session:
                    names = await tool_names(session)
                    assert "echo__echo" in names and not any(name.startswith("web__") for name in names)
        assert "server 'web' was refused by --block-private-upstreams: its host 127.0.0.1 is a loopback address" in (
            log.read_text()
        )

    def test_the_environment_variable_blocks_a_name_resolving_to_loopback(self, write_config: Any):
        """`PLUGGEDIN_BLOCK_PRIVATE_UPSTREAMS=1` works like the flag, and `localhost` is resolved to be checked."""
        config = write_config({"echo": echo_server(), "web": {"type": "http", "url": "http://localhost:9/mcp"}})
        listed = run("tools", "--refresh", "--config", str(config), PLUGGEDIN_BLOCK_PRIVATE_UPSTREAMS="1")
        assert listed.returncode == 0, listed.stderr
        assert "echo__echo" in listed.stdout
        assert "its host 'localhost' resolves to" in listed.stderr and "a loopback address" in listed.stderr


class TestDoctor:
    def test_doctor_shows_the_policies_in_force(self, write_config: Any):
        """`doctor` says which upstream policies apply, and that none do by default."""
        config = str(write_config({"echo": echo_server()}))
        plain = run("doctor", "--config", config)
        assert "policies:    none (any command; private addresses allowed)" in plain.stdout
        strict = run("--allow-command", "uvx", "--allow-command", "npx", "--block-private-upstreams", "doctor",
                     "--config", config)  # fmt: skip
        assert (
            "policies:    commands limited to npx, uvx (--allow-command); "
            "private addresses refused (--block-private-upstreams)"
        ) in strict.stdout
