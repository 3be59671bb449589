"""Reading a local catalog file in the `mcpServers` format.

Accepts what Claude Desktop, Cursor, Cline, Windsurf and VS Code write: the top-level key
`mcpServers` (or VS Code's `servers`), the transport under `type`, `transport` or `transportType`
in any of their spellings (`stdio`, `sse`, `http`, `streamable-http`, `streamableHttp`, …), the URL
under `url` or `serverUrl`, and `disabled: true` to skip a server. Without a type, a `command` means
stdio and a URL ending in `/sse` means SSE, otherwise Streamable HTTP. `${VAR}` and
`${VAR:-default}` are expanded from the environment in `command`, `args`, `env`, `cwd`, `url` and
`headers`; `${PYTHON}` (this interpreter) and `${CONFIG_DIR}` (the file's folder) are built in and
take precedence over variables of the same name.
Relative `cwd` values are taken from the file's folder.

Every problem is a `ConfigError` naming the file, the server and the field.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pluggedin_proxy.errors import ConfigError
from pluggedin_proxy.naming import unique_slugs
from pluggedin_proxy.upstream.spec import (
    ENV_NAME,
    HEADER_NAME,
    CustomInstructions,
    ServerSpec,
    Transport,
    has_unsafe_chars,
    shown_name,
)

__all__ = ["default_config_path", "load_config", "parse_config"]

_TRANSPORT_SPELLINGS: dict[str, Transport] = {
    "stdio": "stdio",
    "sse": "sse",
    "http": "streamable-http",
    "https": "streamable-http",
    "streamablehttp": "streamable-http",
    "streamable": "streamable-http",
}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_KNOWN_FIELDS = {
    "command",
    "args",
    "env",
    "cwd",
    "type",
    "transport",
    "transportType",
    "url",
    "serverUrl",
    "headers",
    "disabled",
    "instructions",
    "timeout",
    "isolation",
    "maxConcurrency",
    "maxClients",
    "idleTimeout",
    "description",
    "name",
    # Fields other clients write that we accept and ignore.
    "autoApprove",
    "alwaysAllow",
    "envFile",
    "inputs",
    "networkTimeout",
    "trust",
    "includeTools",
    "excludeTools",
}


def default_config_path() -> Path:
    """`$PLUGGEDIN_CONFIG`, else `~/.config/pluggedin/mcp.json` (under `$XDG_CONFIG_HOME` when set)."""
    explicit = os.environ.get("PLUGGEDIN_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pluggedin" / "mcp.json"


def load_config(path: Path) -> list[ServerSpec]:
    """The servers configured in the file at `path`.

    Raises:
        ConfigError: the file is missing, unreadable, not JSON, or a server entry is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}", path=str(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", path=str(path)
        ) from exc
    return parse_config(data, source=str(path), base_dir=path.resolve().parent)


