"""``citeqa eval`` as a user runs it: the table, the JSON report, the failures beside it and the
HTML page; and unreadable evaluation data refused with a message."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from citeqa.api.cli import app
from citeqa.evaluation.command import REPORT_ROWS, show_report
from tests.support.cli import assert_no_traceback, flat, run_cli, unboxed


@pytest.mark.slow
def test_cli_writes_report_failures_and_html(tmp_path, questions_file):
    out, html = tmp_path / "report.json", tmp_path / "report.html"
    proc = run_cli(tmp_path, tmp_path, "eval", questions_file, "--out", out, "--html", html, "--negatives", "0.2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_no_traceback(proc)
    report = json.loads(out.read_text(encoding="utf-8"))
    for key in ("questions", "quote_valid_rate", "citation_precision", "citation_recall", "citation_f1",
                "top1_citation_accuracy", "search_hit_at_1", "search_hit_at_5", "search_hit_at_10", "search_mrr",
                "answer_em", "answer_f1", "short_answer_em", "short_answer_f1", "answered_rate",
                "abstain_precision", "abstain_recall", "mean_citation_chars", "ask_p50_ms", "ask_p95_ms",
                "search_p50_ms", "config", "versions", "recommended_min_similarity"):
        assert key in report, key
    assert report["versions"]["citeqa"] and report["versions"]["torch"]
    assert (tmp_path / "report.failures.jsonl").exists()
    assert "<svg" in html.read_text(encoding="utf-8")
    assert "citeqa eval" in proc.stdout and "top-1 citation accuracy" in unboxed(proc.stdout)


def test_unreadable_questions_are_refused_with_a_message(tmp_path):
    bad = tmp_path / "questions.jsonl"
    bad.write_text('{"id": "q1", "question": "Why?", "evidence": [{"doc_id": "d"}]}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(bad)])
    assert result.exit_code == 2, result.output
    assert "cannot read evaluation data" in flat(result.output) and ":1: not an evaluation question" in flat(
        result.output)


def test_the_table_shows_every_figure_and_a_dash_for_the_missing(capsys):
    show_report({"questions": 5, "quote_valid_rate": 1.0, "ask_p50_ms": 12.3456, "generator": None})
    shown = unboxed(capsys.readouterr().out)
    assert "questions" in shown and "12.35" in shown and "–" in shown
    assert len(REPORT_ROWS) == len({key for key, _ in REPORT_ROWS})


def test_a_bad_collection_name_is_refused_before_anything_runs(tmp_path, questions_file):
    result = CliRunner().invoke(app, ["eval", str(questions_file), "--collection", "no spaces"])
    assert result.exit_code == 2, result.output
    assert "--collection: a collection name is 1-64 characters" in flat(result.output)
