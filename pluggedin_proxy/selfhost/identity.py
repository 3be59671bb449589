"""Who each configured server is to the App: a UUID that survives restarts, and the App's type names.

The plugged.in App gives every server a random UUID when it is created. The self-hosted App has no
create step, so it derives the UUID from what names a server locally, the absolute path of the config
file and the server's key in it, with `uuid5` under a fixed namespace. The same file and key give the
same UUID on every start and on every machine, so the proxy's sessions (keyed by UUID) survive a
restart of the App. One config file is one profile ("Workspace"), so the profile UUID is derived from
the path alone.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

from pluggedin_proxy.upstream.spec import Transport

__all__ = ["NAMESPACE", "SERVER_TYPES", "ServerType", "is_uuid", "profile_uuid", "server_uuid"]

# Fixed forever: changing it would change every server's UUID and respawn every proxied server.
NAMESPACE = uuid.UUID("16a5707d-d460-49ab-a397-587ceb1abb8f")

ServerType = Literal["STDIO", "SSE", "STREAMABLE_HTTP"]

SERVER_TYPES: dict[Transport, ServerType] = {
    "stdio": "STDIO",
    "sse": "SSE",
    "streamable-http": "STREAMABLE_HTTP",
}


def server_uuid(config_path: Path, key: str) -> str:
    """The stable UUID of the server `key` in the config file at `config_path`."""
    return str(uuid.uuid5(NAMESPACE, f"{config_path.resolve()}\0{key}"))


def profile_uuid(config_path: Path) -> str:
    """The stable UUID of the profile that one config file stands for."""
    return str(uuid.uuid5(NAMESPACE, str(config_path.resolve())))


def is_uuid(text: str) -> bool:
    """Whether `text` is a UUID in its canonical 8-4-4-4-12 hex form (any version, any case)."""
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return False
    return str(parsed) == text.lower()
