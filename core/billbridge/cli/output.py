"""What the commands print: JSON, tables whose ids stay whole, and progress bars on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from billbridge.domain.models import dumps

__all__ = ["err", "out", "print_json", "progress", "table"]

# Piped output (logs, CI) gets a wide table rather than rich's 80-column default: ids are 36
# characters and must stay whole to be copied.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON (exact decimals, ISO dates) on stdout."""
    click.echo(dumps(value, indent=2))


def table(title: str, columns: Sequence[str]) -> Table:
    """A table whose id columns never wrap or truncate: people copy ids from it."""
    shown = Table(title=title)
    for column in columns:
        if column == "id" or column.endswith(" id") or column == "integration":
            shown.add_column(column, no_wrap=True, min_width=8, overflow="fold")
        else:
            shown.add_column(column, no_wrap=True)
    return shown


@contextmanager
def progress(total: int, label: str, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (nothing when not enabled or stderr is not a terminal)."""
    if not enabled or total <= 1:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
