"""Reading `mcpServers` config files: accepted spellings, variables, and errors that say where."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pluggedin_proxy.catalog.config import default_config_path, load_config, parse_config
from pluggedin_proxy.errors import ConfigError
from pluggedin_proxy.upstream.spec import ServerSpec

UNSET = "PLUGGEDIN_TEST_SURELY_UNSET"


def parse_one(entry: dict[str, Any], *, name: str = "srv") -> ServerSpec:
    """The single server a document with just this entry describes."""
    (spec,) = parse_config({"mcpServers": {name: entry}}, source="mcp.json")
    return spec


def key_of(entry: dict[str, Any], *, name: str = "srv") -> str:
    return parse_one(entry, name=name).connection_key


@pytest.fixture
def rejection(write_config: Callable[..., Path]) -> Callable[[dict[str, Any]], str]:
    """Write a config with these servers, load it, and return the message of the `ConfigError` it must raise.

    The message is checked to name the config file.
    """

    def reject(servers: dict[str, Any]) -> str:
        path = write_config(servers)
        with pytest.raises(ConfigError) as raised:
            load_config(path)
        message = str(raised.value)
        assert str(path) in message
        return message

    return reject


@pytest.fixture
def raw_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write arbitrary text as a config file and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "mcp.json"
        path.write_text(text)
        return path

    return write


# Accepted spellings


def test_a_claude_desktop_entry_is_a_stdio_server():
    """`command`, `args` and `env` without a type describe a stdio server."""
    spec = parse_one({"command": "npx", "args": ["-y", "server-files"], "env": {"TOKEN": "t"}})
    assert spec.transport == "stdio"
    assert spec.command == "npx"
    assert spec.args == ("-y", "server-files")
    assert spec.env == (("TOKEN", "t"),)


def test_type_stdio_is_a_stdio_server():
    """`type: "stdio"` with a command is a stdio server."""
    assert parse_one({"type": "stdio", "command": "npx"}).transport == "stdio"


def test_type_sse_is_an_sse_server():
    """`type: "sse"` is SSE even when the URL does not end in `/sse`."""
    spec = parse_one({"type": "sse", "url": "https://example.com/events"})
    assert spec.transport == "sse"
    assert spec.url == "https://example.com/events"


def test_type_http_is_a_streamable_http_server():
    """`type: "http"` (Claude Code, VS Code) means Streamable HTTP."""
    assert parse_one({"type": "http", "url": "https://example.com/mcp"}).transport == "streamable-http"


def test_type_streamable_http_is_a_streamable_http_server():
    """`type: "streamable-http"` means Streamable HTTP."""
    assert parse_one({"type": "streamable-http", "url": "https://example.com/mcp"}).transport == "streamable-http"


def test_cline_transport_type_streamable_http_camel_case_is_a_streamable_http_server():
    """Cline's `transportType: "streamableHttp"` means Streamable HTTP."""
    spec = parse_one({"transportType": "streamableHttp", "url": "https://example.com/mcp"})
    assert spec.transport == "streamable-http"


def test_the_transport_key_names_the_transport():
    """`transport: "sse"` is read like `type: "sse"`."""
    assert parse_one({"transport": "sse", "url": "https://example.com/events"}).transport == "sse"


def test_windsurf_server_url_is_read_as_the_url():
    """Windsurf's `serverUrl` is the server's URL."""
    spec = parse_one({"serverUrl": "https://example.com/mcp"})
    assert spec.url == "https://example.com/mcp"
    assert spec.transport == "streamable-http"


def test_vs_code_top_level_servers_key_is_read_like_mcp_servers():
    """VS Code's `servers` object holds the server entries."""
    (spec,) = parse_config({"servers": {"files": {"type": "stdio", "command": "npx"}}}, source="mcp.json")
    assert (spec.name, spec.transport, spec.command) == ("files", "stdio", "npx")


def test_a_url_without_a_type_is_streamable_http():
    """A URL alone means Streamable HTTP."""
    assert parse_one({"url": "https://example.com/mcp"}).transport == "streamable-http"


def test_a_url_ending_in_sse_without_a_type_is_sse():
    """A URL whose path ends in `/sse` means SSE."""
    assert parse_one({"url": "https://example.com/sse"}).transport == "sse"