def parse_config(data: Any, *, source: str = "<config>", base_dir: Path | None = None) -> list[ServerSpec]:
    """The servers described by an already-parsed config document."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a JSON object with an 'mcpServers' object", path=source)
    servers = data.get("mcpServers", data.get("servers"))
    if servers is None:
        raise ConfigError(f"{source}: missing the 'mcpServers' object", path=source)
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: 'mcpServers' must be an object of server entries", path=source)
    variables = {"PYTHON": sys.executable, "CONFIG_DIR": str(base_dir or Path.cwd())}
    entries = [(name, entry) for name, entry in servers.items() if not _disabled(entry)]
    slugs = unique_slugs(name for name, _ in entries)
    return [
        _parse_server(name, entry, slug, source=source, base_dir=base_dir, variables=variables)
        for (name, entry), slug in zip(entries, slugs, strict=True)
    ]


def _disabled(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("disabled") is True


def _parse_server(
    name: str, entry: Any, slug: str, *, source: str, base_dir: Path | None, variables: Mapping[str, str]
) -> ServerSpec:
    def fail(field: str | None, problem: str) -> ConfigError:
        where = f"server {name!r}" + (f", field {field!r}" if field else "")
        return ConfigError(f"{source}: {where}: {problem}", path=source, server=name)

    def expand(value: str, field: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in variables:
                return variables[var]
            value = os.environ.get(var)
            if value:
                return value
            # As in the shell, `:-` also replaces a variable that is set but empty.
            if default is not None:
                return default
            if value is not None:
                return value
            raise fail(field, f"environment variable ${{{var}}} is not set")

        return _VARIABLE.sub(substitute, value)

    def string(field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise fail(field, f"must be a string, not {_json_type(value)}")
        return expand(value, field)

    def string_map(field: str, value: Any, key_pattern: re.Pattern[str], what: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise fail(field, f"must be an object of {what}s to strings, not {_json_type(value)}")
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            if not key_pattern.fullmatch(key):
                raise fail(field, f"{shown_name(key)} is not a valid {what}")
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise fail(f"{field}.{key}", f"must be a string, not {_json_type(item)}")
            text = expand(str(item), f"{field}.{key}")
            if has_unsafe_chars(text):
                raise fail(f"{field}.{key}", "must not contain NUL, CR or LF characters")
            pairs.append((key, text))
        return tuple(sorted(pairs))

    if not isinstance(entry, dict):
        raise fail(None, f"must be an object, not {_json_type(entry)}")
    unknown = sorted(set(entry) - _KNOWN_FIELDS)
    if unknown:
        raise fail(unknown[0], "unknown field (expected command/args/env/cwd, or type/url/headers)")

    url_field = "url" if "url" in entry else "serverUrl" if "serverUrl" in entry else None
    url = string(url_field, entry[url_field]) if url_field else None
    command = string("command", entry["command"]) if "command" in entry else None
    transport = _transport(entry, fail, command=command, url=url)

    if transport == "stdio":
        if not command:
            raise fail("command", "is required for a stdio server (or give 'url' for an HTTP server)")
        raw_args = entry.get("args", [])
        if not isinstance(raw_args, list):
            raise fail("args", f"must be a list of strings, not {_json_type(raw_args)}")
        args = tuple(string(f"args[{i}]", a) for i, a in enumerate(raw_args))
        cwd = string("cwd", entry["cwd"]) if entry.get("cwd") is not None else None
        if cwd is not None and base_dir is not None:
            cwd = str((base_dir / Path(cwd).expanduser()).resolve())
        env = string_map("env", entry.get("env"), ENV_NAME, "variable name")
        url = None
        headers: tuple[tuple[str, str], ...] = ()
    else:
        if not url:
            raise fail("url", f"is required for a {transport} server")
        if not re.match(r"^https?://", url):
            raise fail(url_field, "must be an http:// or https:// URL")
        headers = string_map("headers", entry.get("headers"), HEADER_NAME, "header name")
        command, args, cwd, env = None, (), None, ()

    instructions = entry.get("instructions")
    if instructions is not None and not isinstance(instructions, str | list):
        raise fail("instructions", f"must be a string or a list of messages, not {_json_type(instructions)}")
    timeout = _positive(entry, "timeout", fail, "a positive number of seconds")
    idle_timeout = _positive(entry, "idleTimeout", fail, "a positive number of seconds")
    max_concurrency = _positive(entry, "maxConcurrency", fail, "a positive whole number", whole=True)
    max_clients = _positive(entry, "maxClients", fail, "a positive whole number", whole=True)
    isolation = entry.get("isolation", "shared")
    if isolation not in ("shared", "per-client"):
        raise fail("isolation", f"must be 'shared' or 'per-client', not {isolation!r}")
    return ServerSpec(
        id=name,
        name=name,
        slug=slug,
        transport=transport,
        command=command,
        args=args,
        env=env,
        cwd=cwd,
        url=url,
        headers=headers,
        instructions=CustomInstructions.parse(instructions, f"Instructions for using {name}"),
        timeout=timeout,
        isolation=isolation,
        max_concurrency=int(max_concurrency) if max_concurrency is not None else None,
        max_clients=int(max_clients) if max_clients is not None else None,
        idle_timeout=idle_timeout,
    )


def _positive(entry: dict[str, Any], name: str, fail: Any, what: str, *, whole: bool = False) -> float | None:
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float) or value <= 0:
        raise fail(name, f"must be {what}")
    return float(value)


def _transport(entry: dict[str, Any], fail: Any, *, command: str | None, url: str | None) -> Transport:
    for field in ("type", "transport", "transportType"):
        if field in entry:
            raw = entry[field]
            if not isinstance(raw, str):
                raise fail(field, f"must be a string, not {_json_type(raw)}")
            spelled = re.sub(r"[-_ ]", "", raw.lower())
            if spelled not in _TRANSPORT_SPELLINGS:
                raise fail(field, f"unknown transport {raw!r} (use stdio, sse or streamable-http)")
            return _TRANSPORT_SPELLINGS[spelled]
    if command and url:
        raise fail("command", "give either 'command' (stdio) or 'url' (HTTP), not both")
    if command:
        return "stdio"
    if url:
        return "sse" if url.split("?", 1)[0].rstrip("/").endswith("/sse") else "streamable-http"
    raise fail(None, "needs 'command' (a stdio server) or 'url' (an HTTP server)")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a string"
