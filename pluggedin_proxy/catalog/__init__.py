"""Catalogs: where the proxy learns which servers exist and what they offer."""

from pluggedin_proxy.catalog.app_client import AppClient, RateLimited
from pluggedin_proxy.catalog.base import Activity, Catalog, DiscoveryResult, ServerListing
from pluggedin_proxy.catalog.cache import Cached
from pluggedin_proxy.catalog.config import default_config_path, load_config, parse_config
from pluggedin_proxy.catalog.local import LocalCatalog, list_everything, read_persisted_listings
from pluggedin_proxy.catalog.pins import OfferedTool, PinStore, ToolChange, app_pins_path, config_pins_path
from pluggedin_proxy.catalog.remote import RemoteCatalog, read_app_snapshot

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
