"""Rerankers are plugins: the ``citeqa.rerankers`` entry-point group maps a name to a
factory taking the reranker's settings as keyword arguments. The built-ins (``learned``,
the default, and ``cross-encoder``) register in pyproject.toml exactly as a third-party
package would, through the same plumbing as the generators (qa/registry.py).

The composition root builds the configured one once, at start:

    load_reranker(settings.reranker, settings.reranker_config(settings.reranker))
"""

from __future__ import annotations

from typing import Any, Mapping

from citeqa.qa.ranking.cross_encoder import CrossEncoderUnavailable
from citeqa.qa.ranking.types import Reranker
from citeqa.qa.registry import UnknownPlugin, UnknownPluginSetting, check_settings, plugin_factory, plugin_names

GROUP = "citeqa.rerankers"
DEFAULT = "learned"


class UnknownReranker(UnknownPlugin):
    pass


class InvalidRerankerSettings(UnknownPluginSetting):
    pass


# What choosing a reranker can fail with; each is a configuration error to report as such.
RERANKER_PROBLEMS = (UnknownReranker, InvalidRerankerSettings, CrossEncoderUnavailable)


def available() -> list[str]:
    return plugin_names(GROUP)


def load_reranker(name: str = DEFAULT, settings: Mapping[str, Any] | None = None) -> Reranker:
    """The reranker registered as ``name``, built with ``settings``. Raises UnknownReranker
    (naming the installed ones), InvalidRerankerSettings (naming the valid settings), or the
    reranker's own error (CrossEncoderUnavailable: no model at the path)."""
    factory = plugin_factory(GROUP, name, "reranker", UnknownReranker)
    settings = dict(settings or {})
    check_settings(factory, settings, f"reranker {name!r}", InvalidRerankerSettings)
    reranker: Reranker = factory(**settings)
    return reranker
