"""Upstream MCP servers: how to describe, reach and keep them."""

from pluggedin_proxy.upstream.connect import StderrTail, child_environment, open_transport
from pluggedin_proxy.upstream.policy import UpstreamPolicy
from pluggedin_proxy.upstream.pool import Profile, Upstream, UpstreamHooks, UpstreamPool
from pluggedin_proxy.upstream.spec import CustomInstructions, ServerSpec, Transport

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
