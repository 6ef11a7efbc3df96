"""Plot the results of ``citeqa bench-scale`` (JSON lines) for docs/SCALING.md.

    python docs/scripts/plot_scaling.py bench-scale/results.jsonl --out docs/scaling.svg

Needs matplotlib (``pip install -e '.[bench]'``). One figure, four panels, both backends
on each: query latency p95, recall@10, bytes per sentence (disk and memory), ingest rate.
The newest row of each backend and size (the power of ten nearest its sentence count) wins
when a file holds several runs.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: a small, diffable SVG
import matplotlib.pyplot as plt  # noqa: E402

SYNTHETIC_MEANINGFUL = 500_000
STYLE = {"embedded": ("tab:blue", "o"), "postgres": ("tab:orange", "s")}


def load(path: Path) -> dict[str, list[dict]]:
    latest: dict[tuple[str, int], dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            # A stage of "1M" holds 1,000,002 sentences in one run and 1,000,007 in another:
            # the stage is the power of ten nearest the count.
            latest[(row["backend"], round(math.log10(row["sentences"])))] = row
    series: dict[str, list[dict]] = {}
    for (backend, _), row in sorted(latest.items()):
        series.setdefault(backend, []).append(row)
    return series


def plot(series: dict[str, list[dict]], out: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (latency, recall), (size, ingest) = axes
    for backend, rows in series.items():
        colour, marker = STYLE.get(backend, ("tab:gray", "x"))
        n = [r["sentences"] for r in rows]
        line = dict(color=colour, marker=marker)
        latency.plot(n, [r["latency"]["dense"]["p95_ms"] for r in rows], label=f"{backend}: dense k=50", **line)
        latency.plot(n, [r["latency"]["hybrid"]["p95_ms"] for r in rows], label=f"{backend}: hybrid search",
                     linestyle="--", **line)
        recall.plot(n, [r["recall_at_10"]["questions"] for r in rows], label=f"{backend}: SQuAD questions", **line)
        # Synthetic recall means something only once each blob holds well over 10 vectors
        # (1M: ~100 each); below that the 10th neighbour is a near-tie (bench/scale.py).
        big = [r for r in rows if r["sentences"] >= SYNTHETIC_MEANINGFUL]
        recall.plot([r["sentences"] for r in big], [r["recall_at_10"]["synthetic"] for r in big],
                    label=f"{backend}: synthetic queries", linestyle="none", color=colour, marker="*",
                    markersize=12)
        size.plot(n, [r["disk_bytes_per_sentence"] for r in rows], label=f"{backend}: disk", **line)
        # PostgreSQL's memory is mostly its server's, which a run against an existing server
        # (--postgres-url) does not measure: those rows have no memory point.
        held = [r for r in rows if backend != "postgres" or r.get("server_memory_bytes") is not None]
        size.plot([r["sentences"] for r in held], [r["memory_bytes_per_sentence"] for r in held],
                  label=f"{backend}: memory", linestyle="--", **line)
        ingest.plot(n, [r["ingest_sentences_per_s"] for r in rows], label=backend, **line)
    titles = [
        (latency, "query latency p95 after a restart (ms)", "log"),
        (recall, "recall@10 against exact search", "linear"),
        (size, "bytes per sentence", "linear"),
        (ingest, "ingest, sentences/s (vectors given)", "log"),
    ]
    for axis, title, yscale in titles:
        axis.set_title(title, fontsize=10)
        axis.set_xscale("log")
        axis.set_yscale(yscale)
        axis.set_xlabel("sentences in the index")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle("citeqa bench-scale: SQLite + FAISS (embedded) vs PostgreSQL + pgvector, 2 cores")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Date": None})  # no timestamp: the file changes only with the data
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/scaling.svg"))
    args = parser.parse_args()
    plot(load(args.results), args.out)


if __name__ == "__main__":
    main()
