"""Build the speech + music training corpus of the bundled model from Debian packages.

Only packages allowed by the project's data rules are used (see recipes/data/README.md and
the ``SOURCES`` table below):

* speech: ``flight-of-the-amazon-queen`` (English voice acting; MP3 lines inside the
  ``queen.1c`` archive), ``fillets-ng-data-cs`` (Czech voice acting), the asterisk IVR prompts
  (``asterisk-core-sounds-{en,es,it}-wav``, ``asterisk-prompt-it-menardi-wav``; 8 kHz),
  ``klettres-data`` and ``ktuberling-data`` (letters and words, ~30 languages) and the
  ``hedgewars-data`` voices;
* music: ``warzone2100-music``, ``wesnoth-1.16-music``, ``planetblupi-music-ogg``,
  ``ufoai-music`` and ``nexuiz-music`` (Ogg inside zip ``.pk3`` archives), ``hedgewars-data``,
  ``colobot-common-sounds``, ``supertuxkart-data``, ``freedroidrpg-data``,
  ``fillets-ng-data`` and ``hyperrogue-music``: every track (``--music-hours`` caps each
  package), cut into segments of <= 30 s.

Steps: ``apt-get download`` -> ``dpkg-deb -x`` -> decode -> mono -> soxr 24 kHz -> 16-bit FLAC
under ``--out`` -> ``train.jsonl`` / ``dev.jsonl`` split by source file (5 % dev, at least one
speech and one music source in dev) -> ``SUMMARY.txt`` (hours per kind, package and split).
Byte-identical recordings (the same file shipped twice) are kept once. Each unit of work
records its manifest rows in ``<out>/.state/`` once its audio is written, so re-running skips
finished work. A package that cannot be downloaded is skipped with one warning.

Usage::

    python recipes/data/build_corpus.py [--out DIR] [--jobs 2]

``--out`` defaults to where the recipes look: ``$AUDIOTOK_CORPUS`` if set, else the user's
cache folder, ``$XDG_CACHE_HOME/audiotok/corpus`` or ``~/.cache/audiotok/corpus``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import math
import os
import struct
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from audiotok.audio_io import read_audio, read_audio_bytes, resample, to_channels, write_audio
from audiotok.data.corpus import corpus_dir
from audiotok.data.manifest import ManifestEntry, split_by_file, write_manifest
from audiotok.errors import UserError

SAMPLE_RATE = 24000
MAX_SEGMENT_S = 30.0
QUEEN_PACKAGE = "flight-of-the-amazon-queen"
QUEEN_ARCHIVE = "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
QUEEN_CHUNK = 250  # speech lines per unit of work
SPEECH_CHUNK = 200  # speech files per unit of work (music: one track per unit)
AUDIO_SUFFIXES = {".ogg", ".opus", ".wav", ".mp3", ".flac"}

Rule = str | Callable[[PurePosixPath], str] | None


@dataclass(frozen=True)
class Source:
    """Where one package keeps the recordings of one kind.

    ``glob`` selects files below ``root`` (a folder of the extracted package) or, with
    ``archive``, members of the zip ``root/archive``; only audio suffixes count and ``exclude``
    patterns (on the path relative to ``root``) drop files. ``language`` and ``speaker`` are
    fixed strings, templates over the relative path's parts (``"{0}"`` is its first folder),
    or functions of that path. ``tag`` names the output folder and the units of work.
    """

    package: str
    kind: str  # "speech" or "music"
    root: str
    glob: str = "**/*"
    archive: str | None = None
    exclude: tuple[str, ...] = ()
    language: Rule = None
    speaker: Rule = None
    tag: str | None = None

    @property
    def name(self) -> str:
        return self.tag or self.package


def _fillets_speaker(rel: PurePosixPath) -> str:
    return f"fillets_{rel.stem.split('-')[0]}"


def _lang_dir(rel: PurePosixPath) -> str:
    """Language from a locale folder name: ``pt_BR`` -> ``pt-BR``, ``sr@latin`` -> ``sr``."""
    return rel.parts[0].split("@")[0].replace("_", "-")


def _hedgewars_language(rel: PurePosixPath) -> str:
    """``Default_pl`` and ``Russian_pl`` speak Polish, ``Default_ru`` Russian, ...; the rest
    (British, Pirate, Robot, Russian, ...) are taken as accented English (not checked by ear)."""
    voice = rel.parts[0]
    return voice.rsplit("_", 1)[1] if "_" in voice else "en"


AST = "usr/share/asterisk/sounds"
HW = "usr/share/games/hedgewars/Data"
SOURCES = [
    # speech (flight-of-the-amazon-queen is read from its queen.1c archive, see job_queen)
    Source(
        "fillets-ng-data-cs",
        "speech",
        "usr/share/games/fillets-ng/sound",
        "**/*.ogg",
        language="cs",
        speaker=_fillets_speaker,
        tag="fillets_cs",
    ),
    *(
        Source(
            pkg,
            "speech",
            f"{AST}/{voice}",
            exclude=("silence/*",),
            language=lang,
            speaker=f"asterisk_{voice}",
        )
        for pkg, voice, lang in [
            ("asterisk-core-sounds-en-wav", "en_US_f_Allison", "en"),
            ("asterisk-core-sounds-es-wav", "es_MX_f_Allison", "es"),
            ("asterisk-core-sounds-it-wav", "it_IT_m_Carlo", "it"),
            ("asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi", "it"),
        ]
    ),
    Source(
        "klettres-data",
        "speech",
        "usr/share/klettres",
        "*/*/*",
        language=_lang_dir,
        speaker="klettres_{0}",
    ),
    Source(
        "ktuberling-data",
        "speech",
        "usr/share/ktuberling/sounds",
        "*/*",
        language=_lang_dir,
        speaker="ktuberling_{0}",
    ),
    Source(
        "hedgewars-data",
        "speech",
        f"{HW}/Sounds/voices",
        "*/*",
        language=_hedgewars_language,
        speaker="hedgewars_{0}",
    ),
    # boswars-data is left out: its unit sounds mix voice lines and effects in one folder
    # with no naming rule that tells them apart.
    # music
    Source("warzone2100-music", "music", "usr/share/games/warzone2100/music"),
    Source("wesnoth-1.16-music", "music", "usr/share/games/wesnoth/1.16/data/core/music"),
    Source("planetblupi-music-ogg", "music", "usr/share/planetblupi/music"),
    Source("ufoai-music", "music", "usr/share/games/ufoai/base", "music/*", "0music.pk3"),
    Source("hedgewars-data", "music", f"{HW}/Music"),
    Source("nexuiz-music", "music", "usr/share/games/nexuiz/data", "sound/*", "music.pk3"),
    Source("colobot-common-sounds", "music", "usr/share/games/colobot/music"),
    Source("supertuxkart-data", "music", "usr/share/games/supertuxkart/data/music"),
    Source("freedroidrpg-data", "music", "usr/share/freedroidrpg/data/sound/music"),
    Source("fillets-ng-data", "music", "usr/share/games/fillets-ng/music"),
    Source("hyperrogue-music", "music", "usr/share/hyperrogue/music"),
]
PACKAGES = list(dict.fromkeys([QUEEN_PACKAGE] + [s.package for s in SOURCES]))


def fetch_packages(names: list[str], download_dir: Path, extract_dir: Path) -> dict[str, Path]:
    """apt-get download + dpkg-deb -x each package (skipped when already done).

    A package that cannot be downloaded or extracted is left out with one warning line.
    """
    download_dir.mkdir(parents=True, exist_ok=True)
    roots = {}
    updated = False
    for name in names:
        root = extract_dir / name
        if (root / ".extracted").exists():
            roots[name] = root
            continue
        debs = sorted(download_dir.glob(f"{name}_*.deb"))
        if not debs:
            print(f"downloading {name}", flush=True)
            cmd = ["apt-get", "download", name]
            quiet = {"cwd": download_dir, "capture_output": True}
            if subprocess.run(cmd, **quiet).returncode != 0 and not updated:
                subprocess.run(["apt-get", "update"], capture_output=True)
                updated = True
                subprocess.run(cmd, **quiet)
            debs = sorted(download_dir.glob(f"{name}_*.deb"))
        if not debs:
            print(f"warning: cannot download {name}; skipping it", file=sys.stderr, flush=True)
            continue
        root.mkdir(parents=True, exist_ok=True)
        cmd = ["dpkg-deb", "-x", str(debs[-1]), str(root)]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            print(f"warning: cannot extract {debs[-1].name}; skipping it", file=sys.stderr)
            continue
        (root / ".extracted").touch()
        roots[name] = root
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
                    dataset=QUEEN_PACKAGE,
                    speaker=queen_speaker(name),
                    language="en",
                    orig_sample_rate=sr,
                )
            )
    return rows


@dataclass(frozen=True)
class Item:
    """One recording: ``file`` (or member ``member`` of the zip ``file``), the output ``stem``
    and the manifest ``source`` id and extra fields (kind, dataset, speaker, language)."""

    file: str
    member: str | None
    stem: str
    source: str
    extra: dict

    def read(self):
        if self.member is None:
            return read_audio(self.file)
        with zipfile.ZipFile(self.file) as zf:
            return read_audio_bytes(zf.read(self.member), f"{self.file}:{self.member}")


def job_items(items: list[Item], out: str, kind: str, sub: str) -> list[ManifestEntry]:
    """Decode recordings; speech is one output per file, music is cut into <= 30 s segments."""
    rows = []
    for item in items:
        try:
            wav, sr = item.read()
        except UserError as e:
            print(f"skip {e}", file=sys.stderr)
            continue
        y = _convert(wav, sr)
        extra = {**item.extra, "orig_sample_rate": sr}
        n = max(1, math.ceil(y.shape[-1] / (MAX_SEGMENT_S * SAMPLE_RATE)))
        bounds = [round(i * y.shape[-1] / n) for i in range(n + 1)]
        for i in range(n):
            name = f"{item.stem}.flac" if n == 1 else f"{item.stem}_{i:03d}.flac"
            dst = Path(out) / kind / sub / name
            seg = y[:, bounds[i] : bounds[i + 1]]
            write_audio(dst, seg, SAMPLE_RATE)
            rows.append(_entry(dst, seg.shape[-1], item.source, **extra))
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


def _rule(rule: Rule, rel: PurePosixPath) -> str | None:
    if rule is None or callable(rule):
        return rule(rel) if rule else None
    return rule.format(*rel.parts)


def list_items(src: Source, package_root: Path) -> list[tuple[str, str | None, PurePosixPath]]:
    """``(file, zip member or None, path relative to the source root)`` of a source, sorted."""
    base = package_root / src.root
    if src.archive:
        with zipfile.ZipFile(base / src.archive) as zf:
            names = [n for n in zf.namelist() if fnmatch.fnmatch(n, src.glob)]
        found = [(str(base / src.archive), n, PurePosixPath(n)) for n in names]
    else:
        found = [(str(p), None, PurePosixPath(p.relative_to(base))) for p in base.glob(src.glob)]
    return sorted(
        (file, member, rel)
        for file, member, rel in found
        if rel.suffix.lower() in AUDIO_SUFFIXES
        and (member is not None or Path(file).is_file())
        and not any(fnmatch.fnmatch(str(rel), pat) for pat in src.exclude)
    )


def _content_key(file: str, member: str | None) -> str:
    if member is not None:
        with zipfile.ZipFile(file) as zf:
            info = zf.getinfo(member)
        return f"zip:{info.CRC:08x}:{info.file_size}"
    return hashlib.sha1(Path(file).read_bytes()).hexdigest()


def _duration(file: str, member: str | None) -> float:
    import soundfile as sf

    if member is None:
        info = sf.info(file)
    else:
        with zipfile.ZipFile(file) as zf:
            info = sf.info(io.BytesIO(zf.read(member)))
    return info.frames / info.samplerate


def _select_tracks(tracks: list, hours: float | None) -> list:
    """Deterministic subset (by file-name hash) of whole tracks up to ``hours`` (None: all)."""
    if hours is None:
        return tracks
    key = lambda t: hashlib.sha1(t[2].name.encode()).hexdigest()  # noqa: E731
    chosen, total = [], 0.0
    for t in sorted(tracks, key=key):
        if total >= hours * 3600:
            break
        try:
            total += _duration(t[0], t[1])
        except Exception:
            continue
        chosen.append(t)
    return sorted(chosen)


def _track_tag(item: Item) -> str:
    """Unit id of a music track: hash of its path below the source root."""
    return hashlib.sha1(item.source.split(":", 1)[1].encode()).hexdigest()[:10]


def plan_source(
    src: Source, package_root: Path, out: Path, music_hours: float | None
) -> tuple[list[tuple], list[tuple[str, str]]]:
    """Units of work of one table row, and ``(content key, source id)`` of its recordings.

    Units depend only on the package's listing (not on other packages), so their state in
    ``OUT/.state`` stays valid when the table grows.
    """
    if not (package_root / src.root).exists():
        print(f"warning: {src.package} has no {src.root}; skipping it", file=sys.stderr)
        return [], []
    found = list_items(src, package_root)
    if src.kind == "music":
        found = _select_tracks(found, music_hours)
    items, keys, stems = [], [], set()
    for file, member, rel in found:
        stem = "_".join(rel.with_suffix("").parts)
        if stem in stems:  # same name, other format
            stem = "_".join(rel.parts).replace(".", "_")
        stems.add(stem)
        extra = {"kind": src.kind, "dataset": src.package}
        for field in ("speaker", "language"):
            value = _rule(getattr(src, field), rel)
            if value is not None:
                extra[field] = value
        items.append(Item(file, member, stem, f"{src.package}:{rel}", extra))
        keys.append((_content_key(file, member), items[-1].source))
    args = (str(out), src.kind, src.name)
    if src.kind == "music":
        return [(f"{src.name}_{_track_tag(it)}", job_items, [it], *args) for it in items], keys
    jobs = [
        (f"{src.name}_{i:05d}", job_items, items[i : i + SPEECH_CHUNK], *args)
        for i in range(0, len(items), SPEECH_CHUNK)
    ]
    return jobs, keys


def plan_jobs(
    roots: dict[str, Path], out: Path, music_hours: float | None
) -> tuple[list[tuple], set[str]]:
    """All units of work, and the source ids of byte-identical copies of an earlier recording
    (in table order), which the manifests leave out."""
    jobs: list[tuple] = []
    if QUEEN_PACKAGE in roots:
        archive = roots[QUEEN_PACKAGE] / QUEEN_ARCHIVE
        lines = queen_table(archive)
        for i in range(0, len(lines), QUEEN_CHUNK):
            chunk = lines[i : i + QUEEN_CHUNK]
            jobs.append((f"queen_{i:05d}", job_queen, str(archive), chunk, str(out)))
    seen: set[str] = set()
    copies: set[str] = set()
    for src in SOURCES:
        if src.package in roots:
            src_jobs, keys = plan_source(src, roots[src.package], out, music_hours)
            jobs += src_jobs
            for key, source in keys:
                if key in seen:
                    copies.add(source)
                seen.add(key)
    return jobs, copies


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
    """Hours, files and source recordings per kind and split, then per package and split."""
    lines = []
    for field in ("kind", "dataset"):
        table: dict[tuple[str, str], list] = defaultdict(lambda: [0.0, 0, set()])
        for split, entries in (("train", train), ("dev", dev)):
            for e in entries:
                t = table[(e.extra.get(field, "?"), split)]
                t[0] += e.duration / 3600
                t[1] += 1
                t[2].add(e.source)
        width = max(8, *(len(k) for k, _ in table))
        if lines:
            lines.append("")
        lines.append(f"{field:{width}s} {'split':6s} {'hours':>7s} {'files':>7s} {'sources':>8s}")
        for (key, split), (h, n, src) in sorted(table.items()):
            lines.append(f"{key:{width}s} {split:6s} {h:7.2f} {n:7d} {len(src):8d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=corpus_dir(),
        help="default: %(default)s ($AUDIOTOK_CORPUS, else the cache folder)",
    )
    ap.add_argument("--download-dir", type=Path, default=None, help="default: OUT/_src/debs")
    ap.add_argument("--extract-dir", type=Path, default=None, help="default: OUT/_src/extract")
    ap.add_argument(
        "--music-hours", type=float, default=None, help="cap per music package (default: all)"
    )
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
    t0 = time.time()
    roots = fetch_packages(
        PACKAGES, args.download_dir or src / "debs", args.extract_dir or src / "extract"
    )
    jobs, copies = plan_jobs(roots, out, args.music_hours)
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
    entries = [e for e in entries if e.source not in copies]
    print(f"left out {len(copies)} byte-identical copies", flush=True)
    train, dev = split_by_file(entries, args.dev_fraction, args.seed, stratify="kind")
    write_manifest(train, out / "train.jsonl")
    write_manifest(interleave_kinds(dev, args.seed), out / "dev.jsonl")
    summary = summarize(train, dev)
    (out / "SUMMARY.txt").write_text(summary + "\n")
    print(summary)
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
