"""``citeqa stress``: "nothing acknowledged is ever lost", checked by force and under load,
and "nothing is held for good, nothing answers 5xx", checked over minutes and by fuzzing.

- ``crash`` (bench/stress_crash.py): SIGKILL the server during ingest, restart, check that
  every acknowledged write survived, searchable, and that FAISS agrees with SQLite;
- ``load`` (bench/stress_load.py): concurrent clients on a mix of ask, search and ingest;
- ``soak`` (bench/stress_soak.py): many clients on everything (some leaving mid-answer) for
  minutes, while the server's memory, threads, files and connections are sampled;
- ``fuzz`` (bench/stress_fuzz.py): thousands of Schemathesis cases over every route.

Servers come from :func:`citeqa.bench.processes.running_server` (free port, no seeds, a log file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer
from rich.console import Console
from rich.table import Table

from citeqa.bench.errors import BenchError
from citeqa.bench.soak_clients import DEFAULT_MIX
from citeqa.bench.stress_crash import run_crash
from citeqa.bench.stress_fuzz import run_fuzz
from citeqa.bench.stress_load import parse_mix, run_load
from citeqa.bench.stress_soak import parse_soak_mix, run_soak

HELP = "Stress tests: SIGKILL during ingest, and concurrent load."  # api/cli.py repeats it (TOOLS)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)
# Options every traffic-making command has.
AllowRemote = Annotated[bool, typer.Option("--allow-remote", help="Allow a --url that is not a loopback address.")]
ApiKey = Annotated[Optional[str], typer.Option(
    "--api-key", envvar="CITEQA_API_KEY", help="For a --url server that wants a key (its rate limit applies).")]
ClientSeed = Annotated[int, typer.Option(help="Seeds each client's choice of operations and questions.")]
JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Write the figures here.")]
Mix = Annotated[str, typer.Option(help="Relative weights of the operations.")]
SOAK_LABELS = {"rss_mb": "RSS MB", "threads": "threads", "fds": "open files", "db_connections": "DB conns"}


def _table(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, header_style="bold")
    for column in columns:  # words left, figures right
        table.add_column(column, justify="left" if column in ("measure", "operation") else "right")
    for row in rows:
        table.add_row(*("–" if v is None else _figure(v) if isinstance(v, float) else str(v) for v in row))
    console.print(table)


def _figure(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def _finish(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
            figures: dict[str, Any], json_out: Path | None, failed: bool) -> None:
    _table(console, title, columns, rows)
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        console.print(f"figures written to {json_out}")
    raise typer.Exit(1 if failed else 0)


@app.command("crash")
def crash_command(
    cycles: Annotated[int, typer.Option(
        min=1, help="SIGKILLs during ingest, each followed by a restart and checks.")] = 20,
    seed: Annotated[int, typer.Option(help="Seeds kill delays and corruptions (a failure can be replayed).")] = 0,
    data_dir: Annotated[Optional[Path], typer.Option(
        "--data-dir", help="Default: a fresh temporary directory.")] = None,
    corrupt_every: Annotated[int, typer.Option(
        min=0, help="Tear/overwrite/delete the FAISS file every N cycles (0: never).")] = 3,
    max_delay: Annotated[float, typer.Option(
        min=0, help="The kill comes up to this many seconds after the first ack.")] = 2.5,
    json_out: JsonOut = None,
) -> None:
    """SIGKILL the server during ingest: every acknowledged document must survive, searchable."""
    console = Console()
    r = run_crash(cycles, seed, data_dir, corrupt_every, max_delay, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    for problem in r["lost"] + r["unsearchable"] + r["index_mismatches"] + r["unexpected"] + r["server_failures"]:
        console.print(f"[red]{problem}[/red]")
    if not r["ok"]:
        console.print(f"[red]FAILED[/red]; server logs kept in {r['logs']}")
    _finish(console, f"citeqa stress crash (seed {seed})", ("measure", "value"), [
        ("cycles / kills", f"{r['cycles']} / {r['kills']}"), ("acknowledged documents", r["acknowledged"]),
        ("lost (target 0)", r["lost_count"]), ("not found by search", len(r["unsearchable"])),
        ("in flight at a kill: stored whole / torn", f"{r['in_flight_applied']} / {len(r['torn_in_flight'])}"),
        ("FAISS file corrupted / rebuilt", f"{len(r['corruptions'])} / {r['faiss_rebuilds']}"),
        ("FAISS caught up after a kill", r["faiss_catch_ups"]), ("FAISS ≠ SQLite", len(r["index_mismatches"])),
        ("server failures / tracebacks", f"{len(r['server_failures'])} / {r['tracebacks']}"),
        ("stray FAISS .tmp files (a kill mid-save)", len(r["stray_tmp_files"])),
        ("s per cycle (median, max)", f"{r['cycle_s_median']:.1f}, {max(r['cycle_s'] or [0]):.1f}"),
        ("s to ready (median)", f"{r['ready_s_median']:.1f}")], r, json_out, not r["ok"])


@app.command("load", context_settings={"allow_extra_args": True})
def load_command(
    ctx: typer.Context,
    clients: Annotated[Optional[list[str]], typer.Option(
        help="Clients per level: --clients 1 8 32 (default; or 1,8,32).")] = None,
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds per level: a hard limit.")] = 20.0,
    mix: Mix = "ask=6,search=3,ingest=1",
    url: Annotated[Optional[str], typer.Option(
        "--url", help="A running server (ingest adds stress-load-* docs to it).")] = None,
    allow_remote: AllowRemote = False,
    seed: ClientSeed = 0,
    api_key: ApiKey = None,
    json_out: JsonOut = None,
) -> None:
    """Concurrent clients for a fixed time: requests, errors, throughput, p50/p95/p99."""
    console = Console()
    # Click has no variadic options: `--clients 1 8 32` leaves 8 and 32 as extra arguments.
    given = (clients or []) + ctx.args
    if ctx.args and not clients:
        raise typer.BadParameter(f"unexpected arguments {ctx.args}", param_hint="--clients")
    try:
        counts = [int(c) for item in given or ["1,8,32"] for c in item.split(",") if c.strip()]
        if not counts or min(counts) < 1:
            raise ValueError
        r = run_load(url, counts, duration, parse_mix(mix), allow_remote, seed, api_key,
                     log=lambda m: console.print(f"[dim]{m}[/dim]"))
    except (ValueError, BenchError) as exc:
        console.print(f"[red]stress load:[/red] {str(exc) or f'--clients wants positive integers, got {given}'}")
        raise typer.Exit(2) from None
    for level in r["levels"]:
        if level["error_kinds"]:
            console.print(f"[red]{level['clients']} clients: {level['error_kinds']}[/red]")
    console.print(f"[dim]load average {r['loadavg_start'][0]:.2f} → {r['loadavg_end'][0]:.2f} on {r['cpu_count']} "
                  "CPUs; requests still running at a level's deadline are cut off, not counted[/dim]")
    columns = ("clients", "operation", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms")
    rows = [(level["clients"] if op == "all" else "", op, f["requests"], f["errors"], f"{f['req_per_s']:.1f}",
             f["p50_ms"], f["p95_ms"], f["p99_ms"])
            for level in r["levels"] for op, f in [("all", level), *level["per_operation"].items()]]
    _finish(console, f"citeqa stress load: {duration:g} s per level, mix {mix}", columns, rows, r, json_out,
            r["errors"] > 0)


@app.command("soak")
def soak_command(
    minutes: Annotated[float, typer.Option(min=0.05, help="How long the load lasts.")] = 2.0,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 32,
    mix: Mix = DEFAULT_MIX,
    generator: Annotated[Optional[str], typer.Option(
        help="Generator for ask and chat (e.g. llamacpp); default: the server's.")] = None,
    sample_every: Annotated[float, typer.Option(min=0.2, help="Seconds between samples of the server.")] = 2.0,
    url: Annotated[Optional[str], typer.Option(
        "--url", help="A running server (its resources are sampled if it runs on this machine).")] = None,
    allow_remote: AllowRemote = False,
    seed: ClientSeed = 0,
    api_key: ApiKey = None,
    json_out: JsonOut = None,
) -> None:
    """Mixed load for minutes: resources must come back to their baseline and stay flat; 0 errors."""
    console = Console(width=None if sys.stdout.isatty() else 100)  # nine columns of figures
    try:
        r = run_soak(url, minutes, clients, parse_soak_mix(mix), generator, sample_every, allow_remote, api_key,
                     seed, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    except (ValueError, BenchError) as exc:
        console.print(f"[red]stress soak:[/red] {exc}")
        raise typer.Exit(2) from None
    columns = ("operation", "requests", "ok", "left", "errors", "p50 ms", "p95 ms")
    rows = [(op, f["requests"], f["ok"], f["left"], f["errors"], f["p50_ms"], f["p95_ms"])
            for op, f in r["operations"].items()]
    rows.append(("all", r["requests"], "", r["left"], r["errors"], f"{r['req_per_s']:.1f} req/s", ""))
    _table(console, f"citeqa stress soak: {clients} clients for {minutes:g} min ({r['elapsed_s']:.0f} s)",
           columns, rows)
    warm = r["warm_up"]
    console.print(f"[dim]warm-up: {warm['requests']} requests in {warm['seconds']:g} s, {warm['errors']} errors[/dim]")
    for kind, n in {**warm["error_kinds"], **r["error_kinds"]}.items():
        console.print(f"[red]{n} × {kind}[/red]")
    for example in warm["error_examples"] + r["error_examples"]:
        console.print(f"[red]  {example}[/red]")
    if r["tracebacks"]:
        console.print(f"[red]{r['tracebacks']} traceback(s) in the server log; the first:[/red]\n"
                      f"{r['first_traceback']}")
    if not r["resources"]:
        console.print("[red]the server's resources were not sampled (not a process on this machine)[/red]")
    console.print(f"[dim]load average {r['loadavg_start'][0]:.2f} → {r['loadavg_end'][0]:.2f} on {r['cpu_count']} "
                  f"CPUs; baseline and after: idle {r['settle_s']:g} s, then the median of 5 readings; "
                  "flat: the last third of the load vs the first[/dim]")
    figures = ("measure", "baseline", "max", "slope/min", "1st ⅓", "last ⅓", "after", "tol.", "verdict")
    verdicts = [(SOAK_LABELS[row["resource"]], row["baseline"], row["during_max"], row["slope_per_min"],
                 row["first_third"], row["last_third"], row["after"], f"+{row['tolerance']:g}",
                 "ok" if row["back"] and row["flat"] else "not back" if not row["back"] else "growing")
                for row in r["resources"]]
    _finish(console, "the server's resources: before, during and after the load", figures, verdicts, r, json_out,
            not r["ok"])


@app.command("fuzz")
def fuzz_command(
    cases: Annotated[int, typer.Option(min=1, help="Schemathesis cases to run, over every operation.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seeds the generated data (a run can be replayed).")] = 0,
    max_minutes: Annotated[Optional[float], typer.Option(
        min=0.05, help="Stop after this long, with fewer cases if need be.")] = None,
    url: Annotated[Optional[str], typer.Option(
        "--url", help="A running server (fuzzing writes and deletes documents in it).")] = None,
    allow_remote: AllowRemote = False,
    api_key: ApiKey = None,
    json_out: JsonOut = None,
) -> None:
    """Schemathesis at scale against a real server: no response may be a 5xx."""
    console = Console(width=None if sys.stdout.isatty() else 120)
    try:
        r = run_fuzz(url, cases, seed, max_minutes, allow_remote, api_key,
                     log=lambda m: console.print(f"[dim]{m}[/dim]"))
    except BenchError as exc:
        console.print(f"[red]stress fuzz:[/red] {exc}")
        raise typer.Exit(2) from None
    for problem in r["server_error_examples"] + r["transport_error_examples"]:
        console.print(f"[red]{problem['operation']}: {problem.get('status') or problem.get('error')}[/red]\n"
                      f"  reproduce: {problem['curl']}")
    if r["nonconforming"]:
        console.print(f"[yellow]{r['nonconforming']} responses do not match the schema (not fatal):[/yellow]")
        for example in r["nonconforming_examples"]:
            console.print(f"[yellow]  {example}[/yellow]")
    console.print(f"[dim]{r['cases']} cases in {r['elapsed_s']:.0f} s ({r['cases_per_s']:.1f}/s, {r['rounds']} "
                  f"rounds); load average {r['loadavg_start'][0]:.2f} → {r['loadavg_end'][0]:.2f} on "
                  f"{r['cpu_count']} CPUs[/dim]")
    rows: list[tuple[Any, ...]] = [
        (op, row["cases"], ", ".join(f"{s}: {n}" for s, n in row["statuses"].items()), row["nonconforming"])
        for op, row in r["per_operation"].items()]
    rows.append(("all", r["cases"], ", ".join(f"{s}: {n}" for s, n in r["statuses"].items()), r["nonconforming"]))
    rows.append(("5xx / stack traces / transport errors / server tracebacks", "",
                 f"{r['server_errors_5xx']} / {r['stack_traces']} / {r['transport_errors']} / {r['tracebacks']}", ""))
    _finish(console, f"citeqa stress fuzz: {r['cases']} cases (seed {seed})",
            ("operation", "cases", "statuses", "off schema"), rows, r, json_out, not r["ok"])
