"""A re-runnable benchmark suite for pluggedin-mcp: `python -m benchmarks` (see `benchmarks/__main__.py`).

Every figure is measured for the same upstream, the minimal echo server in `echo_server.py`,
once directly and once through the proxy (and through any peer given with `--peer`),
interleaved round by round so that drift in the machine's load cancels out of the ratios.

Modules: `targets` (what is measured and how a client connects), `workloads` (warm sessions),
`startup` (fresh processes), `processes` (CPU, memory, process trees, background servers),
`stats` (samples and percentiles), `plan` (how much work), `report` (table, JSON, comparison).
"""
