"""Where the corpus lives by default, and the advice a missing corpus gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiotok.data import load_entries
from audiotok.data.corpus import cache_dir, corpus_dir
from audiotok.errors import UserError


def test_cache_and_corpus_folders_follow_xdg_and_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDIOTOK_CORPUS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "audiotok"
    assert corpus_dir() == tmp_path / "home" / ".cache" / "audiotok" / "corpus"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert corpus_dir() == tmp_path / "xdg" / "audiotok" / "corpus"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid per the XDG spec
    assert cache_dir() == tmp_path / "home" / ".cache" / "audiotok"
    monkeypatch.setenv("AUDIOTOK_CORPUS", str(tmp_path / "mine"))
    assert corpus_dir() == tmp_path / "mine"
    monkeypatch.setenv("AUDIOTOK_CORPUS", "")  # empty means unset
    assert corpus_dir() == tmp_path / "home" / ".cache" / "audiotok" / "corpus"


def test_missing_corpus_says_how_to_build_it_or_use_other_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDIOTOK_CORPUS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    missing = tmp_path / "xdg" / "audiotok" / "corpus" / "train.jsonl"
    with pytest.raises(UserError) as info:
        load_entries(missing)
    message = str(info.value)
    assert message.startswith(f"data source not found: {missing} (")
    assert f"python recipes/data/build_corpus.py --out {missing.parent}" in message
    assert "AUDIOTOK_CORPUS" in message and "--set data.train=" in message
    assert "\n" not in message
    other = tmp_path / "elsewhere" / "train.jsonl"  # not the corpus: no corpus advice
    with pytest.raises(UserError) as info:
        load_entries(other)
    assert str(info.value) == f"data source not found: {other}"
