"""Errors on the command line: one clear line (plus one per refused field) and an exit code.

Never a traceback, unless ``BILLBRIDGE_DEBUG=1`` asks for one.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, ParamSpec, TypeVar

import click
from rich.markup import escape

from billbridge.cli.output import err
from billbridge.domain.redaction import redact
from billbridge.errors import BillbridgeError, ValidationFailed

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "fail", "guard"]

P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 1
EXIT_USAGE = 2


def fail(message: str, details: Sequence[str] = (), code: int = EXIT_ERROR) -> NoReturn:
    """Print ``error: message`` (and each detail on its own line) to stderr and exit.

    Redacted: a message may quote a destination that echoed a secret back.
    """
    err.print(f"[bold red]error:[/] {escape(redact(message))}", markup=True)
    for line in details:
        err.print(f"  {redact(line)}", markup=False)
    sys.exit(code)


def guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn billbridge's errors into one clear line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ValidationFailed as exc:
            summary = str(exc).split(":", 1)[0]
            fail(summary, [f"{e.path or '/'}: {e.message}" for e in exc.errors])
        except BillbridgeError as exc:
            fail(str(exc))
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("BILLBRIDGE_DEBUG"):
                raise
            fail(
                f"unexpected {type(exc).__name__}: {exc} "
                "(set BILLBRIDGE_DEBUG=1 for the traceback, and please report it)"
            )

    return wrapper
