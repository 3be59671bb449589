"""The App's wire shapes, as `/api/mcp-servers`, `/api/tools` and the other list routes really send them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pluggedin_proxy.catalog.app_models import (
    AppPrompt,
    AppResource,
    AppServer,
    AppTemplate,
    AppTool,
    parse_list,
)
from pluggedin_proxy.upstream.spec import ServerSpec

UUID = "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b"


def spec_of(**fields: Any) -> ServerSpec:
    """The spec of one `/api/mcp-servers` item with these fields (and the uuid)."""
    return AppServer.model_validate({"uuid": UUID, "name": "GitHub", **fields}).to_spec()


def http_server(**fields: Any) -> dict[str, Any]:
    """A Streamable HTTP item as the App sends it after an OAuth refresh."""
    return {
        "uuid": UUID,
        "name": "Context7",
        "type": "STREAMABLE_HTTP",
        "url": "https://mcp.context7.com/mcp",
        "streamableHTTPOptions": {"headers": {"Authorization": "Bearer token-1"}},
        **fields,
    }


def tool(name: str, **fields: Any) -> AppTool:
    return AppTool.model_validate({"name": name, "inputSchema": {"type": "object"}, **fields})


# Servers: STDIO


def test_stdio_server_gives_command_args_and_env() -> None:
    """A STDIO item becomes a stdio spec with its command, args and env."""
    spec = spec_of(type="STDIO", command="npx", args=["-y", "@mcp/github"], env={"GITHUB_TOKEN": "ghp_x"})
    assert spec.transport == "stdio"
    assert spec.command == "npx"
    assert spec.args == ("-y", "@mcp/github")
    assert spec.env == (("GITHUB_TOKEN", "ghp_x"),)
    assert spec.url is None
    assert spec.headers == ()


def test_missing_type_means_stdio() -> None:
    """An item without `type` is a STDIO server."""
    assert spec_of(command="uvx", args=["mcp-server-time"]).transport == "stdio"


def test_null_args_and_env_mean_none() -> None:
    """`args: null` and `env: null` give a command with no arguments and no extra environment."""
    spec = spec_of(type="STDIO", command="mcp-server-time", args=None, env=None)
    assert spec.command == "mcp-server-time"
    assert spec.args == ()
    assert spec.env == ()


def test_stdio_server_has_no_url_or_headers_even_if_sent() -> None:
    """Connection fields of other transports are not carried on a stdio spec."""
    spec = spec_of(type="STDIO", command="npx", url="https://example.com/mcp", headers={"X-Api-Key": "k"})
    assert spec.url is None
    assert spec.headers == ()


# Servers: SSE and Streamable HTTP


def test_streamable_http_server_gives_url_and_option_headers() -> None:
    """A STREAMABLE_HTTP item becomes a streamable-http spec with its URL and option headers."""
    spec = AppServer.model_validate(http_server()).to_spec()
    assert spec.transport == "streamable-http"
    assert spec.url == "https://mcp.context7.com/mcp"
    assert spec.headers == (("Authorization", "Bearer token-1"),)
    assert spec.command is None
    assert spec.args == ()
    assert spec.env == ()


def test_top_level_headers_merge_with_option_headers() -> None:
    """Top-level `headers` and `streamableHTTPOptions.headers` are both sent."""
    spec = AppServer.model_validate(http_server(headers={"X-Team": "core"})).to_spec()
    assert dict(spec.headers) == {"Authorization": "Bearer token-1", "X-Team": "core"}


def test_option_headers_win_over_top_level_headers() -> None:
    """When both name a header, `streamableHTTPOptions.headers` wins."""
    spec = AppServer.model_validate(http_server(headers={"Authorization": "Bearer stale"})).to_spec()
    assert dict(spec.headers) == {"Authorization": "Bearer token-1"}


def test_option_headers_win_over_top_level_headers_spelled_in_another_case() -> None:
    """Header names are case-insensitive: a lower-case top-level `authorization` is replaced, not sent twice."""
    spec = AppServer.model_validate(http_server(headers={"authorization": "Bearer stale"})).to_spec()
    assert [(name.lower(), value) for name, value in spec.headers] == [("authorization", "Bearer token-1")]


def test_sse_server_gets_url_and_headers() -> None:
    """An SSE item becomes an sse spec, and unlike the TypeScript proxy it keeps its headers."""
    spec = spec_of(type="SSE", url="https://sse.example.com/sse", headers={"X-Api-Key": "k"})
    assert spec.transport == "sse"
    assert spec.url == "https://sse.example.com/sse"
    assert spec.headers == (("X-Api-Key", "k"),)


def test_decrypted_transport_is_used_when_type_is_missing() -> None:
    """The decrypted `transport: streamable_http` decides the transport when `type` is absent."""
    spec = spec_of(transport="streamable_http", url="https://mcp.example.com/mcp")
    assert spec.transport == "streamable-http"
    assert spec.url == "https://mcp.example.com/mcp"


def test_type_wins_over_decrypted_transport() -> None:
    """When both are present, `type` decides."""
    assert spec_of(type="SSE", transport="streamable_http", url="https://x.example/sse").transport == "sse"


# Servers: legacy rows with transport hints hidden in env


def legacy_row() -> dict[str, Any]:
    """A legacy row: no `type`, transport and HTTP options as strings inside `env`."""
    options = {"headers": {"Authorization": "Bearer legacy"}, "sessionId": "s-1"}
    return {
        "uuid": UUID,
        "name": "Legacy",
        "url": "https://legacy.example.com/mcp",
        "env": {"__transport": "streamable_http", "__streamableHTTPOptions": json.dumps(options), "KEEP": "1"},
    }


def test_legacy_env_transport_is_lifted_out_of_env() -> None:
    """`env.__transport` decides the transport of a legacy row."""
    spec = AppServer.model_validate(legacy_row()).to_spec()
    assert spec.transport == "streamable-http"
    assert spec.url == "https://legacy.example.com/mcp"


def test_legacy_env_http_options_give_headers() -> None:
    """`env.__streamableHTTPOptions`, a JSON string, supplies the headers of a legacy row."""
    spec = AppServer.model_validate(legacy_row()).to_spec()
    assert spec.headers == (("Authorization", "Bearer legacy"),)


def test_legacy_env_hints_are_not_passed_to_a_stdio_child() -> None:
    """The `__` hints never reach a child process's environment."""
    row = legacy_row() | {"type": "STDIO", "command": "node", "url": None}
    spec = AppServer.model_validate(row).to_spec()
    assert spec.transport == "stdio"
    assert spec.env == (("KEEP", "1"),)


