"""The ``citeqa`` command: serve, ingest, ask.

``ingest`` and ``ask`` work in process on ``--data-dir`` by default, or drive a running
server over HTTP with ``--url`` (the same JSON either way).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from api.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Answers with citations you can check.")
console = Console()

DataDir = typer.Option(None, "--data-dir", help="Data directory (default: CITEQA_DATA_DIR or ./data).")
Url = typer.Option(None, "--url", help="Talk to a running server instead, e.g. http://127.0.0.1:8000.")


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

    from api.app import create_app

    settings = _settings(data_dir, host=host, port=port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., exists=True, help="Text/markdown files, folders, or JSONL of {doc_id,title,text,metadata}."),
    data_dir: Optional[Path] = DataDir,
    url: Optional[str] = Url,
    batch: int = typer.Option(256, min=1, help="Documents embedded together (bigger batches pad less)."),
) -> None:
    """Add documents; a changed document gets a new version."""
    from index.ingest import InvalidDocument, read_inputs

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
            from api.services import Services

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
    data_dir: Optional[Path] = DataDir,
    url: Optional[str] = Url,
) -> None:
    """Answer a question and show each citation in its context."""
    payload: dict[str, Any] = {"question": question, **({"top_k": top_k} if top_k else {})}
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
                    texts[key] = client.get(f"/v1/documents/{c['doc_id']}", params={"version": c["doc_version"]}).json()["text"]
    else:
        from api.schemas import AskOut
        from api.services import Services

        services = Services.open(_settings(data_dir))
        try:
            if services.store.sentence_count() == 0:
                services.seed()
            k = top_k or services.settings.default_top_k
            body = AskOut.of(services.answerer.ask(question, k)).model_dump()
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
