"""What every :class:`citeqa.api.keys.KeyStore` backend promises, whatever keeps the keys:
run by tests/api/test_keys.py on keys.db and on PostgreSQL.

``open_store()`` opens a store on the same backing (data directory or database) each
time it is called, as a second replica or a restart would."""

from __future__ import annotations

import time
from typing import Callable

import pytest

from citeqa.api.keys import KeyStore

OpenStore = Callable[[], KeyStore]


def check_create_verify_revoke(open_store: OpenStore) -> None:
    store = open_store()
    assert not store.has_keys()
    key, secret = store.create("ci", ["read", "write"])
    assert secret.startswith(f"cq_{key.key_id}_")
    found = store.verify(secret)
    assert found is not None and found.key_id == key.key_id and found.scopes == frozenset({"read", "write"})
    assert store.verify(secret + "x") is None and store.verify("nonsense") is None
    assert store.verify(secret[:-1]) is None and store.verify("cq_" + "a" * 300) is None
    assert store.revoke(key.key_id) and store.verify(secret) is None
    assert not store.revoke(key.key_id) and not store.revoke("no-such-key")
    assert store.has_keys()  # revoked keys still count: auth stays on
    store.close()


def check_scopes_are_checked_and_kept(open_store: OpenStore) -> None:
    store = open_store()
    for bad in (["root"], [], ["read", "Admin"]):
        with pytest.raises(ValueError, match="scopes"):
            store.create("bad", bad)
    assert not store.has_keys()  # nothing half-created
    _, reader = store.create("reader", ["read"])
    found = store.verify(reader)
    assert found is not None and found.scopes == frozenset({"read"})
    _, admin = store.create("admin", ["admin", "read", "write"])
    found = store.verify(admin)
    assert found is not None and found.scopes == frozenset({"admin", "read", "write"})
    store.close()


def check_collections_are_checked_and_kept(open_store: OpenStore) -> None:
    store = open_store()
    for bad, words in (([], "at least one"), (["news", "bad name"], "'bad name'"), (["-x"], "'-x'"),
                       ("news", "list"), (["a,b"], "'a,b'"), (["x" * 65], "1-64")):
        with pytest.raises(ValueError, match=words):
            store.create("bad", ["read"], collections=bad)  # type: ignore[arg-type]
    assert not store.has_keys()  # nothing half-created
    limited, secret = store.create("news-reader", ["read"], collections=["news", "sports.v2", "news"])
    assert limited.collections == frozenset({"news", "sports.v2"})
    unlimited, other = store.create("everything", ["read"])
    assert unlimited.collections is None
    second = open_store()  # what is stored, not what create returned
    found, found_other = second.verify(secret), second.verify(other)
    assert found is not None and found.collections == frozenset({"news", "sports.v2"})
    assert found_other is not None and found_other.collections is None
    listed = {k.key_id: k.collections for k in second.list()}
    assert listed == {limited.key_id: frozenset({"news", "sports.v2"}), unlimited.key_id: None}
    store.close()
    second.close()


def check_listed_with_limits_and_seen_by_another_store(open_store: OpenStore) -> None:
    first = open_store()
    key, secret = first.create("bot", ["read"], rate_per_s=2.0, burst=10)
    other, _ = first.create("default-limits", ["write"])
    second = open_store()  # another replica, or the same one after a restart
    listed = {k.key_id: k for k in second.list()}
    assert set(listed) == {key.key_id, other.key_id}
    bot = listed[key.key_id]
    assert (bot.name, bot.scopes, bot.rate_per_s, bot.burst, bot.revoked_at) == ("bot", frozenset({"read"}), 2.0,
                                                                                 10, None)
    assert (listed[other.key_id].rate_per_s, listed[other.key_id].burst) == (None, None)
    assert abs(bot.created_at - time.time()) < 60
    # Created through one, verified by the other; revoked through the other, refused by the first.
    assert second.verify(secret) is not None
    assert second.revoke(key.key_id)
    assert first.verify(secret) is None
    assert {k.key_id: k for k in first.list()}[key.key_id].revoked_at is not None
    first.close()
    second.close()


def check_bucket_burst_then_refusal_then_refill(open_store: OpenStore) -> None:
    store = open_store()
    key, _ = store.create("bursty", ["read"])
    rate, burst = 5.0, 4
    assert [store.take(key.key_id, rate, burst) for _ in range(burst)] == [0.0] * burst
    wait = store.take(key.key_id, rate, burst)
    assert 0 < wait <= 1 / rate + 1e-6  # about one token's time
    time.sleep(wait + 0.05)
    assert store.take(key.key_id, rate, burst) == 0.0  # refilled by then
    assert store.take(key.key_id, rate, burst) > 0  # ... by one token only
    # Buckets are per key.
    other, _ = store.create("other", ["read"])
    assert store.take(other.key_id, rate, burst) == 0.0
    store.close()


def check_bucket_never_holds_more_than_its_burst(open_store: OpenStore) -> None:
    store = open_store()
    key, _ = store.create("idle", ["read"])
    assert store.take(key.key_id, 20.0, 3) == 0.0
    time.sleep(0.5)  # 10 tokens' worth of idle time: still only 3 saved up
    granted = sum(store.take(key.key_id, 20.0, 3) == 0.0 for _ in range(10))
    assert 3 <= granted <= 4  # the 3 saved, plus at most one refilled while the loop ran
    store.close()


CHECKS = [check_create_verify_revoke, check_scopes_are_checked_and_kept, check_collections_are_checked_and_kept,
          check_listed_with_limits_and_seen_by_another_store, check_bucket_burst_then_refusal_then_refill,
          check_bucket_never_holds_more_than_its_burst]
