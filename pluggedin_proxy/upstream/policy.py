"""Security policies an upstream must satisfy before the proxy starts or connects it.

`open_transport` checks its `UpstreamPolicy` first; a server that fails gets `UpstreamRefused`, is
reported as failed like any server that cannot start, and the other servers keep working.

- **Command allowlist** (`--allow-command NAME`, `PLUGGEDIN_ALLOW_COMMANDS`). When it is not empty,
  a stdio server runs only if its command is listed. A bare name (`npx`) allows a program of that
  name anywhere: the command's base name is compared. An entry with a path (`/usr/bin/npx`) allows
  that file only: the command as written is compared, and for a bare command, the file `PATH` finds.
- **Private upstreams** (`--block-private-upstreams`). An SSE or Streamable HTTP server is refused
  when its host is, or resolves to, an address that is not public: loopback, private, link-local
  (the 169.254.169.254 metadata service among them), unique-local, unspecified, multicast or
  otherwise reserved. Every address the name resolves to must be public, and IPv4 addresses
  carried inside IPv6 ones (mapped, compatible, 6to4, NAT64) are judged as IPv4. The name is
  resolved when connecting, and the connection resolves it again: a DNS server that answers
  differently the second time (DNS rebinding) is not stopped by this check.

Both are off by default, because local servers (any program, on localhost) are the common case.
Arguments are never checked or altered: stdio servers are spawned without a shell, so `;`, `$()`,
quotes and newlines in an argument reach the program exactly as configured.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

from pluggedin_proxy.errors import UpstreamRefused

if TYPE_CHECKING:
    from pluggedin_proxy.redact import Redactor
    from pluggedin_proxy.upstream.spec import ServerSpec

__all__ = ["Resolver", "UpstreamPolicy", "command_allowed", "non_public_kind"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name and port to the addresses a connection may use (a test seam for DNS)."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")


@dataclass(frozen=True, slots=True)
class UpstreamPolicy:
    """What every upstream connection must satisfy, and where its secrets are registered for masking."""

    allowed_commands: frozenset[str] = frozenset()
    """Programs stdio servers may run, as base names (`npx`) or full paths; empty allows any."""
    block_private: bool = False
    """Refuse SSE and Streamable HTTP servers whose host is or resolves to a non-public address."""
    redactor: Redactor | None = None
    """Where each server's secret-looking env and header values are registered before it connects."""

    async def check(self, spec: ServerSpec, *, resolve: Resolver | None = None) -> None:
        """Refuse `spec` if this policy forbids it; `resolve` replaces DNS (for tests).

        Raises:
            UpstreamRefused: the command is not allowed, or the URL's host is not public.
        """
        if spec.transport == "stdio":
            if self.allowed_commands:
                await _check_command(spec, self.allowed_commands)
        elif self.block_private:
            await _check_url(spec, resolve or _getaddrinfo)


def command_allowed(command: str, allowed: Collection[str]) -> bool:
    """Whether `allowed` lists `command` as written, its base name, or (for a path) the same path."""
    if command in allowed:
        return True
    if os.path.basename(command) in {entry for entry in allowed if not _has_path(entry)}:
        return True
    paths = {os.path.normpath(entry) for entry in allowed if _has_path(entry)}
    return _has_path(command) and os.path.normpath(command) in paths


def non_public_kind(address: IPAddress) -> str | None:
    """What kind of non-public address `address` is (`loopback`, `private`, …), or `None` for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_loopback:
            return "loopback"
        if address.is_unspecified:
            return "unspecified"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return non_public_kind(embedded)
        if address in _UNIQUE_LOCAL:
            return "unique-local"
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


async def _check_command(spec: ServerSpec, allowed: frozenset[str]) -> None:
    command = spec.command or ""
    if command_allowed(command, allowed):
        return
    if not _has_path(command) and any(_has_path(entry) for entry in allowed):
        # A path entry also allows a bare command that resolves to it, on the PATH the child will search
        # (the server's env may set its own); `shutil.which` walks the file system, so off the event loop.
        search_path = dict(spec.env).get("PATH", os.environ.get("PATH"))
        found = await anyio.to_thread.run_sync(lambda: shutil.which(command, path=search_path))
        if found is not None and command_allowed(found, allowed):
            return
    raise UpstreamRefused(
        f"server {spec.name!r} was refused: its command {command!r} is not allowed by --allow-command "
        f"(allowed: {', '.join(sorted(allowed))})",
        server_name=spec.name,
    )


async def _check_url(spec: ServerSpec, resolve: Resolver) -> None:
    def refuse(problem: str) -> UpstreamRefused:
        return UpstreamRefused(
            f"server {spec.name!r} was refused by --block-private-upstreams: {problem}", server_name=spec.name
        )

    parts = urlsplit(spec.url or "")
    host = parts.hostname
    if not host:
        raise refuse("its URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise refuse("its URL has an invalid port") from None
    literal = _ip(host)
    if literal is not None:
        kind = non_public_kind(literal)
        if kind is not None:
            raise refuse(f"its host {host} is a {kind} address")
        return
    try:
        resolved = await resolve(host, port)
    except OSError as exc:
        raise refuse(f"its host {host!r} could not be resolved to check it ({exc.strerror or exc})") from exc
    addresses = [a for a in (_ip(text) for text in resolved) if a is not None]
    if not addresses:
        raise refuse(f"its host {host!r} resolved to no address")
    for address in addresses:
        kind = non_public_kind(address)
        if kind is not None:
            raise refuse(f"its host {host!r} resolves to {address}, a {kind} address")


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or int(address) >> 32 == 0:  # NAT64, and the deprecated IPv4-compatible `::a.b.c.d`
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _has_path(command: str) -> bool:
    return os.sep in command or (os.altsep is not None and os.altsep in command)
