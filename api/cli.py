"""The ``citeqa`` command: serve, ingest, ask and keys, and the tools (eval, bench,
bench-scale, stress), whose code loads only when their command runs.

``ingest`` and ``ask`` work in process on ``--data-dir`` by default, or drive a running
server over HTTP with ``--url`` (the same JSON either way).
"""

from __future__ import annotations

import os

# Before torch or FAISS start their OpenMP threads: spinning waiters make a busy 2-core
# machine collapse (one query embedding went from ~7 ms to 500+ ms under load; with
# PASSIVE it stayed near 20 ms). Measured by `citeqa bench`; see docs/EVALUATION.md.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Mapping, NoReturn, Optional

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:  # `citeqa --help` stays fast: the commands import what they need when they run
    from rich.progress import Progress
    from typer._click import Command, Context  # typer vendors click (0.26+): the classes its groups use

    from citeqa.api.settings import Settings


@dataclass(frozen=True)
class Tool:
    """A command that is not on the request path: ``target`` is the ``"module:attribute"`` of
    its ``typer.Typer``, imported only when the command runs; ``help`` is its line in
    ``citeqa --help``."""

    target: str
    help: str

    def load(self) -> Command:
        module, _, attribute = self.target.partition(":")
        # A Typer of one command becomes that command; of several, a group (`citeqa stress crash`).
        return typer.main.get_command(getattr(importlib.import_module(module), attribute))


TOOLS: Mapping[str, Tool] = {
    "eval": Tool("citeqa.evaluation.command:app",
                 "Score citation accuracy, retrieval, answers, abstention and latency."),
    "bench": Tool("citeqa.bench.service:app",
                  "Measure ingest rate, latency, throughput, memory and index size."),
    "bench-scale": Tool("citeqa.bench.scale:app",
                        "Grow a store to 10k..1M sentences and measure what each size costs."),
    "stress": Tool("citeqa.bench.stress:app",
                   "Stress tests: SIGKILL during ingest, and concurrent load."),
}


class _ToolListing(TyperCommand):
    """A tool as ``citeqa --help`` lists it (its name and line of help), without its code."""

    def __init__(self, name: str, tool: Tool):
        super().__init__(name, help=tool.help, short_help=tool.help)
        self.tool = tool


class ToolsGroup(TyperGroup):
    """The root group: the commands defined here, plus ``tools`` listed by name and help and
    loaded when one of them is resolved to run (its own ``--help`` included)."""

    tools: ClassVar[Mapping[str, Tool]] = TOOLS

    def __init__(self, **attrs: Any):
        super().__init__(**attrs)
        for name, tool in self.tools.items():
            # In self.commands, so that listing, "did you mean" and ordering treat them as commands.
            self.commands.setdefault(name, _ToolListing(name, tool))

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _ToolListing):
            command = command.tool.load()
        return name, command, rest


app = typer.Typer(cls=ToolsGroup, add_completion=False, no_args_is_help=True,
                  help="Answers with citations you can check.")
# soft_wrap: messages are not broken at the terminal's width (a path or a URL cut in two
# cannot be copied); the terminal wraps long lines itself. Tables still fit the width.
console = Console(soft_wrap=True)

# Options several commands share (the tools' too): `name: Alias = None`.
DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Data directory (default: CITEQA_DATA_DIR or ./data).")]
Url = Annotated[Optional[str], typer.Option(
    "--url", help="Talk to a running server instead, e.g. http://127.0.0.1:8000.")]
GeneratorName = Annotated[Optional[str], typer.Option(
    "--generator", "-g", help="extractive (default), llamacpp, openai, or a plugin.")]
GeneratorOption = Annotated[Optional[list[str]], typer.Option(
    "--option", "-o", help="A generator option as KEY=VALUE (JSON values), repeatable.")]
CollectionName = Annotated[Optional[str], typer.Option(
    "--collection", "-c", help="The collection to work in (default: default).")]


def checked_collection(name: str | None) -> str:
    """``name`` (``default`` when None) if it is a valid collection name; else say what is
    wrong and exit with the usage error's code."""
    from citeqa.index.scope import DEFAULT_COLLECTION, InvalidScope, check_collection

    if name is None:
        return DEFAULT_COLLECTION
    try:
        return check_collection(name)
    except InvalidScope as exc:
        console.print(f"[red]--collection: {exc}[/red]")
        raise typer.Exit(2) from None


