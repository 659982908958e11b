"""The console script answers --help and --version."""

from __future__ import annotations

import subprocess
import sys

import audiotok


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "audiotok", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"audiotok {audiotok.__version__}"


def test_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "audiotok", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage" in out.stdout
