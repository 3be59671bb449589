"""pluggedin-mcp: one MCP server in front of many.

The proxy learns which MCP servers exist from a catalog (a local config file or the plugged.in App),
starts or connects to them on demand, and routes every request to the one that answers it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
