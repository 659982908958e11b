"""The console script answers --help and --version."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from typer.main import get_command

import audiotok


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "audiotok", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"audiotok {audiotok.__version__}"


COMMANDS = (
    "encode",
    "decode",
    "info",
    "eval",
    "train",
    "export",
    "tokenize",
    "generate",
    "eval-prior",
)


def test_help_lists_commands() -> None:
    """--help names every command, each with its summary line (the first docstring line)."""
    from audiotok.cli import app

    out = subprocess.run(
        [sys.executable, "-m", "audiotok", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},  # no wrapping
    )
    assert "Usage" in out.stdout
    registered = get_command(app).commands  # type: ignore[attr-defined]
    assert sorted(registered) == sorted(COMMANDS)  # a new command is added to this list too
    # the "Commands" section: one row per command, its name first
    section = out.stdout[out.stdout.index("Commands") :]
    listed = re.findall(r"^\W*([a-z-]+)\s{2,}\S", section, flags=re.M)
    assert listed == list(COMMANDS), section
    for name in COMMANDS:
        summary = (registered[name].help or "").strip().splitlines()[0]
        assert re.search(rf"\b{name}\s+{re.escape(summary)}", section), (name, summary)
