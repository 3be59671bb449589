"""The `pluggedin-mcp` command.

The bare command runs the proxy (stdio by default) with the plugged.in proxy's flags. Sub-commands
are for people at a terminal: `tools` prints the aggregated catalog (and approves changed tools),
`call` calls one tool, `doctor` shows what is configured. Each command parses its options, builds
`Settings`, and makes one `anyio.run` call; in proxy mode nothing but JSON-RPC reaches stdout, and
a configuration problem exits 1 with one line on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from pluggedin_proxy import __version__
from pluggedin_proxy.redact import RedactingFilter, Redactor

if TYPE_CHECKING:
    from pluggedin_proxy.upstream.policy import UpstreamPolicy

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
        str,
        typer.Option(
            "--transport",
            help="How clients reach the proxy: stdio or streamable-http (Streamable HTTP on /mcp, and the "
            "legacy HTTP+SSE transport on /sse for older clients).",
        ),
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
        typer.Option(
            "--require-api-auth",
            envvar="PLUGGEDIN_REQUIRE_API_AUTH",
            help="streamable-http: require 'Authorization: Bearer <API key>' (also PLUGGEDIN_REQUIRE_API_AUTH=1).",
        ),
    ] = False,
    http_rate_limit: Annotated[
        int,
        typer.Option(
            "--http-rate-limit",
            envvar="PLUGGEDIN_HTTP_RATE_LIMIT",
            help="streamable-http: requests per minute to /mcp, /, /sse and /messages per API key (per client "
            "address without --require-api-auth); beyond it, 429 with Retry-After. 0: no limit. Set it when "
            "the proxy is shared.",
            min=0,
        ),
    ] = 0,
    session_timeout: Annotated[
        float,
        typer.Option(
            "--session-timeout",
            envvar="PLUGGEDIN_SESSION_TIMEOUT",
            help="streamable-http: seconds an idle session lives before it expires (0: until the client ends it).",
            min=0,
        ),
    ] = 1800.0,
    max_sessions: Annotated[
        int,
        typer.Option(
            "--max-sessions",
            help="streamable-http: most sessions open at once; one more gets 503 (legacy SSE streams are "
            "counted apart, with the same limit).",
            min=1,
        ),
    ] = 10_000,
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
    call_timeout: Annotated[
        float,
        typer.Option(
            "--call-timeout",
            envvar="PLUGGEDIN_CALL_TIMEOUT",
            help="Seconds a request to a server may go without an answer or a progress notification "
            "(a server's own 'timeout' in the config overrides it).",
            min=0.001,
        ),
    ] = 300.0,
    max_result_size: Annotated[
        int,
        typer.Option(
            "--max-result-size",
            envvar="PLUGGEDIN_MAX_RESULT_SIZE",
            help="Characters of content a tool result may have; a larger one is cut, with a note naming the "
            "resource that holds the whole result for 10 minutes (0: no limit).",
            min=0,
        ),
    ] = 1024 * 1024,
    pin_tools: Annotated[
        bool,
        typer.Option(
            "--pin-tools",
            envvar="PLUGGEDIN_PIN_TOOLS",
            help="Withhold a tool whose description or schemas changed since it was first seen or "
            "approved, until `pluggedin-mcp tools --approve NAME` (also PLUGGEDIN_PIN_TOOLS=1). Without it, "
            "changes are only logged.",
        ),
    ] = False,
    allow_command: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-command",
            metavar="NAME",
            help="Start only stdio servers whose command is listed (repeatable; also PLUGGEDIN_ALLOW_COMMANDS, "
            "comma-separated): a name such as npx allows that program anywhere, a full path only that file. "
            "Others fail to start. Default: any command.",
            show_default=False,
        ),
    ] = None,
    block_private_upstreams: Annotated[
        bool,
        typer.Option(
            "--block-private-upstreams",
            envvar="PLUGGEDIN_BLOCK_PRIVATE_UPSTREAMS",
            help="Refuse SSE and HTTP servers whose host is or resolves to a loopback, private, link-local "
            "(cloud metadata), unique-local or unspecified address (also PLUGGEDIN_BLOCK_PRIVATE_UPSTREAMS=1). "
            "Default: allowed, so servers on localhost work.",
        ),
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Run the proxy. Without a sub-command it serves MCP on stdio for an MCP client to launch."""
    redactor = ctx.obj if isinstance(ctx.obj, Redactor) else Redactor()
    allowed = _allowed_commands(allow_command)
    if ctx.invoked_subcommand is not None:
        ctx.obj = {
            "redactor": redactor,
            "allow_commands": allowed,
            "block_private": block_private_upstreams,
            "config": config,
            "no_prefix": no_prefix,
            "log_level": log_level,
            "api_key": pluggedin_api_key,
            "base_url": pluggedin_api_base_url,
            "pin_tools": pin_tools,
        }
        return
    _configure_logging(log_level or "info", redactor)
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
        call_timeout=call_timeout,
        max_result_size=max_result_size,
        pin_tools=pin_tools,
        redactor=redactor,
        upstream_policy=_upstream_policy(allowed, block_private_upstreams, redactor),
        transport=transport,
        host=host,
        port=port,
        stateless=stateless,
        require_api_auth=require_api_auth,
        http_api_keys=tuple(k.strip() for k in extra_keys if k.strip()),
        json_response=json_response,
        cors_origins=tuple(cors_origin or ()),
        http_rate_limit=http_rate_limit,
        session_timeout=session_timeout,
        max_sessions=max_sessions,
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
    approve: Annotated[
        list[str] | None,
        typer.Option(
            "--approve",
            metavar="NAME",
            help="Approve the current definition of a tool that changed since it was approved, by its exposed "
            "name as listed (repeatable); --pin-tools then serves it again.",
            show_default=False,
        ),
    ] = None,
    approve_all: Annotated[
        bool, typer.Option("--approve-all", help="Approve the current definition of every changed tool.")
    ] = False,
    log_level: LogLevelOption = "warning",
) -> None:
    """Print the aggregated tool catalog: exposed name, server and description; approve changed tools."""
    parent = ctx.obj or {}
    _configure_logging(parent.get("log_level") or log_level, parent.get("redactor"))
    settings = _parent_settings(parent, config, no_prefix)

    import anyio

    from pluggedin_proxy.runtime import approve_tools, list_catalog

    if approve or approve_all:
        approved, unchanged, unknown = anyio.run(approve_tools, settings, approve or [], approve_all)
        for change in approved:
            typer.echo(f"approved {change.exposed} (server {change.server_name})")
        for name in unchanged:
            typer.echo(f"{name} has not changed since it was approved; nothing to do")
        if approve_all and not approved:
            typer.echo("no tool changed since it was approved; nothing to do")
        for name in unknown:
            typer.echo(
                f"pluggedin-mcp: no server offers a tool named {name!r} (`pluggedin-mcp tools` lists them)", err=True
            )
        if unknown:
            raise typer.Exit(1)
        return

    rows, failures, changed = anyio.run(list_catalog, settings, refresh)
    redactor = parent.get("redactor") or Redactor()
    for _server, error in failures:
        typer.echo(f"unavailable: {redactor.redact(error)}", err=True)
    changed_names = {name for name, _, _ in changed}
    if as_json:
        listed = [{"name": n, "server": s, "description": d, "changed": n in changed_names} for n, s, d in rows]
        typer.echo(json.dumps(listed, indent=2))
    else:
        _print_table(rows)
        _print_changes(changed)
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
    _configure_logging(parent.get("log_level") or log_level, parent.get("redactor"))
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
def doctor_command(
    ctx: typer.Context,
    config: ConfigOption = None,
    servers: Annotated[
        bool,
        typer.Option(
            "--servers",
            help="Also start every server and show its state, last error, restarts and recent stderr lines.",
        ),
    ] = False,
) -> None:
    """Show the resolved settings (and where each came from), the App's reachability and the servers."""
    parent = ctx.obj or {}
    _configure_logging(parent.get("log_level") or "error", parent.get("redactor"))
    settings = _parent_settings(parent, config, False)

    import anyio

    from pluggedin_proxy.runtime import check_servers, doctor

    redactor = parent.get("redactor") or Redactor()
    lines = anyio.run(doctor, settings)
    if servers and settings.mode != "unconfigured":
        lines += ["", *anyio.run(check_servers, settings)]
    for line in lines:
        typer.echo(redactor.redact(line))


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
        pin_tools=parent.get("pin_tools", False),
        redactor=parent.get("redactor"),
        upstream_policy=_upstream_policy(
            parent.get("allow_commands", ()), parent.get("block_private", False), parent.get("redactor")
        ),
    )


