"""The ``audiotok`` command line: each command parses, calls one library function, prints.

Errors that a user can fix (missing or corrupt files, bad token files, mismatched models) are
raised as :class:`audiotok.errors.UserError` by the library and printed here as one line with
a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from audiotok import __version__
from audiotok.errors import UserError

T = TypeVar("T")

app = typer.Typer(
    name="audiotok",
    help="Turn audio into discrete tokens and back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"audiotok {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Turn audio into discrete tokens and back."""


def run_or_exit(fn: Callable[[], T]) -> T:
    """Call ``fn``; turn a :class:`UserError` into ``error: <message>`` and exit code 1.

    Every command wraps its one library call in this, so that bad input never shows a
    traceback. Ctrl-C exits with 130.
    """
    try:
        return fn()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


# ---- commands: encode / decode / info (tokenizer helper) ---------------------------------

# ---- commands: eval (eval helper) ---------------------------------------------------------

# ---- commands: train / export (training helper) -------------------------------------------


def main() -> None:
    """Entry point of the ``audiotok`` console script."""
    app()
