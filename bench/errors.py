"""The one error the tools raise when they cannot run as asked."""

from __future__ import annotations


class BenchError(RuntimeError):
    """The bench or stress run cannot run as asked; the message says why (the command prints
    it and exits 2, without a traceback)."""
