"""API keys at rest (api/keys.py): only a hash of each key is stored, scopes are checked,
revocation is final, and a key's own rate limit travels with it."""

from __future__ import annotations

import pytest

from citeqa.api.keys import KeyStore


def test_keys_are_stored_hashed(tmp_path):
    store = KeyStore(tmp_path)
    key, secret = store.create("ci", ["read", "write"])
    raw = (tmp_path / "keys.db").read_bytes()
    assert secret.encode() not in raw and secret.split("_", 2)[2].encode() not in raw
    assert store.verify(secret).key_id == key.key_id
    assert store.verify(secret + "x") is None and store.verify("nonsense") is None
    assert store.revoke(key.key_id) and store.verify(secret) is None and not store.revoke(key.key_id)
    with pytest.raises(ValueError, match="scopes"):
        store.create("bad", ["admin"])


def test_keys_are_listed_with_their_limits_and_survive_a_reopen(tmp_path):
    store = KeyStore(tmp_path)
    assert not store.has_keys()
    key, _ = store.create("bot", ["read"], rate_per_s=2.0, burst=10)
    store.close()
    reopened = KeyStore(tmp_path)
    [listed] = reopened.list()
    assert (listed.key_id, listed.name, listed.scopes) == (key.key_id, "bot", frozenset({"read"}))
    assert (listed.rate_per_s, listed.burst, listed.revoked_at) == (2.0, 10, None)
    assert reopened.has_keys()
    reopened.revoke(key.key_id)
    assert reopened.list()[0].revoked_at is not None and reopened.has_keys()  # revoked keys still count
    reopened.close()
