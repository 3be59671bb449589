"""The MCP-facing side: the proxy server, its routing and forwarding, and its stdio transport."""

from pluggedin_proxy.proxy.forwarding import Downstreams, Forwarder, to_mcp_error
from pluggedin_proxy.proxy.router import CatalogView, Route, Router
from pluggedin_proxy.proxy.server import Proxy, ProxyServer

__all__ = ["CatalogView", "Downstreams", "Forwarder", "Proxy", "ProxyServer", "Route", "Router", "to_mcp_error"]
