"""Where the plugged.in API key and base URL come from, and where `login`-style commands keep them.

`resolve_credentials()` looks at each level in turn, separately for the key and for the base URL, and the
first level that sets a value wins:

1. the command-line flag;
2. the environment (`PLUGGEDIN_API_KEY`, `PLUGGEDIN_API_BASE_URL`);
3. the OS keyring (service `pluggedin-mcp`, users `api_key` and `base_url`);
4. `$XDG_CONFIG_HOME/pluggedin/credentials.json` (keys `api_key`, `base_url`);
5. the project's `./.claude/settings.local.json`, then the user's `~/.claude/settings.local.json`
   (their `env` object);
6. nothing for the key; `https://plugged.in` for the base URL.

An empty value counts as unset. A file that is missing, unreadable or not JSON is skipped, as the TypeScript
proxy does, and so is a keyring that is absent or fails. A value that *is* set but invalid is an error naming
its level: the TypeScript proxy silently dropped a malformed key into no-key mode, and stripped hyphens from a
`--pluggedin-api-base-url` host. Keyring calls block (and may prompt to unlock), so resolution is a plain
function that the CLI runs before the event loop starts; a level is only read when the ones above it are
empty.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from .errors import CredentialsError

__all__ = [
    "DEFAULT_BASE_URL",
    "KEYRING_SERVICE",
    "Credentials",
    "credentials_file_path",
    "forget_credentials",
    "keyring_available",
    "resolve_credentials",
    "store_credentials",
    "store_credentials_file",
]

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://plugged.in"
KEYRING_SERVICE: Final = "pluggedin-mcp"

Field = Literal["api_key", "base_url"]
_FIELDS: Final[tuple[Field, ...]] = ("api_key", "base_url")
# The names each field has in the environment and in the `env` object of Claude's settings files.
_ENV_NAMES: Final[Mapping[Field, str]] = {"api_key": "PLUGGEDIN_API_KEY", "base_url": "PLUGGEDIN_API_BASE_URL"}
# What the App accepts as a Bearer token (`validateBearerToken` in the TypeScript proxy).
_KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9._-]{32,256}")
_KEY_ILLEGAL: Final = re.compile(r"[^A-Za-z0-9._-]")
_KEY_MIN, _KEY_MAX = 32, 256


@dataclass(frozen=True, slots=True)
class Credentials:
    """The API key and base URL for the plugged.in App, and the level each came from."""

    api_key: SecretStr | None
    base_url: str
    key_source: str
    """`flag`, `env`, `keyring`, `credentials file <path>`, `project …`, `user …` or `none`."""
    base_url_source: str
    """The same vocabulary as `key_source`, or `default`."""

    @property
    def redacted_key(self) -> str:
        """The key as it may be shown to people: its first 6 and last 4 characters, or `not set`."""
        if self.api_key is None:
            return "not set"
        secret = self.api_key.get_secret_value()
        # Valid keys have at least 32 characters; anything shorter is shown as nothing at all.
        if len(secret) < 20:
            return "…"
        return f"{secret[:6]}…{secret[-4:]}"


def resolve_credentials(
    *,
    flag_key: str | None,
    flag_base_url: str | None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    use_keyring: bool = True,
) -> Credentials:
    """Find the API key and base URL, each from the highest level that sets it.

    `environ`, `cwd` and `home` default to the process's own; `use_keyring=False` skips the OS keyring.

    Raises:
        CredentialsError: a level sets a malformed key or base URL; the message names the level, never the key.
    """
    env = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    cwd = Path.cwd() if cwd is None else cwd
    file_path = credentials_file_path(environ=env, home=home)
    flags: dict[Field, str | None] = {"api_key": flag_key, "base_url": flag_base_url}
    levels: list[tuple[str, Callable[[Field], object]]] = [
        ("flag", flags.__getitem__),
        ("env", lambda field: env.get(_ENV_NAMES[field])),
    ]
    if use_keyring:
        levels.append(("keyring", _KeyringReader()))
    levels += [
        (f"credentials file {file_path}", _file_reader(file_path, section=None)),
        ("project .claude/settings.local.json", _file_reader(cwd / ".claude" / "settings.local.json", section="env")),
        ("user ~/.claude/settings.local.json", _file_reader(home / ".claude" / "settings.local.json", section="env")),
    ]

    key, key_source = _first_set(levels, "api_key")
    url, url_source = _first_set(levels, "base_url")
    return Credentials(
        api_key=None if key is None else SecretStr(_check_key(key, _describe(key_source, "api_key"))),
        base_url=DEFAULT_BASE_URL if url is None else _check_base_url(url, _describe(url_source, "base_url")),
        key_source=key_source if key is not None else "none",
        base_url_source=url_source if url is not None else "default",
    )


def credentials_file_path(*, environ: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """`$XDG_CONFIG_HOME/pluggedin/credentials.json`, or `~/.config/pluggedin/credentials.json`."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    config = Path(xdg) if xdg and Path(xdg).is_absolute() else (Path.home() if home is None else home) / ".config"
    return config / "pluggedin" / "credentials.json"


