"""Generators are plugins: the ``citeqa.generators`` entry-point group maps a name to a
factory (usually the class). Built-ins register through pyproject.toml exactly as a
third-party package would, so ``pip install citeqa-something`` adds a generator.

A factory takes the generator's settings as keyword arguments and must be cheap (models
load on first use); ``Options`` is the pydantic model of its per-request options.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

from pydantic import ValidationError

from citeqa.qa.types import Generator, GeneratorError, GeneratorOptions

GROUP = "citeqa.generators"


class UnknownGenerator(LookupError):
    pass


class InvalidGeneratorOptions(ValueError):
    pass


# What choosing a generator can fail with; callers report each as a clear error.
GENERATOR_PROBLEMS = (UnknownGenerator, InvalidGeneratorOptions, GeneratorError)


def available() -> list[str]:
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def create(name: str, **settings: Any) -> Generator:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise UnknownGenerator(f"unknown generator {name!r}; installed: {', '.join(available()) or 'none'}")
    return matches[0].load()(**settings)


def parse_options(generator: Generator, raw: dict[str, Any] | None) -> GeneratorOptions:
    """Validate per-request options; the error names the valid ones."""
    model = getattr(generator, "Options", GeneratorOptions)
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        fields = model.model_fields
        valid = ", ".join(f"{k} ({_type_name(f.annotation)})" for k, f in fields.items()) or "none"
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors())
        raise InvalidGeneratorOptions(f"invalid generator_options for {generator.name!r}: {problems}. "
                                      f"Valid options: {valid}") from None


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


@dataclass(frozen=True)
class GeneratorInfo:
    name: str
    description: str
    default: bool
    available: bool
    reason: str | None  # why it is not available, and how to fix that
    options: dict[str, Any]  # JSON schema of the per-request options


class GeneratorPool:
    """The generators a service uses, each created once on first use with its settings."""

    def __init__(self, default: str, settings_for: Callable[[str], dict[str, Any]] = lambda name: {},
                 instances: dict[str, Generator] | None = None):
        """``instances``: ready-made generators, served under their names before any plugin."""
        self.default = default
        self.settings_for = settings_for
        self._made: dict[str, Generator] = dict(instances or {})
        self._lock = threading.Lock()

    def instance(self, name: str) -> Generator:
        with self._lock:
            if name not in self._made:
                self._made[name] = create(name, **self.settings_for(name))
            return self._made[name]

    def get(self, name: str | None = None, options: dict[str, Any] | None = None) -> tuple[Generator, GeneratorOptions]:
        """A generator ready to answer and its parsed options. Raises, in this order,
        UnknownGenerator, InvalidGeneratorOptions, or a GeneratorError of kind "unavailable"."""
        generator = self.instance(name or self.default)
        parsed = parse_options(generator, options)
        reason = _unavailable(generator)
        if reason:
            raise GeneratorError("unavailable", f"generator {generator.name!r} is not available: {reason}")
        return generator, parsed

    def describe(self) -> list[GeneratorInfo]:
        out = []
        for name in sorted(set(available()) | set(self._made)):
            try:
                generator = self.instance(name)
                reason = _unavailable(generator)
                description = getattr(generator, "description", "")
                options = getattr(generator, "Options", GeneratorOptions).model_json_schema().get("properties", {})
            except Exception as exc:  # a broken plugin is listed, not fatal
                reason, description, options = f"cannot load: {exc}", "", {}
            out.append(GeneratorInfo(name, description, name == self.default, reason is None, reason, options))
        return out


def _unavailable(generator: Generator) -> str | None:
    check = getattr(generator, "unavailable", None)
    return check() if callable(check) else None
