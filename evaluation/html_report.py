"""``citeqa eval --html``: the evaluation report as one self-contained HTML page.

Everything is inline (CSS, SVG drawn here); no scripts, fonts or links to fetch, so the file
can be mailed or archived. Questions and documents are untrusted: every piece of text goes
through ``html.escape``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

from citeqa.bench.percentiles import percentile
from citeqa.evaluation.summary import PERCENTILE

MAX_FAILURES = 25
BINS = 20
CONFIG_KEYS = ("target", "model", "fusion", "generator", "min_similarity", "min_probability", "top_k", "negatives",
               "seed", "documents_indexed", "ingest_seconds")
GROUPS = [
    ("Citations", [("quote_valid_rate", "quote valid", "rate"),
                   ("top1_citation_accuracy", "top-1 citation accuracy", "rate"),
                   ("citation_precision", "precision", "rate"), ("citation_recall", "recall", "rate"),
                   ("citation_f1", "F1", "rate"), ("mean_citation_chars", "mean citation length", "chars")]),
    ("Search", [("search_hit_at_1", "hit@1", "rate"), ("search_hit_at_5", "hit@5", "rate"),
                ("search_hit_at_10", "hit@10", "rate"), ("search_mrr", "MRR@10", "rate")]),
    ("Answers", [("answer_em", "answer EM", "rate"), ("answer_f1", "answer F1", "rate"),
                 ("short_answer_em", "short answer EM", "rate"), ("short_answer_f1", "short answer F1", "rate"),
                 ("answered_rate", "answered", "rate")]),
    ("Abstention", [("abstain_precision", "abstain precision", "rate"), ("abstain_recall", "abstain recall", "rate"),
                    ("abstain_f1", "abstain F1", "rate"), ("recommended_min_similarity", "best threshold", "thr")]),
    ("Latency", [("ask_p50_ms", "ask p50", "ms"), ("ask_p95_ms", "ask p95", "ms"),
                 ("search_p50_ms", "search p50", "ms")]),
]
SERIES = [("accuracy", "accuracy", "c1", ""), ("answered_precision", "answered precision", "c2", "6 3"),
          ("answered_rate", "answered rate", "c3", "2 3"), ("abstain_recall", "abstain recall", "c4", "8 3 2 3")]

CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--card:#f6f8fa;--line:#d0d7de;--bad:#b42318;--badbg:#fdecea;
--ok:#1a7f37;--c1:#0072b2;--c2:#d55e00;--c3:#007a5a;--c4:#a3487f;--bar:#4a7fb0}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;
--bad:#ff7b72;--badbg:#3a1d1d;--ok:#3fb950;--c1:#56b4e9;--c2:#e69f00;--c3:#2bd19a;--c4:#e0a3cf;--bar:#6fa8dc}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1100px;margin:0 auto;padding:1rem 1.25rem 3rem}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.25rem;margin:2rem 0 .75rem;border-bottom:1px solid var(--line)}
h3{font-size:1rem;margin:0 0 .5rem}.muted,figcaption,small{color:var(--muted)}
dl.config{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:.25rem 1rem;margin:.5rem 0}
dl.config div{min-width:0}dt{font-size:.8rem;color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.75rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.6rem .8rem}
.card .v{font-size:1.5rem;font-weight:600;font-variant-numeric:tabular-nums}
.card .k{font-size:.85rem;color:var(--muted)}
.card.bad{border-color:var(--bad);background:var(--badbg)}.card.bad .v{color:var(--bad)}.card.ok .v{color:var(--ok)}
.meter{height:4px;background:var(--line);border-radius:2px;margin-top:.3rem}
.meter i{display:block;height:100%;background:var(--c1);border-radius:2px}
figure{margin:1rem 0;overflow-x:auto}svg{width:100%;min-width:520px;height:auto;max-width:760px;display:block}
svg text{fill:var(--muted);font-size:13px}.axis{stroke:var(--muted)}.grid{stroke:var(--line)}
.series{fill:none;stroke-width:2.5}
.c1{stroke:var(--c1)}.c2{stroke:var(--c2)}.c3{stroke:var(--c3)}.c4{stroke:var(--c4)}
.mark{stroke:var(--fg);stroke-width:1.5}svg text.lbl{fill:var(--fg)}.mark.now{stroke-dasharray:4 3}
.bar{fill:var(--bar)}.hover{fill:transparent}
.hover:hover{fill:var(--line);fill-opacity:.35}
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;margin:.25rem 0}
ul.legend svg{display:inline;width:28px;min-width:0;vertical-align:middle}
table{border-collapse:collapse;font-size:.9rem}
th,td{text-align:left;padding:.2rem .6rem;border-bottom:1px solid var(--line)}
td.n{text-align:right;font-variant-numeric:tabular-nums}.scroll{overflow-x:auto}
article.fail{border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem;margin:.8rem 0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:.75rem}@media (max-width:640px){.pair{grid-template-columns:1fr}}
blockquote{margin:.25rem 0;padding:.4rem .7rem;background:var(--card);border-left:4px solid var(--line);
overflow-wrap:anywhere}
blockquote.cited{border-left-color:var(--bad)}blockquote.gold{border-left-color:var(--ok)}
"""


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def write_html(report: dict[str, Any], records: list[dict[str, Any]], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join([_header(report), _metrics(report), _curve(report), _reliability(report), _latency(report, records),
                    _failures(records)])
    path.write_text(
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>citeqa evaluation report</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n", encoding="utf-8")


def fmt(value: Any, kind: str = "rate") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return e(value)
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "ms":
        return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"
    if kind == "chars":
        return f"{value:,.0f} chars"
    return f"{value:.2f}" if kind == "thr" else f"{value:g}"


def _header(report: dict[str, Any]) -> str:
    config = report.get("config") or {}
    items = [(k.replace("_", " "), config[k]) for k in CONFIG_KEYS if k in config]
    counts = (f"{report.get('questions', 0)} questions · {report.get('questions_with_gold_indexed', 0)} with gold "
              f"indexed · {report.get('negative_questions', 0)} negatives (gold left out)")
    versions = report.get("versions") or {}
    vline = " · ".join(f"{e(k)} {e(v)}" for k, v in versions.items())
    return ("<header><h1>citeqa evaluation report</h1>"
            f"<p class='muted'>{e(counts)}</p><dl class='config'>"
            + "".join(f"<div><dt>{e(k)}</dt><dd>{fmt(v, 'raw')}</dd></div>" for k, v in items) + "</dl>"
            + (f"<p><small>versions: {vline}</small></p>" if vline else "") + "</header>")


def _card(report: dict[str, Any], key: str, label: str, kind: str) -> str:
    value = report.get(key)
    cls, note = "card", ""
    if key == "quote_valid_rate" and isinstance(value, (int, float)):
        cls += " bad" if value < 1.0 else " ok"
        note = "<small>below 100% is a bug: a quote not cut from the text</small>" if value < 1.0 else ""
    meter = ""
    if kind == "rate" and isinstance(value, (int, float)):
        share = max(0.0, min(1.0, value)) * 100
        meter = f"<div class='meter' aria-hidden='true'><i style='width:{share:.1f}%'></i></div>"
    return (f"<div class='{cls}' data-metric='{e(key)}'><div class='k'>{e(label)}</div>"
            f"<div class='v' title='{e(key)} = {e(value)}'>{fmt(value, kind)}</div>{meter}{note}</div>")


def _metrics(report: dict[str, Any]) -> str:
    parts = ["<section aria-labelledby='metrics'><h2 id='metrics'>Headline metrics</h2>"]
    for title, rows in GROUPS:
        parts.append(f"<h3>{e(title)}</h3><div class='cards'>")
        parts.extend(_card(report, key, label, kind) for key, label, kind in rows)
        parts.append("</div>")
    return "".join(parts) + "</section>"


def _svg(width: int, height: int, ident: str, title: str, desc: str, inner: str) -> str:
    return (f"<svg viewBox='0 0 {width} {height}' role='img' aria-labelledby='{ident}-t {ident}-d'>"
            f"<title id='{ident}-t'>{e(title)}</title><desc id='{ident}-d'>{e(desc)}</desc>{inner}</svg>")


def _vmark(x: float, bottom: float, label: str, cls: str, row: int) -> str:
    """A vertical marker from the top of the chart down to ``bottom``, labelled in the top margin."""
    x = min(max(x, 1.0), 639.0)
    anchor, shift = ("end", -4) if x > 560 else ("start", 4)
    return (f"<line class='mark {cls}' x1='{x:.1f}' x2='{x:.1f}' y1='4' y2='{bottom:.1f}'/>"
            f"<text class='lbl' x='{x + shift:.1f}' y='{14 + 16 * row}' text-anchor='{anchor}'>{e(label)}</text>")


def _curve(report: dict[str, Any]) -> str:
    curve = report.get("threshold_curve") or []
    head = "<section aria-labelledby='curve'><h2 id='curve'>Abstention threshold</h2>"
    if not curve:
        return head + "<p class='muted'>No threshold curve in this report.</p></section>"
    w, h, left, right, top, bottom = 640, 360, 48, 16, 44, 44
    px = lambda x: left + x * (w - left - right)  # noqa: E731
    py = lambda y: h - bottom - y * (h - top - bottom)  # noqa: E731
    out = []
    for i in range(11):
        v = i / 10
        out.append(f"<line class='grid' x1='{px(v):.1f}' x2='{px(v):.1f}' y1='{py(0)}' y2='{py(1)}'/>"
                   f"<text x='{px(v):.1f}' y='{py(0) + 16}' text-anchor='middle'>{v:.1f}</text>")
        if i % 2 == 0:
            out.append(f"<line class='grid' x1='{px(0)}' x2='{px(1)}' y1='{py(v):.1f}' y2='{py(v):.1f}'/>"
                       f"<text x='{px(0) - 6}' y='{py(v) + 4:.1f}' text-anchor='end'>{v * 100:.0f}%</text>")
    out.append(f"<line class='axis' x1='{px(0)}' x2='{px(1)}' y1='{py(0)}' y2='{py(0)}'/>"
               f"<line class='axis' x1='{px(0)}' x2='{px(0)}' y1='{py(0)}' y2='{py(1)}'/>"
               f"<text x='{px(0.5)}' y='{h - 6}' text-anchor='middle'>gate threshold (abstain below)</text>")
    step = (px(1) - px(0)) / max(len(curve) - 1, 1)
    for p in curve:  # hover columns: the browser shows the <title> as a tooltip, no script needed
        tip = f"threshold {p['threshold']:.3f}: " + ", ".join(f"{label} {fmt(p.get(k))}" for k, label, _, _ in SERIES)
        out.append(f"<rect class='hover' x='{px(p['threshold']) - step / 2:.1f}' y='{py(1)}' width='{step:.1f}' "
                   f"height='{py(0) - py(1)}'><title>{e(tip)}</title></rect>")
    for key, _, cls, dash in SERIES:
        points = " ".join(f"{px(p['threshold']):.1f},{py(p.get(key) or 0.0):.1f}" for p in curve)
        out.append(f"<polyline class='series {cls}' stroke-dasharray='{dash}' points='{points}'/>")
    # The curve sweeps the gate's probability: the setting in use is min_probability
    # (min_similarity is now a cosine floor on another scale; reports from before the gate
    # swept the cosine and have no min_probability).
    config = report.get("config") or {}
    current = config.get("min_probability", config.get("min_similarity"))
    best = report.get("recommended_min_similarity")
    if isinstance(current, (int, float)):
        out.append(_vmark(px(current), py(0), f"current {current:.2f}", "now", 0))
    if isinstance(best, (int, float)):
        out.append(_vmark(px(best), py(0), f"best {best:.2f}", "best", 1))
    legend = "".join(f"<li><svg viewBox='0 0 28 10' aria-hidden='true'><line class='series {cls}' x1='0' "
                     f"x2='28' y1='5' y2='5' stroke-dasharray='{dash}'/></svg> {e(label)}</li>"
                     for _, label, cls, dash in SERIES)
    svg = _svg(w, h, "curve-svg", "Metrics against the abstention threshold",
               "Accuracy, answered precision, answered rate and abstain recall for each minimum similarity "
               "from 0 to 1; vertical lines mark the current and the best threshold.", "".join(out))
    return (head + f"<figure>{svg}<ul class='legend'>{legend}</ul><figcaption>What abstaining below each "
            "similarity would give on this run (dashed marker: current setting; solid: best accuracy). "
            f"Hover for values.</figcaption></figure>{_curve_table(curve)}</section>")


def _reliability(report: dict[str, Any]) -> str:
    """The gate's reliability curve: predicted probability that the best sentence answers,
    against how often it did, per bin (on the diagonal: calibrated)."""
    bins = report.get("reliability") or []
    head = "<section aria-labelledby='reliability'><h2 id='reliability'>Answerability gate: reliability</h2>"
    if not bins:
        return head + "<p class='muted'>No gate probabilities in this report.</p></section>"
    w, h, left, right, top, bottom = 640, 400, 48, 16, 16, 44
    px = lambda x: left + x * (w - left - right)  # noqa: E731
    py = lambda y: h - bottom - y * (h - top - bottom)  # noqa: E731
    out = []
    for i in range(0, 11, 2):
        v = i / 10
        out.append(f"<line class='grid' x1='{px(v):.1f}' x2='{px(v):.1f}' y1='{py(0)}' y2='{py(1)}'/>"
                   f"<text x='{px(v):.1f}' y='{py(0) + 16}' text-anchor='middle'>{v:.1f}</text>"
                   f"<line class='grid' x1='{px(0)}' x2='{px(1)}' y1='{py(v):.1f}' y2='{py(v):.1f}'/>"
                   f"<text x='{px(0) - 6}' y='{py(v) + 4:.1f}' text-anchor='end'>{v * 100:.0f}%</text>")
    out.append(f"<line class='axis' x1='{px(0)}' x2='{px(1)}' y1='{py(0)}' y2='{py(0)}'/>"
               f"<line class='axis' x1='{px(0)}' x2='{px(0)}' y1='{py(0)}' y2='{py(1)}'/>"
               f"<line class='mark now' x1='{px(0)}' x2='{px(1)}' y1='{py(0)}' y2='{py(1)}'/>"
               f"<text x='{px(0.5)}' y='{h - 6}' text-anchor='middle'>predicted probability that the best sentence "
               "answers</text>")
    most = max(b["questions"] for b in bins)
    points = " ".join(f"{px(b['predicted']):.1f},{py(b['observed']):.1f}" for b in bins)
    out.append(f"<polyline class='series c1' points='{points}'/>")
    for b in bins:
        r = 3 + 7 * (b["questions"] / most) ** 0.5
        tip = (f"{b['low']:.1f}-{b['high']:.1f}: {b['questions']} questions, predicted {fmt(b['predicted'])}, "
               f"observed {fmt(b['observed'])}")
        out.append(f"<circle class='bar' cx='{px(b['predicted']):.1f}' cy='{py(b['observed']):.1f}' r='{r:.1f}'>"
                   f"<title>{e(tip)}</title></circle>")
    svg = _svg(w, h, "reliability-svg", "Reliability of the answerability probability",
               "For bins of the predicted probability, the share of questions whose best-ranked sentence is gold "
               "evidence; the dashed diagonal is perfect calibration.", "".join(out))
    rows = "".join(f"<tr><th scope='row'>{b['low']:.1f}–{b['high']:.1f}</th><td class='n'>{b['questions']}</td>"
                   f"<td class='n'>{fmt(b['predicted'])}</td><td class='n'>{fmt(b['observed'])}</td></tr>"
                   for b in bins)
    table = ("<div class='scroll'><table><thead><tr><th scope='col'>probability</th><th scope='col'>questions</th>"
             "<th scope='col'>predicted</th><th scope='col'>observed</th></tr></thead>"
             f"<tbody>{rows}</tbody></table></div>")
    return (head + f"<figure>{svg}<figcaption>Each dot is a bin of questions (its size: how many); a question "
            "whose gold documents are not indexed never counts as answered. On the diagonal the probability "
            f"means what it says.</figcaption></figure>{table}</section>")


def _curve_table(curve: Sequence[dict[str, Any]]) -> str:
    cols = [("threshold", "threshold"), *((k, label) for k, label, _, _ in SERIES),
            ("abstain_precision", "abstain precision")]
    head = "".join(f"<th scope='col'>{e(label)}</th>" for _, label in cols)
    rows = "".join(f"<tr><th scope='row'>{p['threshold']:.3f}</th>"
                   + "".join(f"<td class='n'>{fmt(p.get(k))}</td>" for k, _ in cols[1:]) + "</tr>" for p in curve)
    return (f"<details><summary>Curve values</summary><div class='scroll'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div></details>")


def _latency(report: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    head = "<section aria-labelledby='latency'><h2 id='latency'>Ask latency</h2>"
    times = [float(r["ask_ms"]) for r in records if isinstance(r.get("ask_ms"), (int, float))]
    if not times:
        return head + "<p class='muted'>No questions were asked.</p></section>"
    lo, hi = min(times), max(times)
    width_ms = (hi - lo) / BINS or 1.0
    counts = [0] * BINS
    for t in times:
        counts[min(int((t - lo) / width_ms), BINS - 1)] += 1
    w, h, left, right, top, bottom = 640, 270, 44, 16, 44, 40
    px = lambda ms: left + (ms - lo) / (width_ms * BINS) * (w - left - right)  # noqa: E731
    tallest = max(counts)
    py = lambda n: h - bottom - n / tallest * (h - top - bottom)  # noqa: E731
    out = []
    for i, n in enumerate(counts):
        a, b = lo + i * width_ms, lo + (i + 1) * width_ms
        out.append(f"<rect class='bar' x='{px(a) + 1:.1f}' y='{py(n):.1f}' width='{px(b) - px(a) - 2:.1f}' "
                   f"height='{py(0) - py(n):.1f}'><title>{a:,.0f}–{b:,.0f} ms: {n} question(s)</title></rect>")
    for i in range(0, BINS + 1, 5):
        ms = lo + i * width_ms
        out.append(f"<text x='{px(ms):.1f}' y='{py(0) + 16}' text-anchor='middle'>{ms:,.0f}</text>")
    for n in sorted({0, tallest // 2, tallest}):
        out.append(f"<text x='{left - 6}' y='{py(n) + 4:.1f}' text-anchor='end'>{n}</text>")
    out.append(f"<line class='axis' x1='{left}' x2='{w - right}' y1='{py(0)}' y2='{py(0)}'/>"
               f"<text x='{w / 2}' y='{h - 6}' text-anchor='middle'>ask latency (ms)</text>")
    p50 = report.get("ask_p50_ms") if report.get("ask_p50_ms") is not None else percentile(times, 50, PERCENTILE)
    p95 = report.get("ask_p95_ms") if report.get("ask_p95_ms") is not None else percentile(times, 95, PERCENTILE)
    out.append(_vmark(px(p50), py(0), f"p50 {fmt(p50, 'ms')}", "now", 0))
    out.append(_vmark(px(p95), py(0), f"p95 {fmt(p95, 'ms')}", "best", 1))
    svg = _svg(w, h, "latency-svg", "Histogram of ask latency",
               f"{len(times)} questions in {BINS} bins from {lo:,.0f} to {hi:,.0f} ms; "
               f"p50 {fmt(p50, 'ms')}, p95 {fmt(p95, 'ms')}.", "".join(out))
    return (head + f"<figure>{svg}<figcaption>Time per /ask call across {len(times)} questions; markers at "
            "the median (p50, dashed) and p95 (solid).</figcaption></figure></section>")


def _why(r: dict[str, Any]) -> str:
    if r.get("negative") and not r.get("abstained"):
        return "answered although no gold document is indexed (should have abstained)"
    if r.get("abstained"):
        return "abstained although the gold document is indexed"
    return "first citation is not a gold sentence"


def _quote(kind: str, label: str, doc_id: Any, text: Any) -> str:
    return (f"<div><h4>{e(label)} <small>{e(doc_id)}</small></h4>"
            f"<blockquote class='{kind}'>{e(text) if text else '<em>(none)</em>'}</blockquote></div>")


def _failure(r: dict[str, Any]) -> str:
    cites = r.get("citations") or []
    cited = (_quote("cited", "Cited", cites[0].get("doc_id"), cites[0].get("quote")) if cites
             else _quote("cited", "Cited", "", ""))
    golds = "".join(_quote("gold", "Gold", g.get("doc_id"), g.get("text")) for g in r.get("gold") or []) \
        or _quote("gold", "Gold", "", "")
    answers = "; ".join(str(a) for a in r.get("answers") or []) or "–"
    rank = r.get("search_rank")
    meta = [("id", r.get("id")), ("status", r.get("status")), ("gold answers", answers),
            ("short answer", r.get("short_answer") or "–"), ("search rank", rank if rank is not None else "–"),
            ("support", f"{r['support']:.3f}" if isinstance(r.get("support"), (int, float)) else "–")]
    return (f"<article class='fail'><h3>{e(r.get('question'))}</h3><p class='muted'>{e(_why(r))}</p>"
            "<dl class='config'>" + "".join(f"<div><dt>{e(k)}</dt><dd>{e(v)}</dd></div>" for k, v in meta)
            + f"</dl><div class='pair'>{cited}<div>{golds}</div></div></article>")


def _failures(records: Sequence[dict[str, Any]]) -> str:
    wrong = [r for r in records if r.get("correct") is False]
    head = "<section aria-labelledby='failures'><h2 id='failures'>Failures</h2>"
    if not wrong:
        return head + "<p class='muted'>No wrong answers.</p></section>"
    shown = wrong[:MAX_FAILURES]
    return (head + f"<p class='muted'>Showing {len(shown)} of {len(wrong)} wrong answers, in question order.</p>"
            + "".join(_failure(r) for r in shown) + "</section>")
