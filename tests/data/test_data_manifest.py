"""Manifests, source listing and the by-file validation split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import write

from audiotok.data.manifest import (
    ManifestEntry,
    build_manifest,
    list_audio_files,
    load_entries,
    read_manifest,
    split_by_file,
    write_manifest,
)
from audiotok.errors import UserError


def test_folder_filelist_and_manifest_sources_agree(corpus: Path, tmp_path: Path) -> None:
    files = list_audio_files(corpus)
    assert len(files) == 7 and files == sorted(files)
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\n" + "\n".join(str(f.relative_to(tmp_path)) for f in files))
    out = tmp_path / "m" / "all.jsonl"
    entries = build_manifest(files, out)
    assert len(entries) == 6  # the corrupt file has no readable header
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert set(rows[0]) >= {"path", "sample_rate", "duration", "channels", "source"}
    assert {r["sample_rate"] for r in rows} == {16000, 22050, 24000}
    assert rows[0]["duration"] == pytest.approx(0.3, abs=1e-3)
    from_folder = [e.path for e in load_entries(corpus)]
    from_list = [e.path for e in load_entries(listing)]
    from_manifest = [e.path for e in read_manifest(out)]
    assert from_folder == from_list == [str(f) for f in files]
    assert from_manifest == [str(f) for f in files if f.name != "broken.flac"]


def test_relative_paths_resolve_against_manifest(tmp_path: Path) -> None:
    write(tmp_path / "data" / "a.wav")
    m = tmp_path / "data" / "m.jsonl"
    m.write_text(json.dumps({"path": "a.wav", "kind": "speech"}) + "\n")
    (e,) = load_entries(m)
    assert Path(e.path) == tmp_path / "data" / "a.wav" and e.extra == {"kind": "speech"}
    write_manifest([e], tmp_path / "data" / "copy.jsonl")
    assert json.loads((tmp_path / "data" / "copy.jsonl").read_text())["path"] == "a.wav"


def test_bad_manifest_line_is_a_user_error(tmp_path: Path) -> None:
    m = tmp_path / "m.jsonl"
    m.write_text('{"path": "a.wav"}\nnot json\n')
    with pytest.raises(UserError, match="line 2"):
        read_manifest(m)


def _entries() -> list[ManifestEntry]:
    out = []
    for f in range(200):
        kind = "music" if f < 10 else "speech"
        for seg in range(3):  # three crops/segments per source file
            out.append(ManifestEntry(f"/d/f{f}_{seg}.flac", source=f"src{f}", extra={"kind": kind}))
    return out


def test_split_by_file_keeps_sources_together_and_is_deterministic() -> None:
    entries = _entries()
    train, dev = split_by_file(entries, 0.1, seed=3)
    assert len(train) + len(dev) == len(entries)
    assert not {e.source for e in train} & {e.source for e in dev}
    assert 0.03 < len({e.source for e in dev}) / 200 < 0.2
    train2, dev2 = split_by_file(list(reversed(entries)), 0.1, seed=3)
    assert {e.path for e in dev2} == {e.path for e in dev}  # order does not matter
    _, dev_other = split_by_file(entries, 0.1, seed=4)
    assert {e.path for e in dev_other} != {e.path for e in dev}
    # adding files never moves existing ones
    more = entries + [ManifestEntry(f"/d/new{i}.flac") for i in range(50)]
    assert {e.path for e in split_by_file(more, 0.1, seed=3)[1]} >= {e.path for e in dev}


def test_split_stratified_covers_every_kind() -> None:
    entries = _entries()
    for seed in range(5):
        train, dev = split_by_file(entries, 0.05, seed=seed, stratify="kind")
        assert {e.extra["kind"] for e in dev} == {"music", "speech"}
        assert not {e.source for e in train} & {e.source for e in dev}
        assert len({e.source for e in dev if e.extra["kind"] == "speech"}) >= 9
