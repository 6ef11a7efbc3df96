"""The ``citeqa`` command: serve, ingest, ask.

``ingest`` and ``ask`` work in process on ``--data-dir`` by default, or drive a running
server over HTTP with ``--url`` (the same JSON either way).
"""

from __future__ import annotations

import os

# Before torch or FAISS start their OpenMP threads: spinning waiters make a busy 2-core
# machine collapse (one query embedding went from ~7 ms to 500+ ms under load; with
# PASSIVE it stayed near 20 ms). Measured by `citeqa bench`; see docs/EVALUATION.md.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from citeqa.api.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Answers with citations you can check.")
console = Console()

DataDir = typer.Option(None, "--data-dir", help="Data directory (default: CITEQA_DATA_DIR or ./data).")
Url = typer.Option(None, "--url", help="Talk to a running server instead, e.g. http://127.0.0.1:8000.")
GeneratorName = typer.Option(None, "--generator", "-g", help="extractive (default), llamacpp, openai, or a plugin.")
GeneratorOption = typer.Option(None, "--option", "-o", help="A generator option as KEY=VALUE (JSON values), repeatable.")


def _generator_options(pairs: list[str] | None) -> dict[str, Any] | None:
    """``-o temperature=0.2 -o max_tokens=100`` → {"temperature": 0.2, "max_tokens": 100}."""
    if not pairs:
        return None
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            console.print(f"[red]--option must be KEY=VALUE, got {pair!r}[/red]")
            raise typer.Exit(2)
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _generator_problem(exc: Exception) -> None:
    """Unknown generator, bad options, or the generator failed: say so, no traceback."""
    message = getattr(exc, "message", None) or str(exc)
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(2 if isinstance(exc, (LookupError, ValueError)) else 1)


def _settings(data_dir: Path | None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default 8000)."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Start the HTTP API (indexes seeds/ on the first start of a data directory)."""
    import uvicorn

    from citeqa.api.app import create_app

    from citeqa.api.observability import configure_logging

    settings = _settings(data_dir, host=host, port=port)
    configure_logging("INFO", json_logs=True)  # one JSON object a line, with the request id
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", log_config=None,
                access_log=False)  # our access log (api/observability.py) replaces uvicorn's


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., exists=True, help="Text/markdown files, folders, or JSONL of {doc_id,title,text,metadata}."),
    data_dir: Optional[Path] = DataDir,
    url: Optional[str] = Url,
    batch: int = typer.Option(256, min=1, help="Documents embedded together (bigger batches pad less)."),
) -> None:
    """Add documents; a changed document gets a new version."""
    from citeqa.index.ingest import InvalidDocument, read_inputs

    try:
        items = read_inputs(paths)
    except (InvalidDocument, UnicodeDecodeError, ValueError) as exc:
        console.print(f"[red]cannot read input:[/red] {exc}")
        raise typer.Exit(2)
    created = unchanged = sentences = 0
    with _progress() as progress:
        task = progress.add_task("ingesting", total=len(items))
        if url:
            import httpx

            with httpx.Client(base_url=url, timeout=120) as client:
                for item in items:
                    r = client.post("/v1/documents", json={"doc_id": item.doc_id, "title": item.title,
                                                           "text": item.text, "metadata": item.metadata})
                    if r.status_code >= 400:
                        console.print(f"[red]{item.doc_id}: {r.status_code} {_error_message(r)}[/red]")
                        raise typer.Exit(1)
                    body = r.json()
                    created += body["created"]
                    unchanged += not body["created"]
                    sentences += body["sentence_count"]
                    progress.advance(task)
        else:
            from citeqa.api.services import Services

            services = Services.open(_settings(data_dir))
            try:
                for start in range(0, len(items), batch):
                    try:
                        results = services.ingestor.ingest_many(items[start:start + batch], progress=lambda n: progress.advance(task, n))
                    except InvalidDocument as exc:
                        console.print(f"[red]invalid document:[/red] {exc}")
                        raise typer.Exit(2)
                    created += sum(r.created for r in results)
                    unchanged += sum(not r.created for r in results)
                    sentences += sum(r.sentence_count for r in results)
            finally:
                services.close()
    console.print(f"{created} stored, {unchanged} unchanged, {sentences} sentences")


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print the raw response."),
    generator: Optional[str] = GeneratorName,
    option: Optional[list[str]] = GeneratorOption,
    data_dir: Optional[Path] = DataDir,
    url: Optional[str] = Url,
) -> None:
    """Answer a question and show each citation in its context."""
    options = _generator_options(option)
    payload: dict[str, Any] = {"question": question, **({"top_k": top_k} if top_k else {}),
                               **({"generator": generator} if generator else {}),
                               **({"generator_options": options} if options else {})}
    if url:
        import httpx

        with httpx.Client(base_url=url, timeout=120) as client:
            r = client.post("/v1/ask", json=payload)
            if r.status_code >= 400:
                console.print(f"[red]{r.status_code} {_error_message(r)}[/red]")
                raise typer.Exit(1)
            body = r.json()
            texts = {}
            for c in body["citations"]:
                key = (c["doc_id"], c["doc_version"])
                if key not in texts:
                    path = f"/v1/documents/{quote(c['doc_id'], safe='')}"
                    texts[key] = client.get(path, params={"version": c["doc_version"]}).json()["text"]
    else:
        from citeqa.api.schemas import AskOut
        from citeqa.api.services import Services
        from citeqa.qa.registry import GENERATOR_PROBLEMS

        services = Services.open(_settings(data_dir))
        try:
            if services.store.sentence_count() == 0:
                services.seed()
            k = top_k or services.settings.default_top_k
            try:
                result = services.answerer.ask(question, k, generator=generator, options=options)
            except GENERATOR_PROBLEMS as exc:
                _generator_problem(exc)
            body = AskOut.of(result).model_dump()
            texts = {}
            for c in body["citations"]:
                doc = services.store.document(c["doc_id"], c["doc_version"])
                texts[(c["doc_id"], c["doc_version"])] = doc.text if doc else ""
        finally:
            services.close()
    if as_json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return
    _show_answer(body, texts)


