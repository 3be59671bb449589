"""`login`, `logout`, `doctor` and no-key mode, through the real CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pluggedin_proxy.cli import app
from tests.conftest import REPO, proxy_command

KEY = "login_test_key_0123456789_abcdefghijklmn"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        proxy_command(*args), capture_output=True, text=True, timeout=60, cwd=REPO, env=env or os.environ.copy()
    )


def test_login_without_a_keyring_says_so_and_points_at_the_file_option(clean_environ: Path) -> None:
    """Where no OS keyring exists, `login` fails clearly and names `--file`; nothing is stored."""
    result = CliRunner().invoke(app, ["login", "--api-key", KEY, "--no-check"])
    assert result.exit_code != 0
    message = str(result.exception) + result.output
    assert "keyring" in message.lower()
    assert KEY not in message


def test_login_to_the_credentials_file_stores_it_privately_and_logout_removes_it(clean_environ: Path) -> None:
    """`login --file` writes credentials.json with mode 0600; the key is then used; `logout` removes it."""
    stored = _run("login", "--api-key", KEY, "--base-url", "http://127.0.0.1:9/app", "--file", "--no-check")
    assert stored.returncode == 0, stored.stderr
    path = clean_environ / ".config" / "pluggedin" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["api_key"] == KEY
    assert KEY not in stored.stdout + stored.stderr

    report = _run("doctor")
    assert "from credentials file" in report.stdout and "mode:        app" in report.stdout
    assert "http://127.0.0.1:9/app" in report.stdout and KEY not in report.stdout

    removed = _run("logout")
    assert removed.returncode == 0 and "credentials" in removed.stdout
    assert "api_key" not in (path.read_text() if path.exists() else "")


def test_login_refuses_a_key_the_app_rejects(clean_environ: Path) -> None:
    """With the check on (the default), an unreachable App stops `login` before anything is stored."""
    result = _run("login", "--api-key", KEY, "--base-url", "http://127.0.0.1:9", "--file")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert not (clean_environ / ".config" / "pluggedin" / "credentials.json").exists()


def test_a_malformed_key_is_an_error_naming_its_source(clean_environ: Path) -> None:
    """A key that cannot be valid is reported with where it came from, not silently ignored."""
    result = _run("doctor", env={**os.environ, "PLUGGEDIN_API_KEY": "not a key!"})
    assert result.returncode == 1
    assert "PLUGGEDIN_API_KEY" in result.stderr and "not a key!" not in result.stderr


def test_doctor_without_key_or_config_explains_how_to_set_up(clean_environ: Path) -> None:
    """With nothing configured, `doctor` says so and how to fix it."""
    result = _run("doctor")
    assert result.returncode == 0
    assert "unconfigured" in result.stdout and "pluggedin-mcp login" in result.stdout


@pytest.mark.anyio
async def test_no_key_mode_serves_a_setup_guide_in_its_instructions(clean_environ: Path) -> None:
    """Without a key or a config the proxy still starts, lists only its built-ins, and explains setup on initialize."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    command, *args = proxy_command()
    params = StdioServerParameters(command=command, args=args, env=dict(os.environ), cwd=str(REPO))
    async with stdio_client(params, errlog=sys.stderr) as (read, write), ClientSession(read, write) as session:
        result = await session.initialize()
        assert result.instructions is not None and "pluggedin-mcp login" in result.instructions
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert names[0] == "pluggedin_setup" and all(name.startswith("pluggedin_") for name in names)