def test_a_disabled_server_is_skipped():
    """`disabled: true` leaves the server out; the others are still read."""
    specs = parse_config(
        {"mcpServers": {"off": {"command": "a", "disabled": True}, "on": {"command": "b"}}}, source="mcp.json"
    )
    assert [spec.name for spec in specs] == ["on"]


# Variables


def test_variables_are_expanded_in_args(monkeypatch: pytest.MonkeyPatch):
    """`${VAR}` in an argument is replaced by the environment's value."""
    monkeypatch.setenv("MCP_TEST_ROOT", "/data")
    assert parse_one({"command": "x", "args": ["--root=${MCP_TEST_ROOT}"]}).args == ("--root=/data",)


def test_variables_are_expanded_in_env_values(monkeypatch: pytest.MonkeyPatch):
    """`${VAR}` in an `env` value is replaced by the environment's value."""
    monkeypatch.setenv("MCP_TEST_TOKEN", "s3cret")
    assert parse_one({"command": "x", "env": {"TOKEN": "${MCP_TEST_TOKEN}"}}).env == (("TOKEN", "s3cret"),)


def test_variables_are_expanded_in_the_url(monkeypatch: pytest.MonkeyPatch):
    """`${VAR}` in the URL is replaced by the environment's value."""
    monkeypatch.setenv("MCP_TEST_HOST", "mcp.example.com")
    assert parse_one({"url": "https://${MCP_TEST_HOST}/mcp"}).url == "https://mcp.example.com/mcp"


def test_variables_are_expanded_in_header_values(monkeypatch: pytest.MonkeyPatch):
    """`${VAR}` in a header value is replaced by the environment's value."""
    monkeypatch.setenv("MCP_TEST_TOKEN", "s3cret")
    spec = parse_one({"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${MCP_TEST_TOKEN}"}})
    assert spec.headers == (("Authorization", "Bearer s3cret"),)


def test_an_unset_variable_takes_its_default(monkeypatch: pytest.MonkeyPatch):
    """`${VAR:-default}` gives the default when VAR is not set."""
    monkeypatch.delenv(UNSET, raising=False)
    assert parse_one({"command": "x", "args": [f"${{{UNSET}:-fallback}}"]}).args == ("fallback",)


def test_a_set_variable_overrides_its_default(monkeypatch: pytest.MonkeyPatch):
    """`${VAR:-default}` gives VAR's value when it is set."""
    monkeypatch.setenv("MCP_TEST_MODE", "fast")
    assert parse_one({"command": "x", "args": ["${MCP_TEST_MODE:-slow}"]}).args == ("fast",)


def test_a_variable_set_to_the_empty_string_takes_its_default_as_in_the_shell(monkeypatch: pytest.MonkeyPatch):
    """`${VAR:-default}` gives the default when VAR is set but empty, as POSIX shells and Compose do."""
    monkeypatch.setenv("MCP_TEST_MODE", "")
    assert parse_one({"command": "x", "args": ["${MCP_TEST_MODE:-slow}"]}).args == ("slow",)


def test_python_is_this_interpreter(monkeypatch: pytest.MonkeyPatch):
    """`${PYTHON}` is built in: the interpreter running the proxy."""
    monkeypatch.delenv("PYTHON", raising=False)
    assert parse_one({"command": "${PYTHON}"}).command == sys.executable


def test_config_dir_is_the_config_files_folder(monkeypatch: pytest.MonkeyPatch, write_config: Callable[..., Path]):
    """`${CONFIG_DIR}` is built in: the folder holding the config file."""
    monkeypatch.delenv("CONFIG_DIR", raising=False)
    path = write_config({"srv": {"command": "x", "args": ["${CONFIG_DIR}/server.py"]}})
    (spec,) = load_config(path)
    assert spec.args == (f"{path.resolve().parent}/server.py",)


def test_an_unset_variable_without_default_is_rejected_naming_server_and_field(
    monkeypatch: pytest.MonkeyPatch, rejection: Callable[[dict[str, Any]], str]
):
    """`${VAR}` with VAR unset and no default is an error naming the server, the field and the variable."""
    monkeypatch.delenv(UNSET, raising=False)
    message = rejection({"srv": {"command": "x", "args": ["--token", f"${{{UNSET}}}"]}})
    assert "'srv'" in message
    assert "args" in message
    assert UNSET in message


# Working directory


