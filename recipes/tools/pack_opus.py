"""Pack part of a corpus as Opus under a size budget, to carry it to a machine that can only
receive a few tens of MB (a lent GPU), and unpack it there into 16-bit WAV and a manifest.

Usage::

    # here: a random selection of train.jsonl, by kind, until each kind's share of the budget
    python recipes/tools/pack_opus.py pack CORPUS/train.jsonl OUT/train --mb 24 \\
        --shares speech=2 music=1 [--kbps 24] [--seed 0] [--jobs 2]
    # there: decode every .opus into WAV at the manifest's rate (soundfile + soxr), in parallel
    python recipes/tools/pack_opus.py unpack OUT/train DEST/train

``pack`` writes ``NAME.opus`` files (``opusenc``, from Debian's ``opus-tools``) and
``manifest.jsonl`` (the corpus rows, ``path`` pointing at the ``.opus``, ``orig_path`` at the
source). Files are taken in a seeded random order per kind, and a file that would pass its
kind's budget is skipped, so the result stays under ``--mb``. ``unpack`` writes
``DEST/NAME.wav`` and ``DEST/manifest.jsonl`` (with ``path`` to the WAV) that ``audiotok
train`` reads like the corpus. Opus at 24 kbps is not transparent: what is trained on it
learns a little of its coding noise, so use it for a short burst, not a whole training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any


def _encode(job: tuple[str, str, int]) -> int:
    src, dst, kbps = job
    tmp = dst + ".part"
    cmd = ["opusenc", "--quiet", "--bitrate", str(kbps), "--comp", "10", src, tmp]
    subprocess.run(cmd, check=True)
    os.replace(tmp, dst)
    return os.path.getsize(dst)


def pack(args: argparse.Namespace) -> None:
    manifest = Path(args.manifest)
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    shares = {k: float(v) for k, v in (s.split("=", 1) for s in args.shares)}
    total = sum(shares.values())
    budget = {k: args.mb * 1e6 * v / total for k, v in shares.items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    # ~kbps/8 kB per second plus ~0.5 kB of Ogg headers: pick files to fill each budget
    chosen: list[dict[str, Any]] = []
    used = dict.fromkeys(shares, 0.0)
    for row in rows:
        kind = row.get("kind")
        if kind not in shares:
            continue
        size = row["duration"] * args.kbps * 125 + 500
        if used[kind] + size > budget[kind]:
            continue
        used[kind] += size
        chosen.append(row)
    jobs = []
    for row in chosen:
        name = hashlib.sha1(row["path"].encode()).hexdigest()[:16] + ".opus"
        jobs.append((str(manifest.parent / row["path"]), str(out / name), args.kbps))
        row["orig_path"], row["path"] = row["path"], name
    with ProcessPoolExecutor(args.jobs) as pool:
        sizes = list(pool.map(_encode, jobs, chunksize=16))
    with open(out / "manifest.jsonl", "w") as f:
        for row in chosen:
            f.write(json.dumps(row) + "\n")
    hours = {k: sum(r["duration"] for r in chosen if r["kind"] == k) / 3600 for k in shares}
    print(
        f"packed {len(chosen)} files, {sum(sizes) / 1e6:.1f} MB at {args.kbps} kbps: "
        + ", ".join(f"{k} {h:.2f} h" for k, h in hours.items())
    )


def _decode(job: tuple[str, str, int]) -> None:
    import numpy as np
    import soundfile as sf
    import soxr

    src, dst, rate = job
    wav, sr = sf.read(src, dtype="float32", always_2d=True)
    wav = wav.mean(axis=1)
    if sr != rate:
        wav = soxr.resample(wav, sr, rate, quality="HQ")
    sf.write(dst, np.clip(wav, -1.0, 1.0), rate, subtype="PCM_16")


def unpack(args: argparse.Namespace) -> None:
    src, dest = Path(args.packed), Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in (src / "manifest.jsonl").read_text().splitlines() if x]
    jobs = []
    for row in rows:
        wav = Path(row["path"]).with_suffix(".wav").name
        jobs.append((str(src / row["path"]), str(dest / wav), int(row["sample_rate"])))
        row["path"] = wav
    with ProcessPoolExecutor(args.jobs) as pool:
        list(pool.map(_decode, jobs, chunksize=8))
    with open(dest / "manifest.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"unpacked {len(rows)} files to {dest}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("manifest")
    p.add_argument("out")
    p.add_argument("--mb", type=float, required=True)
    p.add_argument("--shares", nargs="+", default=["speech=2", "music=1"])
    p.add_argument("--kbps", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    u = sub.add_parser("unpack")
    u.add_argument("packed")
    u.add_argument("dest")
    u.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    (pack if args.cmd == "pack" else unpack)(args)


if __name__ == "__main__":
    sys.exit(main())
