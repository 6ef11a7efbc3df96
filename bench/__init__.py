"""Benchmarks and stress runs of a citeqa service: tools, not on the request path, loaded only
when their command runs (api/cli.py lists them by name)."""
