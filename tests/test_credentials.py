"""Credential resolution, validation and storage, against a real file-backed keyring and real files."""

from __future__ import annotations

import json
import logging
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from pluggedin_proxy.credentials import (
    DEFAULT_BASE_URL,
    KEYRING_SERVICE,
    Credentials,
    credentials_file_path,
    forget_credentials,
    keyring_available,
    resolve_credentials,
    store_credentials,
    store_credentials_file,
)
from pluggedin_proxy.errors import CredentialsError
from tests.keyring_backend import FileKeyring

LEVELS = ["flag", "env", "keyring", "credentials file", "project", "user"]
ENV_NAMES = {"api_key": "PLUGGEDIN_API_KEY", "base_url": "PLUGGEDIN_API_BASE_URL"}
KEY = "pg_in_" + "0123456789abcdefghijklmnopqrstuvwxyz" + "WXYZ"
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def key_for(level: str) -> str:
    """A valid key that says which level it was put in."""
    return f"pg_in_{level.replace(' ', '_')}_" + "k" * 32


def url_for(level: str) -> str:
    """A base URL that says which level it was put in."""
    return f"https://{level.replace(' ', '-')}.example.com"


def merge_json(path: Path, update: dict[str, Any]) -> None:
    """Merge `update` into the JSON object in `path`, one level deep."""
    data = json.loads(path.read_text()) if path.exists() else {}
    for name, value in update.items():
        data[name] = {**data.get(name, {}), **value} if isinstance(value, dict) else value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@dataclass
class Levels:
    """Puts values at each resolution level and resolves with this test's home and project directories."""

    home: Path
    project: Path
    keyring: FileKeyring
    monkeypatch: pytest.MonkeyPatch
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def credentials_file(self) -> Path:
        return self.home / ".config" / "pluggedin" / "credentials.json"

    def set(self, level: str, name: str, value: Any) -> None:
        if level == "flag":
            self.flags[name] = value
        elif level == "env":
            self.monkeypatch.setenv(ENV_NAMES[name], value)
        elif level == "keyring":
            self.keyring.set_password(KEYRING_SERVICE, name, value)
        elif level == "credentials file":
            merge_json(self.credentials_file, {name: value})
        elif level == "project":
            merge_json(self.project / ".claude" / "settings.local.json", {"env": {ENV_NAMES[name]: value}})
        else:
            merge_json(self.home / ".claude" / "settings.local.json", {"env": {ENV_NAMES[name]: value}})

    def source(self, level: str) -> str:
        return {
            "credentials file": f"credentials file {self.credentials_file}",
            "project": "project .claude/settings.local.json",
            "user": "user ~/.claude/settings.local.json",
        }.get(level, level)

    def resolve(self, **options: Any) -> Credentials:
        return resolve_credentials(
            flag_key=self.flags.get("api_key"),
            flag_base_url=self.flags.get("base_url"),
            cwd=self.project,
            home=self.home,
            **options,
        )


@pytest.fixture(autouse=True)
def file_keyring(tmp_path: Path) -> Iterator[FileKeyring]:
    """Every test in this module sees a file-backed keyring, never the machine's own."""
    previous = keyring.get_keyring()
    backend = FileKeyring(tmp_path / "keyring.json")
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def levels(clean_environ: Path, tmp_path: Path, file_keyring: FileKeyring, monkeypatch: pytest.MonkeyPatch) -> Levels:
    project = tmp_path / "project"
    project.mkdir()
    return Levels(home=clean_environ, project=project, keyring=file_keyring, monkeypatch=monkeypatch)


# Precedence


@pytest.mark.parametrize("winner", LEVELS)
def test_the_highest_level_that_sets_the_api_key_wins(levels: Levels, winner: str) -> None:
    """With every level from `winner` down setting a key, `winner`'s key is used."""
    for level in LEVELS[LEVELS.index(winner) :]:
        levels.set(level, "api_key", key_for(level))
    creds = levels.resolve()
    assert creds.api_key is not None and creds.api_key.get_secret_value() == key_for(winner)
    assert creds.key_source == levels.source(winner)


