"""Catalogs: where the proxy learns which servers exist and what they offer.

The members load on first use, so reading a config does not import the MCP SDK (see `cli.py`).
"""

import typing as _typing

from pluggedin_proxy._lazy import lazy_members as _lazy_members

if _typing.TYPE_CHECKING:
    from pluggedin_proxy.catalog.app_client import AppClient, RateLimited
    from pluggedin_proxy.catalog.base import Activity, Catalog, DiscoveryResult, ServerListing
    from pluggedin_proxy.catalog.cache import Cached
    from pluggedin_proxy.catalog.config import default_config_path, load_config, parse_config
    from pluggedin_proxy.catalog.local import LocalCatalog, list_everything, read_persisted_listings
    from pluggedin_proxy.catalog.pins import OfferedTool, PinStore, ToolChange, app_pins_path, config_pins_path
    from pluggedin_proxy.catalog.remote import RemoteCatalog, read_app_snapshot

_MEMBERS = {
    "Activity": "pluggedin_proxy.catalog.base",
    "AppClient": "pluggedin_proxy.catalog.app_client",
    "Cached": "pluggedin_proxy.catalog.cache",
    "Catalog": "pluggedin_proxy.catalog.base",
    "DiscoveryResult": "pluggedin_proxy.catalog.base",
    "LocalCatalog": "pluggedin_proxy.catalog.local",
    "OfferedTool": "pluggedin_proxy.catalog.pins",
    "PinStore": "pluggedin_proxy.catalog.pins",
    "RateLimited": "pluggedin_proxy.catalog.app_client",
    "RemoteCatalog": "pluggedin_proxy.catalog.remote",
    "ServerListing": "pluggedin_proxy.catalog.base",
    "ToolChange": "pluggedin_proxy.catalog.pins",
    "app_pins_path": "pluggedin_proxy.catalog.pins",
    "config_pins_path": "pluggedin_proxy.catalog.pins",
    "default_config_path": "pluggedin_proxy.catalog.config",
    "list_everything": "pluggedin_proxy.catalog.local",
    "load_config": "pluggedin_proxy.catalog.config",
    "parse_config": "pluggedin_proxy.catalog.config",
    "read_app_snapshot": "pluggedin_proxy.catalog.remote",
    "read_persisted_listings": "pluggedin_proxy.catalog.local",
}

__all__ = [
    "Activity",
    "AppClient",
    "Cached",
    "Catalog",
    "DiscoveryResult",
    "LocalCatalog",
    "OfferedTool",
    "PinStore",
    "RateLimited",
    "RemoteCatalog",
    "ServerListing",
    "ToolChange",
    "app_pins_path",
    "config_pins_path",
    "default_config_path",
    "list_everything",
    "load_config",
    "parse_config",
    "read_app_snapshot",
    "read_persisted_listings",
]


__getattr__, __dir__ = _lazy_members(__name__, _MEMBERS)