def _allowed_commands(flags: list[str] | None) -> tuple[str, ...]:
    """`--allow-command` values, else `$PLUGGEDIN_ALLOW_COMMANDS` split on commas."""
    names = flags or os.environ.get("PLUGGEDIN_ALLOW_COMMANDS", "").split(",")
    return tuple(name.strip() for name in names if name.strip())


def _upstream_policy(allowed: tuple[str, ...], block_private: bool, redactor: Redactor | None) -> UpstreamPolicy:
    from pluggedin_proxy.upstream.policy import UpstreamPolicy

    return UpstreamPolicy(allowed_commands=frozenset(allowed), block_private=block_private, redactor=redactor)


def _settings(
    config: Path | None,
    *,
    no_prefix: bool,
    flag_key: str | None,
    flag_base_url: str | None,
    redactor: Redactor | None = None,
    **options: Any,
) -> Any:
    from pluggedin_proxy.catalog.config import default_config_path
    from pluggedin_proxy.credentials import resolve_credentials
    from pluggedin_proxy.settings import Mode, Settings

    explicit = config is not None or bool(os.environ.get("PLUGGEDIN_CONFIG"))
    # Serving a named local config over stdio uses no API key, so the OS keyring (a tenth of a second to open)
    # is not asked; a key given by flag, environment or file is still found, and masked in logs.
    use_keyring = not (explicit and options.get("transport") == "stdio")
    credentials = resolve_credentials(flag_key=flag_key, flag_base_url=flag_base_url, use_keyring=use_keyring)
    if redactor is not None:
        redactor.add(credentials.api_key, *options.get("http_api_keys", ()))
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