def test_a_relative_cwd_is_taken_from_the_config_files_folder(tmp_path: Path):
    """`cwd: "work"` means the `work` folder beside the config file, not the proxy's working directory."""
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "mcp.json"
    path.write_text('{"mcpServers": {"srv": {"command": "x", "cwd": "work"}}}')
    (spec,) = load_config(path)
    assert spec.cwd == str((folder / "work").resolve())


# Errors


def test_a_missing_file_is_rejected_naming_the_file(tmp_path: Path):
    """Loading a file that does not exist is a `ConfigError` naming it."""
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError, match="absent.json") as raised:
        load_config(path)
    assert str(path) in str(raised.value)


def test_invalid_json_is_rejected_with_line_and_column(raw_config: Callable[[str], Path]):
    """A syntax error names the file and where in it the error is."""
    path = raw_config('{\n  "mcpServers": {,}\n}')
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert str(path) in message
    assert "line 2" in message
    assert "column" in message


def test_a_top_level_that_is_not_an_object_is_rejected_naming_the_file(raw_config: Callable[[str], Path]):
    """A JSON list at the top level is a `ConfigError` naming the file."""
    path = raw_config("[]")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(path) in str(raised.value)


def test_a_file_without_mcp_servers_is_rejected_naming_the_file_and_the_key(raw_config: Callable[[str], Path]):
    """A JSON object without `mcpServers` is a `ConfigError` naming the file and the missing key."""
    path = raw_config('{"servrs": {}}')
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(path) in str(raised.value)
    assert "mcpServers" in str(raised.value)


def test_a_server_that_is_not_an_object_is_rejected_naming_the_server(rejection: Callable[[dict[str, Any]], str]):
    """A server entry that is a list is an error naming that server."""
    assert "'srv'" in rejection({"srv": ["npx", "server"]})


def test_args_that_are_not_a_list_are_rejected_naming_server_and_field(rejection: Callable[[dict[str, Any]], str]):
    """`args` given as one string is an error naming the server and `args`."""
    message = rejection({"srv": {"command": "npx", "args": "-y server"}})
    assert "'srv'" in message
    assert "'args'" in message


def test_an_arg_that_is_not_a_string_is_rejected_naming_server_and_field(
    rejection: Callable[[dict[str, Any]], str],
):
    """A number in `args` is an error naming the server and the argument's position."""
    message = rejection({"srv": {"command": "npx", "args": ["--port", 8080]}})
    assert "'srv'" in message
    assert "args[1]" in message


def test_an_env_value_that_is_an_object_is_rejected_naming_server_and_field(
    rejection: Callable[[dict[str, Any]], str],
):
    """An object as an `env` value is an error naming the server and the variable."""
    message = rejection({"srv": {"command": "npx", "env": {"TOKEN": {"secret": "x"}}}})
    assert "'srv'" in message
    assert "env.TOKEN" in message


def test_an_invalid_env_key_is_rejected_naming_server_field_and_key(rejection: Callable[[dict[str, Any]], str]):
    """`BAD-KEY` is not an environment variable name: the error names the server, `env` and the key."""
    message = rejection({"srv": {"command": "npx", "env": {"BAD-KEY": "x"}}})
    assert "'srv'" in message
    assert "'env'" in message
    assert "BAD-KEY" in message


def test_an_env_value_containing_a_newline_is_rejected_naming_server_and_field(
    rejection: Callable[[dict[str, Any]], str],
):
    """A newline in an `env` value is an error naming the server and the variable."""
    message = rejection({"srv": {"command": "npx", "env": {"TOKEN": "line1\nline2"}}})
    assert "'srv'" in message
    assert "env.TOKEN" in message


def test_an_unknown_transport_is_rejected_naming_server_field_and_value(rejection: Callable[[dict[str, Any]], str]):
    """`type: "websocket"` is an error naming the server, `type` and the value."""
    message = rejection({"srv": {"type": "websocket", "url": "https://example.com/ws"}})
    assert "'srv'" in message
    assert "'type'" in message
    assert "websocket" in message


def test_both_command_and_url_without_a_type_are_rejected_naming_the_server(
    rejection: Callable[[dict[str, Any]], str],
):
    """An entry with both `command` and `url` is ambiguous without a type."""
    message = rejection({"srv": {"command": "npx", "url": "https://example.com/mcp"}})
    assert "'srv'" in message
    assert "command" in message
    assert "url" in message


