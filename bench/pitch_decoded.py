"""Pitch of the decoded audio: does ``decode(encode(x))`` keep the speaker's f0?

For held-out speech files, pYIN (librosa, 60-500 Hz) runs on the input and on each model's
reconstruction at the same rate; per model it reports, over the files' frames:

* GPE, gross pitch error: among frames voiced in both, the share whose f0 is off by > 20 %;
* VDE, voicing decision error: the share of frames where the two disagree on voiced;
* the median relative f0 error over frames voiced in both.

Usage::

    python bench/pitch_decoded.py MANIFEST --model A --model B [--max-files 24] [--kbps 6]

``MANIFEST``: a JSONL manifest whose ``kind == "speech"`` rows are used (paths relative to
it), e.g. ``recipes/data/dev_eval.jsonl`` copied into the corpus folder. ``--model``: an
exported model folder or a bundled name; every model runs on the same files in one run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _pyin(wav: np.ndarray, sr: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    f0, voiced, _ = librosa.pyin(
        wav, fmin=60.0, fmax=500.0, sr=sr, frame_length=4 * hop * 2, hop_length=hop
    )
    return np.nan_to_num(f0), voiced.astype(bool)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--max-files", type=int, default=24)
    ap.add_argument("--kbps", type=float, default=6.0)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    args = ap.parse_args(argv)

    import torch

    import audiotok
    from audiotok.audio_io import load_audio

    torch.set_num_threads(1)
    rows = [json.loads(x) for x in args.manifest.read_text().splitlines() if x.strip()]
    files = [args.manifest.parent / r["path"] for r in rows if r.get("kind") == "speech"]
    files = files[: args.max_files]
    toks = {m: audiotok.load(m) for m in args.model}
    stats = {m: {"both": 0, "gross": 0, "frames": 0, "vde": 0, "errors": []} for m in toks}
    for path in files:
        first = next(iter(toks.values()))
        sr = first.sample_rate
        wav = load_audio(path, sample_rate=sr, channels=1).reshape(-1)
        wav = wav[: int(args.max_seconds * sr)].astype(np.float32)
        hop = 128
        f0_ref, v_ref = _pyin(wav, sr, hop)
        for name, tok in toks.items():
            codes = tok.encode(wav, sample_rate=sr, bitrate=args.kbps)
            out = tok.decode(codes, length=len(wav)).reshape(-1).numpy()
            f0, v = _pyin(out, sr, hop)
            n = min(len(f0), len(f0_ref))
            both = v[:n] & v_ref[:n]
            rel = np.abs(f0[:n][both] / f0_ref[:n][both] - 1.0)
            s = stats[name]
            s["both"] += int(both.sum())
            s["gross"] += int((rel > 0.2).sum())
            s["frames"] += n
            s["vde"] += int((v[:n] != v_ref[:n]).sum())
            s["errors"].extend(rel.tolist())
    print(f"{len(files)} speech files, {args.kbps:g} kbps, pYIN 60-500 Hz, hop {hop}")
    print("| model | id | GPE % | VDE % | median f0 error % |")
    print("|---|---|---|---|---|")
    for name, s in stats.items():
        gpe = 100 * s["gross"] / max(s["both"], 1)
        vde = 100 * s["vde"] / max(s["frames"], 1)
        med = 100 * float(np.median(s["errors"])) if s["errors"] else float("nan")
        print(f"| {name} | {toks[name].model_id} | {gpe:.1f} | {vde:.1f} | {med:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