def keyring_available() -> bool:
    """Whether an OS keyring backend that can really store secrets is configured."""
    return _usable_keyring()[0] is not None


def store_credentials(api_key: str, base_url: str | None = None) -> str:
    """Save the key (and base URL, if given) in the OS keyring; return where they went, fit to show.

    Raises:
        CredentialsError: the key or URL is malformed, or no usable keyring exists or it refused the write.
    """
    key = _check_key(api_key, "the given API key")
    url = None if base_url is None else _check_base_url(base_url, "the given base URL")
    backend, backend_name = _usable_keyring()
    if backend is None:
        raise CredentialsError(
            f"no usable OS keyring is available ({backend_name}); use store_credentials_file() to save the "
            f"credentials to {credentials_file_path()} (readable only by you) instead"
        )
    entries: list[tuple[Field, str]] = [("api_key", key)] if url is None else [("api_key", key), ("base_url", url)]
    for field, value in entries:
        try:
            backend.set_password(KEYRING_SERVICE, field, value)
        except Exception as exc:
            raise CredentialsError(
                f"the OS keyring ({backend_name}) refused to store {field}: {_explain(exc, key)}"
            ) from exc
    return f"the OS keyring ({backend_name}), service {KEYRING_SERVICE!r}"


def store_credentials_file(
    api_key: str,
    base_url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Path:
    """Save the key (and base URL, if given) in the credentials file, mode 0600, keeping its other keys.

    Raises:
        CredentialsError: the key or URL is malformed, or the file cannot be read as JSON or written.
    """
    key = _check_key(api_key, "the given API key")
    url = None if base_url is None else _check_base_url(base_url, "the given base URL")
    path = credentials_file_path(environ=environ, home=home)
    data = _load_for_update(path)
    data["api_key"] = key
    if url is not None:
        data["base_url"] = url
    _write_private(path, data)
    return path


def forget_credentials(*, environ: Mapping[str, str] | None = None, home: Path | None = None) -> list[str]:
    """Remove the key and base URL from the OS keyring and the credentials file; return what was removed.

    Entries that are not there are fine. Claude's settings files and the environment are left alone.

    Raises:
        CredentialsError: the keyring or the file holds an entry but it could not be removed.
    """
    removed: list[str] = []
    backend, backend_name = _usable_keyring()
    if backend is not None:
        for field in _FIELDS:
            try:
                # Asked first because a missing entry and a failed delete raise the same `PasswordDeleteError`.
                if backend.get_password(KEYRING_SERVICE, field) is None:
                    continue
                backend.delete_password(KEYRING_SERVICE, field)
            except Exception as exc:
                raise CredentialsError(
                    f"could not remove {field} from the OS keyring ({backend_name}): {_explain(exc)}"
                ) from exc
            removed.append(f"{field} from the OS keyring ({backend_name})")

    path = credentials_file_path(environ=environ, home=home)
    if path.exists():
        data = _load_for_update(path)
        gone = [field for field in _FIELDS if data.pop(field, None) is not None]
        if gone:
            if data:
                _write_private(path, data)
            else:
                try:
                    path.unlink()
                except OSError as exc:
                    raise CredentialsError(f"could not remove {path}: {exc.strerror}") from exc
            removed += [f"{field} from {path}" for field in gone]
    return removed


def _first_set(levels: list[tuple[str, Callable[[Field], object]]], field: Field) -> tuple[str | None, str]:
    """The first non-empty value of `field` and its level's name, reading levels only as far as needed."""
    for source, read in levels:
        value = read(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise CredentialsError(f"{_describe(source, field)} is not a string")
        if value.strip():
            return value, source
    return None, "none"


def _check_key(value: str, where: str) -> str:
    """The key without surrounding whitespace, or a `CredentialsError` saying what is wrong, not what it is."""
    key = value.strip()
    if _KEY_PATTERN.fullmatch(key):
        return key
    problems = []
    if len(key) < _KEY_MIN:
        problems.append(f"too short ({len(key)} characters, at least {_KEY_MIN} needed)")
    elif len(key) > _KEY_MAX:
        problems.append(f"too long ({len(key)} characters, at most {_KEY_MAX} allowed)")
    illegal = len(_KEY_ILLEGAL.findall(key))
    if illegal:
        problems.append(f"{illegal} illegal character(s) (only letters, digits, '.', '_' and '-' are allowed)")
    raise CredentialsError(f"the API key from {where} is not valid: {'; '.join(problems)}")


def _check_base_url(value: str, where: str) -> str:
    """An `http(s)://host…` URL kept as given, minus surrounding whitespace and trailing slashes."""
    url = value.strip()
    if "@" in url:
        # Not echoed: a user-info part may hold a password.
        raise CredentialsError(f"the base URL from {where} is not valid: it must not contain '@' (user:password@)")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        problem = "it must start with http:// or https://"
    elif any(ch.isspace() for ch in url):
        problem = "it contains whitespace"
    elif not parts.hostname:
        problem = "it has no host"
    elif parts.query or parts.fragment or url.endswith(("?", "#")):
        problem = "it must not have a query or fragment, since API paths are appended to it"
    else:
        try:
            parts.port  # noqa: B018  # raises ValueError for a port that is not a number in 0-65535
        except ValueError:
            problem = "its port is not a number from 0 to 65535"
        else:
            return url.rstrip("/")
    raise CredentialsError(f"the base URL from {where} is not valid: {problem}: {url!r}")


def _describe(source: str, field: Field) -> str:
    """A level's name with the exact place inside it, for error messages."""
    if source == "flag":
        return "flag (command-line option)"
    if source == "env":
        return f"env (variable {_ENV_NAMES[field]})"
    if source == "keyring":
        return f"keyring (service {KEYRING_SERVICE!r}, user {field!r})"
    if source.startswith("credentials file"):
        return f"{source} (key {field!r})"
    return f"{source} (env.{_ENV_NAMES[field]})"


class _KeyringReader:
    """Reads entries from the OS keyring for one resolution; gives up quietly once the keyring fails."""

    __slots__ = ("_backend", "_opened")

    def __init__(self) -> None:
        self._backend: KeyringBackend | None = None
        self._opened = False

    def __call__(self, field: Field) -> str | None:
        if not self._opened:
            self._opened = True
            self._backend, name = _usable_keyring()
            if self._backend is None:
                logger.debug("skipping the OS keyring: %s", name)
        if self._backend is None:
            return None
        try:
            return self._backend.get_password(KEYRING_SERVICE, field)
        except Exception as exc:
            logger.debug("skipping the OS keyring, reading %s failed: %s", field, _explain(exc))
            self._backend = None
            return None


def _usable_keyring() -> tuple[KeyringBackend | None, str]:
    """The configured keyring backend if it can really store secrets, and a description of it either way."""
    import keyring  # imported when first needed: it costs a tenth of a second at start
    from keyring.backends import chainer, fail, null

    try:
        backend = keyring.get_keyring()
    except Exception as exc:
        return None, f"loading the keyring backend failed: {_explain(exc)}"
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    # `fail` raises on every call, `null` silently drops writes, and a chainer with nothing to chain does both.
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None, name
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None, f"{name} with no backend to chain"
    return backend, name


def _file_reader(path: Path, *, section: str | None) -> Callable[[Field], object]:
    """Reads fields from a JSON file (inside its `section` object, by their env names), parsing it once."""

    @functools.cache
    def load() -> Mapping[str, Any]:
        data = _read_json_object(path)
        if section is None:
            return data
        inner = data.get(section, {})
        if not isinstance(inner, dict):
            logger.debug("skipping %s: its %r is not an object", path, section)
            return {}
        return inner

    def read(field: Field) -> object:
        return load().get(field if section is None else _ENV_NAMES[field])

    return read


def _read_json_object(path: Path) -> dict[str, Any]:
    """The file's JSON object, or `{}` (with a debug log) if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.debug("skipping %s: %s", path, _explain(exc))
        return {}
    if not isinstance(data, dict):
        logger.debug("skipping %s: it is not a JSON object", path)
        return {}
    return data


def _load_for_update(path: Path) -> dict[str, Any]:
    """The credentials file's object, `{}` if it does not exist; refuses to overwrite anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CredentialsError(f"cannot read {path}: {_explain(exc)}; fix or remove it") from exc
    if not isinstance(data, dict):
        raise CredentialsError(f"cannot update {path}: it is not a JSON object; fix or remove it")
    return data


def _write_private(path: Path, data: Mapping[str, Any]) -> None:
    """Replace `path` atomically with `data` as JSON, readable only by this user (file 0600, new dir 0700)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600, so the secret is never readable by others, not even briefly.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=2)
                file.write("\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise CredentialsError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _explain(exc: BaseException, secret: str | None = None) -> str:
    """An exception as `Type: message`, with `secret` blanked out should a backend have echoed it."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text.replace(secret, "***") if secret else text