def _print_changes(changed: list[tuple[str, str, str]]) -> None:
    """The changed tools with their whole new description, for review before `--approve`."""
    if not changed:
        return
    typer.echo("")
    typer.echo("CHANGED since approved (withheld with --pin-tools until `pluggedin-mcp tools --approve NAME`):")
    for name, server, description in changed:
        typer.echo(f"  {name} (server {server}):")
        for line in (description.strip() or "(no description)").splitlines():
            typer.echo(f"    {line}")


def _configure_logging(level: str, redactor: Redactor | None = None) -> None:
    """Log to stderr at `level`, every line passed through `redactor` (a fresh one, masking only patterns, if none)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        _fail(f"unknown log level {level!r}: use debug, info, warning or error")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pluggedin-mcp %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(redactor if redactor is not None else Redactor()))
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


def _start_servers_early(argv: list[str]) -> None:
    """Start a small local config's stdio servers before the heavy imports (see `upstream/child.py`).

    Only for the serving command with a local config it is sure of: not with an API key (the App names the
    servers), nor with a command allow-list (checked later, by the pool), nor for a sub-command.
    """
    if sys.platform == "win32" or (argv and not argv[0].startswith("-")):
        return
    names = {token.split("=", 1)[0] for token in argv}
    if names & {"--help", "--version", "--pluggedin-api-key", "--allow-command"}:
        return
    if os.environ.get("PLUGGEDIN_ALLOW_COMMANDS"):
        return
    config: str | None = None
    for i, token in enumerate(argv):
        if token in ("--config", "-c") and i + 1 < len(argv):
            config = argv[i + 1]
        elif token.startswith("--config="):
            config = token.split("=", 1)[1]
    if config is None and not os.environ.get("PLUGGEDIN_CONFIG") and os.environ.get("PLUGGEDIN_API_KEY"):
        return  # App mode
    from pluggedin_proxy.catalog.config import default_config_path, load_config
    from pluggedin_proxy.upstream.child import prestart

    path = Path(config).expanduser() if config else default_config_path()
    try:
        # Without an explicit config, a key stored by `login` would still mean App mode; then these early
        # processes are not adopted and are stopped, a small waste next to looking in the keyring now.
        specs = load_config(path) if path.is_file() else []
    except Exception:  # the command reports a bad config properly; this is only a head start
        return
    prestart(specs)


def main() -> None:
    """Console-script entry point."""
    _start_servers_early(sys.argv[1:])
    from pluggedin_proxy.errors import ProxyError

    # Shared with the command through click's context object, so errors are masked like its log lines.
    redactor = Redactor()
    try:
        app(args=_known_arguments(sys.argv[1:]), obj=redactor)
    except ProxyError as exc:
        typer.echo(f"pluggedin-mcp: {redactor.redact(str(exc))}", err=True)
        sys.exit(1)
