"""The corpus builder's archive parsing and per-unit conversion, on a synthetic queen.1c."""

from __future__ import annotations

import importlib.util
import io
import struct
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from data_fixtures import write

from audiotok.data.io import read_audio

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


def test_music_is_cut_into_segments_sharing_a_source(tmp_path: Path, monkeypatch) -> None:
    bc = _module()
    monkeypatch.setattr(bc, "MAX_SEGMENT_S", 0.4)
    track = write(tmp_path / "src" / "album" / "song.ogg", 1.0, 44100, channels=2)
    out = tmp_path / "out"
    rows = bc.job_files([str(track)], str(tmp_path / "src"), str(out), "music", "pkg", "pkg")
    assert len(rows) == 3 and len({r.source for r in rows}) == 1
    assert all(r.duration <= 0.4 + 1e-6 and r.channels == 1 for r in rows)
    assert abs(sum(r.duration for r in rows) - 1.0) < 0.05
    assert Path(rows[0].path).parent == out / "music" / "pkg"
