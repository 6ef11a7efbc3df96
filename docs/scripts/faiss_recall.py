"""Recall@10, query latency, build time and size of the FAISS index types VectorIndex can use.

    python docs/scripts/faiss_recall.py --sizes 10000 100000 1000000 --queries 200
    python docs/scripts/faiss_recall.py --real            # + squad_dev sentences (MiniLM)

Vectors are 384-d and L2-normalised (cosine = inner product), as in the store. "synthetic"
vectors are clustered (a Gaussian blob around each of n/100 random centres, then
normalised: nearest neighbours are mostly in the same blob, as with sentence embeddings;
uniformly random vectors in 384-d have no neighbourhood structure and are a worst case no
real corpus hits). Queries are fresh draws from the same distribution (questions, for the
real vectors), never indexed vectors. Recall@10 is against exact IndexFlatIP search; the
latency is one query at a time on one thread (what a request does), medians of p50/p95
over ``--repeats`` passes; build uses all cores (``--threads``, 2 here).

HNSW is built as VectorIndex builds it: IndexIDMap2(IndexHNSWFlat) searched through a
"not a tombstone" IDSelector, so the filter's cost is in the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np

DIM = 384
ROOT = Path(__file__).resolve().parents[2]


def normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def clustered(n: int, n_queries: int, seed: int = 0, spread: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = normalise(rng.standard_normal((max(1, n // 100), DIM), dtype=np.float32))
    out = np.empty((n + n_queries, DIM), dtype=np.float32)
    for start in range(0, n + n_queries, 100_000):
        stop = min(start + 100_000, n + n_queries)
        pick = rng.integers(0, len(centres), stop - start)
        out[start:stop] = centres[pick] + spread * rng.standard_normal((stop - start, DIM), dtype=np.float32)
    out = normalise(out)
    return out[:n], out[n:]


def real(n_queries: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    if cache and cache.exists():
        saved = np.load(cache)
        return saved["xb"], saved["xq"][:n_queries]
    sys.path.insert(0, str(ROOT))
    from citeqa.index.embedder import SentenceTransformerEmbedder
    from citeqa.index.sentences import split_sentences

    eval_dir = ROOT.parent / "shared" / "eval"
    sentences = []
    for line in open(eval_dir / "squad_dev.corpus.jsonl"):
        doc = json.loads(line)
        sentences += [doc["text"][s.start:s.end] for s in split_sentences(doc["text"])]
    questions = [json.loads(line)["question"] for line in open(eval_dir / "squad_dev.jsonl")][:n_queries]
    embedder = SentenceTransformerEmbedder()
    t = time.perf_counter()
    xb = embedder.encode(sentences)
    print(f"# embedded {len(sentences)} sentences in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    xq = embedder.encode(questions)
    if cache:
        np.savez(cache, xb=xb, xq=xq)
    return xb, xq


def exact(xb: np.ndarray, xq: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(DIM)
    flat.add(xb)
    return flat.search(xq, k)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def timed_search(index, xq: np.ndarray, k: int, params, repeats: int) -> tuple[np.ndarray, float, float]:
    faiss.omp_set_num_threads(1)
    p50s, p95s = [], []
    for _ in range(repeats):
        times, rows = [], []
        for q in xq:
            t = time.perf_counter()
            rows.append(index.search(q.reshape(1, -1), k, params=params)[1][0])
            times.append(time.perf_counter() - t)
        p50s.append(float(np.percentile(times, 50)) * 1e3)
        p95s.append(float(np.percentile(times, 95)) * 1e3)
    faiss.omp_set_num_threads(THREADS)
    return np.array(rows), statistics.median(p50s), statistics.median(p95s)


def size_per_vector(index, n: int) -> float:
    return len(faiss.serialize_index(index)) / n


def run(name: str, xb: np.ndarray, xq: np.ndarray, args) -> list[dict]:
    n, k, rows = len(xb), 10, []
    ids = np.arange(n, dtype=np.int64) + 1
    truth = exact(xb, xq, k) + 1

    t = time.perf_counter()
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    flat.add_with_ids(xb, ids)
    build = time.perf_counter() - t
    found, p50, p95 = timed_search(flat, xq, k, None, args.repeats)
    rows.append(dict(data=name, n=n, index="Flat", params="-", recall=recall(found, truth),
                     p50=p50, p95=p95, build=build, bpv=size_per_vector(flat, n)))
    print(rows[-1], file=sys.stderr, flush=True)
    del flat

    if "hnsw" in args.kinds:
        t = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(DIM, args.m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = args.ef_construction
        index = faiss.IndexIDMap2(hnsw)
        index.add_with_ids(xb, ids)
        build = time.perf_counter() - t
        bpv = size_per_vector(index, n)
        live = faiss.IDSelectorNot(faiss.IDSelectorRange(-1, 0))
        for ef in args.ef_search:
            params = faiss.SearchParametersHNSW(sel=live, efSearch=ef)
            found, p50, p95 = timed_search(index, xq, k, params, args.repeats)
            rows.append(dict(data=name, n=n, index="HNSW", params=f"M={args.m} efC={args.ef_construction} efS={ef}",
                             recall=recall(found, truth), p50=p50, p95=p95, build=build, bpv=bpv))
            print(rows[-1], file=sys.stderr, flush=True)
        del index, hnsw

    if "ivf" in args.kinds:
        nlist = int(4 * np.sqrt(n))
        t = time.perf_counter()
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(1)
        ivf.train(xb[rng.choice(n, min(n, 64 * nlist), replace=False)])
        ivf.add_with_ids(xb, ids)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct + remove_ids by id
        build = time.perf_counter() - t
        bpv = size_per_vector(ivf, n)
        for nprobe in args.nprobe:
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            found, p50, p95 = timed_search(ivf, xq, k, params, args.repeats)
            rows.append(dict(data=name, n=n, index="IVFFlat", params=f"nlist={nlist} nprobe={nprobe}",
                             recall=recall(found, truth), p50=p50, p95=p95, build=build, bpv=bpv))
            print(rows[-1], file=sys.stderr, flush=True)
        del ivf, quantizer
    return rows


THREADS = 2


def main() -> None:
    global THREADS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--real", action="store_true", help="also squad_dev sentences embedded with MiniLM")
    ap.add_argument("--cache", type=Path, help="an .npz to keep the real vectors in between runs")
    ap.add_argument("--kinds", nargs="+", default=["hnsw", "ivf"])
    ap.add_argument("--spread", type=float, default=0.06, help="per-coordinate noise around a centre")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=80)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32])
    args = ap.parse_args()
    THREADS = args.threads
    faiss.omp_set_num_threads(THREADS)

    rows = []
    if args.real:
        xb, xq = real(args.queries, args.cache)
        rows += run("squad", xb, xq, args)
    for n in args.sizes:
        xb, xq = clustered(n, args.queries, spread=args.spread)
        rows += run(f"synthetic σ={args.spread}", xb, xq, args)
        del xb, xq

    print("| data | n | index | parameters | recall@10 | p50 ms | p95 ms | build s | bytes/vector |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['data']} | {r['n']:,} | {r['index']} | {r['params']} | {r['recall']:.3f} | "
              f"{r['p50']:.2f} | {r['p95']:.2f} | {r['build']:.1f} | {r['bpv']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