@pytest.mark.parametrize("winner", LEVELS)
def test_the_highest_level_that_sets_the_base_url_wins(levels: Levels, winner: str) -> None:
    """With every level from `winner` down setting a base URL, `winner`'s URL is used."""
    for level in LEVELS[LEVELS.index(winner) :]:
        levels.set(level, "base_url", url_for(level))
    creds = levels.resolve()
    assert (creds.base_url, creds.base_url_source) == (url_for(winner), levels.source(winner))


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_alone_provides_the_api_key(levels: Levels, level: str) -> None:
    """A key set only at one level is found there, and the base URL stays the default."""
    levels.set(level, "api_key", key_for(level))
    creds = levels.resolve()
    assert creds.api_key is not None and creds.api_key.get_secret_value() == key_for(level)
    assert creds.key_source == levels.source(level)
    assert (creds.base_url, creds.base_url_source) == (DEFAULT_BASE_URL, "default")


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_alone_provides_the_base_url(levels: Levels, level: str) -> None:
    """A base URL set only at one level is found there, and there is still no key."""
    levels.set(level, "base_url", url_for(level))
    creds = levels.resolve()
    assert (creds.base_url, creds.base_url_source) == (url_for(level), levels.source(level))
    assert (creds.api_key, creds.key_source) == (None, "none")


def test_nothing_set_means_no_key_and_the_default_base_url(levels: Levels) -> None:
    """With no level set there is no key, and the base URL is https://plugged.in."""
    assert levels.resolve() == Credentials(
        api_key=None, base_url="https://plugged.in", key_source="none", base_url_source="default"
    )


def test_key_and_base_url_are_resolved_independently(levels: Levels) -> None:
    """The key can come from one level and the base URL from a lower one."""
    levels.set("env", "api_key", key_for("env"))
    levels.set("user", "base_url", url_for("user"))
    creds = levels.resolve()
    assert (creds.key_source, creds.base_url_source) == ("env", "user ~/.claude/settings.local.json")


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_environment_variable_falls_through(levels: Levels, empty: str) -> None:
    """An empty `PLUGGEDIN_API_KEY` or `PLUGGEDIN_API_BASE_URL` counts as unset."""
    levels.set("env", "api_key", empty)
    levels.set("env", "base_url", empty)
    levels.set("keyring", "api_key", key_for("keyring"))
    levels.set("credentials file", "base_url", url_for("credentials file"))
    creds = levels.resolve()
    assert (creds.key_source, creds.base_url) == ("keyring", url_for("credentials file"))


def test_an_empty_flag_falls_through(levels: Levels) -> None:
    """An empty flag value counts as unset, as the TypeScript proxy treats it."""
    levels.set("flag", "api_key", "")
    levels.set("env", "api_key", key_for("env"))
    assert levels.resolve().key_source == "env"


def test_the_environ_argument_replaces_the_process_environment(levels: Levels, tmp_path: Path) -> None:
    """Passing `environ` ignores `os.environ`, including where `XDG_CONFIG_HOME` points."""
    levels.set("env", "api_key", key_for("env"))
    elsewhere = tmp_path / "elsewhere"
    merge_json(elsewhere / "pluggedin" / "credentials.json", {"api_key": key_for("credentials file")})
    creds = levels.resolve(environ={"XDG_CONFIG_HOME": str(elsewhere)})
    assert creds.key_source == f"credentials file {elsewhere / 'pluggedin' / 'credentials.json'}"


def test_a_relative_xdg_config_home_is_ignored(tmp_path: Path) -> None:
    """The XDG spec says a relative `XDG_CONFIG_HOME` is invalid, so `~/.config` is used."""
    path = credentials_file_path(environ={"XDG_CONFIG_HOME": "relative/dir"}, home=tmp_path)
    assert path == tmp_path / ".config" / "pluggedin" / "credentials.json"


# Files and keyrings that cannot be used


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe\x00", b""])
def test_a_malformed_credentials_file_is_skipped(levels: Levels, content: bytes) -> None:
    """A credentials.json that is not a JSON object is skipped, and the next level is used."""
    levels.credentials_file.parent.mkdir(parents=True)
    levels.credentials_file.write_bytes(content)
    levels.set("project", "api_key", key_for("project"))
    assert levels.resolve().key_source == "project .claude/settings.local.json"


def test_an_unreadable_credentials_file_is_skipped_with_a_debug_log(
    levels: Levels, caplog: pytest.LogCaptureFixture
) -> None:
    """A credentials.json that cannot be read (here: a directory) is logged at debug level and skipped."""
    levels.credentials_file.mkdir(parents=True)
    levels.set("user", "api_key", key_for("user"))
    with caplog.at_level(logging.DEBUG, logger="pluggedin_proxy.credentials"):
        assert levels.resolve().key_source == "user ~/.claude/settings.local.json"
    assert any(str(levels.credentials_file) in record.getMessage() for record in caplog.records)


