"""``python -m audiotok`` (and the ``audiotok`` console script) run the command-line interface.

This module imports nothing heavy before it can catch Ctrl-C, so an interrupt while the CLI
is still starting (importing typer, torch, ...) exits 130 with one line, not a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Import and run :func:`audiotok.cli.main`; Ctrl-C during start-up exits 130."""
    try:
        from audiotok.cli import main as cli_main
    except KeyboardInterrupt:
        import os

        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
        os._exit(130)  # not sys.exit: see audiotok.cli._exit_interrupted
    cli_main()


if __name__ == "__main__":
    main()
