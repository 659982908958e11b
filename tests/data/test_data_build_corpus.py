"""The corpus builder: queen.1c parsing, per-unit conversion and the table of sources, on
synthetic packages made in tmp_path (offline: the download step is replaced)."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
from data_fixtures import write

from audiotok.audio_io import read_audio

SCRIPT = Path(__file__).resolve().parents[2] / "recipes" / "data" / "build_corpus.py"


def _module():
    spec = importlib.util.spec_from_file_location("build_corpus", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["build_corpus"] = mod  # process pools pickle functions by module name
    spec.loader.exec_module(mod)
    return mod


def _mp3(seconds: float) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(seconds * 11025)) / 11025
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 11025, format="MP3")
    return buf.getvalue()


def _archive(path: Path, files: dict[str, bytes]) -> None:
    header = b"QTBL" + b"CEM10\0" + b"\0\0" + b"\x01" + struct.pack(">H", len(files))
    table, blobs = b"", b""
    offset = len(header) + 21 * len(files)
    for name, data in files.items():
        table += name.encode().ljust(12, b"\0") + b"\x01" + struct.pack(">II", offset, len(data))
        offset += len(data)
        blobs += data
    path.write_bytes(header + table + blobs)


def test_queen_archive_lines_become_24k_flac(tmp_path: Path) -> None:
    bc = _module()
    arc = tmp_path / "queen.1c"
    _archive(arc, {"020006J1.SB": _mp3(0.5), "ROOM.BBK": b"x" * 50, "020006P1.SB": _mp3(0.3)})
    lines = bc.queen_table(arc)
    assert [n for n, _, _ in lines] == ["020006J1.SB", "020006P1.SB"]
    rows = bc.job_queen(str(arc), lines, str(tmp_path / "out"))
    assert [r.extra["speaker"] for r in rows] == ["queen_joe", "queen_npc02"]
    wav, sr = read_audio(rows[0].path)
    assert sr == 24000 and wav.shape[0] == 1 and abs(rows[0].duration - 0.5) < 0.1
    assert rows[0].extra["orig_sample_rate"] == 11025 and rows[0].source == "queen:020006J1.SB"


def _items(bc, src, root: Path) -> list:
    jobs, _ = bc.plan_source(src, root, root / "unused", None)
    return [it for job in jobs for it in job[2]]


def test_music_is_cut_into_segments_sharing_a_source(tmp_path: Path, monkeypatch) -> None:
    bc = _module()
    monkeypatch.setattr(bc, "MAX_SEGMENT_S", 0.4)
    write(tmp_path / "pkg" / "music" / "album" / "song.ogg", 1.0, 44100, channels=2)
    items = _items(bc, bc.Source("pkg", "music", "music"), tmp_path / "pkg")
    out = tmp_path / "out"
    rows = bc.job_items(items, str(out), "music", "pkg")
    assert len(rows) == 3 and {r.source for r in rows} == {"pkg:album/song.ogg"}
    assert all(r.duration <= 0.4 + 1e-6 and r.channels == 1 for r in rows)
    assert abs(sum(r.duration for r in rows) - 1.0) < 0.05
    assert Path(rows[0].path).parent == out / "music" / "pkg"
    assert rows[0].extra == {"kind": "music", "dataset": "pkg", "orig_sample_rate": 44100}


def _fake_packages(tmp_path: Path) -> Path:
    """A speech package with per-language WAV folders (one file twice, one silence folder to
    exclude) and a music package whose Ogg tracks sit in a zip .pk3."""
    root = tmp_path / "extract"
    voices = root / "speechpkg" / "usr" / "share" / "voices"
    for j, lang in enumerate(("de", "pt_BR")):
        for i in range(3):
            write(voices / lang / f"w{i}.wav", 0.2 + 0.05 * i, 8000, freq=300 + 50 * i + 25 * j)
    shutil.copy(voices / "de" / "w0.wav", voices / "pt_BR" / "copy.wav")
    write(voices / "de" / "silence" / "s.wav", 0.2, 8000)
    (voices / "de" / "notes.txt").write_text("not audio")
    song = io.BytesIO()
    sf.write(song, np.zeros((44100, 2), np.float32), 44100, format="OGG")
    pk3 = root / "musicpkg" / "data" / "music.pk3"
    pk3.parent.mkdir(parents=True)
    with zipfile.ZipFile(pk3, "w") as zf:
        zf.writestr("sound/track.ogg", song.getvalue())
        zf.writestr("sound/readme.txt", "x")
        zf.writestr("maps/other.ogg", song.getvalue())
    return root


def test_table_sources_build_manifests_offline(tmp_path: Path, monkeypatch, capsys) -> None:
    bc = _module()
    monkeypatch.setattr(bc, "MAX_SEGMENT_S", 0.4)
    table = [
        bc.Source(
            "speechpkg",
            "speech",
            "usr/share/voices",
            "*/**/*",
            exclude=("*/silence/*",),
            language=bc._lang_dir,
            speaker="v_{0}",
        ),
        bc.Source("musicpkg", "music", "data", "sound/*", archive="music.pk3"),
        bc.Source("musicpkg", "music", "not/there"),
    ]
    monkeypatch.setattr(bc, "SOURCES", table)
    monkeypatch.setattr(bc, "PACKAGES", ["speechpkg", "musicpkg", "gone"])
    extract = _fake_packages(tmp_path)
    fetched = []

    def fake_fetch(names, download_dir, extract_dir):
        fetched.append(list(names))
        return {n: extract / n for n in names if (extract / n).exists()}

    monkeypatch.setattr(bc, "fetch_packages", fake_fetch)
    out = tmp_path / "out"
    bc.main(["--out", str(out), "--jobs", "1", "--dev-fraction", "0.3"])
    assert fetched == [["speechpkg", "musicpkg", "gone"]]
    assert "musicpkg has no not/there" in capsys.readouterr().err
    rows = [
        json.loads(line)
        for name in ("train.jsonl", "dev.jsonl")
        for line in (out / name).read_text().splitlines()
    ]
    speech = sorted((r for r in rows if r["kind"] == "speech"), key=lambda r: r["source"])
    music = [r for r in rows if r["kind"] == "music"]
    # six words (the byte-identical copy and the silence folder are left out)
    assert [r["source"] for r in speech] == [
        f"speechpkg:{lang}/w{i}.wav" for lang in ("de", "pt_BR") for i in range(3)
    ]
    assert {(r["language"], r["speaker"]) for r in speech} == {("de", "v_de"), ("pt-BR", "v_pt_BR")}
    assert all(r["orig_sample_rate"] == 8000 and r["sample_rate"] == 24000 for r in speech)
    # the 1 s zipped track, cut into 3 segments of one source; other zip members ignored
    assert len(music) == 3 and {r["source"] for r in music} == {"musicpkg:sound/track.ogg"}
    assert all(r["orig_sample_rate"] == 44100 and r["dataset"] == "musicpkg" for r in music)
    for r in rows:
        wav, sr = read_audio(out / r["path"])
        assert sr == 24000 and wav.shape[0] == 1
        assert sf.info(str(out / r["path"])).subtype == "PCM_16"
    # split by source file: all segments of the track on one side
    dev = {json.loads(line)["source"] for line in (out / "dev.jsonl").read_text().splitlines()}
    train = {json.loads(line)["source"] for line in (out / "train.jsonl").read_text().splitlines()}
    assert dev and not dev & train
    summary = (out / "SUMMARY.txt").read_text()
    assert "speechpkg" in summary and "musicpkg" in summary
    # a rerun finds every unit in OUT/.state and redoes nothing
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}
    bc.main(["--out", str(out), "--jobs", "1", "--dev-fraction", "0.3"])
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")} == before


def test_a_package_that_cannot_be_downloaded_is_skipped(tmp_path: Path, monkeypatch, capsys):
    bc = _module()

    class Failed:
        returncode = 100

    monkeypatch.setattr(bc.subprocess, "run", lambda *a, **k: Failed())
    roots = bc.fetch_packages(["nope"], tmp_path / "debs", tmp_path / "extract")
    assert roots == {}
    assert capsys.readouterr().err.strip() == "warning: cannot download nope; skipping it"
