"""Catalogs: where the proxy learns which servers exist and what they offer."""

from pluggedin_proxy.catalog.base import Catalog, DiscoveryResult, ServerListing
from pluggedin_proxy.catalog.config import default_config_path, load_config, parse_config
from pluggedin_proxy.catalog.local import LocalCatalog, list_everything

__all__ = [
    "Catalog",
    "DiscoveryResult",
    "LocalCatalog",
    "ServerListing",
    "default_config_path",
    "list_everything",
    "load_config",
    "parse_config",
]