def test_legacy_env_options_that_are_not_json_are_ignored() -> None:
    """A broken `__streamableHTTPOptions` string gives no headers instead of failing."""
    row = legacy_row()
    row["env"]["__streamableHTTPOptions"] = "{not json"
    spec = AppServer.model_validate(row).to_spec()
    assert spec.headers == ()


# Servers: env values, slug, custom instructions, extra fields


def test_env_values_lose_cr_lf_and_nul() -> None:
    """CR, LF and NUL are stripped from env values."""
    spec = spec_of(command="node", env={"TOKEN": "ab\r\ncd\x00ef\n"})
    assert spec.env == (("TOKEN", "abcdef"),)


def test_null_slug_makes_the_uuid_the_prefix() -> None:
    """A server without a slug is prefixed by its uuid."""
    assert spec_of(command="node", slug=None).slug == UUID


def test_slug_is_the_prefix() -> None:
    """A server's slug is its prefix, and its uuid its id."""
    spec = spec_of(command="node", slug="github")
    assert spec.slug == "github"
    assert spec.id == UUID
    assert spec.name == "GitHub"


def test_custom_instructions_with_string_content_become_text() -> None:
    """UI-saved instructions (one system message with a string content) become that text."""
    spec = spec_of(command="node", customInstructions=[{"role": "system", "content": "Always cite issues."}])
    assert spec.instructions is not None and spec.instructions.text == "Always cite issues."


def test_custom_instructions_with_content_parts_are_joined() -> None:
    """Several messages, with string or text-part contents, are joined by newlines."""
    messages = [
        {"role": "system", "content": "First."},
        {"role": "user", "content": [{"type": "text", "text": "Second."}, {"type": "text", "text": "Third."}]},
    ]
    instructions = spec_of(command="node", customInstructions=messages).instructions
    assert instructions is not None and instructions.text == "First.\nSecond.\nThird."


def test_no_custom_instructions_means_none() -> None:
    """A server without instructions has none."""
    assert spec_of(command="node").instructions is None


