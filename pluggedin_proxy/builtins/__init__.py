"""The proxy's own tools and prompts, wire-compatible with the plugged.in proxy's built-ins."""

from pluggedin_proxy.builtins.base import BuiltinHost, BuiltinTool, ToolCall, ToolFailure
from pluggedin_proxy.builtins.registry import ALL_TOOLS, Builtins

__all__ = ["ALL_TOOLS", "BuiltinHost", "BuiltinTool", "Builtins", "ToolCall", "ToolFailure"]
