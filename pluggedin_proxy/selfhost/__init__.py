"""The self-hosted plugged.in App: the App API served from a local config file.

A proxy (this one, or the TypeScript `@pluggedin/pluggedin-mcp-proxy`) pointed at it with
`--pluggedin-api-base-url` sees the config's servers as if they were in a plugged.in profile: their
connection entries, their discovered tools, prompts, resources and templates, discovery on demand, an
activity log and notifications. The tests use it in place of the cloud.

    app = create_app(Path("mcp.json"), api_keys=[key], data_dir=Path("data"))
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_app, app, port=0))
"""

from pluggedin_proxy.selfhost.app import SelfHostedApp, create_app
from pluggedin_proxy.selfhost.serve import serve_app

__all__ = ["SelfHostedApp", "create_app", "serve_app"]
