"""Generators are plugins: the ``citeqa.generators`` entry-point group maps a name to a
factory (usually the class). Built-ins register through pyproject.toml exactly as a
third-party package would, so ``pip install citeqa-something`` adds a generator.

A factory takes the generator's settings as keyword arguments and must be cheap (models
load on first use); ``Options`` is the pydantic model of its per-request options.

The entry-point plumbing (``plugin_names``, ``plugin_factory``, ``check_settings``) is
shared with the other plugin groups (``citeqa.rerankers``: qa/ranking/registry.py).
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping

from pydantic import ValidationError

from citeqa.qa.types import Generator, GeneratorError, GeneratorOptions

GROUP = "citeqa.generators"


class UnknownPlugin(LookupError):
    """No installed plugin of a group has the name asked for."""


class UnknownPluginSetting(TypeError):
    """A plugin was given a setting its factory does not take."""


def plugin_names(group: str) -> list[str]:
    return sorted({ep.name for ep in entry_points(group=group)})


def plugin_factory(group: str, name: str, kind: str,
                   unknown: type[UnknownPlugin] = UnknownPlugin) -> Callable[..., Any]:
    """The factory a plugin registered under ``name``; ``unknown`` (naming the installed
    ones) when there is none. ``kind`` names the role in messages ("generator")."""
    matches = [ep for ep in entry_points(group=group) if ep.name == name]
    if not matches:
        raise unknown(f"unknown {kind} {name!r}; installed: {', '.join(plugin_names(group)) or 'none'}")
    factory: Callable[..., Any] = matches[0].load()
    return factory


def check_settings(factory: Callable[..., Any], settings: Mapping[str, Any], what: str,
                   invalid: type[UnknownPluginSetting] = UnknownPluginSetting) -> None:
    """Fail before construction on a setting the factory's signature does not name, listing
    the ones it does. A factory taking ``**kwargs`` checks its own settings."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C factory: nothing to read
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    extra = sorted(set(settings) - set(known))
    if extra:
        raise invalid(f"{what} has no setting {', '.join(map(repr, extra))}; "
                      f"its settings: {', '.join(known) or 'none'}")


class UnknownGenerator(UnknownPlugin):
    pass


class InvalidGeneratorOptions(ValueError):
    pass


# What choosing a generator can fail with; callers report each as a clear error.
GENERATOR_PROBLEMS = (UnknownGenerator, InvalidGeneratorOptions, GeneratorError)


def available() -> list[str]:
    return plugin_names(GROUP)


def create(name: str, **settings: Any) -> Generator:
    factory = plugin_factory(GROUP, name, "generator", UnknownGenerator)
    check_settings(factory, settings, f"generator {name!r}")
    generator: Generator = factory(**settings)
    return generator


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
