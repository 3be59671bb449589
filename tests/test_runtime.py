"""The composition root's choices: which tool pins a run uses."""

from __future__ import annotations

from pathlib import Path

import mcp_types as types
from pydantic import SecretStr

from pluggedin_proxy.catalog.pins import app_pins_path, config_pins_path
from pluggedin_proxy.credentials import Credentials
from pluggedin_proxy.runtime import pin_store
from pluggedin_proxy.settings import Mode, Settings

KEY = "pg_in_0123456789abcdef0123456789abcdef"
SCHEMA = {"type": "object"}


def settings(mode: Mode, tmp_path: Path, *, pin_tools: bool = False) -> Settings:
    credentials = Credentials(SecretStr(KEY), "https://app.example.com", "flag", "flag")
    return Settings(config_path=tmp_path / "mcp.json", credentials=credentials, mode=mode, pin_tools=pin_tools)


def test_a_local_catalog_pins_per_config_file(tmp_path: Path) -> None:
    """Local mode uses the config file's pins, enforced as `--pin-tools` says, output schemas included."""
    store = pin_store(settings("local", tmp_path, pin_tools=True), warn=False)
    assert store.path == config_pins_path(tmp_path / "mcp.json")
    assert store.enforce
    plain = types.Tool(name="t", input_schema=SCHEMA)
    assert store.digest(plain) != store.digest(plain.model_copy(update={"output_schema": SCHEMA}))


def test_the_app_pins_per_app_and_key_without_output_schemas(tmp_path: Path) -> None:
    """App mode uses the App-and-key pins and leaves output schemas out, since the App does not keep them."""
    store = pin_store(settings("app", tmp_path), warn=False)
    assert store.path == app_pins_path("https://app.example.com", KEY)
    assert not store.enforce
    plain = types.Tool(name="t", input_schema=SCHEMA)
    assert store.digest(plain) == store.digest(plain.model_copy(update={"output_schema": SCHEMA}))
