"""Fixtures for data tests: a tiny corpus folder with one corrupt file."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import write


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A folder of 6 readable files of different lengths/rates/freqs and one corrupt file."""
    root = tmp_path / "corpus"
    for i in range(6):
        write(
            root / f"sub{i % 2}" / f"f{i}.wav",
            0.3 + 0.2 * i,
            [16000, 22050, 24000][i % 3],
            freq=200 + 100 * i,
        )
    (root / "sub0" / "broken.flac").write_bytes(b"fLaC" + bytes(range(200)))
    return root