def parse_filter(text: str | None) -> dict[str, Any] | None:
    """``--filter``'s JSON: ``{"doc_ids": [...], "metadata": {...}}`` (either part may be
    left out), checked as the server checks a request's ``filter``; exit 2 if it is wrong."""
    from citeqa.index.scope import InvalidScope, scope_from_request

    if text is None:
        return None
    try:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise InvalidScope('must be an object: {"doc_ids": [...], "metadata": {...}}')
        if unknown := sorted(set(value) - {"doc_ids", "metadata"}):
            raise InvalidScope(f"holds doc_ids and/or metadata; unknown: {', '.join(unknown)}")
        scope_from_request(None, value.get("doc_ids"), value.get("metadata"))
    except json.JSONDecodeError as exc:
        console.print(f"[red]--filter is not JSON: {exc}[/red]")
        raise typer.Exit(2) from None
    except InvalidScope as exc:
        console.print(f"[red]--filter: {exc}[/red]")
        raise typer.Exit(2) from None
    return value


def parse_generator_options(pairs: list[str] | None) -> dict[str, Any] | None:
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


def exit_on_generator_problem(exc: Exception) -> NoReturn:
    """Unknown generator, bad options, or the generator failed: say so, no traceback."""
    message = getattr(exc, "message", None) or str(exc)
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(2 if isinstance(exc, (LookupError, ValueError)) else 1)


def _settings(data_dir: Path | None, **overrides: Any) -> Settings:
    from citeqa.api.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8000).")] = None,
    data_dir: DataDir = None,
    workers: Annotated[Optional[int], typer.Option(min=1, max=64, help=(
        "Processes serving the same port, each with its own model (default: CITEQA_WORKERS or 1). "
        "One per core uses every core; see the README for what each process keeps to itself."))] = None,
) -> None:
    """Start the HTTP API (indexes seeds/ on the first start of a data directory)."""
    import logging

    from citeqa.api import binding
    from citeqa.api.memory import limit_malloc_arenas
    from citeqa.api.observability import configure_logging
    from citeqa.api.workers import Supervisor, serve_sockets

    settings = _settings(data_dir, host=host, port=port, workers=workers)
    limit_malloc_arenas(settings.malloc_arenas)  # before any worker thread exists
    configure_logging("INFO", json_logs=True)  # one JSON object a line, with the request id
    try:
        # Bound first, so that exposure (keys required or not) and the default public URL come
        # from the addresses actually bound: "" is every interface, a name what it resolves to.
        bound = binding.bind(settings.host, settings.port)
    except OSError as exc:
        console.print(f"[red]cannot listen on {settings.host!r} port {settings.port}: {exc.strerror or exc}[/red]")
        raise typer.Exit(1) from None
    exposed_host, bound_port = bound.exposed_at
    settings = settings.model_copy(update={"host": exposed_host, "port": bound_port})
    for address in bound.addresses:
        logging.getLogger("citeqa.serve").info("listening on %s", _url(*address))
    try:
        if settings.workers == 1:
            serve_sockets(settings, bound.sockets)
        else:
            code = Supervisor(settings, bound.sockets, settings.workers).run()
            if code:
                raise typer.Exit(code)
    finally:
        bound.close()


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(
        exists=True, help="Files or folders: HTML, PDF, Markdown, DOCX, text, or JSONL of "
                          "{doc_id,title,text,metadata}. Folders are read recursively.")],
    data_dir: DataDir = None,
    url: Url = None,
    batch: Annotated[int, typer.Option(min=1, help=(
        "Documents embedded together (bigger batches pad less); with --url, documents per request, at most "
        "100 (the server's default CITEQA_MAX_BATCH_DOCUMENTS)."))] = 256,
    collection: Annotated[Optional[str], typer.Option(
        "--collection", "-c", help="Store into this collection (created on first use; default: default).")] = None,
) -> None:
    """Add documents; a changed document gets a new version. A file that cannot be read is
    named with the reason and stores nothing; the others are stored, and the exit code is 1."""
    from citeqa.api.ingest_files import BATCH_DOCUMENTS, Tally, ingest_locally, ingest_remotely
    from citeqa.index.file_input import input_files

    into = checked_collection(collection)  # in process; over HTTP only a name given is sent
    found = input_files(paths)
    if found.skipped:
        names = ", ".join(str(p) for p in found.skipped[:5]) + (" …" if len(found.skipped) > 5 else "")
        console.print(f"[yellow]skipped {len(found.skipped)} file(s) of other types:[/yellow] {names}")

    def report(path: Path, problem: str) -> None:
        console.print(f"[red]failed:[/red] {path}: {problem}")

    tally: Tally
    with progress_bar() as progress:
        if url:
            import httpx

            with httpx.Client(base_url=url, timeout=120) as client:
                tally = ingest_remotely(found.files, client, progress, report,
                                        collection=collection and into, batch=min(batch, BATCH_DOCUMENTS))
        else:
            from citeqa.api.services import Services, extraction_limits

            services = Services.open(_settings(data_dir))
            try:
                tally = ingest_locally(found.files, services.ingestor, progress, report,
                                       limits=extraction_limits(services.settings), batch=batch, collection=into)
            finally:
                services.close()
    if tally.stopped:
        console.print(f"[red]stopped:[/red] {tally.stopped}")
    console.print(tally.summary())
    if tally.failed or tally.stopped:
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw response.")] = False,
    generator: GeneratorName = None,
    option: GeneratorOption = None,
    data_dir: DataDir = None,
    url: Url = None,
    collection: Annotated[Optional[str], typer.Option(
        "--collection", "-c", help="Answer from this collection only (default: default).")] = None,
    filter_json: Annotated[Optional[str], typer.Option("--filter", help=(
        'Answer from these documents only: {"doc_ids": [...], "metadata": {"year": 2024, '
        '"section": ["a", "b"], "published": {"gte": "2024-01-01"}}} (see the README).'))] = None,
) -> None:
    """Answer a question and show each citation in its context."""
    from citeqa.api.client import collection_field

    options = parse_generator_options(option)
    within = checked_collection(collection)
    where = parse_filter(filter_json)
    payload: dict[str, Any] = {"question": question, **({"top_k": top_k} if top_k else {}),
                               **({"generator": generator} if generator else {}),
                               **({"generator_options": options} if options else {}),
                               **collection_field(collection), **({"filter": where} if where is not None else {})}
    texts: dict[tuple[str, str], str] = {}
    if url:
        import httpx

        from citeqa.api.client import ApiError, document_text, post_json

        with httpx.Client(base_url=url, timeout=120) as client:
            try:
                body = post_json(client, "/v1/ask", payload)
            except ApiError as exc:
                console.print(f"[red]{exc.status} {exc.message}[/red]")
                raise typer.Exit(1) from None
            for c in body["citations"]:
                key = (c["doc_id"], c["doc_version"])
                if key not in texts:
                    # The collection the server answered from (it may choose: a key's only collection).
                    texts[key] = document_text(client, *key, collection=c.get("collection", collection)) or ""
    else:
        from citeqa.api.schemas import AskOut
        from citeqa.api.services import Services
        from citeqa.index.scope import scope_from_request
        from citeqa.qa.registry import GENERATOR_PROBLEMS

        where = where or {}
        scope = scope_from_request(within, where.get("doc_ids"), where.get("metadata"))
        services = Services.open(_settings(data_dir))
        try:
            if services.store.sentence_count() == 0:
                services.seed()
            if not services.store.has_collection(within):
                console.print(f"[red]no collection named {within!r} (`citeqa collections list` shows them)[/red]")
                raise typer.Exit(1)
            k = top_k or services.settings.default_top_k
            try:
                result = services.answerer_for(scope).ask(question, k, generator=generator, options=options)
            except GENERATOR_PROBLEMS as exc:
                exit_on_generator_problem(exc)
            body = AskOut.of(result, within).model_dump()
            for c in body["citations"]:
                doc = services.store.document(c["doc_id"], c["doc_version"], collection=within)
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
        line.append(f"{c['doc_id']}@{c['doc_version']}  chars {c['start']}–{c['end']}{_pages(c)}\n", style="cyan")
        if c.get("link"):
            line.append(f"    {c['link']}\n", style="underline blue")
        line.append("    …" + before, style="dim")
        line.append(c["quote"], style="bold black on yellow")
        line.append(after + "…", style="dim")
        console.print(line)


