"""The terminal tables of ``citeqa bench``: its results as a person reads them."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{value}{unit}"


def print_results(r: dict[str, Any], console: Console | None = None) -> None:
    """The main figures, latency per route, throughput per client count, and what was not measured."""
    console = console or Console()
    main = Table(title=f"citeqa bench ({r['mode']}): {r['documents']} documents, {r.get('sentences')} sentences",
                 show_header=True, header_style="bold")
    main.add_column("measure")
    main.add_column("value", justify="right")
    rows = [
        ("ingest", _fmt(r.get("ingest_sentences_per_s"), " sentences/s")),
        ("raw encode, same batches", _fmt(r.get("raw_encode_sentences_per_s"), " sentences/s")),
        ("ingest / raw encode", _fmt(r.get("ingest_vs_encode_ratio"))),
        (f"mention analysis ({r.get('mention_analysis', '–')}): after the ingest",
         _fmt(r.get("analysis_after_ingest_s"), " s")),
        ("ingest + mention analysis / raw encode", _fmt(r.get("ingest_with_analysis_vs_encode_ratio"))),
        ("ingest, analysis inline / raw encode", _fmt(r.get("ingest_inline_analysis_vs_encode_ratio"))),
        ("sentence split alone", _fmt(r.get("split_sentences_per_s"), " sentences/s")),
        ("query embed p50", _fmt(r.get("query_embed_p50_ms"), " ms")),
        ("index search p50 (dense + BM25)", _fmt(r.get("index_search_p50_ms"), " ms")),
        ("query floor p50", _fmt(r.get("query_floor_p50_ms"), " ms")),
        ("ask in process / floor", _fmt(r.get("ask_inprocess_vs_floor_ratio"))),
        ("ask over HTTP / floor", _fmt(r.get("ask_http_vs_floor_ratio"))),
        ("HTTP overhead p50 (client − server time)", _fmt(r.get("ask_http_overhead_p50_ms"), " ms")),
        ("server peak RSS", _fmt(r.get("server_peak_rss_mb"), " MB")),
        ("bench peak RSS", _fmt(r.get("bench_peak_rss_mb"), " MB")),
        ("index bytes / sentence (files)", _fmt(r.get("index_bytes_per_sentence"), " B")),
        ("index bytes / sentence (logical)", _fmt(r.get("index_logical_bytes_per_sentence"), " B")),
    ]
    for name, size in (r.get("index_files_bytes") or {}).items():
        rows.append((f"  {name}", f"{size / 1e6:,.2f} MB"))
    for row in rows:
        main.add_row(*row)
    console.print(main)

    latency = Table(title="latency (ms)", header_style="bold")
    for column in ("route", "p50", "p95"):
        latency.add_column(column, justify="left" if column == "route" else "right")
    for label, key in (("/v1/ask in process", "ask_inprocess"), ("/v1/ask HTTP", "ask_http"),
                       ("/v1/search in process", "search_inprocess"), ("/v1/search HTTP", "search_http")):
        latency.add_row(label, _fmt(r.get(f"{key}_p50_ms")), _fmt(r.get(f"{key}_p95_ms")))
    console.print(latency)

    for route, key, scaling in (("/v1/search", "search_throughput", "search_throughput_scaling"),
                                ("/v1/ask", "throughput", "ask_throughput_scaling")):
        levels = r.get(key) or {}
        if not levels:
            continue
        most = max(levels, key=int)
        table = Table(title=f"HTTP {route} throughput ({r['config']['duration_s']:g} s each)",
                      caption=f"{most} clients vs 1: {_fmt(r.get(scaling))}×", header_style="bold")
        for column in ("clients", "requests/s", "p50 ms", "p95 ms", "errors", "load 1m"):
            table.add_column(column, justify="right")
        for clients, t in levels.items():
            table.add_row(clients, _fmt(t["requests_per_s"]), _fmt(t["p50_ms"]), _fmt(t["p95_ms"]), str(t["errors"]),
                          _fmt(t.get("loadavg_1m")))
        console.print(table)
    for key, reason in r.get("unavailable", {}).items():
        console.print(f"[yellow]{key}[/yellow]: {reason}")
    console.print(f"[dim]load average {r['machine']['loadavg_start']} → {r['machine'].get('loadavg_end')}, "
                  f"{r['machine']['cpu_count']} CPUs, {r['elapsed_s']} s[/dim]")