def test_a_settings_file_whose_env_is_not_an_object_is_skipped(levels: Levels) -> None:
    """A project settings file with a non-object `env` is skipped in favour of the user's."""
    merge_json(levels.project / ".claude" / "settings.local.json", {"env": ["PLUGGEDIN_API_KEY"]})
    levels.set("user", "api_key", key_for("user"))
    assert levels.resolve().key_source == "user ~/.claude/settings.local.json"


def test_a_locked_keyring_is_skipped_not_fatal(levels: Levels, file_keyring: FileKeyring) -> None:
    """A keyring backend that raises is treated as unavailable and the credentials file is used."""
    levels.set("keyring", "api_key", key_for("keyring"))
    levels.set("credentials file", "api_key", key_for("credentials file"))
    file_keyring.locked = True
    assert levels.resolve().key_source == levels.source("credentials file")


def test_the_fail_keyring_is_skipped_not_fatal(levels: Levels) -> None:
    """keyring's `fail.Keyring` (no backend at all) means the keyring level is simply empty."""
    keyring.set_keyring(fail.Keyring())
    levels.set("credentials file", "base_url", url_for("credentials file"))
    assert levels.resolve().base_url_source == levels.source("credentials file")


def test_use_keyring_false_skips_the_keyring(levels: Levels) -> None:
    """With `use_keyring=False` a key in the keyring is not read."""
    levels.set("keyring", "api_key", key_for("keyring"))
    levels.set("user", "api_key", key_for("user"))
    assert levels.resolve(use_keyring=False).key_source == "user ~/.claude/settings.local.json"


def test_the_keyring_is_not_read_when_higher_levels_answer(levels: Levels, file_keyring: FileKeyring) -> None:
    """Flags for both key and URL mean the (possibly prompting) keyring is never asked."""
    file_keyring.locked = True
    levels.set("flag", "api_key", KEY)
    levels.set("flag", "base_url", url_for("flag"))
    assert levels.resolve().key_source == "flag"


# Key validation


@pytest.mark.parametrize("level", LEVELS)
def test_a_too_short_key_is_an_error_naming_its_level(levels: Levels, level: str) -> None:
    """A malformed key is an error, not no-key mode; it names the level and hides the key."""
    levels.set(level, "api_key", "pg_in_SECRETxyz")
    with pytest.raises(CredentialsError) as info:
        levels.resolve()
    message = str(info.value)
    assert levels.source(level) in message
    assert "too short" in message
    assert "SECRETxyz" not in message


def test_a_key_with_illegal_characters_is_an_error_that_hides_the_key(levels: Levels) -> None:
    """Characters outside letters, digits, `.`, `_` and `-` are reported, but not shown."""
    levels.set("env", "api_key", "pg_in_" + "a" * 30 + "$ecret!")
    with pytest.raises(CredentialsError, match="illegal character") as info:
        levels.resolve()
    assert "PLUGGEDIN_API_KEY" in str(info.value)
    assert "ecret" not in str(info.value) and "aaaa" not in str(info.value)


def test_a_too_long_key_is_an_error(levels: Levels) -> None:
    """A key over 256 characters is rejected as too long."""
    levels.set("flag", "api_key", "k" * 300)
    with pytest.raises(CredentialsError, match="too long"):
        levels.resolve()


def test_an_invalid_key_is_not_rescued_by_a_lower_level(levels: Levels) -> None:
    """A malformed env key is an error even though the keyring holds a good one."""
    levels.set("env", "api_key", "short")
    levels.set("keyring", "api_key", key_for("keyring"))
    with pytest.raises(CredentialsError, match="PLUGGEDIN_API_KEY"):
        levels.resolve()


def test_a_non_string_key_in_the_credentials_file_is_an_error(levels: Levels) -> None:
    """`"api_key": 123` in credentials.json is an error naming the file."""
    levels.set("credentials file", "api_key", 12345678901234567890123456789012345)
    with pytest.raises(CredentialsError, match="not a string") as info:
        levels.resolve()
    assert str(levels.credentials_file) in str(info.value)


def test_surrounding_whitespace_is_stripped_from_the_key(levels: Levels) -> None:
    """A key pasted with a trailing newline is accepted without it."""
    levels.set("env", "api_key", f"  {KEY}\n")
    creds = levels.resolve()
    assert creds.api_key is not None and creds.api_key.get_secret_value() == KEY


# Base URL validation