def test_a_server_without_command_or_url_is_rejected_naming_the_server(rejection: Callable[[dict[str, Any]], str]):
    """An entry with neither `command` nor `url` is an error naming the server and both fields."""
    message = rejection({"srv": {"args": ["x"]}})
    assert "'srv'" in message
    assert "command" in message
    assert "url" in message


def test_a_url_that_is_not_http_is_rejected_naming_server_and_field(rejection: Callable[[dict[str, Any]], str]):
    """An `ftp://` URL is an error naming the server and `url`."""
    message = rejection({"srv": {"url": "ftp://example.com/mcp"}})
    assert "'srv'" in message
    assert "'url'" in message


def test_an_unknown_field_is_rejected_naming_server_and_field(rejection: Callable[[dict[str, Any]], str]):
    """A misspelt field (`comand`) is an error naming the server and the field."""
    message = rejection({"srv": {"command": "npx", "comand": "npx"}})
    assert "'srv'" in message
    assert "'comand'" in message


def test_a_negative_timeout_is_rejected_naming_server_and_field(rejection: Callable[[dict[str, Any]], str]):
    """`timeout: -1` is an error naming the server and `timeout`."""
    message = rejection({"srv": {"command": "npx", "timeout": -1}})
    assert "'srv'" in message
    assert "'timeout'" in message


def test_a_config_error_carries_the_file_and_server(write_config: Callable[..., Path]):
    """The `ConfigError` also carries the file path and server name as attributes."""
    path = write_config({"srv": {"command": "npx", "args": "-y"}})
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert (raised.value.path, raised.value.server) == (str(path), "srv")


# Connection keys


def test_connection_key_ignores_env_key_order():
    """Re-ordering the `env` object does not change the connection key."""
    first = key_of({"command": "x", "env": {"A": "1", "B": "2"}})
    assert first == key_of({"command": "x", "env": {"B": "2", "A": "1"}})


def test_connection_key_ignores_header_key_order():
    """Re-ordering the `headers` object does not change the connection key."""
    url = "https://example.com/mcp"
    first = key_of({"url": url, "headers": {"X-A": "1", "X-B": "2"}})
    assert first == key_of({"url": url, "headers": {"X-B": "2", "X-A": "1"}})


def test_connection_key_ignores_instructions():
    """Changing a server's instructions does not change the connection key."""
    assert key_of({"command": "x", "instructions": "Be brief."}) == key_of({"command": "x", "instructions": "Be long."})


def test_connection_key_ignores_the_server_name():
    """Renaming a server does not change the connection key."""
    assert key_of({"command": "x"}, name="old") == key_of({"command": "x"}, name="new")


def test_connection_key_changes_with_an_arg():
    """A different argument is a different upstream."""
    assert key_of({"command": "x", "args": ["--a"]}) != key_of({"command": "x", "args": ["--b"]})


def test_connection_key_changes_with_an_env_value():
    """A different `env` value is a different upstream."""
    assert key_of({"command": "x", "env": {"A": "1"}}) != key_of({"command": "x", "env": {"A": "2"}})


def test_connection_key_changes_with_the_url():
    """A different URL is a different upstream."""
    assert key_of({"url": "https://a.example.com/mcp"}) != key_of({"url": "https://b.example.com/mcp"})


def test_connection_key_changes_with_a_header_value():
    """A different header value is a different upstream."""
    url = "https://example.com/mcp"
    assert key_of({"url": url, "headers": {"X-A": "1"}}) != key_of({"url": url, "headers": {"X-A": "2"}})


# Default location


def test_default_config_path_is_pluggedin_config_when_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """`$PLUGGEDIN_CONFIG` names the config file, ahead of `$XDG_CONFIG_HOME`."""
    monkeypatch.setenv("PLUGGEDIN_CONFIG", str(tmp_path / "custom.json"))
    assert default_config_path() == tmp_path / "custom.json"


def test_default_config_path_is_under_xdg_config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Without `$PLUGGEDIN_CONFIG`, the file is `pluggedin/mcp.json` under `$XDG_CONFIG_HOME`."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_path() == tmp_path / "xdg" / "pluggedin" / "mcp.json"


def test_default_config_path_falls_back_to_dot_config_in_home(monkeypatch: pytest.MonkeyPatch, clean_environ: Path):
    """Without either variable, the file is `~/.config/pluggedin/mcp.json`."""
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert default_config_path() == clean_environ / ".config" / "pluggedin" / "mcp.json"
