"""The watchdog process behind `ChildReaper`: kills the proxy's child process groups once the proxy is gone.

Run by path, not imported: `python -I -S _watchdog.py PROXY_PID`, with a pipe from the proxy on stdin. It
imports a few standard-library modules and nothing else (`-S`: not even `site`), so it starts in
milliseconds and stays a few megabytes.

Protocol: the watchdog writes `ready` on stdout once it ignores the signals below, then the proxy writes one
line per event, `+PGID` when it spawned a child in a new process group and
`-PGID` when it stopped that group itself. End of file on stdin, however it comes (the proxy closed the pipe,
exited, crashed or was killed with SIGKILL), means the proxy is gone or done: SIGTERM every group still
watched, SIGKILL what is left after `GRACE`, exit. Nothing else ends it, so it never outlives that job: SIGINT,
SIGTERM and SIGHUP are ignored (a Ctrl-C or a group kill aimed at the proxy must not stop the cleanup), and if
the pipe's write end ever leaked into another process, losing its parent (`PROXY_PID`) counts as end of file.

Pid reuse. A process group id is not reused while the group has a member, so a group that still exists and
whose leader is gone is the one we watched. A leader that is still there is checked against its start time,
read from `/proc/PID/stat` when the group was registered; a different start time means the pid now names
another process, which is left alone. Without `/proc` (macOS) this check is skipped: a group is signalled if it
exists. That risk is small because the proxy forgets each group as soon as it has stopped it, so only a child
that died in the moments before the proxy itself stays registered.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

# Time between SIGTERM and SIGKILL: enough to flush and exit, short because the proxy is already gone.
GRACE = 0.5
# How often to look whether the signalled groups are gone during the grace period.
POLL_INTERVAL = 0.02
# How often to check that the proxy is still our parent while nothing arrives on the pipe.
PARENT_CHECK_INTERVAL = 2.0


def main(argv: list[str]) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    # The readiness handshake: from here on, no signal aimed at the proxy can stop us.
    os.write(1, b"ready\n")
    os.close(1)
    proxy = int(argv[1]) if len(argv) > 1 else os.getppid()
    watched: dict[int, int | None] = {}
    read_until_end(0, proxy, watched)
    kill_groups(watched)


def read_until_end(fd: int, proxy: int, watched: dict[int, int | None]) -> None:
    """Apply `+PGID` / `-PGID` lines from `fd` to `watched` until end of file or the proxy is gone."""
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], PARENT_CHECK_INTERVAL)
        if not ready:
            if os.getppid() != proxy:
                return
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            apply(line, watched)


def apply(line: bytes, watched: dict[int, int | None]) -> None:
    """Register (`+PGID`) or forget (`-PGID`) one group; anything else is ignored."""
    sign, digits = line[:1], line[1:].strip()
    if not digits.isdigit() or int(digits) <= 1:
        return
    pgid = int(digits)
    if sign == b"+":
        watched[pgid] = start_time(pgid)
    elif sign == b"-":
        watched.pop(pgid, None)


def start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot; None if it does not exist or there is no `/proc`."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
        # The command name is in parentheses and may contain anything; fields resume after the last `)`.
        return int(data[data.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def is_ours(pgid: int, started: int | None) -> bool:
    """Whether group `pgid` is still the one registered: its leader is gone or started when it was registered."""
    now = start_time(pgid)
    return now is None or now == started


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to the group; False once the group is gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # some member is not ours to signal (or a zombie on macOS); the group still exists
    return True


def kill_groups(watched: dict[int, int | None]) -> None:
    """SIGTERM every watched group that is still ours, then SIGKILL those still there after `GRACE`."""
    alive = [pgid for pgid, started in watched.items() if is_ours(pgid, started) and signal_group(pgid, signal.SIGTERM)]
    deadline = time.monotonic() + GRACE
    while alive and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        alive = [pgid for pgid in alive if signal_group(pgid, 0)]
    for pgid in alive:
        if is_ours(pgid, watched[pgid]):
            signal_group(pgid, signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv)