@pytest.mark.parametrize("level", ["flag", "env"])
@pytest.mark.parametrize(
    "url",
    ["https://my-host.example.com", "http://localhost:12005", "https://my-app.example.com:8443/plugged-in/app"],
)
def test_hyphens_ports_and_paths_in_the_base_url_are_kept(levels: Levels, level: str, url: str) -> None:
    """The base URL is used exactly as given, unlike the TypeScript flag path that dropped hyphens."""
    levels.set(level, "base_url", url)
    assert levels.resolve().base_url == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [("https://plugged.in/", "https://plugged.in"), ("https://x.example.com/base//", "https://x.example.com/base")],
)
def test_trailing_slashes_are_removed_from_the_base_url(levels: Levels, url: str, expected: str) -> None:
    """Trailing slashes go, so `base_url + "/api/tools"` has one slash."""
    levels.set("env", "base_url", url)
    base_url = levels.resolve().base_url
    assert base_url == expected
    assert "//api" not in base_url + "/api/tools"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://plugged.in", "http:// or https://"),
        ("plugged.in", "http:// or https://"),
        ("https://", "no host"),
        ("https://host:99999", "port"),
        ("https://host/app?x=1", "query"),
        ("https://my host", "whitespace"),
    ],
)
def test_a_bad_base_url_is_an_error_naming_its_level(levels: Levels, url: str, problem: str) -> None:
    """A base URL that is not `http(s)://host…` is an error naming where it came from."""
    levels.set("credentials file", "base_url", url)
    with pytest.raises(CredentialsError, match=problem) as info:
        levels.resolve()
    assert levels.source("credentials file") in str(info.value)


def test_a_base_url_with_a_password_is_rejected_without_echoing_it(levels: Levels) -> None:
    """User-info in the base URL is refused, and the password never reaches the message."""
    levels.set("env", "base_url", "https://me:hunter2@plugged.in")
    with pytest.raises(CredentialsError, match="PLUGGEDIN_API_BASE_URL") as info:
        levels.resolve()
    assert "hunter2" not in str(info.value)


# Storing and forgetting


def test_store_and_forget_round_trip_through_the_keyring(levels: Levels) -> None:
    """Stored credentials resolve from the keyring; forgetting them removes both entries, once."""
    where = store_credentials(f" {KEY}\n", "https://my-host.example.com/")
    assert "FileKeyring" in where and KEYRING_SERVICE in where
    creds = levels.resolve()
    assert creds.api_key is not None and creds.api_key.get_secret_value() == KEY
    assert (creds.key_source, creds.base_url, creds.base_url_source) == (
        "keyring",
        "https://my-host.example.com",
        "keyring",
    )
    removed = forget_credentials()
    assert len(removed) == 2 and all("keyring" in entry for entry in removed)
    assert levels.resolve().key_source == "none"
    assert forget_credentials() == []


def test_storing_only_a_key_keeps_the_stored_base_url(levels: Levels) -> None:
    """`store_credentials(key)` without a base URL leaves a previously stored URL alone."""
    store_credentials(KEY, "https://self-hosted.example.com")
    store_credentials(key_for("keyring"))
    creds = levels.resolve()
    assert creds.api_key is not None and creds.api_key.get_secret_value() == key_for("keyring")
    assert creds.base_url == "https://self-hosted.example.com"


def test_storing_an_invalid_key_stores_nothing(file_keyring: FileKeyring) -> None:
    """A malformed key is refused before anything is written, and the message hides it."""
    with pytest.raises(CredentialsError, match="too short") as info:
        store_credentials("pg_in_SECRET")
    assert "SECRET" not in str(info.value)
    assert file_keyring.get_password(KEYRING_SERVICE, "api_key") is None


def test_a_keyring_that_refuses_the_write_is_an_error(file_keyring: FileKeyring) -> None:
    """A keyring error while storing becomes a `CredentialsError` saying why."""
    file_keyring.locked = True
    with pytest.raises(CredentialsError, match="KeyringLocked") as info:
        store_credentials(KEY)
    assert KEY not in str(info.value)


def _empty_chainer() -> KeyringBackend:
    backend = chainer.ChainerBackend()
    if backend.backends:
        pytest.skip("this machine has a real keyring backend for the chainer to use")
    return backend


