"""Time to first token and total time of streamed chat answers, over real HTTP.

Start a server first (`citeqa serve`), then:

    python docs/scripts/stream_timing.py http://127.0.0.1:8000 --models citeqa llamacpp --repeats 5

"First token" is the first chunk with answer text (the role-only opening chunk does not
count); "total" is until `data: [DONE]`. Prints medians over questions × repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

QUESTIONS = [
    "How many troops did North Korea send?",
    "Where are wounded Russian soldiers being treated?",
    "Who is Russia's ambassador to Pyongyang?",
    "How many North Koreans crossed into Russia for work in 2024?",
    "In which Russian cities will North Korean educators teach?",
]


def one(client: httpx.Client, model: str, question: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": question}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if first is None and event.get("choices") and event["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - t0
    return (first if first is not None else float("nan")) * 1000, (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--models", nargs="+", default=["citeqa"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with httpx.Client(base_url=args.url, timeout=300) as client:
        for model in args.models:
            one(client, model, QUESTIONS[0])  # warm up (a model loads on first use)
            runs = [one(client, model, q) for _ in range(args.repeats) for q in QUESTIONS]
            firsts, totals = [r[0] for r in runs], [r[1] for r in runs]
            first, total = statistics.median(firsts), statistics.median(totals)
            print(f"{model}: first token p50 {first:.1f} ms, total p50 {total:.1f} ms, ratio {first / total:.2f}"
                  f" ({len(runs)} streamed answers)")


if __name__ == "__main__":
    main()