def test_extra_fields_of_a_real_row_are_accepted() -> None:
    """Registry metadata, leftover `*_encrypted: null` keys, config and bookkeeping do not stop parsing."""
    row = {
        "uuid": UUID,
        "name": "GitHub",
        "description": None,
        "type": "STDIO",
        "command": "npx",
        "args": ["-y", "@mcp/github"],
        "env": {"GITHUB_TOKEN": "ghp_x"},
        "url": None,
        "created_at": "2026-08-01T10:00:00.000Z",
        "profile_uuid": "5f0c8f1e-6a1b-4c1e-9d1a-0b6c1d2e3f40",
        "status": "ACTIVE",
        "source": "REGISTRY",
        "external_id": "io.github/github",
        "notes": None,
        "config": {"requires_auth": False},
        "slug": "github",
        "command_encrypted": None,
        "args_encrypted": None,
        "env_encrypted": None,
        "url_encrypted": None,
        "transport_encrypted": None,
        "streamable_http_options_encrypted": None,
        "registry_data": {"name": "github"},
        "registry_version": "1.2.0",
        "registry_release_date": None,
        "registry_status": "active",
        "repository_url": "https://github.com/github/github-mcp-server",
        "repository_source": "github",
        "repository_id": "123",
        "install_path": None,
        "install_status": None,
        "installed_at": None,
        "encryption_salt": "c2FsdA==",
    }
    spec = AppServer.model_validate(row).to_spec()
    assert (spec.transport, spec.command, spec.slug) == ("stdio", "npx", "github")


# Servers: connection key


def test_connection_key_ignores_fields_that_do_not_change_the_connection() -> None:
    """Name, description, notes, timestamps and key order leave the connection key unchanged."""
    first = AppServer.model_validate(http_server(notes="a", created_at="2026-08-01T00:00:00Z")).to_spec()
    reordered = dict(reversed(list(http_server().items())))
    reordered |= {"name": "Renamed", "description": "new", "notes": "b", "created_at": "2026-08-02T00:00:00Z"}
    second = AppServer.model_validate(reordered).to_spec()
    assert first.connection_key == second.connection_key


def test_connection_key_changes_when_the_oauth_token_changes() -> None:
    """A refreshed `Authorization` in `streamableHTTPOptions.headers` changes the connection key."""
    before = AppServer.model_validate(http_server()).to_spec()
    after = AppServer.model_validate(
        http_server(streamableHTTPOptions={"headers": {"Authorization": "Bearer token-2"}})
    ).to_spec()
    assert before.connection_key != after.connection_key


# Tools


def test_slug_prefixed_tool_name_is_stripped() -> None:
    """`github__create_issue` from a server with slug `github` is `create_issue` upstream."""
    app_tool = tool("github__create_issue", _serverUuid=UUID, _serverSlug="github", _serverName="GitHub")
    assert app_tool.to_tool().name == "create_issue"


def test_uuid_prefixed_tool_name_is_stripped() -> None:
    """A server without a slug has its tools prefixed by its uuid; that prefix is stripped."""
    assert tool(f"{UUID}__search", _serverUuid=UUID, _serverName="Context7").to_tool().name == "search"


@pytest.mark.parametrize("original", ["a__b", "repo/search", "ns:tool", "@scope/pkg:run__v2"])
def test_stripping_keeps_separators_and_punctuation_of_the_original(original: str) -> None:
    """Only the prefix is removed: `__`, `/` and `:` inside the original name survive."""
    by_slug = tool(f"github__{original}", _serverUuid=UUID, _serverSlug="github")
    by_uuid = tool(f"{UUID}__{original}", _serverUuid=UUID)
    assert by_slug.to_tool().name == original
    assert by_uuid.to_tool().name == original


def test_unprefixed_tool_name_is_kept() -> None:
    """A name without the server's prefix (prefixing off) is already the original."""
    assert tool("create_issue", _serverUuid=UUID, _serverSlug="github").to_tool().name == "create_issue"


def test_internal_server_fields_never_reach_the_mcp_tool() -> None:
    """`_serverUuid`, `_serverName` and `_serverSlug` are not in the MCP tool."""
    app_tool = tool("github__create_issue", _serverUuid=UUID, _serverSlug="github", _serverName="GitHub")
    dumped = app_tool.to_tool().model_dump(by_alias=True)
    assert not {"_serverUuid", "_serverName", "_serverSlug"} & set(dumped)
    assert UUID not in json.dumps(dumped)


