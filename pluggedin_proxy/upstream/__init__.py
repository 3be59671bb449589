"""Upstream MCP servers: how to describe, reach and keep them.

The members load on first use, so reading a config does not import the MCP SDK (see `cli.py`).
"""

import typing as _typing

from pluggedin_proxy._lazy import lazy_members as _lazy_members

if _typing.TYPE_CHECKING:
    from pluggedin_proxy.upstream.connect import StderrTail, child_environment, open_transport
    from pluggedin_proxy.upstream.policy import UpstreamPolicy
    from pluggedin_proxy.upstream.pool import Profile, Upstream, UpstreamHooks, UpstreamPool
    from pluggedin_proxy.upstream.spec import CustomInstructions, ServerSpec, Transport

_MEMBERS = {
    "CustomInstructions": "pluggedin_proxy.upstream.spec",
    "Profile": "pluggedin_proxy.upstream.pool",
    "ServerSpec": "pluggedin_proxy.upstream.spec",
    "StderrTail": "pluggedin_proxy.upstream.connect",
    "Transport": "pluggedin_proxy.upstream.spec",
    "Upstream": "pluggedin_proxy.upstream.pool",
    "UpstreamHooks": "pluggedin_proxy.upstream.pool",
    "UpstreamPolicy": "pluggedin_proxy.upstream.policy",
    "UpstreamPool": "pluggedin_proxy.upstream.pool",
    "child_environment": "pluggedin_proxy.upstream.connect",
    "open_transport": "pluggedin_proxy.upstream.connect",
}

__all__ = [
    "CustomInstructions",
    "Profile",
    "ServerSpec",
    "StderrTail",
    "Transport",
    "Upstream",
    "UpstreamHooks",
    "UpstreamPolicy",
    "UpstreamPool",
    "child_environment",
    "open_transport",
]


__getattr__, __dir__ = _lazy_members(__name__, _MEMBERS)
