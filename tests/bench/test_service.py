"""``citeqa bench`` on a tiny corpus: every figure is there and sane (a real model, a real
``citeqa serve`` subprocess, real HTTP), in well under a minute."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from citeqa.api.cli import app
from citeqa.bench.errors import BenchError
from citeqa.bench.processes import running_server
from citeqa.bench.service import run_bench, wait_for_workers
from tests.support.cli import flat
from tests.support.eval_data import DOCS


@pytest.mark.slow
def test_bench_reports_every_figure(eval_files, tmp_path, embedder):
    # questions: found beside the corpus (tiny.corpus.jsonl -> tiny.jsonl), as with squad_dev.
    r = run_bench(eval_files, repeats=2, duration=1, n_queries=8, warmup=2, embedder=embedder,
                  work_dir=tmp_path / "work")
    json.dumps(r)  # what --out writes

    assert r["mode"] == "in_process"
    assert r["documents"] == 5 and r["sentences"] == 15
    for key in ("ingest_sentences_per_s", "raw_encode_sentences_per_s", "ingest_vs_encode_ratio",
                "split_sentences_per_s", "server_peak_rss_mb", "bench_peak_rss_mb", "index_bytes_per_sentence",
                "index_logical_bytes_per_sentence", "ingest_inline_analysis_vs_encode_ratio",
                "ingest_with_analysis_vs_encode_ratio",
                "query_floor_p50_ms", "ask_inprocess_vs_floor_ratio", "ask_http_vs_floor_ratio"):
        assert r[key] is not None and r[key] > 0, key
    assert r["raw_encode_repeats"] == 2 and len(r["ingest_batches"]) == 1
    assert r["ask_inprocess_vs_floor_ratio_paired_median"] > 0 and r["ask_http_overhead_p50_ms"] > 0
    for name in ("query_embed", "index_search", "dense_search", "lexical_search", "query_floor",
                 "ask_inprocess", "search_inprocess", "ask_http", "search_http"):
        assert 0 < r[f"{name}_p50_ms"] <= r[f"{name}_p95_ms"], name
    assert r["latency_http_errors"] == 0
    assert r["ask_inprocess_status_counts"].get("answered", 0) >= 3
    assert set(r["throughput"]) == {"1", "4", "16"}
    for clients, t in r["throughput"].items():
        assert t["clients"] == int(clients)
        assert t["errors"] == 0 and t["requests"] > 0 and t["requests_per_s"] > 0, t
        assert 0 < t["p50_ms"] <= t["p95_ms"]
    files = r["index_files_bytes"]
    assert files["citeqa.sqlite3"] > 0 and files["vectors.faiss"] > 0
    assert r["index_bytes_total"] == sum(files.values())
    assert r["config"]["settings"]["seeds_dir"] is None
    assert r["versions"]["citeqa"] and r["versions"]["torch"] and r["machine"]["cpu_count"] >= 1


@pytest.mark.slow
def test_bench_against_a_running_server(eval_files, tmp_path, embedder):
    """--url: the corpus goes in over HTTP; what needs the store in process says why it is missing."""
    with running_server(tmp_path / "data", tmp_path / "serve.log") as (url, pid, _):
        assert wait_for_workers(url, 1, timeout_s=10) == {pid}  # one process: the server itself answers
        r = run_bench(eval_files, url=url, duration=0.5, n_queries=4, warmup=1, concurrency=(1, 4), embedder=embedder)
    assert r["mode"] == "url" and r["sentences"] == 15
    assert r["ingest_created_documents"] == 5 and r["ingest_sentences_per_s"] > 0
    assert r["raw_encode_sentences_per_s"] > 0 and r["ingest_vs_encode_ratio"] > 0
    assert 0 < r["ask_http_p50_ms"] <= r["ask_http_p95_ms"] and r["latency_http_errors"] == 0
    assert set(r["throughput"]) == {"1", "4"} and all(t["errors"] == 0 for t in r["throughput"].values())
    assert r["server_pid"] == pid and r["server_peak_rss_mb"] > 0 and r["index_logical_bytes_per_sentence"] > 0
    assert "query_floor_p50_ms" in r["unavailable"] and "ask_http_vs_floor_ratio" in r["unavailable"]


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="not found"):
        run_bench(tmp_path / "absent.corpus.jsonl")
    corpus = tmp_path / "lonely.jsonl"
    corpus.write_text(json.dumps(DOCS[0]) + "\n", encoding="utf-8")
    with pytest.raises(BenchError, match="--questions"):
        run_bench(corpus)


def test_the_command_refuses_an_unwritable_out_and_a_missing_corpus(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "--out", str(tmp_path / "absent" / "bench.json")])
    assert result.exit_code == 2 and "is not a directory" in flat(result.output), result.output
    result = runner.invoke(app, ["bench", "--corpus", str(tmp_path / "absent.corpus.jsonl"),
                                 "--out", str(tmp_path / "bench.json")])
    assert result.exit_code == 2 and "not found" in flat(result.output), result.output
    assert not (tmp_path / "bench.json").exists()


@pytest.mark.slow
def test_bench_with_two_workers_measures_a_server_of_two_processes(eval_files, tmp_path, embedder):
    r = run_bench(eval_files, duration=0.5, n_queries=4, warmup=1, concurrency=(1, 4), workers=2, embedder=embedder,
                  work_dir=tmp_path / "work")
    assert r["config"]["workers"] == 2
    log = (tmp_path / "work" / "serve.log").read_text()
    assert "starting 2 workers" in log and '"worker": 1' in log  # both served: the bench waited for them
    for levels in (r["throughput"], r["search_throughput"]):
        assert set(levels) == {"1", "4"} and all(t["errors"] == 0 and t["requests"] > 0 for t in levels.values())
    assert r["search_throughput_scaling"] > 0 and r["ask_throughput_scaling"] > 0
    assert r["server_all_workers_ready_s"] >= r["server_ready_s"] > 0 and r["server_peak_rss_mb"] > 0