def test_extra_mcp_tool_fields_are_carried_over() -> None:
    """`title`, `annotations` and `outputSchema`, when the App keeps them, reach the MCP tool."""
    output_schema = {"type": "object", "properties": {"url": {"type": "string"}}}
    app_tool = tool(
        "github__create_issue",
        _serverUuid=UUID,
        _serverSlug="github",
        title="Create issue",
        annotations={"readOnlyHint": False, "destructiveHint": False},
        outputSchema=output_schema,
    )
    dumped = app_tool.to_tool().model_dump(by_alias=True, exclude_none=True)
    assert dumped["title"] == "Create issue"
    assert dumped["annotations"] == {"readOnlyHint": False, "destructiveHint": False}
    assert dumped["outputSchema"] == output_schema


def test_input_schema_is_kept_exactly() -> None:
    """The stored schema passes through unchanged, `$defs`, `$schema` and all."""
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"repo": {"$ref": "#/$defs/repo"}, "labels": {"type": "array", "items": {"type": "string"}}},
        "required": ["repo"],
        "additionalProperties": False,
        "$defs": {"repo": {"type": "string", "pattern": "^[^/]+/[^/]+$"}},
    }
    app_tool = AppTool.model_validate({"name": "github__create_issue", "inputSchema": schema, "_serverSlug": "github"})
    mcp_tool = app_tool.to_tool()
    assert mcp_tool.input_schema == schema
    assert mcp_tool.model_dump(by_alias=True)["inputSchema"] == schema


def test_tool_description_is_carried_over() -> None:
    """The description the App stored is the MCP tool's description."""
    assert tool("x", description="Creates an issue.").to_tool().description == "Creates an issue."


# Templates, resources, prompts


def test_template_media_type_becomes_mime_type() -> None:
    """The App's `mediaType` is the MCP template's `mimeType`."""
    template = AppTemplate.model_validate(
        {"uriTemplate": "repo://{owner}/{name}", "name": "Repository", "mediaType": "application/json"}
    ).to_template()
    assert template.mime_type == "application/json"
    assert template.model_dump(by_alias=True, exclude_none=True) == {
        "uriTemplate": "repo://{owner}/{name}",
        "name": "Repository",
        "mimeType": "application/json",
    }


def test_resource_without_a_name_is_named_by_its_uri() -> None:
    """A resource with no name takes its URI as name."""
    resource = AppResource.model_validate({"uri": "file:///README.md", "mimeType": "text/markdown"}).to_resource()
    assert resource.name == "file:///README.md"
    assert resource.mime_type == "text/markdown"


def test_prompt_arguments_are_carried_over() -> None:
    """A prompt's `arguments` become MCP prompt arguments with name, description and required."""
    prompt = AppPrompt.model_validate(
        {
            "name": "review",
            "description": "Review a pull request",
            "arguments": [{"name": "pr", "description": "PR number", "required": True}, {"name": "style"}],
        }
    ).to_prompt()
    assert prompt.name == "review"
    assert prompt.description == "Review a pull request"
    assert [(a.name, a.description, a.required) for a in prompt.arguments or []] == [
        ("pr", "PR number", True),
        ("style", None, None),
    ]


# List envelopes


def test_parse_list_accepts_a_bare_array() -> None:
    """`/api/prompts` and friends send bare arrays."""
    assert parse_list("prompts", [{"name": "a"}]) == [{"name": "a"}]


def test_parse_list_unwraps_the_tools_envelope() -> None:
    """`/api/tools` sends `{tools, message?}`."""
    assert parse_list("tools", {"tools": [{"name": "a"}], "message": "discovering"}) == [{"name": "a"}]


def test_parse_list_unwraps_the_legacy_results_envelope() -> None:
    """Older docs describe `{results: [...]}` for tools; it is accepted too."""
    assert parse_list("tools", {"results": [{"name": "a"}]}) == [{"name": "a"}]


@pytest.mark.parametrize("body", [{"error": "Internal server error"}, "nope", None, 42])
def test_parse_list_rejects_anything_else_with_a_clear_error(body: Any) -> None:
    """Neither an array nor a known envelope raises a `ValueError` naming the kind expected."""
    with pytest.raises(ValueError, match="list of tools"):
        parse_list("tools", body)
