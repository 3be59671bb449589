"""Serving the proxy over Streamable HTTP."""

from pluggedin_proxy.http.app import HttpOptions, create_http_app

__all__ = ["HttpOptions", "create_http_app"]
