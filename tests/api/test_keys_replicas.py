"""Replicas share one truth (issue 16, item 4): two apps on one PostgreSQL
(``CITEQA_STORE``) see the same keys, revocations and rate-limit buckets. A key created
through A (or by ``citeqa keys create`` with CITEQA_STORE set) works on B at once, a key
revoked through B is refused by A on the next request, and a key's rate limit holds across
both: about ``burst`` requests get through A and B together, not ``burst`` each."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.settings import Settings
from tests.support.cli import cli_env
from tests.support.corpus import SEEDS_DIR

pytestmark = pytest.mark.slow


def replica(tmp_path: Path, name: str, database_url: str, embedder, **overrides) -> TestClient:
    """One app (a replica) with its own data directory and the shared database; no seeds:
    the keys are what is shared here."""
    settings = Settings(data_dir=tmp_path / name, store=database_url, seeds_dir=None, key_db_connections=2,
                        db_connections=2, **overrides)
    return TestClient(create_app(settings, embedder=embedder))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_keys_and_revocations_hold_across_replicas_at_once(tmp_path, database_url, embedder):
    with replica(tmp_path, "a", database_url, embedder, auth_reads=True) as a, \
            replica(tmp_path, "b", database_url, embedder, auth_reads=True) as b:
        # No key anywhere yet (auto mode on loopback): nothing is asked.
        assert a.get("/v1/documents").status_code == b.get("/v1/documents").status_code == 200
        key, secret = a.app.state.keys.create("shared", ["read", "write"])
        time.sleep(1.1)  # auto mode looks for keys once a second: now on in both
        assert b.get("/v1/documents").status_code == 401
        assert b.get("/v1/documents", headers=bearer(secret)).status_code == 200  # created on A, works on B
        assert a.get("/v1/documents", headers=bearer(secret)).status_code == 200
        # A key made by the CLI with CITEQA_STORE set works on both, with its scopes.
        env = {**cli_env(SEEDS_DIR), "CITEQA_STORE": database_url}
        made = subprocess.run([str(Path(sys.executable).parent / "citeqa"), "keys", "create", "--name", "cli",
                               "--scope", "read", "--data-dir", str(tmp_path / "cli")],
                              capture_output=True, text=True, env=env, timeout=120)
        assert made.returncode == 0, made.stderr
        reader = made.stdout.strip().splitlines()[-1]
        assert a.get("/v1/documents", headers=bearer(reader)).status_code == 200
        doc = {"doc_id": "note", "title": "Note", "text": "The keeper painted the tower red."}
        assert b.post("/v1/documents", json=doc, headers=bearer(reader)).status_code == 403
        assert not (tmp_path / "cli" / "keys.db").exists()  # nothing went to a local keys.db
        listed = subprocess.run([str(Path(sys.executable).parent / "citeqa"), "keys", "list"],
                                capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
        assert "shared" in listed.stdout and "cli" in listed.stdout
        # Revoked through B: refused by A on its very next request.
        assert b.app.state.keys.revoke(key.key_id)
        r = a.get("/v1/documents", headers=bearer(secret))
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
        assert b.get("/v1/documents", headers=bearer(secret)).status_code == 401
        assert a.get("/v1/documents", headers=bearer(reader)).status_code == 200  # others unaffected


def test_a_keys_rate_limit_holds_across_replicas(tmp_path, database_url, embedder):
    rate, burst = 0.2, 6  # one token per 5 s: the test runs well inside one refill
    with replica(tmp_path, "a", database_url, embedder, auth="on") as a, \
            replica(tmp_path, "b", database_url, embedder, auth="on") as b:
        _, alternating = a.app.state.keys.create("alternating", ["read"], rate_per_s=rate, burst=burst)
        codes = [(a if i % 2 == 0 else b).get("/v1/documents", headers=bearer(alternating)).status_code
                 for i in range(4 * burst)]
        assert set(codes) == {200, 429}
        accepted = codes.count(200)
        assert burst <= accepted <= burst + 1, codes  # per-replica buckets would let 2 x burst through
        assert codes[:burst] == [200] * burst  # the burst comes first, then refusals
        # Both replicas at once, from two threads: the bucket's update is atomic in SQL.
        _, concurrent = b.app.state.keys.create("concurrent", ["read"], rate_per_s=rate, burst=burst)

        def hammer(client: TestClient) -> list[int]:
            return [client.get("/v1/documents", headers=bearer(concurrent)).status_code for _ in range(2 * burst)]

        with ThreadPoolExecutor(2) as pool:
            both = [code for codes in pool.map(hammer, (a, b)) for code in codes]
        assert burst <= both.count(200) <= burst + 1, both
        r = a.get("/v1/documents", headers=bearer(concurrent))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_keys_managed_over_http_hold_across_replicas(tmp_path, database_url, embedder):
    with replica(tmp_path, "a", database_url, embedder, auth="on", auth_reads=True) as a, \
            replica(tmp_path, "b", database_url, embedder, auth="on", auth_reads=True) as b:
        _, admin = a.app.state.keys.create("root", ["admin"])
        made = a.post("/v1/keys", headers=bearer(admin),
                      json={"name": "news", "scopes": ["admin"], "collections": ["news"]})
        assert made.status_code == 201, made.text
        secret, key_id = made.json()["secret"], made.json()["key_id"]
        seen = b.app.state.keys.verify(secret)  # minted through A, with its collections, on B
        assert seen is not None and seen.collections == frozenset({"news"})
        own = b.get("/v1/keys", headers=bearer(secret))  # a limited admin: only keys within its collections
        assert own.status_code == 200 and [k["key_id"] for k in own.json()["keys"]] == [key_id]
        listed = {k["key_id"]: k for k in b.get("/v1/keys", headers=bearer(admin)).json()["keys"]}
        assert listed[key_id]["collections"] == ["news"]
        assert b.delete(f"/v1/keys/{key_id}", headers=bearer(admin)).status_code == 204
        assert a.get("/v1/keys", headers=bearer(secret)).status_code == 401  # revoked through B
