"""Build the speech + music training corpus of the bundled model from Debian packages.

Only packages allowed by the project's data rules are used (see recipes/data/README.md):

* speech: ``flight-of-the-amazon-queen`` (English voice acting; MP3 lines inside the
  ``queen.1c`` archive), ``fillets-ng-data-cs`` (Czech voice acting, Ogg Vorbis);
* music: ``warzone2100-music`` (Opus), ``wesnoth-1.16-music`` and ``planetblupi-music-ogg``
  (Ogg Vorbis), up to ``--music-hours`` per package, cut into segments of <= 30 s.

Steps: ``apt-get download`` -> ``dpkg-deb -x`` -> decode -> mono -> soxr 24 kHz -> 16-bit FLAC
under ``--out`` -> ``train.jsonl`` / ``dev.jsonl`` split by source file (5 % dev, at least one
speech and one music source in dev). Each unit of work records its manifest rows in
``<out>/.state/`` once its audio is written, so re-running skips finished work.

Usage::

    python recipes/data/build_corpus.py --out /work/cache/corpus [--jobs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from audiotok.data.io import read_audio, read_audio_bytes, resample, to_channels, write_audio
from audiotok.data.manifest import ManifestEntry, split_by_file, write_manifest
from audiotok.errors import UserError

SPEECH_PACKAGES = ["flight-of-the-amazon-queen", "fillets-ng-data-cs"]
MUSIC_PACKAGES = {
    "warzone2100-music": "usr/share/games/warzone2100/music",
    "wesnoth-1.16-music": "usr/share/games/wesnoth/1.16/data/core/music",
    "planetblupi-music-ogg": "usr/share/planetblupi/music",
}
QUEEN_ARCHIVE = "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
FILLETS_SOUND = "usr/share/games/fillets-ng/sound"
SAMPLE_RATE = 24000
MAX_SEGMENT_S = 30.0
QUEEN_CHUNK = 250  # speech lines per unit of work


def fetch_packages(names: list[str], download_dir: Path, extract_dir: Path) -> dict[str, Path]:
    """apt-get download + dpkg-deb -x each package (skipped when already done)."""
    download_dir.mkdir(parents=True, exist_ok=True)
    roots = {}
    for name in names:
        root = extract_dir / name
        roots[name] = root
        if (root / ".extracted").exists():
            continue
        debs = sorted(download_dir.glob(f"{name}_*.deb"))
        if not debs:
            print(f"downloading {name}", flush=True)
            cmd = ["apt-get", "download", name]
            if subprocess.run(cmd, cwd=download_dir).returncode != 0:
                subprocess.run(["apt-get", "update"], check=True)
                subprocess.run(cmd, cwd=download_dir, check=True)
            debs = sorted(download_dir.glob(f"{name}_*.deb"))
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
        (root / ".extracted").touch()
    return roots


def queen_table(archive: Path) -> list[tuple[str, int, int]]:
    """(name, offset, size) of every ``.SB`` (MP3) entry of a ``queen.1c`` resource archive.

    Layout: 'QTBL', 6-byte version, 2 pad bytes, 1 compression byte, uint16 BE count, then
    count x (12-byte name, 1-byte bundle, uint32 BE offset, uint32 BE size).
    """
    with open(archive, "rb") as f:
        head = f.read(15)
        if head[:4] != b"QTBL":
            raise UserError(f"not a queen.1c resource table: {archive}")
        (count,) = struct.unpack(">H", head[13:15])
        table = f.read(21 * count)
    out = []
    for i in range(count):
        row = table[21 * i : 21 * (i + 1)]
        name = row[:12].rstrip(b"\0").decode("ascii", "replace")
        offset, size = struct.unpack(">II", row[13:21])
        if name.upper().endswith(".SB"):
            out.append((name, offset, size))
    return out


def queen_speaker(name: str) -> str:
    """Approximate speaker id from a line name; see README.

    ``..xxxxJn`` lines are Joe (the hero), ``..xxxxPn`` lines are the person he talks to in
    dialogue file ``name[:2]`` (``JOE_*`` lines are Joe too), ``Cnn...`` lines are cutscenes;
    anything else keeps its prefix. Speaker ids are a heuristic, not ground truth.
    """
    stem = name.split(".")[0].upper()
    if len(stem) == 8 and stem[6] in "JP" and stem[7].isdigit():
        return "queen_joe" if stem[6] == "J" else f"queen_npc{stem[:2]}"
    if stem.startswith("JOE"):
        return "queen_joe"
    if stem.startswith("C"):
        return f"queen_cutscene{stem[1:3]}"
    return f"queen_{stem[:3]}"


def _entry(path: Path, wav_len: int, source: str, **extra) -> ManifestEntry:
    return ManifestEntry(str(path), SAMPLE_RATE, wav_len / SAMPLE_RATE, 1, source, extra)


def _convert(wav, sr):
    return resample(to_channels(wav, 1), sr, SAMPLE_RATE)


def job_queen(archive: str, lines: list[tuple[str, int, int]], out: str) -> list[ManifestEntry]:
    rows = []
    with open(archive, "rb") as f:
        for name, offset, size in lines:
            f.seek(offset)
            try:
                wav, sr = read_audio_bytes(f.read(size), name)
            except UserError as e:
                print(f"skip {e}", file=sys.stderr)
                continue
            y = _convert(wav, sr)
            dst = Path(out) / "speech" / "queen" / (name.split(".")[0] + ".flac")
            write_audio(dst, y, SAMPLE_RATE)
            rows.append(
                _entry(
                    dst,
                    y.shape[-1],
                    f"queen:{name}",
                    kind="speech",
                    dataset="flight-of-the-amazon-queen",
                    speaker=queen_speaker(name),
                    language="en",
                    orig_sample_rate=sr,
                )
            )
    return rows


def job_files(
    files: list[str], root: str, out: str, kind: str, dataset: str, sub: str
) -> list[ManifestEntry]:
    """Decode files; speech is one output per file, music is cut into <= 30 s segments."""
    rows = []
    for file in files:
        rel = Path(file).relative_to(root)
        try:
            wav, sr = read_audio(file)
        except UserError as e:
            print(f"skip {e}", file=sys.stderr)
            continue
        y = _convert(wav, sr)
        stem = "_".join(rel.with_suffix("").parts)
        source = f"{dataset}:{rel}"
        extra = {"kind": kind, "dataset": dataset, "orig_sample_rate": sr}
        if kind == "speech":
            extra.update(speaker=f"fillets_{rel.stem.split('-')[0]}", language="cs")
        n = max(1, math.ceil(y.shape[-1] / (MAX_SEGMENT_S * SAMPLE_RATE)))
        bounds = [round(i * y.shape[-1] / n) for i in range(n + 1)]
        for i in range(n):
            name = f"{stem}.flac" if n == 1 else f"{stem}_{i:03d}.flac"
            dst = Path(out) / kind / sub / name
            seg = y[:, bounds[i] : bounds[i + 1]]
            write_audio(dst, seg, SAMPLE_RATE)
            rows.append(_entry(dst, seg.shape[-1], source, **extra))
    return rows


def _run_job(job_id: str, out: str, fn, *args) -> tuple[str, list[dict]]:
    state = Path(out) / ".state" / f"{job_id}.json"
    if state.exists():
        return job_id, json.loads(state.read_text())
    rows = [e.to_dict() for e in fn(*args)]
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, state)
    return job_id, rows


def _select_tracks(files: list[Path], hours: float) -> list[Path]:
    """Deterministic subset (by path hash) of whole tracks up to ``hours``."""
    import soundfile as sf

    key = lambda p: hashlib.sha1(p.name.encode()).hexdigest()  # noqa: E731
    chosen, total = [], 0.0
    for p in sorted(files, key=key):
        if total >= hours * 3600:
            break
        try:
            info = sf.info(str(p))
        except Exception:
            continue
        chosen.append(p)
        total += info.frames / info.samplerate
    return sorted(chosen)


def plan_jobs(roots: dict[str, Path], out: Path, music_hours: float) -> list[tuple]:
    jobs: list[tuple] = []
    archive = roots["flight-of-the-amazon-queen"] / QUEEN_ARCHIVE
    lines = queen_table(archive)
    for i in range(0, len(lines), QUEEN_CHUNK):
        chunk = lines[i : i + QUEEN_CHUNK]
        jobs.append((f"queen_{i:05d}", job_queen, str(archive), chunk, str(out)))
    sound = roots["fillets-ng-data-cs"] / FILLETS_SOUND
    files = sorted(str(p) for p in sound.rglob("*.ogg"))
    for i in range(0, len(files), 200):
        args = (
            files[i : i + 200],
            str(sound),
            str(out),
            "speech",
            "fillets-ng-data-cs",
            "fillets_cs",
        )
        jobs.append((f"fillets_cs_{i:05d}", job_files, *args))
    for pkg, sub in MUSIC_PACKAGES.items():
        root = roots[pkg] / sub
        tracks = [p for p in root.rglob("*") if p.suffix.lower() in {".ogg", ".opus"}]
        for p in _select_tracks(tracks, music_hours):
            tag = hashlib.sha1(str(p.relative_to(root)).encode()).hexdigest()[:10]
            args = ([str(p)], str(root), str(out), "music", pkg, pkg)
            jobs.append((f"{pkg}_{tag}", job_files, *args))
    return jobs


def interleave_kinds(entries: list[ManifestEntry], seed: int) -> list[ManifestEntry]:
    """Round-robin over kinds, each in seeded hash order, so the first N dev files (which
    validation with ``max_files`` uses) mix speech and music instead of all speech."""
    by_kind: dict[str, list[ManifestEntry]] = defaultdict(list)
    for e in entries:
        by_kind[e.extra.get("kind", "")].append(e)
    for items in by_kind.values():
        items.sort(key=lambda e: hashlib.sha1(f"{seed}:{e.path}".encode()).hexdigest())
    out: list[ManifestEntry] = []
    queues = [by_kind[k] for k in sorted(by_kind)]
    for i in range(max(map(len, queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def summarize(train: list[ManifestEntry], dev: list[ManifestEntry]) -> str:
    table: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0, set()])
    for split, entries in (("train", train), ("dev", dev)):
        for e in entries:
            t = table[(e.extra.get("kind", "?"), split)]
            t[0] += e.duration / 3600
            t[1] += 1
            t[2].add(e.source)
    lines = [f"{'kind':8s} {'split':6s} {'hours':>7s} {'files':>7s} {'sources':>8s}"]
    for (kind, split), (h, n, src) in sorted(table.items()):
        lines.append(f"{kind:8s} {split:6s} {h:7.2f} {n:7d} {len(src):8d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/work/cache/corpus"))
    ap.add_argument("--download-dir", type=Path, default=None, help="default: OUT/_src/debs")
    ap.add_argument("--extract-dir", type=Path, default=None, help="default: OUT/_src/extract")
    ap.add_argument("--music-hours", type=float, default=1.2, help="per music package")
    ap.add_argument("--dev-fraction", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    out = args.out.resolve()
    if (Path(__file__).resolve().parents[2] / ".git").exists() and out.is_relative_to(
        Path(__file__).resolve().parents[2]
    ):
        sys.exit("error: --out must be outside the git repository")
    src = out / "_src"
    roots = fetch_packages(
        SPEECH_PACKAGES + list(MUSIC_PACKAGES),
        args.download_dir or src / "debs",
        args.extract_dir or src / "extract",
    )
    jobs = plan_jobs(roots, out, args.music_hours)
    t0 = time.time()
    rows: dict[str, list[dict]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_run_job, job[0], str(out), *job[1:]) for job in jobs]
        for i, fut in enumerate(futures, 1):
            job_id, r = fut.result()
            rows[job_id] = r
            print(
                f"[{i}/{len(jobs)}] {job_id}: {len(r)} files, {time.time() - t0:.0f}s", flush=True
            )
    entries = [ManifestEntry.from_dict(r) for job in jobs for r in rows[job[0]]]
    train, dev = split_by_file(entries, args.dev_fraction, args.seed, stratify="kind")
    write_manifest(train, out / "train.jsonl")
    write_manifest(interleave_kinds(dev, args.seed), out / "dev.jsonl")
    summary = summarize(train, dev)
    (out / "SUMMARY.txt").write_text(summary + "\n")
    print(summary)


if __name__ == "__main__":
    main()
