"""Generators are plugins: the ``citeqa.generators`` entry-point group maps a name to a
factory. Built-ins register through pyproject.toml exactly as a third-party package would."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from qa.types import Generator

GROUP = "citeqa.generators"


class UnknownGenerator(LookupError):
    pass


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def create(name: str, **options: Any) -> Generator:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise UnknownGenerator(f"unknown generator {name!r}; installed: {', '.join(available()) or 'none'}")
    return matches[0].load()(**options)
