"""Placeholder: filled in by the built-in tools work."""

from __future__ import annotations

from pluggedin_proxy.builtins.base import BuiltinTool

TOOLS: tuple[BuiltinTool, ...] = ()
