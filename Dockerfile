# pluggedin-mcp serving MCP over Streamable HTTP on port 12006 (README.md, "Docker").
#
#   docker build -t pluggedin-mcp .
#   docker run -p 127.0.0.1:12006:12006 -e PLUGGEDIN_API_KEY -v pluggedin-data:/data pluggedin-mcp --require-api-auth
#
# The first stage builds the wheel and installs it into a virtual environment; the second copies
# only that environment, so neither the source tree nor the build tools reach the runtime image.

FROM python:3.12.12-slim-bookworm AS build

WORKDIR /src
COPY pyproject.toml README.md ./
COPY pluggedin_proxy ./pluggedin_proxy
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /dist . \
    && python -m venv /opt/pluggedin-mcp \
    && /opt/pluggedin-mcp/bin/pip install --no-cache-dir --disable-pip-version-check /dist/pluggedin_mcp-*.whl


FROM python:3.12.12-slim-bookworm

# A fixed numeric id, so `runAsNonRoot` checks pass and a bind-mounted /data can be chowned to it.
RUN groupadd --gid 10001 pluggedin \
    && useradd --uid 10001 --gid pluggedin --no-log-init --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin pluggedin \
    && install -d -o pluggedin -g pluggedin -m 0700 /data

COPY --from=build /opt/pluggedin-mcp /opt/pluggedin-mcp

# Everything the proxy keeps lands on the volume: the default config ($XDG_CONFIG_HOME/pluggedin/mcp.json),
# the credentials file written by `login --file`, saved listings ($XDG_CACHE_HOME/pluggedin-mcp) and the
# self-hosted App's data ($XDG_DATA_HOME/pluggedin-mcp). PLUGGEDIN_CONFIG is deliberately not set here:
# it would select a local file even when PLUGGEDIN_API_KEY is given. A container has no OS keyring:
# naming keyring's `fail` backend says so without probing D-Bus at each start (`login` needs `--file`).
ENV PATH=/opt/pluggedin-mcp/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/data \
    XDG_CONFIG_HOME=/data/config \
    XDG_CACHE_HOME=/data/cache \
    XDG_DATA_HOME=/data/share \
    PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring \
    BIND_HOST=0.0.0.0 \
    PORT=12006

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 12006

# Unhealthy when nothing answers on $PORT or /health is not 200 (503: the catalog is unavailable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % (os.environ.get('PORT') or 12006), timeout=4)"]

# The transport is part of the entrypoint, so arguments given to `docker run` are added to it
# (`--require-api-auth`, `doctor`, `login --file`); `--transport stdio` after it switches back to stdio.
ENTRYPOINT ["pluggedin-mcp", "--transport", "streamable-http"]