def _pages(citation: dict[str, Any]) -> str:
    """"  page 3" or "  pages 3–4" for a citation into a PDF, else ""."""
    page, end_page = citation.get("page"), citation.get("end_page")
    if page is None:
        return ""
    return f"  pages {page}–{end_page}" if end_page not in (None, page) else f"  page {page}"


def progress_bar() -> Progress:
    """The progress bar of long commands (ingest, eval)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console)


keys_app = typer.Typer(no_args_is_help=True, help=(
    "API keys, stored hashed: in the data directory's keys.db, or with CITEQA_STORE=postgresql://... in that "
    "database, shared by every replica."))
DEFAULT_SCOPES = ["read"]
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who or what the key is for.")],
    scope: Annotated[list[str], typer.Option("--scope", help=(
        "read (ask, search, chat, get), write (ingest, delete) and/or admin (keys and collections); "
        "repeatable."))] = DEFAULT_SCOPES,
    rate: Annotated[Optional[float], typer.Option(
        "--rate", min=0, help="Requests/s for this key (default: CITEQA_KEY_RATE_PER_S).")] = None,
    burst: Annotated[Optional[int], typer.Option("--burst", min=1)] = None,
    collection: Annotated[Optional[list[str]], typer.Option("--collection", "-c", help=(
        "Limit the key to this collection (repeatable); outside its collections the key sees nothing. "
        "Default: every collection."))] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a key; it is printed once and only its hash is kept."""
    from citeqa.api.keys import open_key_store

    limited = [checked_collection(c) for c in collection] if collection else None
    store = open_key_store(_settings(data_dir))
    try:
        key, secret = store.create(name, scope, rate, burst, collections=limited)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    console.print(f"key id {key.key_id} ({', '.join(sorted(key.scopes))}; {_collections_of(key.collections)}) "
                  f"for {name!r}; save it now, it is not shown again:")
    print(secret)


