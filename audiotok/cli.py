"""The ``audiotok`` command line: each command parses, calls one library function, prints.

Errors that a user can fix (missing or corrupt files, bad token files, mismatched models) are
raised as :class:`audiotok.errors.UserError` by the library and printed here as one line with
a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import typer

from audiotok import __version__

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


def main() -> None:
    """Entry point of the ``audiotok`` console script."""
    app()
