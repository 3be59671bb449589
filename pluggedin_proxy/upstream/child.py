"""Starting stdio server processes, and starting a small config's servers early.

`spawn` starts a server with no shell, in a session (process group) of its own, its stderr on a
pipe of ours, its environment an allow-list of the proxy's (`child_environment`) plus the server's.

Early start. Importing the MCP SDK takes the proxy most of a second, and a Python or Node server
takes as long to start, so a client's first call would wait for both, one after the other.
`prestart` (called by the CLI before it imports anything heavy) starts the stdio servers of a local
config that has at most `PRESTART_MAX` of them, so they start while the proxy does. Nothing is
said to them yet: the pool `adopt`s a waiting process when it first connects to that server, with
the exact command, arguments, environment and directory it would have used (anything else, and the
process is not used), and runs the handshake then, with the client's capabilities. Processes not
adopted within `PRESTART_HOLD` seconds, or by the time the pool closes, are stopped
(`discard`). This module imports only the standard library.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pluggedin_proxy.upstream.spec import ENV_NAME, ServerSpec, shown_name, without_unsafe_chars

__all__ = ["PRESTART_HOLD", "PRESTART_MAX", "Child", "adopt", "child_environment", "discard", "prestart", "spawn"]

logger = logging.getLogger(__name__)

# Variables a stdio server may need from the proxy's environment: how to find programs and
# homes, locale, temp dirs, and the network settings (proxies, CA bundles) corporate machines need.
INHERITED_ENV_VARS = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "NODE_OPTIONS",
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "npm_config_cache",
    "UV_CACHE_DIR",
    "UV_INDEX_URL",
    "PIP_INDEX_URL",
    "VIRTUAL_ENV",
)

PRESTART_MAX = 3
"""A config with more stdio servers than this starts none early: which would be used first is anyone's guess."""
PRESTART_HOLD = 60.0
"""Seconds an early process waits to be adopted before the pool stops it (it was not needed after all)."""
# How long a discarded early process may take to exit after SIGTERM at the proxy's exit (seconds).
DISCARD_GRACE = 0.5


@dataclass(frozen=True, slots=True)
class Child:
    """A started server process, with the read end of its stderr pipe."""

    process: subprocess.Popen[bytes]
    stderr: int
    key: tuple[tuple[str, ...], tuple[tuple[str, str], ...], str | None]
    """What it was started with: arguments, environment, directory."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        with contextlib.suppress(OSError):
            os.close(self.stderr)


def child_environment(extra: Iterable[tuple[str, str]], base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a stdio child: the allow-listed variables of `base` plus `extra`.

    Catalogs validate `extra` already; as a last guard, a variable with an invalid name is dropped and NUL,
    CR and LF are removed from values.
    """
    source = os.environ if base is None else base
    env = {key: source[key] for key in INHERITED_ENV_VARS if key in source and not source[key].startswith("()")}
    for key, value in extra:
        if ENV_NAME.fullmatch(key) is None:
            logger.warning("not passing environment variable %s to a server: not a valid name", shown_name(key))
            continue
        env[key] = without_unsafe_chars(value)
    return env


def spawn(argv: Sequence[str], env: dict[str, str], cwd: str | None) -> Child:
    """Start `argv` in a new session with pipes for stdin, stdout and stderr.

    Raises:
        OSError: the command could not be started.
    """
    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=write_fd,
            cwd=cwd,
            env=env,
            start_new_session=True,
            bufsize=0,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)  # the child has its own copy; ours must go so EOF arrives when it exits
    os.set_blocking(read_fd, False)
    return Child(process, read_fd, _key(argv, env, cwd))


_early: list[Child] = []


def prestart(specs: Sequence[ServerSpec]) -> None:
    """Start the stdio servers among `specs` now, if there are at most `PRESTART_MAX` of them (POSIX only)."""
    if sys.platform == "win32":
        return  # stdio servers there are started by the SDK's transport, which cannot adopt a process
    stdio = [s for s in specs if s.transport == "stdio" and s.isolation != "per-client" and s.command]
    if not stdio or len(stdio) > PRESTART_MAX:
        return
    for spec in stdio:
        try:
            _early.append(spawn([spec.command or "", *spec.args], child_environment(spec.env), spec.cwd))
        except (OSError, ValueError):
            continue  # the pool will start it when asked, and report the error then


def adopt(argv: Sequence[str], env: dict[str, str], cwd: str | None) -> Child | None:
    """A still-running early process started exactly so, now the caller's to run and stop; None if there is none."""
    key = _key(argv, env, cwd)
    for child in _early:
        if child.key == key:
            _early.remove(child)
            if child.process.poll() is None:
                return child
            child.close_pipes()  # it exited already: the caller starts a fresh one and reports on that
            return None
    return None


def discard(*, wait: bool = True) -> None:
    """Stop the early processes nobody adopted: stdin closed and their group SIGTERMed.

    With `wait`, each gets `DISCARD_GRACE` to exit before SIGKILL (blocking: for the proxy's exit).
    """
    children, _early[:] = list(_early), []
    for child in children:
        child.close_pipes()
        _signal_group(child.pid, signal.SIGTERM)
    if not wait:
        return
    deadline = time.monotonic() + DISCARD_GRACE
    while time.monotonic() < deadline and any(c.process.poll() is None for c in children):
        time.sleep(0.01)
    for child in children:
        if child.process.poll() is None:
            _signal_group(child.pid, signal.SIGKILL)
            child.process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _key(
    argv: Sequence[str], env: dict[str, str], cwd: str | None
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], str | None]:
    return tuple(argv), tuple(sorted(env.items())), cwd
