"""The `pluggedin-mcp` command.

The bare command runs the proxy (stdio by default) with the plugged.in proxy's flags. Sub-commands
are for people at a terminal: `tools` prints the aggregated catalog, `call` calls one tool. Each
command parses its options, builds `Settings`, and makes one `anyio.run` call; in proxy mode
nothing but JSON-RPC reaches stdout, and a configuration problem exits 1 with one line on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from pluggedin_proxy import __version__

__all__ = ["app", "main"]

logger = logging.getLogger("pluggedin_proxy")

app = typer.Typer(
    name="pluggedin-mcp",
    help="One MCP server in front of many: aggregate and route the MCP servers of a local config "
    "file (or, with an API key, of your plugged.in App).",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Local catalog file in the mcpServers format. Default: $PLUGGEDIN_CONFIG, else "
        "~/.config/pluggedin/mcp.json.",
        show_default=False,
    ),
]
NoPrefixOption = Annotated[
    bool,
    typer.Option(
        "--no-prefix",
        help="Expose names unchanged instead of '<server>__<name>' (for a single server; "
        "clashing names still get a prefix).",
    ),
]
LogLevelOption = Annotated[
    str, typer.Option("--log-level", help="Log verbosity on stderr: debug, info, warning or error.")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pluggedin-mcp {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def run(
    ctx: typer.Context,
    pluggedin_api_key: Annotated[
        str | None,
        typer.Option(
            "--pluggedin-api-key",
            help="plugged.in API key: serve the servers of your plugged.in App (also PLUGGEDIN_API_KEY, "
            "the keyring after `login`, or credentials files).",
            show_default=False,
        ),
    ] = None,
    pluggedin_api_base_url: Annotated[
        str | None,
        typer.Option(
            "--pluggedin-api-base-url",
            help="plugged.in App base URL (also PLUGGEDIN_API_BASE_URL). Default: https://plugged.in.",
            show_default=False,
        ),
    ] = None,
    transport: Annotated[
        str, typer.Option("--transport", help="How clients reach the proxy: stdio or streamable-http.")
    ] = "stdio",
    port: Annotated[
        int | None,
        typer.Option(
            "--port", help="HTTP port for streamable-http (default 12006; PORT env when absent).", show_default=False
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option("--host", envvar="BIND_HOST", help="streamable-http: address to bind (BIND_HOST env)."),
    ] = "127.0.0.1",
    json_response: Annotated[
        bool, typer.Option("--json-response", help="streamable-http: answer with JSON instead of SSE streams.")
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="streamable-http: a browser origin allowed to call (repeatable)."),
    ] = None,
    http_api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--http-api-key",
            help="streamable-http: another key accepted by --require-api-auth (repeatable; also "
            "PLUGGEDIN_HTTP_API_KEYS, comma-separated).",
            show_default=False,
        ),
    ] = None,
    stateless: Annotated[
        bool, typer.Option("--stateless", help="streamable-http: a fresh exchange per request, no sessions.")
    ] = False,
    require_api_auth: Annotated[
        bool,
        typer.Option("--require-api-auth", help="streamable-http: require 'Authorization: Bearer <API key>'."),
    ] = False,
    config: ConfigOption = None,
    no_prefix: NoPrefixOption = False,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level", help="Log verbosity on stderr: debug, info (default), warning or error.", show_default=False
        ),
    ] = None,
    discovery_timeout: Annotated[
        float, typer.Option("--discovery-timeout", help="Seconds one server may take to start and list.")
    ] = 30.0,
    cache_ttl: Annotated[
        float,
        typer.Option("--cache-ttl", help="App mode: seconds the App's listings stay fresh (configs: twice that)."),
    ] = 60.0,
    app_timeout: Annotated[
        float, typer.Option("--app-timeout", help="App mode: seconds one call to the plugged.in App may take.")
    ] = 10.0,
    rate_limit: Annotated[
        int,
        typer.Option(
            "--rate-limit",
            envvar="PLUGGEDIN_RATE_LIMIT",
            help="Tool calls per minute per client session (0: no limit).",
            min=0,
        ),
    ] = 60,
    version: Annotated[
        bool | None,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Run the proxy. Without a sub-command it serves MCP on stdio for an MCP client to launch."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {
            "config": config,
            "no_prefix": no_prefix,
            "log_level": log_level,
            "api_key": pluggedin_api_key,
            "base_url": pluggedin_api_base_url,
        }
        return
    _configure_logging(log_level or "info")
    if transport not in ("stdio", "streamable-http"):
        _fail(f"unknown transport {transport!r}: use stdio or streamable-http")
    if port is None:
        port = _port_from_env()
    extra_keys = [*(http_api_key or ()), *os.environ.get("PLUGGEDIN_HTTP_API_KEYS", "").split(",")]
    settings = _settings(
        config,
        no_prefix=no_prefix,
        flag_key=pluggedin_api_key,
        flag_base_url=pluggedin_api_base_url,
        discovery_timeout=discovery_timeout,
        cache_ttl=cache_ttl,
        app_timeout=app_timeout,
        rate_limit=rate_limit,
        transport=transport,
        host=host,
        port=port,
        stateless=stateless,
        require_api_auth=require_api_auth,
        http_api_keys=tuple(k.strip() for k in extra_keys if k.strip()),
        json_response=json_response,
        cors_origins=tuple(cors_origin or ()),
    )

    import anyio

    from pluggedin_proxy.runtime import serve, serve_http

    try:
        anyio.run(serve_http if transport == "streamable-http" else serve, settings)
    except KeyboardInterrupt:
        pass


@app.command("tools")
def tools_command(
    ctx: typer.Context,
    config: ConfigOption = None,
    no_prefix: NoPrefixOption = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Discover every server again instead of using saved listings.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tools as JSON instead of a table.")] = False,
    log_level: LogLevelOption = "warning",
) -> None:
    """Print the aggregated tool catalog: exposed name, server and description."""
    parent = ctx.obj or {}
    _configure_logging(parent.get("log_level") or log_level)
    settings = _parent_settings(parent, config, no_prefix)

    import anyio

    from pluggedin_proxy.runtime import list_catalog

    rows, failures = anyio.run(list_catalog, settings, refresh)
    for _server, error in failures:
        typer.echo(f"unavailable: {error}", err=True)
    if as_json:
        typer.echo(json.dumps([{"name": n, "server": s, "description": d} for n, s, d in rows], indent=2))
    else:
        _print_table(rows)
    if failures and not rows:
        raise typer.Exit(1)


@app.command("call", context_settings={"allow_interspersed_args": True})
def call_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The tool's exposed name, as `tools` prints it.", show_default=False)],
    arguments: Annotated[
        list[str] | None,
        typer.Argument(
            help="Tool arguments as key=value; values are read as JSON when the schema does not ask for a string.",
            show_default=False,
        ),
    ] = None,
    json_arguments: Annotated[
        str | None,
        typer.Option("--json", help="All arguments as one JSON object instead of key=value.", show_default=False),
    ] = None,
    config: ConfigOption = None,
    no_prefix: NoPrefixOption = False,
    log_level: LogLevelOption = "warning",
) -> None:
    """Call one tool through the proxy and print its result."""
    parent = ctx.obj or {}
    _configure_logging(parent.get("log_level") or log_level)
    settings = _parent_settings(parent, config, no_prefix)
    if json_arguments is not None and arguments:
        _fail("give the arguments either as key=value or with --json, not both")
    parsed: dict[str, Any] | None = None
    if json_arguments is not None:
        try:
            parsed = json.loads(json_arguments)
        except ValueError as exc:
            _fail(f"--json is not valid JSON: {exc}")
        if not isinstance(parsed, dict):
            _fail("--json must be a JSON object of argument names to values")
    pairs: list[tuple[str, str]] = []
    for item in arguments or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"argument {item!r} is not key=value")
        pairs.append((key, value))

    import anyio

    from pluggedin_proxy.runtime import call_tool

    text, is_error = anyio.run(call_tool, settings, name, parsed, pairs)
    typer.echo(text)
    if is_error:
        raise typer.Exit(1)


@app.command("login")
def login_command(
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="The key to store; asked for (hidden) when absent.", show_default=False),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Your plugged.in App, if not https://plugged.in.", show_default=False),
    ] = None,
    to_file: Annotated[
        bool,
        typer.Option("--file", help="Store in ~/.config/pluggedin/credentials.json (mode 0600), not the keyring."),
    ] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Check the key against the App first.")] = True,
) -> None:
    """Store a plugged.in API key (and base URL) in the OS keyring, after checking it with the App."""
    _configure_logging("warning")
    from pluggedin_proxy.credentials import resolve_credentials, store_credentials, store_credentials_file

    key = api_key or typer.prompt("plugged.in API key", hide_input=True)
    credentials = resolve_credentials(flag_key=key.strip(), flag_base_url=base_url)
    assert credentials.api_key is not None
    if check:
        import anyio

        from pluggedin_proxy.runtime import check_app

        count = anyio.run(check_app, credentials)
        typer.echo(f"The App at {credentials.base_url} accepted the key ({count} active servers).")
    secret = credentials.api_key.get_secret_value()
    stored_url = credentials.base_url if base_url else None
    if to_file:
        where = str(store_credentials_file(secret, stored_url))
    else:
        where = store_credentials(secret, stored_url)
    typer.echo(f"Stored the API key {credentials.redacted_key} in {where}.")


@app.command("logout")
def logout_command() -> None:
    """Remove the stored API key and base URL from the keyring and the credentials file."""
    _configure_logging("warning")
    from pluggedin_proxy.credentials import forget_credentials

    removed = forget_credentials()
    typer.echo("Removed: " + ", ".join(removed) if removed else "No stored credentials were found.")


@app.command("doctor")
def doctor_command(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Show the resolved settings (and where each came from), the App's reachability and the servers."""
    parent = ctx.obj or {}
    _configure_logging(parent.get("log_level") or "error")
    settings = _parent_settings(parent, config, False)

    import anyio

    from pluggedin_proxy.runtime import doctor

    for line in anyio.run(doctor, settings):
        typer.echo(line)