@pytest.mark.parametrize(
    "make_backend",
    [fail.Keyring, null.Keyring, _empty_chainer],
    ids=["fail", "null", "chainer-without-backends"],
)
def test_without_a_usable_keyring_storing_is_a_clear_error(
    levels: Levels, make_backend: Callable[[], KeyringBackend]
) -> None:
    """With no real keyring, storing says so and points at the credentials file instead."""
    keyring.set_keyring(make_backend())
    assert not keyring_available()
    with pytest.raises(CredentialsError) as info:
        store_credentials(KEY)
    message = str(info.value)
    assert "no usable OS keyring" in message
    assert "store_credentials_file()" in message and str(levels.credentials_file) in message
    assert KEY not in message


def test_keyring_available_is_true_for_a_real_backend() -> None:
    """The file-backed test keyring counts as usable."""
    assert keyring_available()


@POSIX_ONLY
def test_the_file_fallback_creates_a_private_credentials_file(levels: Levels) -> None:
    """store_credentials_file writes mode 0600 in a new 0700 directory, and the file then resolves."""
    keyring.set_keyring(fail.Keyring())
    path = store_credentials_file(KEY, "https://my-host.example.com/")
    assert path == levels.credentials_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"api_key": KEY, "base_url": "https://my-host.example.com"}
    creds = levels.resolve()
    assert (creds.key_source, creds.base_url_source) == (f"credentials file {path}", f"credentials file {path}")


@POSIX_ONLY
def test_the_file_fallback_keeps_other_keys_and_tightens_the_mode(levels: Levels) -> None:
    """An existing world-readable file keeps its other keys and ends up 0600."""
    merge_json(levels.credentials_file, {"api_key": key_for("old"), "mcp_endpoint": "https://mcp.example.com"})
    levels.credentials_file.chmod(0o644)
    store_credentials_file(KEY)
    assert json.loads(levels.credentials_file.read_text()) == {
        "api_key": KEY,
        "mcp_endpoint": "https://mcp.example.com",
    }
    assert stat.S_IMODE(levels.credentials_file.stat().st_mode) == 0o600
    assert [p.name for p in levels.credentials_file.parent.iterdir()] == ["credentials.json"]


def test_the_file_fallback_refuses_to_overwrite_a_malformed_file(levels: Levels) -> None:
    """A credentials.json that is not a JSON object is left untouched and named in the error."""
    levels.credentials_file.parent.mkdir(parents=True)
    levels.credentials_file.write_text("{oops")
    with pytest.raises(CredentialsError, match="fix or remove it") as info:
        store_credentials_file(KEY)
    assert str(levels.credentials_file) in str(info.value)
    assert levels.credentials_file.read_text() == "{oops"


def test_forget_removes_the_credentials_file_entries_and_keeps_other_keys(levels: Levels) -> None:
    """Forgetting drops `api_key` and `base_url` from credentials.json but keeps its other keys."""
    store_credentials_file(KEY, "https://plugged.in")
    merge_json(levels.credentials_file, {"mcp_endpoint": "https://mcp.example.com"})
    removed = forget_credentials()
    assert removed == [f"api_key from {levels.credentials_file}", f"base_url from {levels.credentials_file}"]
    assert json.loads(levels.credentials_file.read_text()) == {"mcp_endpoint": "https://mcp.example.com"}


def test_forget_deletes_a_credentials_file_left_empty(levels: Levels) -> None:
    """A credentials.json holding only our entries is deleted by forgetting."""
    store_credentials_file(KEY)
    assert forget_credentials() == [f"api_key from {levels.credentials_file}"]
    assert not levels.credentials_file.exists()


def test_forget_works_without_a_usable_keyring(levels: Levels) -> None:
    """With no keyring, forgetting still cleans the credentials file."""
    keyring.set_keyring(fail.Keyring())
    store_credentials_file(KEY)
    assert forget_credentials() == [f"api_key from {levels.credentials_file}"]


# Showing credentials


def test_the_redacted_key_never_shows_the_middle_of_the_key(levels: Levels) -> None:
    """`redacted_key` shows only the first 6 and last 4 characters."""
    levels.set("env", "api_key", KEY)
    redacted = levels.resolve().redacted_key
    assert redacted == "pg_in_…WXYZ"
    assert "0123" not in redacted and "mnop" not in redacted


def test_the_redacted_key_says_not_set_without_a_key(levels: Levels) -> None:
    """Without a key, `redacted_key` says so."""
    assert levels.resolve().redacted_key == "not set"


def test_the_credentials_repr_hides_the_key(levels: Levels) -> None:
    """Logging a `Credentials` object cannot leak the key."""
    levels.set("env", "api_key", KEY)
    creds = levels.resolve()
    assert KEY not in repr(creds) and KEY not in str(creds)
