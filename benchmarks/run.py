"""Run every benchmark and print one table: ``python -m benchmarks.run [--quick]``.

Full mode repeats each measurement three times (median and spread shown) and takes several
minutes; ``--quick`` (what CI runs) makes each one smaller and runs it once, in well under two
minutes. Each row shows the measured median, the spread of the repetitions, the target and the
ratio compared with it.

Exit status: 1 when something is *broken*, in either mode: a benchmark crashed, an invoice was
duplicated, a 429 was received, a run did not complete. A target missed on a busy machine is
shown in the table and never fails the run. ``--json PATH`` also writes every measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
from rich.console import Console
from rich.table import Table

from benchmarks import month_end, overhead, scale, translation
from benchmarks.harness import Row, Stat

__all__ = ["BENCHMARKS", "main"]


@attrs.frozen
class Options:
    """What the command line asked for."""

    quick: bool
    repeat: int
    #: Month-end clock speed-up (``None``: the module's default).
    scale: float | None = None


Runner = Callable[[Options], list[Row]]

#: Name → runner, in the order they run (fastest first, so a crash shows early).
BENCHMARKS: dict[str, Runner] = {
    "translation": lambda o: translation.run(quick=o.quick, repeat=o.repeat),
    "overhead": lambda o: overhead.run(quick=o.quick, repeat=o.repeat),
    "scale": lambda o: scale.run(quick=o.quick, repeat=o.repeat),
    "month-end": lambda o: month_end.run(quick=o.quick, repeat=o.repeat, scale=o.scale),
}


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _result(row: Row) -> str:
    if not row.ok:
        return "[bold red]BROKEN[/]"
    if row.met is None:
        return "-"
    return "[green]met[/]" if row.met else "[yellow]missed[/]"


def render(rows: Sequence[Row], console: Console, *, title: str) -> None:
    """Print the results table."""
    table = Table(title=title, show_lines=False)
    for name, justify in (
        ("benchmark", "left"),
        ("measurement", "left"),
        ("median", "right"),
        ("spread", "right"),
        ("unit", "left"),
        ("target", "left"),
        ("ratio", "right"),
        ("result", "left"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row.benchmark,
            row.metric,
            _number(row.value.median),
            f"±{row.value.spread / 2:.0%}" if len(row.value.values) > 1 else "",
            row.unit,
            row.target,
            "" if row.ratio is None else _number(row.ratio.median),
            _result(row),
            row.note,
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; the exit status (1: something is broken)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small and once (CI)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated benchmarks to run: " + ", ".join(BENCHMARKS),
    )
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (full: 3)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help=f"month-end clock speed-up (default x{month_end.SCALE:g})",
    )
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in wanted if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    repeat = args.repeat or (1 if args.quick else 3)
    options = Options(quick=args.quick, repeat=repeat, scale=args.scale)
    console = Console(width=200)
    err = Console(stderr=True)
    rows: list[Row] = []
    started = time.perf_counter()
    for name in wanted:
        err.print(f"[dim]running {name} ({'quick' if args.quick else 'full'}, x{repeat})...[/]")
        began = time.perf_counter()
        try:
            rows += BENCHMARKS[name](options)
        except Exception as exc:
            traceback.print_exc()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            rows.append(Row(name, "crashed", Stat.of([0]), "", ok=False, note=first[:150]))
        err.print(f"[dim]{name}: {time.perf_counter() - began:.0f} s[/]")
    elapsed = time.perf_counter() - started
    mode = "quick" if args.quick else f"full, median of {repeat}"
    render(rows, console, title=f"billbridge benchmarks ({mode}; {elapsed:.0f} s)")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"mode": mode, "seconds": elapsed, "rows": [r.to_json() for r in rows]},
                indent=2,
            )
        )
    broken = [row for row in rows if not row.ok]
    if broken:
        console.print(f"[bold red]{len(broken)} broken:[/] " + "; ".join(r.metric for r in broken))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
