"""``citeqa stress``: "nothing acknowledged is ever lost", checked by force and under load.

- ``crash`` (bench/stress_crash.py): SIGKILL the server during ingest, restart, check that
  every acknowledged write survived, searchable, and that FAISS agrees with SQLite;
- ``load`` (bench/stress_load.py): concurrent clients on a mix of ask, search and ingest.

Servers come from :func:`citeqa.bench.processes.running_server` (free port, no seeds, a log file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer
from rich.console import Console
from rich.table import Table

from citeqa.bench.errors import BenchError
from citeqa.bench.stress_crash import run_crash
from citeqa.bench.stress_load import parse_mix, run_load

HELP = "Stress tests: SIGKILL during ingest, and concurrent load."

app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)


def _finish(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
            figures: dict[str, Any], json_out: Path | None, failed: bool) -> None:
    table = Table(title=title, header_style="bold")
    for column in columns:  # words left, figures right
        table.add_column(column, justify="left" if column in ("measure", "operation") else "right")
    for row in rows:
        table.add_row(*("–" if v is None else f"{v:.0f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
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
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the figures here.")] = None,
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
    mix: Annotated[str, typer.Option(help="Relative weights of the operations.")] = "ask=6,search=3,ingest=1",
    url: Annotated[Optional[str], typer.Option(
        "--url", help="A running server (ingest adds stress-load-* docs to it).")] = None,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a --url that is not a loopback address.")] = False,
    seed: Annotated[int, typer.Option(help="Seeds each client's choice of operations and questions.")] = 0,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", envvar="CITEQA_API_KEY",
        help="For a --url server that wants a key (its rate limit applies).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the figures here.")] = None,
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
