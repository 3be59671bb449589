"""Upstream security policies: verbatim arguments, safe environments and headers, the command allowlist, and
refusing private addresses; each shown refusing what it must and, by default, refusing nothing local."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import uvicorn
from mcp import ClientSession

from pluggedin_proxy.catalog.app_models import AppServer
from pluggedin_proxy.catalog.config import parse_config
from pluggedin_proxy.errors import ConfigError, UpstreamRefused, UpstreamStartFailed
from pluggedin_proxy.redact import Redactor
from pluggedin_proxy.upstream import ServerSpec, StderrTail, UpstreamPolicy, child_environment, open_transport
from pluggedin_proxy.upstream.policy import command_allowed
from tests.conftest import REPO
from tests.servers.echo_server import build_server

pytestmark = pytest.mark.anyio

# What a shell would split, expand, substitute or redirect; without a shell each arrives as written.
STRANGE_ARGS = (
    'a b; rm -rf x $(id) "q" \n',
    "`whoami` && echo $HOME | cat > /tmp/x < /dev/null",
    "--url=https://h/x?a=1&b=2",
    "C:\\Program Files\\tool.exe",
    'it\'s "quoted"\ttabbed\r\n',
    "*?[glob]~",
    "",
    "  spaced  ",
    "ünïcødé ✓",
)

NOT_ALLOWED = "server 'argv' was refused: its command"


def argv_spec(*args: str, env: tuple[tuple[str, str], ...] = (), command: str = sys.executable) -> ServerSpec:
    """The argv test server over stdio, given `args` after its module name."""
    return ServerSpec(
        id="argv",
        name="argv",
        slug="argv",
        transport="stdio",
        command=command,
        args=("-m", "tests.servers.argv_server", *args),
        env=env,
        cwd=str(REPO),
    )


def http_spec(url: str, transport: Any = "streamable-http", **fields: Any) -> ServerSpec:
    return ServerSpec(id="web", name="web", slug="web", transport=transport, url=url, **fields)


@asynccontextmanager
async def connected(
    spec: ServerSpec, policy: UpstreamPolicy | None = None, tail: StderrTail | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized client session over `open_transport(spec, policy=policy)`."""
    with anyio.fail_after(30):
        async with (
            open_transport(spec, tail or StderrTail(spec.name), policy=policy) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


async def call_json(session: ClientSession, tool: str) -> Any:
    result = await session.call_tool(tool, {})
    assert isinstance(result, types.CallToolResult) and not result.is_error, result
    (block,) = result.content
    assert isinstance(block, types.TextContent)
    return json.loads(block.text)


@asynccontextmanager
async def http_upstream() -> AsyncIterator[str]:
    """The echo server over Streamable HTTP on a 127.0.0.1 port the kernel picked; yields its `/mcp` URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: a client's connection waits in the backlog, no readiness race.
    sock.listen(16)
    app = build_server("web").streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: server.serve(sockets=[sock]))
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
            server.should_exit = True
    finally:
        sock.close()


class TestArgumentsAreVerbatim:
    async def test_stdio_arguments_reach_the_child_byte_for_byte(self):
        """Spaces, `;`, `$()`, quotes, backslashes and newlines arrive unchanged: there is no shell."""
        async with connected(argv_spec(*STRANGE_ARGS)) as session:
            assert await call_json(session, "argv") == [os.fsencode(a).hex() for a in STRANGE_ARGS]

    async def test_arguments_stay_verbatim_with_every_policy_on(self):
        """Policies check the command and the URL, never the arguments."""
        allowed = frozenset({os.path.basename(sys.executable)})
        policy = UpstreamPolicy(allowed_commands=allowed, block_private=True, redactor=Redactor())
        async with connected(argv_spec(*STRANGE_ARGS), policy) as session:
            assert await call_json(session, "argv") == [os.fsencode(a).hex() for a in STRANGE_ARGS]

    def test_the_config_file_keeps_arguments_as_written(self):
        """The local config parser neither splits, quotes nor strips an argument."""
        (spec,) = parse_config({"mcpServers": {"s": {"command": "tool", "args": list(STRANGE_ARGS)}}})
        assert spec.args == STRANGE_ARGS

    def test_servers_from_the_app_keep_arguments_as_written(self):
        """The App's server rows are converted without touching their arguments."""
        spec = AppServer.model_validate({"uuid": "u1", "type": "STDIO", "command": "tool", "args": STRANGE_ARGS})
        assert spec.to_spec().args == STRANGE_ARGS


class TestEnvironment:
    async def test_a_child_gets_values_without_nul_cr_or_lf_and_no_invalid_names(self):
        """The last guard before spawning: bad names are dropped and NUL, CR and LF removed from values."""
        env = (("1BAD", "x"), ("BAD-NAME", "x"), ("GOOD", "a\x00b\rc\nd"), ("lower_ok", "yes"))
        async with connected(argv_spec(env=env)) as session:
            environ = await call_json(session, "environ")
        assert environ["GOOD"] == "abcd"
        assert environ["lower_ok"] == "yes"
        assert "1BAD" not in environ and "BAD-NAME" not in environ

    def test_child_environment_warns_about_a_dropped_name_without_its_value(self, caplog):
        """A pasted `KEY=value` used as a name is named up to its `=`, never with the value."""
        with caplog.at_level(logging.WARNING):
            env = child_environment([("API_KEY=sk-pasted-value", "x")], base={})
        assert env == {}
        assert "API_KEY" in caplog.text and "sk-pasted-value" not in caplog.text

    @pytest.mark.parametrize("name", ["BAD-NAME", "1ABC", "A B", "FOO\n", ""])
    def test_an_invalid_name_in_the_config_file_is_an_error_naming_server_and_variable(self, name: str):
        """Locally, a bad variable name stops the config with a `ConfigError` that says where."""
        config = {"mcpServers": {"svc": {"command": "tool", "env": {name: "v"}}}}
        with pytest.raises(ConfigError, match=r"server 'svc', field 'env': .* is not a valid variable name") as exc:
            parse_config(config)
        assert exc.value.server == "svc"

    def test_a_config_error_about_a_name_does_not_show_a_pasted_value(self):
        """The name is cut where a pasted value would begin."""
        config = {"mcpServers": {"svc": {"command": "tool", "env": {"TOKEN=sk-pasted-value": "v"}}}}
        with pytest.raises(ConfigError) as exc:
            parse_config(config)
        assert "TOKEN" in str(exc.value) and "sk-pasted-value" not in str(exc.value)

    def test_a_value_with_a_line_break_in_the_config_file_is_an_error(self):
        """Locally, a NUL, CR or LF in a value is an error rather than a silent change."""
        with pytest.raises(ConfigError, match=r"field 'env.X': must not contain NUL, CR or LF"):
            parse_config({"mcpServers": {"svc": {"command": "tool", "env": {"X": "a\nb"}}}})

    def test_an_invalid_name_from_the_app_is_dropped_with_a_warning(self, caplog):
        """From the App, a bad variable is dropped and the warning names the server and the variable."""
        row = {"uuid": "u1", "name": "Svc", "command": "tool", "env": {"BAD-NAME": "v", "OK": "a\r\nb"}}
        with caplog.at_level(logging.WARNING):
            spec = AppServer.model_validate(row).to_spec()
        assert spec.env == (("OK", "ab"),)
        assert "'Svc'" in caplog.text and "BAD-NAME" in caplog.text

    def test_invalid_headers_from_the_app_are_dropped_with_a_warning(self, caplog):
        """An App header with a non-token name, or a CR, LF or NUL in its value, is not sent."""
        headers = {"X-Ok": "1", "Bad Name": "2", "X-Split": "a\r\nInjected: yes", "Authorization": "Bearer t"}
        row = {"uuid": "u1", "name": "Web", "type": "STREAMABLE_HTTP", "url": "https://h/mcp", "headers": headers}
        with caplog.at_level(logging.WARNING):
            spec = AppServer.model_validate(row).to_spec()
        assert spec.headers == (("Authorization", "Bearer t"), ("X-Ok", "1"))
        assert "'Web'" in caplog.text and "'Bad…'" in caplog.text and "'X-Split'" in caplog.text
        assert "Injected" not in caplog.text


class TestCommandAllowlist:
    async def test_without_an_allowlist_any_command_runs(self):
        """The default policy starts an ordinary local server."""
        async with connected(argv_spec(), UpstreamPolicy()) as session:
            assert await call_json(session, "argv") == []

    async def test_a_listed_base_name_runs(self):
        """Listing the program's name allows it wherever it lives."""
        policy = UpstreamPolicy(allowed_commands=frozenset({os.path.basename(sys.executable)}))
        async with connected(argv_spec(), policy) as session:
            assert await call_json(session, "argv") == []

    async def test_an_unlisted_command_is_refused_before_it_is_spawned(self, tmp_path: Path):
        """The refusal comes before the spawn: the program never runs."""
        marker = tmp_path / "ran"
        spec = ServerSpec(
            id="argv", name="argv", slug="argv", transport="stdio", command=sys.executable,
            args=("-c", f"open({str(marker)!r}, 'w')"),
        )  # fmt: skip
        policy = UpstreamPolicy(allowed_commands=frozenset({"npx", "uvx"}))
        with pytest.raises(UpstreamRefused) as exc:
            async with open_transport(spec, StderrTail(spec.name), policy=policy):
                pytest.fail("the transport opened")
        assert not marker.exists()
        assert isinstance(exc.value, UpstreamStartFailed) and exc.value.server_name == "argv"

    async def test_the_refusal_names_the_server_the_command_and_what_is_allowed(self):
        """The error says which server, which command and what --allow-command lists; never the arguments."""
        policy = UpstreamPolicy(allowed_commands=frozenset({"uvx", "npx"}))
        with pytest.raises(UpstreamRefused) as exc:
            await policy.check(argv_spec("--secret-arg"))
        message = str(exc.value)
        assert message.startswith(NOT_ALLOWED) and repr(sys.executable) in message
        assert "--allow-command (allowed: npx, uvx)" in message
        assert "--secret-arg" not in message and "tests.servers" not in message

    @pytest.mark.parametrize(
        ("command", "allowed", "expected"),
        [
            ("npx", {"npx"}, True),
            ("/usr/bin/npx", {"npx"}, True),
            ("/usr/local/bin/npx", {"/usr/local/bin/npx"}, True),
            ("/usr/local/bin/../bin/npx", {"/usr/local/bin/npx"}, True),
            ("/usr/bin/npx", {"/usr/local/bin/npx"}, False),
            ("/tmp/npx-evil", {"npx"}, False),
            ("node", {"npx", "uvx"}, False),
            ("", {"npx"}, False),
        ],
    )
    def test_commands_are_compared_by_base_name_and_by_full_path(self, command: str, allowed: set[str], expected):
        """A bare entry matches the base name; an entry with a path matches that path only."""
        assert command_allowed(command, allowed) is expected

    async def test_a_path_entry_allows_a_bare_command_that_resolves_to_it(self, tmp_path: Path):
        """`tool` found on the PATH the child will search counts as its full path."""
        tool = tmp_path / "tool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
        spec = argv_spec(command="tool", env=(("PATH", str(tmp_path)),))
        await UpstreamPolicy(allowed_commands=frozenset({str(tool)})).check(spec)
        with pytest.raises(UpstreamRefused):
            await UpstreamPolicy(allowed_commands=frozenset({"/elsewhere/tool"})).check(spec)

    async def test_the_allowlist_does_not_concern_http_servers(self):
        """Only stdio servers run a command."""
        await UpstreamPolicy(allowed_commands=frozenset({"npx"})).check(http_spec("http://127.0.0.1:1/mcp"))


async def _unused_resolver(host: str, port: int) -> list[str]:
    raise AssertionError("a literal address needs no DNS")


class TestPrivateUpstreams:
    @pytest.mark.parametrize(
        ("host", "kind"),
        [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "reserved"),
            ("224.0.0.1", "multicast"),
            ("[::1]", "loopback"),
            ("[::]", "unspecified"),
            ("[fe80::1]", "link-local"),
            ("[fd12:3456::1]", "unique-local"),
            ("[::ffff:127.0.0.1]", "loopback"),
            ("[::ffff:169.254.169.254]", "link-local"),
            ("[::127.0.0.1]", "loopback"),
            ("[2002:a00:1::]", "private"),
            ("[64:ff9b::a9fe:a9fe]", "link-local"),
        ],
    )
    async def test_a_non_public_address_is_refused(self, host: str, kind: str):
        """Loopback, private, link-local (metadata), unique-local, unspecified and embedded IPv4 are refused."""
        policy = UpstreamPolicy(block_private=True)
        with pytest.raises(UpstreamRefused, match=f"refused by --block-private-upstreams: .* a {kind} address"):
            await policy.check(http_spec(f"http://{host}:8080/mcp"), resolve=_unused_resolver)

    @pytest.mark.parametrize("host", ["93.184.216.34", "[2606:4700:4700::1111]", "[::ffff:8.8.8.8]"])
    async def test_a_public_address_is_allowed(self, host: str):
        """Globally routable addresses pass, also as IPv4-mapped IPv6."""
        await UpstreamPolicy(block_private=True).check(http_spec(f"https://{host}/mcp"), resolve=_unused_resolver)

    async def test_a_name_resolving_to_loopback_is_refused(self):
        """`localhost` is resolved, and its loopback address refused."""
        with pytest.raises(UpstreamRefused, match=r"its host 'localhost' resolves to .*, a loopback address"):
            await UpstreamPolicy(block_private=True).check(http_spec("http://localhost:9/mcp"))

    async def test_every_resolved_address_must_be_public(self):
        """One private address among public ones is enough to refuse."""
        asked: list[tuple[str, int]] = []

        async def resolve(host: str, port: int) -> list[str]:
            asked.append((host, port))
            return ["93.184.216.34", "2606:4700::1", "10.0.0.5"]

        with pytest.raises(UpstreamRefused, match=r"'mcp.example.com' resolves to 10.0.0.5, a private address"):
            await UpstreamPolicy(block_private=True).check(http_spec("https://mcp.example.com/mcp"), resolve=resolve)
        assert asked == [("mcp.example.com", 443)]

    async def test_a_name_resolving_only_to_public_addresses_is_allowed(self):
        """The resolver is asked with the URL's own port."""
        asked: list[tuple[str, int]] = []

        async def resolve(host: str, port: int) -> list[str]:
            asked.append((host, port))
            return ["93.184.216.34", "2606:4700::1"]

        await UpstreamPolicy(block_private=True).check(http_spec("http://mcp.example.com:8080/sse"), resolve=resolve)
        assert asked == [("mcp.example.com", 8080)]

    async def test_a_name_that_cannot_be_resolved_is_refused(self):
        """The check fails closed: an unresolvable host is not waved through."""

        async def resolve(host: str, port: int) -> list[str]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        with pytest.raises(UpstreamRefused, match=r"'nowhere.invalid' could not be resolved"):
            await UpstreamPolicy(block_private=True).check(http_spec("https://nowhere.invalid/mcp"), resolve=resolve)

    async def test_sse_servers_are_checked_too(self):
        """The legacy SSE transport gets the same check."""
        with pytest.raises(UpstreamRefused):
            await UpstreamPolicy(block_private=True).check(http_spec("http://127.0.0.1:9/sse", transport="sse"))

    async def test_stdio_servers_are_not_concerned(self):
        """Blocking private addresses leaves local programs alone."""
        async with connected(argv_spec(), UpstreamPolicy(block_private=True)) as session:
            assert await call_json(session, "argv") == []

    async def test_by_default_an_http_server_on_loopback_works(self):
        """Without the flag, a Streamable HTTP server on 127.0.0.1 is connected and called."""
        async with http_upstream() as url, connected(http_spec(url), UpstreamPolicy()) as session:
            result = await session.call_tool("echo", {"text": "hi"})
            assert isinstance(result, types.CallToolResult) and result.structured_content == {"text": "hi"}

    async def test_a_refused_server_is_never_contacted(self):
        """The check comes before any connection: a listener on the refused address sees nothing."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
            with pytest.raises(UpstreamRefused):
                async with open_transport(http_spec(url), StderrTail("web"), policy=UpstreamPolicy(block_private=True)):
                    pytest.fail("the transport opened")
            with pytest.raises(BlockingIOError):
                listener.accept()


class TestSecretsAreRegistered:
    async def test_a_stdio_servers_secret_env_values_are_masked_in_its_stderr_tail(self):
        """Once the server connects, its secret-looking env values are masked in what it writes to stderr."""
        redactor = Redactor()
        tail = StderrTail("argv")
        env = (("API_TOKEN", "fake-token-123456"), ("MODE", "plain-value-123"))
        async with connected(argv_spec(env=env), UpstreamPolicy(redactor=redactor), tail):
            tail.add("auth with fake-token-123456 in plain-value-123 mode")
        assert tail.lines() == ["auth with *** in plain-value-123 mode"]

    async def test_an_http_servers_secret_headers_and_query_values_are_registered(self):
        """Header values and query parameters with secret-looking names are masked from connect time on."""
        redactor = Redactor()
        async with http_upstream() as url:
            headers = (("Authorization", "Bearer fake-bearer-123456"), ("X-Client", "client-name-123"))
            spec = http_spec(f"{url}?session_key=fake-query-123456&region=local-region", headers=headers)
            async with connected(spec, UpstreamPolicy(redactor=redactor)):
                pass
        text = "fake-bearer-123456 fake-query-123456 client-name-123 local-region"
        assert redactor.redact(text) == "*** *** client-name-123 local-region"
