"""The public API of each sub-package is exactly its `__all__`."""

from __future__ import annotations

from types import ModuleType

import pytest

import pluggedin_proxy.catalog
import pluggedin_proxy.proxy
import pluggedin_proxy.upstream

EXPORTS = {
    pluggedin_proxy.catalog: [
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
    ],
    pluggedin_proxy.upstream: [
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
    ],
    pluggedin_proxy.proxy: [
        "CatalogView",
        "Downstreams",
        "Forwarder",
        "Proxy",
        "ProxyServer",
        "Route",
        "Router",
        "to_mcp_error",
    ],
}

modules = pytest.mark.parametrize("module", list(EXPORTS), ids=lambda module: module.__name__)


@modules
def test_all_lists_exactly_the_pinned_names(module: ModuleType):
    """`__all__` is the agreed public API; changing it is a deliberate act."""
    assert module.__all__ == EXPORTS[module]


@modules
def test_all_is_sorted(module: ModuleType):
    """`__all__` is kept in sorted order."""
    assert module.__all__ == sorted(module.__all__)


@modules
def test_every_name_in_all_is_an_attribute(module: ModuleType):
    """Every exported name can be imported from the package."""
    assert [name for name in module.__all__ if not hasattr(module, name)] == []


@modules
def test_every_public_attribute_is_in_all(module: ModuleType):
    """Nothing public is importable from the package without being listed (sub-modules aside)."""
    # `dir`, not `vars`: the `catalog` and `upstream` packages load their members on first use.
    public = sorted(
        name for name in dir(module) if not name.startswith("_") and not isinstance(getattr(module, name), ModuleType)
    )
    assert public == sorted(module.__all__)
