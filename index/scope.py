"""What one request may see: a collection, and within it a filter on documents.

Every document version lives in one collection (``default`` unless named). The same
``doc_id`` in two collections is two documents: the stores key a document by its
*storage key*, the bare ``doc_id`` in ``default`` (so data written before collections
existed opens with everything in ``default``, unchanged) and ``<collection>\\x1f<doc_id>``
elsewhere. ``doc_id`` may not hold control characters (index/ingest.py) and a collection
name is ``[A-Za-z0-9][A-Za-z0-9._-]*``, so a key splits one way only. Stores split keys as
they read rows (index/rows.py): nothing above the stores ever sees one.

A :class:`Scope` is a collection plus an optional filter: ``doc_ids`` and metadata
:class:`Condition` s (equality, membership in a list, numeric or ISO-date ranges on a
top-level metadata key). ``Scope.admits`` is the reference meaning of a filter; each
store compiles the same conditions to its SQL and the contract suite checks they agree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping, Sequence, Union

DEFAULT_COLLECTION = "default"
KEY_SEPARATOR = "\x1f"  # ASCII unit separator: never in a doc_id or a collection name
COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Metadata keys a filter may name: any top-level key without quotes, backslashes or
# control characters (the stores put the key in a JSON path).
_FILTER_KEY = re.compile(r'[^"\\\x00-\x1f]{1,200}')
MAX_FILTER_DOC_IDS = 1000
MAX_FILTER_CONDITIONS = 20
MAX_FILTER_VALUES = 1000
_RANGE_OPERATORS = ("gt", "gte", "lt", "lte")
_OPERATORS = ("eq", "in", *_RANGE_OPERATORS)

Scalar = Union[str, int, float, bool, None]  # a JSON scalar a condition compares with
Bound = Union[int, float, str]  # a range's end: a number, or an ISO-8601 date / date-time


class InvalidScope(ValueError):
    """A collection name or filter that cannot be used; the message says what is wrong."""


def check_collection(name: Any) -> str:
    """``name`` if it is a valid collection name; InvalidScope otherwise."""
    if not isinstance(name, str) or not COLLECTION_NAME.fullmatch(name):
        raise InvalidScope("a collection name is 1-64 characters: letters, digits, '.', '_' or '-', "
                           f"starting with a letter or digit; got {name!r}")
    return name


def storage_key(collection: str, doc_id: str) -> str:
    """The key a store files ``doc_id`` of ``collection`` under (see the module docstring)."""
    return doc_id if collection == DEFAULT_COLLECTION else f"{collection}{KEY_SEPARATOR}{doc_id}"


def key_prefix(collection: str) -> str:
    """What every storage key of ``collection`` starts with; "" for ``default``, whose keys
    are the ones without a separator (the stores' SQL tests it that way)."""
    return "" if collection == DEFAULT_COLLECTION else collection + KEY_SEPARATOR


def split_key(key: str) -> tuple[str, str]:
    """(collection, doc_id) of a storage key."""
    at = key.find(KEY_SEPARATOR)
    return (DEFAULT_COLLECTION, key) if at < 0 else (key[:at], key[at + 1:])


@dataclass(frozen=True)
class Condition:
    """One test of a document's metadata value under ``key``: equal to one of ``one_of``,
    or inside the range the bounds give (numbers compare as numbers, dates as ISO-8601
    text, so store dates in one format, e.g. ``2024-05-01``). A document without the key
    never matches. Equality is JSON's: ``1`` equals ``1.0`` but not ``true`` or ``"1"``."""

    key: str
    one_of: tuple[Scalar, ...] = ()
    gt: Bound | None = None
    gte: Bound | None = None
    lt: Bound | None = None
    lte: Bound | None = None

    @property
    def bounds(self) -> dict[str, Bound]:
        found = {"gt": self.gt, "gte": self.gte, "lt": self.lt, "lte": self.lte}
        return {op: value for op, value in found.items() if value is not None}

    @property
    def numeric(self) -> bool:
        """A range over numbers (else over dates); meaningless for equality."""
        return all(_is_number(v) for v in self.bounds.values())

    def admits(self, metadata: Mapping[str, Any]) -> bool:
        if self.key not in metadata:
            return False
        value = metadata[self.key]
        if self.one_of:
            return any(_json_equal(value, wanted) for wanted in self.one_of)
        if self.numeric:
            if not _is_number(value):
                return False
        elif not isinstance(value, str):
            return False
        checks = {"gt": lambda b: value > b, "gte": lambda b: value >= b,
                  "lt": lambda b: value < b, "lte": lambda b: value <= b}
        return all(checks[op](bound) for op, bound in self.bounds.items())


@dataclass(frozen=True)
class Scope:
    """The documents a search may return: those of ``collection`` whose doc_id is in
    ``doc_ids`` (when given) and whose metadata meets every condition."""

    collection: str = DEFAULT_COLLECTION
    doc_ids: frozenset[str] | None = None
    conditions: tuple[Condition, ...] = ()

    @property
    def filtered(self) -> bool:
        """True when the scope is narrower than its whole collection."""
        return self.doc_ids is not None or bool(self.conditions)

    def admits(self, doc_id: str, metadata: Mapping[str, Any]) -> bool:
        """Whether a live document of this collection is in scope (the reference meaning)."""
        if self.doc_ids is not None and doc_id not in self.doc_ids:
            return False
        return all(c.admits(metadata) for c in self.conditions)

    @property
    def storage_keys(self) -> list[str] | None:
        """The storage keys ``doc_ids`` names, sorted; None when not filtered by doc_id."""
        if self.doc_ids is None:
            return None
        return sorted(storage_key(self.collection, d) for d in self.doc_ids)


DEFAULT_SCOPE = Scope()


def scope_from_request(collection: str | None, doc_ids: Sequence[Any] | None = None,
                       metadata: Mapping[str, Any] | None = None) -> Scope:
    """A Scope from a request's ``collection`` and ``filter`` fields (JSON values);
    InvalidScope with what is wrong. See :class:`Condition` for the metadata forms:
    ``{"key": scalar}`` (equal), ``{"key": [scalars]}`` (one of), ``{"key": {"gte": 3,
    "lt": 7}}`` or ``{"key": {"eq": v}}`` / ``{"key": {"in": [...]}}``."""
    name = DEFAULT_COLLECTION if collection is None else check_collection(collection)
    ids: frozenset[str] | None = None
    if doc_ids is not None:
        if not isinstance(doc_ids, (list, tuple)) or not all(isinstance(d, str) for d in doc_ids):
            raise InvalidScope("filter.doc_ids must be a list of doc_id strings")
        if len(doc_ids) > MAX_FILTER_DOC_IDS:
            raise InvalidScope(f"filter.doc_ids holds {len(doc_ids)} ids; at most {MAX_FILTER_DOC_IDS}")
        ids = frozenset(doc_ids)
    conditions: list[Condition] = []
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidScope("filter.metadata must be an object of metadata key -> value or condition")
        if len(metadata) > MAX_FILTER_CONDITIONS:
            raise InvalidScope(f"filter.metadata has {len(metadata)} keys; at most {MAX_FILTER_CONDITIONS}")
        conditions = [condition(key, value) for key, value in metadata.items()]
    return Scope(name, ids, tuple(conditions))


def condition(key: Any, value: Any) -> Condition:
    """One metadata condition from its JSON form; InvalidScope with what is wrong."""
    where = f"filter.metadata[{key!r}]"
    if not isinstance(key, str) or not _FILTER_KEY.fullmatch(key):
        raise InvalidScope(f"{where}: a metadata key is 1-200 characters without quotes, backslashes "
                           "or control characters")
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(_OPERATORS))
        if unknown or not value:
            raise InvalidScope(f"{where}: a condition object holds one or more of {', '.join(_OPERATORS)}"
                               + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else ""))
        if ("eq" in value or "in" in value) and len(value) > 1:
            raise InvalidScope(f"{where}: 'eq' and 'in' stand alone (not with each other or a range)")
        if "eq" in value:
            return Condition(key, (_scalar(value["eq"], where),))
        if "in" in value:
            return Condition(key, _one_of(value["in"], where))
        bounds = {op: _bound(value[op], f"{where}.{op}") for op in _RANGE_OPERATORS if op in value}
        if len({_is_number(b) for b in bounds.values()}) > 1:
            raise InvalidScope(f"{where}: a range's bounds are all numbers or all dates, not both")
        return Condition(key, **bounds)  # type: ignore[arg-type]
    if isinstance(value, list):
        return Condition(key, _one_of(value, where))
    return Condition(key, (_scalar(value, where),))