@app.command("app", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def app_command(ctx: typer.Context) -> None:
    """Serve the plugged.in App API from a local config (self-hosted App); see `app --help`."""
    from pluggedin_proxy.selfhost.cli import main as selfhost_main

    selfhost_main(list(ctx.args))


def _parent_settings(parent: dict[str, Any], config: Path | None, no_prefix: bool) -> Any:
    return _settings(
        config or parent.get("config"),
        no_prefix=no_prefix or parent.get("no_prefix", False),
        flag_key=parent.get("api_key"),
        flag_base_url=parent.get("base_url"),
    )


def _settings(
    config: Path | None, *, no_prefix: bool, flag_key: str | None, flag_base_url: str | None, **options: Any
) -> Any:
    from pluggedin_proxy.catalog.config import default_config_path
    from pluggedin_proxy.credentials import resolve_credentials
    from pluggedin_proxy.settings import Mode, Settings

    credentials = resolve_credentials(flag_key=flag_key, flag_base_url=flag_base_url)
    explicit = config is not None or bool(os.environ.get("PLUGGEDIN_CONFIG"))
    path = config or default_config_path()
    mode: Mode
    if explicit:
        mode = "local"
    elif credentials.api_key is not None:
        mode = "app"
    elif path.exists():
        mode = "local"
    else:
        mode = "unconfigured"
    return Settings(
        config_path=path,
        credentials=credentials,
        mode=mode,
        config_explicit=explicit,
        prefix=not no_prefix,
        **options,
    )


def _print_table(rows: list[tuple[str, str, str]]) -> None:
    if not rows:
        typer.echo("no tools")
        return
    width = shutil.get_terminal_size((120, 24)).columns
    name_w = max(len("TOOL"), *(len(n) for n, _, _ in rows))
    server_w = max(len("SERVER"), *(len(s) for _, s, _ in rows))
    desc_w = max(20, width - name_w - server_w - 4)

    def line(n: str, s: str, d: str) -> str:
        d = d if len(d) <= desc_w else d[: desc_w - 1] + "…"
        return f"{n:<{name_w}}  {s:<{server_w}}  {d}".rstrip()

    typer.echo(line("TOOL", "SERVER", "DESCRIPTION"))
    for n, s, d in rows:
        typer.echo(line(n, s, d))


def _configure_logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        _fail(f"unknown log level {level!r}: use debug, info, warning or error")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pluggedin-mcp %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("pluggedin_proxy").setLevel(numeric)


def _port_from_env() -> int:
    value = os.environ.get("PORT", "").strip()
    if not value:
        return 12006
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        _fail(f"PORT must be a port number, not {value!r}")
    return int(value)


def _known_arguments(argv: list[str]) -> list[str]:
    """`argv` without what the proxy command does not know, when no sub-command is named.

    The TypeScript proxy ignores unknown options and extra arguments (MCP Inspector and some
    launchers add their own); as its drop-in, the bare command does the same, saying so on stderr.
    Sub-commands are for people and stay strict.
    """
    command = typer.main.get_command(app)
    commands = set(getattr(command, "commands", {}))
    takes_value: dict[str, bool] = {"--help": False, "-h": False}
    for param in command.params:
        for opt in (*param.opts, *param.secondary_opts):
            takes_value[opt] = not getattr(param, "is_flag", False)
    kept: list[str] = []
    ignored: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in commands or token == "--":
            return argv  # a sub-command (or an explicit end of options): leave parsing to typer
        name = token.split("=", 1)[0]
        if name in takes_value:
            kept.append(token)
            value = next(tokens, None) if takes_value[name] and "=" not in token else None
            if value is not None:
                kept.append(value)
        else:
            ignored.append(token)
    if ignored:
        typer.echo(f"pluggedin-mcp: ignoring unknown arguments: {' '.join(ignored)}", err=True)
    return kept


def _fail(message: str) -> NoReturn:
    typer.echo(f"pluggedin-mcp: {message}", err=True)
    raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    from pluggedin_proxy.errors import ProxyError

    try:
        app(args=_known_arguments(sys.argv[1:]))
    except ProxyError as exc:
        typer.echo(f"pluggedin-mcp: {exc}", err=True)
        sys.exit(1)