def _collections_of(collections: frozenset[str] | None) -> str:
    """How a key's collection limit reads in `keys create` and `keys list`."""
    return "every collection" if collections is None else "collections " + ",".join(sorted(collections))


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """Keys by id: name, scopes, collections, rate, created, revoked (never the key itself)."""
    import datetime

    from rich.table import Table

    from citeqa.api.keys import open_key_store

    store = open_key_store(_settings(data_dir))
    try:
        keys = store.list()
    finally:
        store.close()
    table = Table()
    # A narrow terminal wraps or folds a cell, never cuts it short; dates wrap between day and time.
    for header, least in (("key id", 8), ("name", 4), ("scopes", 6), ("collections", 11), ("rate/s", 7),
                          ("created", 10), ("revoked", 10)):
        table.add_column(header, overflow="fold", min_width=least)
    when = lambda t: datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "–"  # noqa: E731
    for k in keys:
        rate = "default" if k.rate_per_s is None else f"{k.rate_per_s:g}"
        seen = "all" if k.collections is None else ", ".join(sorted(k.collections))  # wraps at ", "
        table.add_row(k.key_id, k.name, ", ".join(sorted(k.scopes)), seen, rate, when(k.created_at),
                      when(k.revoked_at))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id from `citeqa keys list`.")],
                data_dir: DataDir = None) -> None:
    """Revoke a key at once (a running server stops accepting it on its next request)."""
    from citeqa.api.keys import open_key_store

    store = open_key_store(_settings(data_dir))
    try:
        if not store.revoke(key_id):
            console.print(f"[red]no live key with id {key_id!r}[/red]")
            raise typer.Exit(1)
    finally:
        store.close()
    console.print(f"revoked {key_id}")


collections_app = typer.Typer(no_args_is_help=True, help=(
    "Collections of the data directory (or of CITEQA_STORE): named sets of documents; the same doc_id in "
    "two collections is two documents. `ingest --collection` creates one on first use."))
app.add_typer(collections_app, name="collections")


def _open_store(data_dir: Path | None) -> Any:
    """The document store of the settings (the embedding model is loaded only to learn the
    vectors' dimension: spaCy, the generators and the answerer are not)."""
    from citeqa.api.services import open_embedder, open_store

    settings = _settings(data_dir)
    return open_store(settings, open_embedder(settings).dimension)


@collections_app.command("list")
def collections_list(data_dir: DataDir = None) -> None:
    """Collections by name, with how many live documents each holds."""
    import datetime

    from rich.table import Table

    store = _open_store(data_dir)
    try:
        found = store.collections()
    finally:
        store.close()
    table = Table("collection", "documents", "created")
    for c in found:
        made = datetime.datetime.fromtimestamp(c.created_at).strftime("%Y-%m-%d %H:%M") if c.created_at else "–"
        table.add_row(c.name, str(c.documents), made)
    console.print(table)


@collections_app.command("create")
def collections_create(name: Annotated[str, typer.Argument(help="Letters, digits, '.', '_', '-'.")],
                       data_dir: DataDir = None) -> None:
    """Create an empty collection (exit code 1 if it exists already)."""
    name = checked_collection(name)
    store = _open_store(data_dir)
    try:
        created = store.create_collection(name)
    finally:
        store.close()
    if not created:
        console.print(f"[yellow]collection {name!r} exists already[/yellow]")
        raise typer.Exit(1)
    console.print(f"created collection {name}")


@collections_app.command("delete")
def collections_delete(
    name: Annotated[str, typer.Argument(help="The collection.")],
    force: Annotated[bool, typer.Option("--force", help="Delete it even if it holds documents.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Delete a collection; its documents leave search and listings (their versions stay
    readable). One that holds documents needs --force; `default` is emptied but stays."""
    name = checked_collection(name)
    store = _open_store(data_dir)
    try:
        known = {c.name: c for c in store.collections()}
        if name not in known:
            console.print(f"[red]no collection named {name!r}[/red]")
            raise typer.Exit(1)
        if known[name].documents and not force:
            console.print(f"[red]collection {name!r} holds {known[name].documents} document(s); "
                          "--force deletes them with it[/red]")
            raise typer.Exit(1)
        removed = store.delete_collection(name)
    finally:
        store.close()
    console.print(f"{'emptied' if name == 'default' else 'deleted'} collection {name} ({removed} document(s))")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
