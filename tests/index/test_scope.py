"""A request's scope: collection names, storage keys, and the meaning of metadata filters
(the reference the stores' SQL is checked against in tests/contracts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from citeqa.index.scope import (
    DEFAULT_COLLECTION,
    InvalidScope,
    Scope,
    check_collection,
    key_prefix,
    scope_from_request,
    split_key,
    storage_key,
)


@given(st.sampled_from(["default", "news", "a.b-c_1"]),
       st.text(st.characters(min_codepoint=32, exclude_categories=("Cs",)), min_size=1))
def test_storage_keys_split_back_into_collection_and_doc_id(collection, doc_id):
    key = storage_key(collection, doc_id)
    assert split_key(key) == (collection, doc_id)
    assert key.startswith(key_prefix(collection))
    assert (key == doc_id) == (collection == DEFAULT_COLLECTION)  # old data directories are all default


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "x" * 65, "é", "a\x1fb", 3, None])
def test_bad_collection_names_are_refused_with_the_rule(name):
    with pytest.raises(InvalidScope, match="letters, digits"):
        check_collection(name)


def test_scalar_and_list_forms_mean_equality_and_membership():
    scope = scope_from_request("news", ["a", "b"], {"year": 2024, "section": ["world", "sport"]})
    assert scope.collection == "news" and scope.filtered
    assert scope.admits("a", {"year": 2024, "section": "world"})
    assert scope.admits("b", {"year": 2024.0, "section": "sport"})  # 2024 == 2024.0, as in JSON
    assert not scope.admits("c", {"year": 2024, "section": "world"})  # not among doc_ids
    assert not scope.admits("a", {"year": 2023, "section": "world"})
    assert not scope.admits("a", {"section": "world"})  # a missing key never matches
    assert scope.storage_keys == ["news\x1fa", "news\x1fb"]


@pytest.mark.parametrize("wanted, value, matches", [
    (1, 1, True), (1, 1.0, True), (1, True, False), (1, "1", False),
    (True, True, True), (True, 1, False), (None, None, True), (None, 0, False), ("x", "x", True), ("x", ["x"], False),
])
def test_equality_is_json_equality(wanted, value, matches):
    assert scope_from_request(None, metadata={"k": wanted}).admits("d", {"k": value}) is matches


def test_ranges_compare_numbers_as_numbers_and_dates_as_iso_text():
    pages = scope_from_request(None, metadata={"pages": {"gte": 3, "lt": 10}})
    assert [pages.admits("d", {"pages": n}) for n in (2, 3, 9.5, 10, "5", True)] == [
        False, True, True, False, False, False]
    when = scope_from_request(None, metadata={"published": {"gte": "2024-01-01", "lt": "2025-01-01"}})
    assert [when.admits("d", {"published": d}) for d in ("2023-12-31", "2024-01-01", "2024-06-30T10:00:00",
                                                         "2025-01-01", 20240601)] == [False, True, True, False, False]


def test_eq_and_in_objects():
    assert scope_from_request(None, metadata={"k": {"eq": "a"}}).admits("d", {"k": "a"})
    assert scope_from_request(None, metadata={"k": {"in": [1, 2]}}).admits("d", {"k": 2})


@pytest.mark.parametrize("metadata, message", [
    ({"k": {"gte": "yesterday"}}, "neither a number nor an ISO-8601 date"),
    ({"k": {"gte": 1, "lt": "2024-01-01"}}, "all numbers or all dates"),
    ({"k": {"between": 1}}, "unknown: between"),
    ({"k": {}}, "one or more of"),
    ({"k": {"eq": 1, "gt": 0}}, "stand alone"),
    ({"k": []}, "non-empty list"),
    ({"k": {"a": 1}}, "unknown: a"),
    ({"k": [{"nested": 1}]}, "compares with a string, number"),
    ({"k": float("nan")}, "compares with a string, number"),
    ({"k": 2**70}, "out of range"),
    ({'a"b': 1}, "without quotes"),
    ([1], "must be an object"),
])
def test_bad_filters_are_refused_saying_what_is_wrong(metadata, message):
    with pytest.raises(InvalidScope, match=message):
        scope_from_request(None, metadata=metadata)


def test_bad_doc_id_lists_are_refused():
    with pytest.raises(InvalidScope, match="list of doc_id strings"):
        scope_from_request(None, doc_ids=[1, 2])
    with pytest.raises(InvalidScope, match="at most 1000"):
        scope_from_request(None, doc_ids=[str(i) for i in range(1001)])


def test_an_unfiltered_scope_is_its_whole_collection():
    assert not Scope("news").filtered and Scope("news").storage_keys is None
    assert scope_from_request(None) == Scope()
