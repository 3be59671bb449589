"""The `pluggedin-mcp` command: its help, and `tools`, `call` and the proxy run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pluggedin_proxy import __version__
from pluggedin_proxy.cli import app
from tests.conftest import REPO, proxy_command

EXAMPLE_CONFIG = "examples/pluggedin.json"
INVALID_SERVER = {"broken": {"command": "npx", "args": "-y server-files"}}


def help_text(*args: str) -> str:
    """The help output of `pluggedin-mcp ARGS`, with line wrapping undone."""
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `pluggedin-mcp ARGS` from the checkout, with stdin closed."""
    return subprocess.run(
        proxy_command(*args),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def invalid_config(write_config: Callable[..., Path]) -> Path:
    """A config whose server `broken` has `args` as a string instead of a list."""
    return write_config(INVALID_SERVER)


def assert_one_line_naming_the_problem(result: subprocess.CompletedProcess[str], config: Path) -> None:
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert str(config) in line
    assert "'broken'" in line
    assert "'args'" in line


# Help


@pytest.mark.parametrize(
    "flag",
    [
        "--pluggedin-api-key",
        "--pluggedin-api-base-url",
        "--transport",
        "--port",
        "--stateless",
        "--require-api-auth",
        "--config",
        "--no-prefix",
        "--log-level",
        "--pin-tools",
        "--allow-command",
        "--block-private-upstreams",
        "--rate-limit",
        "--call-timeout",
        "--max-result-size",
        "--host",
        "--json-response",
        "--cors-origin",
        "--http-api-key",
        "--http-rate-limit",
        "--session-timeout",
        "--max-sessions",
        "--version",
    ],
)
def test_help_lists_every_flag(flag: str):
    """`--help` lists each of the proxy's flags."""
    assert flag in help_text()


def test_help_lists_the_tools_and_call_sub_commands():
    """`--help` lists the `tools` and `call` sub-commands with their summaries."""
    text = help_text()
    assert "tools Print the aggregated tool catalog" in text
    assert "call Call one tool through the proxy" in text


def test_tools_help_describes_its_options():
    """`tools --help` describes `--config`, `--json`, `--refresh` and `--no-prefix`."""
    text = help_text("tools")
    assert "--config" in text
    assert "--json" in text
    assert "Print the tools as JSON" in text
    assert "--refresh" in text
    assert "Discover every server again" in text
    assert "--no-prefix" in text


def test_call_help_describes_its_arguments_and_options():
    """`call --help` describes the tool name, `key=value` arguments, `--json` and `--config`."""
    text = help_text("call")
    assert "The tool's exposed name" in text
    assert "key=value" in text
    assert "--json" in text
    assert "All arguments as one JSON object" in text
    assert "--config" in text


def test_version_prints_the_package_version():
    """`--version` prints the version from `pluggedin_proxy.__version__` and exits 0."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"pluggedin-mcp {__version__}\n"


# Configuration errors


def test_tools_with_an_invalid_server_exits_1_with_one_line_naming_file_server_and_field(invalid_config: Path):
    """`tools` on a broken config prints one stderr line naming the file, server and field, and nothing else."""
    assert_one_line_naming_the_problem(run("tools", "--config", str(invalid_config)), invalid_config)


def test_the_proxy_with_an_invalid_server_exits_1_with_one_line_naming_file_server_and_field(invalid_config: Path):
    """The bare proxy on a broken config writes no JSON-RPC and one stderr line naming the file, server and field."""
    assert_one_line_naming_the_problem(run("--config", str(invalid_config)), invalid_config)


# tools


def test_tools_prints_a_table_of_exposed_names_and_their_servers():
    """`tools` prints one row per tool: exposed name, then server name."""
    result = run("tools", "--config", EXAMPLE_CONFIG)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert rows["notes__add_note"] == "notes"
    assert rows["calc__add"] == "calc"


def test_tools_json_prints_valid_json_with_names_and_servers():
    """`tools --json` prints a JSON list of objects with name, server, description and whether it changed."""
    result = run("tools", "--json", "--config", EXAMPLE_CONFIG)
    assert result.returncode == 0, result.stderr
    tools = {tool["name"]: tool for tool in json.loads(result.stdout)}
    assert tools["notes__add_note"]["server"] == "notes"
    assert tools["calc__add"] == {
        "name": "calc__add",
        "server": "calc",
        "description": "Add two numbers.",
        "changed": False,
    }


# call


def test_call_with_key_value_arguments_prints_the_result():
    """`call calc__add a=2 b=40` reads the numbers as JSON and prints `42.0`."""
    result = run("call", "calc__add", "a=2", "b=40", "--config", EXAMPLE_CONFIG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42.0"


def test_call_keeps_a_value_as_a_string_when_the_schema_asks_for_a_string():
    """`text=007` stays the string `007` for a string parameter, not the number 7."""
    result = run("call", "calc__echo", "text=007", "--config", EXAMPLE_CONFIG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "007"


def test_call_with_json_arguments_prints_the_result():
    """`--json '{"a":1,"b":2}'` passes the object as the arguments."""
    result = run("call", "calc__add", "--json", '{"a":1,"b":2}', "--config", EXAMPLE_CONFIG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3.0"


def test_call_of_an_unknown_tool_exits_1_naming_the_tool():
    """Calling a tool no server offers fails with an error that names it."""
    result = run("call", "calc__nope", "--config", EXAMPLE_CONFIG)
    assert result.returncode == 1
    assert "calc__nope" in result.stdout + result.stderr


def test_call_with_an_argument_missing_its_equals_sign_exits_1_with_a_clear_message():
    """An argument without `=` is rejected on stderr, naming the argument and the expected form."""
    result = run("call", "calc__add", "a", "--config", EXAMPLE_CONFIG)
    assert result.returncode == 1
    assert "'a'" in result.stderr
    assert "key=value" in result.stderr


def test_call_of_a_tool_that_returns_an_error_exits_1_and_prints_the_error():
    """A tool result with `isError` exits 1 and prints the tool's error text."""
    result = run("call", "notes__delete_note", "id=nope", "--config", EXAMPLE_CONFIG)
    assert result.returncode == 1
    assert "No note with id 'nope'" in result.stdout


def test_the_proxy_command_ignores_arguments_it_does_not_know(tmp_path: Path) -> None:
    """Like the TypeScript proxy, unknown options and words are ignored (and named on stderr), not fatal."""
    config = tmp_path / "empty.json"
    config.write_text('{"mcpServers": {}}')
    done = subprocess.run(
        proxy_command("--config", str(config), "--inspector-option", "value", "stray"),
        input='{"jsonrpc": "2.0", "id": 1, "method": "ping"}\n',
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=os.environ.copy(),
    )
    assert done.returncode == 0
    assert json.loads(done.stdout)["result"] == {}
    assert "ignoring unknown arguments: --inspector-option value stray" in done.stderr