@app.command("eval")
def eval_command(
    questions: Path = typer.Argument(..., exists=True, dir_okay=False, help="Questions JSONL (../shared/eval format)."),
    corpus: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="Index this whole corpus once (open corpus)."),
    url: Optional[str] = Url,
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N questions."),
    negatives: float = typer.Option(0.0, min=0.0, max=1.0, help="Leave this share of questions' gold documents out."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1),
    out: Optional[Path] = typer.Option(None, help="Write the JSON report here (wrong answers go beside it)."),
    html: Optional[Path] = typer.Option(None, help="Write a self-contained HTML report here."),
    seed: int = typer.Option(0, help="Seed for choosing negatives."),
    generator: Optional[str] = GeneratorName,
    option: Optional[list[str]] = GeneratorOption,
) -> None:
    """Score citation accuracy, retrieval, answers, abstention and latency."""
    import tempfile

    from citeqa.qa.eval_targets import HttpTarget, InProcessTarget, package_versions
    from citeqa.qa.evaluate import best_threshold, evaluate, load_corpus, load_questions

    try:
        qs = load_questions(questions, limit)
        docs = load_corpus(corpus) if corpus else None
    except (ValueError, KeyError) as exc:
        console.print(f"[red]cannot read evaluation data:[/red] {exc}")
        raise typer.Exit(2)
    services = None
    with tempfile.TemporaryDirectory(prefix="citeqa-eval-") as tmp:
        options = _generator_options(option)
        if url:
            target = HttpTarget(url, generator=generator, options=options)
        else:
            from citeqa.api.services import Services
            from citeqa.qa.registry import GENERATOR_PROBLEMS

            services = Services.open(Settings(data_dir=Path(tmp) / "data", seeds_dir=None))
            target = InProcessTarget(services, generator=generator, options=options)
            try:  # a wrong name or option fails now, not after indexing the corpus
                services.generators.get(generator, options)
            except GENERATOR_PROBLEMS as exc:
                services.close()
                _generator_problem(exc)
        try:
            with _progress() as progress:
                def track(label: str, total: int, done: int = 0):
                    task = progress.add_task(label, total=total)
                    return lambda n: progress.advance(task, n)

                run = evaluate(target, qs, docs, negatives=negatives, top_k=top_k, seed=seed, progress=track)
        finally:
            if services is not None:
                services.close()
    run.report["versions"] = package_versions()
    # Only negatives (questions whose gold is left out) can say where abstaining pays.
    if run.report["negative_questions"]:
        run.report["recommended_min_similarity"] = best_threshold(run.report["threshold_curve"])["threshold"]
    _show_report(run.report)
    if out:
        out.write_text(json.dumps(run.report, indent=2, ensure_ascii=False), encoding="utf-8")
        wrong = out.with_name(out.stem + ".failures.jsonl")
        with open(wrong, "w", encoding="utf-8") as fh:
            for record in run.failures:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        console.print(f"report: {out}  ·  {len(run.failures)} wrong answers: {wrong}")
    if html:
        from citeqa.qa.eval_report import write_html

        write_html(run.report, run.records, html)
        console.print(f"html report: {html}")


