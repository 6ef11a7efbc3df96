"""``citeqa eval``: the command that runs an evaluation (evaluation/run.py) in process or
against a server, prints the headline figures and writes the JSON, failures and HTML reports."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.table import Table

from citeqa.api.cli import (
    CollectionName,
    GeneratorName,
    GeneratorOption,
    Url,
    checked_collection,
    console,
    exit_on_generator_problem,
    parse_generator_options,
    progress_bar,
)
from citeqa.bench.environment import installed_versions
from citeqa.evaluation.questions import load_corpus, load_questions
from citeqa.evaluation.run import evaluate
from citeqa.evaluation.summary import best_threshold
from citeqa.evaluation.targets import EvalTarget, HttpTarget, InProcessTarget

HELP = "Score citation accuracy, retrieval, answers, abstention and latency."
REPORTED_PACKAGES = ("citeqa", "sentence-transformers", "torch", "faiss-cpu", "pysbd", "fastapi", "llama-cpp-python")
REPORT_ROWS = [
    ("questions", "questions"), ("quote_valid_rate", "quote valid rate"),
    ("top1_citation_accuracy", "top-1 citation accuracy"), ("citation_precision", "citation precision"),
    ("citation_recall", "citation recall"), ("citation_f1", "citation F1"),
    ("search_hit_at_1", "search hit@1"), ("search_hit_at_5", "search hit@5"), ("search_hit_at_10", "search hit@10"),
    ("search_mrr", "search MRR@10"), ("answer_em", "answer EM"), ("answer_f1", "answer F1"),
    ("short_answer_em", "short answer EM"), ("short_answer_f1", "short answer F1"),
    ("answered_rate", "answered rate"), ("abstain_precision", "abstain precision"),
    ("abstain_recall", "abstain recall"), ("abstain_f1", "abstain F1"), ("mean_citation_chars", "mean citation chars"),
    ("ask_p50_ms", "ask p50 ms"), ("ask_p95_ms", "ask p95 ms"), ("search_p50_ms", "search p50 ms"),
    ("generator", "generator"), ("generate_p50_ms", "generate p50 ms"), ("first_token_p50_ms", "first token p50 ms"),
    ("tokens_per_s_p50", "tokens/s p50"), ("completion_tokens_mean", "answer tokens (mean)"),
    ("dropped_citations", "dropped citations"), ("verifier_citation_rate", "citations placed by verifier"),
    ("recommended_min_similarity", "best abstention threshold"),
]

app = typer.Typer(add_completion=False)


@app.command("eval", help=HELP)
def eval_command(
    questions: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, help="Questions JSONL (../shared/eval format).")],
    corpus: Annotated[Optional[Path], typer.Option(
        exists=True, dir_okay=False, help="Index this whole corpus once (open corpus).")] = None,
    url: Url = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N questions.")] = None,
    offset: Annotated[int, typer.Option(min=0, help=(
        "Skip the first N questions (--offset 1000 --limit 1000: questions 1001-2000, the half the "
        "learned ranker was not fitted on)."))] = 0,
    negatives: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Leave this share of questions' gold documents out.")] = 0.0,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1)] = None,
    out: Annotated[Optional[Path], typer.Option(
        help="Write the JSON report here (wrong answers go beside it).")] = None,
    html: Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for choosing negatives.")] = 0,
    generator: GeneratorName = None,
    option: GeneratorOption = None,
    collection: CollectionName = None,
) -> None:
    """Score citation accuracy, retrieval, answers, abstention and latency. The corpus is
    stored into ``--collection`` and questions are answered within it only, so runs against
    one server in separate collections do not leak into each other."""
    within = checked_collection(collection)
    try:
        qs = load_questions(questions, offset + limit if limit else None)[offset:]
        docs = load_corpus(corpus) if corpus else None
    except (ValueError, KeyError) as exc:
        console.print(f"[red]cannot read evaluation data:[/red] {exc}")
        raise typer.Exit(2) from None
    services = None
    with tempfile.TemporaryDirectory(prefix="citeqa-eval-") as tmp:
        options = parse_generator_options(option)
        target: EvalTarget
        if url:
            target = HttpTarget(url, generator=generator, options=options, collection=collection and within)
        else:
            from citeqa.api.services import Services
            from citeqa.api.settings import Settings
            from citeqa.qa.registry import GENERATOR_PROBLEMS

            services = Services.open(Settings(data_dir=Path(tmp) / "data", seeds_dir=None))
            target = InProcessTarget(services, generator=generator, options=options, collection=within)
            try:  # a wrong name or option fails now, not after indexing the corpus
                services.generators.get(generator, options)
            except GENERATOR_PROBLEMS as exc:
                services.close()
                exit_on_generator_problem(exc)
        try:
            with progress_bar() as progress:
                def track(label: str, total: int, done: int = 0) -> Callable[[int], None]:
                    task = progress.add_task(label, total=total)
                    return lambda n: progress.advance(task, n)

                run = evaluate(target, qs, docs, negatives=negatives, top_k=top_k, seed=seed, progress=track)
        finally:
            if services is not None:
                services.close()
    run.report["config"]["offset"] = offset
    run.report["versions"] = installed_versions(REPORTED_PACKAGES, missing="not installed")
    # Only negatives (questions whose gold is left out) can say where abstaining pays.
    if run.report["negative_questions"]:
        run.report["recommended_min_similarity"] = best_threshold(run.report["threshold_curve"])["threshold"]
    show_report(run.report)
    if out:
        out.write_text(json.dumps(run.report, indent=2, ensure_ascii=False), encoding="utf-8")
        wrong = out.with_name(out.stem + ".failures.jsonl")
        with open(wrong, "w", encoding="utf-8") as fh:
            for record in run.failures:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        console.print(f"report: {out}  ·  {len(run.failures)} wrong answers: {wrong}")
    if html:
        from citeqa.evaluation.html_report import write_html

        write_html(run.report, run.records, html)
        console.print(f"html report: {html}")


def show_report(report: dict[str, Any]) -> None:
    """The headline figures as a terminal table ("–" for those this run could not measure)."""
    table = Table(title="citeqa eval", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in REPORT_ROWS:
        value = report.get(key)
        table.add_row(label, "–" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value)))
    console.print(table)
