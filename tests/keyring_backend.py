"""A real keyring backend for tests: secrets kept as JSON in one file, so nothing touches the OS keyring."""

from __future__ import annotations

import json
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


class FileKeyring(KeyringBackend):
    """Stores `{service: {username: password}}` in `path`; raises `KeyringLocked` on every call while `locked`."""

    # Needs a path, so keyring's own discovery (which instantiates backends without arguments) never picks it.
    priority = 1

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.locked = False

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data.setdefault(service, {})[username] = password
        self.path.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if username not in data.get(service, {}):
            raise PasswordDeleteError(f"no password for {username!r} in {service!r}")
        del data[service][username]
        self.path.write_text(json.dumps(data))

    def _load(self) -> dict[str, dict[str, str]]:
        if self.locked:
            raise KeyringLocked("the test keyring is locked")
        if not self.path.exists():
            return {}
        data: dict[str, dict[str, str]] = json.loads(self.path.read_text())
        return data