_REPORT_ROWS = [
    ("questions", "questions"), ("quote_valid_rate", "quote valid rate"),
    ("top1_citation_accuracy", "top-1 citation accuracy"), ("citation_precision", "citation precision"),
    ("citation_recall", "citation recall"), ("citation_f1", "citation F1"),
    ("search_hit_at_1", "search hit@1"), ("search_hit_at_5", "search hit@5"), ("search_hit_at_10", "search hit@10"),
    ("search_mrr", "search MRR@10"), ("answer_em", "answer EM"), ("answer_f1", "answer F1"),
    ("short_answer_em", "short answer EM"), ("short_answer_f1", "short answer F1"),
    ("answered_rate", "answered rate"), ("abstain_precision", "abstain precision"),
    ("abstain_recall", "abstain recall"), ("mean_citation_chars", "mean citation chars"),
    ("ask_p50_ms", "ask p50 ms"), ("ask_p95_ms", "ask p95 ms"), ("search_p50_ms", "search p50 ms"),
    ("generator", "generator"), ("generate_p50_ms", "generate p50 ms"), ("first_token_p50_ms", "first token p50 ms"),
    ("tokens_per_s_p50", "tokens/s p50"), ("completion_tokens_mean", "answer tokens (mean)"),
    ("dropped_citations", "dropped citations"), ("verifier_citation_rate", "citations placed by verifier"),
    ("recommended_min_similarity", "best abstention threshold"),
]


def _show_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="citeqa eval", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in _REPORT_ROWS:
        value = report.get(key)
        table.add_row(label, "–" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value)))
    console.print(table)


def _show_answer(body: dict[str, Any], texts: dict[tuple[str, str], str]) -> None:
    colour = {"answered": "green", "partial": "yellow", "unsupported": "red"}[body["status"]]
    console.print(Text(body["answer"], style="bold"))
    console.print(f"[{colour}]{body['status']}[/{colour}]  ·  {len(body['citations'])} citation(s)"
                  f"  ·  {body['timings_ms'].get('total', 0):.0f} ms")
    for c in body["citations"]:
        text = texts[(c["doc_id"], c["doc_version"])]
        before = text[max(0, c["start"] - 160):c["start"]].lstrip()
        after = text[c["end"]:c["end"] + 160].rstrip()
        line = Text()
        line.append(f"[{c['marker']}] ", style="bold cyan")
        line.append(f"{c['doc_id']}@{c['doc_version']}  chars {c['start']}–{c['end']}\n", style="cyan")
        line.append("    …" + before, style="dim")
        line.append(c["quote"], style="bold black on yellow")
        line.append(after + "…", style="dim")
        console.print(line)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console)


def _error_message(response: Any) -> str:
    try:
        return response.json()["error"]["message"]
    except Exception:
        return response.text[:200]


keys_app = typer.Typer(no_args_is_help=True, help="API keys (stored hashed in the data directory's keys.db).")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="Who or what the key is for."),
    scope: list[str] = typer.Option(["read"], "--scope", help="read (ask, search, chat, get) and/or write (ingest, delete)."),
    rate: Optional[float] = typer.Option(None, "--rate", min=0, help="Requests/s for this key (default: CITEQA_KEY_RATE_PER_S)."),
    burst: Optional[int] = typer.Option(None, "--burst", min=1),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Create a key; it is printed once and only its hash is kept."""
    from citeqa.api.keys import KeyStore

    store = KeyStore(_settings(data_dir).data_dir)
    try:
        key, secret = store.create(name, scope, rate, burst)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    finally:
        store.close()
    console.print(f"key id {key.key_id} ({', '.join(sorted(key.scopes))}) for {name!r}; save it now, it is not shown again:")
    print(secret)


@keys_app.command("list")
def keys_list(data_dir: Optional[Path] = DataDir) -> None:
    """Keys by id: name, scopes, rate, created, revoked (never the key itself)."""
    import datetime

    from rich.table import Table

    from citeqa.api.keys import KeyStore

    store = KeyStore(_settings(data_dir).data_dir)
    try:
        keys = store.list()
    finally:
        store.close()
    table = Table("key id", "name", "scopes", "rate/s", "created", "revoked")
    when = lambda t: datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "–"  # noqa: E731
    for k in keys:
        table.add_row(k.key_id, k.name, ",".join(sorted(k.scopes)), "default" if k.rate_per_s is None else f"{k.rate_per_s:g}",
                      when(k.created_at), when(k.revoked_at))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id from `citeqa keys list`."),
                data_dir: Optional[Path] = DataDir) -> None:
    """Revoke a key at once (a running server stops accepting it on its next request)."""
    from citeqa.api.keys import KeyStore

    store = KeyStore(_settings(data_dir).data_dir)
    try:
        if not store.revoke(key_id):
            console.print(f"[red]no live key with id {key_id!r}[/red]")
            raise typer.Exit(1)
    finally:
        store.close()
    console.print(f"revoked {key_id}")


def _register_bench() -> None:
    from citeqa.api.bench import bench_command

    app.command("bench", help="Measure ingest rate, latency, throughput, memory and index size.")(bench_command)


def _register_bench_scale() -> None:
    from citeqa.api.scale_bench import bench_scale_command

    app.command("bench-scale", help="Grow a store to 10k..1M sentences and measure what each size costs.")(
        bench_scale_command
    )


_register_bench()
_register_bench_scale()


def _register_stress() -> None:
    from citeqa.api.stress import register

    register(app)


_register_stress()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