def _one_of(values: Any, where: str) -> tuple[Scalar, ...]:
    if not isinstance(values, list) or not values:
        raise InvalidScope(f"{where}: membership needs a non-empty list of values")
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidScope(f"{where}: {len(values)} values; at most {MAX_FILTER_VALUES}")
    return tuple(_scalar(v, where) for v in values)


_INT_LIMIT = 2**63  # what SQLite's integers hold

def _scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INT_LIMIT:
        raise InvalidScope(f"{where}: {value} is out of range (integers are 64-bit)")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise InvalidScope(f"{where}: compares with a string, number, true, false or null, not {type(value).__name__}")


def _bound(value: Any, where: str) -> Bound:
    if _is_number(value):
        if not math.isfinite(value) or abs(value) >= _INT_LIMIT:
            raise InvalidScope(f"{where}: a bound must be finite")
        return value
    if isinstance(value, str):
        try:
            (datetime if "T" in value or " " in value else date).fromisoformat(value)
        except ValueError:
            raise InvalidScope(f"{where}: {value!r} is neither a number nor an ISO-8601 date "
                               "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)") from None
        return value
    raise InvalidScope(f"{where}: a range bound is a number or an ISO-8601 date string")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_equal(value: Any, wanted: Scalar) -> bool:
    """JSON equality: booleans, numbers, strings and null each equal only their own kind."""
    if isinstance(wanted, bool) or isinstance(value, bool):
        return isinstance(wanted, bool) and isinstance(value, bool) and value == wanted
    if wanted is None:
        return value is None
    if _is_number(wanted):
        return _is_number(value) and value == wanted
    return isinstance(value, str) and value == wanted
