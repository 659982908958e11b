"""Where a codec loses ViSQOL: similarity per gammatone band, against Opus, in one run.

ViSQOL (speech mode: 16 kHz, 21 gammatone bands from 50 Hz to 8 kHz) scores a degraded
signal by the NSIM of spectrogram patches in each band, then maps the per-band means to a
MOS. The MOS alone does not say what is wrong; the per-band NSIM does. On the v2 default
it showed the gap to Opus 6 kbps sits in 100-650 Hz, where each band holds one resolved
harmonic of a voice and a pitch a few percent off moves energy between bands.

Per model (and Opus at the same rate) it prints the mean NSIM of each band over the files,
the MOS, and the :class:`~audiotok.audio.losses.PhaseDerivativeLoss` distance of the
reconstruction (frame-to-frame phase advance against the input's, energy-weighted: the
frequency actually heard).

Usage::

    python bench/visqol_bands.py MANIFEST --model default --model RUN_EXPORT \\
        [--max-files 12] [--kbps 6] [--kind speech] [--where queen]

``MANIFEST``: a JSONL manifest (paths relative to it) whose ``kind`` rows are used, e.g.
``recipes/data/dev_eval.jsonl`` copied into the corpus folder; ``--where`` keeps paths
containing that text. Needs visqol-python and opus-tools (``opusenc``/``opusdec``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--max-files", type=int, default=12)
    ap.add_argument("--kbps", type=float, default=6.0)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--kind", default="speech", choices=["speech", "music"])
    ap.add_argument("--where", default="", help="keep only paths containing this text")
    args = ap.parse_args(argv)

    import soxr
    import torch
    from visqol import VisqolApi

    import audiotok
    from audiotok.audio.losses import PhaseDerivativeLoss
    from audiotok.audio_io import load_audio
    from audiotok.eval.opus import opus_available, opus_roundtrip

    if not opus_available():
        print("needs an Opus encoder (opus-tools)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    mode = "speech" if args.kind == "speech" else "audio"
    rate = 16000 if mode == "speech" else 48000
    api = VisqolApi()
    api.create(mode=mode, **({"use_lattice_model": False} if mode == "speech" else {}))
    phase = PhaseDerivativeLoss(n_ffts=(2048, 1280))
    rows = [json.loads(x) for x in args.manifest.read_text().splitlines() if x.strip()]
    files = [
        args.manifest.parent / r["path"]
        for r in rows
        if r.get("kind") == args.kind and args.where in r["path"]
    ][: args.max_files]
    toks = {m: audiotok.load(m) for m in args.model}
    names = [*toks, f"opus {args.kbps:g}"]
    nsim: dict[str, list[np.ndarray]] = {n: [] for n in names}
    mos: dict[str, list[float]] = {n: [] for n in names}
    dist: dict[str, list[float]] = {n: [] for n in names}
    bands = None
    for path in files:
        sr = next(iter(toks.values())).sample_rate
        wav = load_audio(path, sample_rate=sr, channels=1).reshape(-1)
        wav = wav[: int(args.max_seconds * sr)].astype(np.float32)
        outs = {}
        for name, tok in toks.items():
            codes = tok.encode(wav, sample_rate=sr, bitrate=args.kbps)
            outs[name] = tok.decode(codes, length=len(wav)).reshape(-1).numpy()
        outs[names[-1]] = opus_roundtrip(wav[None], sr, args.kbps)[0][: len(wav)]
        ref = soxr.resample(wav.astype(np.float64), sr, rate)
        for name, out in outs.items():
            result = api.measure_from_arrays(
                ref, soxr.resample(out.astype(np.float64), sr, rate), rate
            )
            bands = np.asarray(result.center_freq_bands)
            nsim[name].append(np.asarray(result.fvnsim))
            mos[name].append(float(result.moslqo))
            pair = [
                torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]
                for a in (out, wav)
            ]
            dist[name].append(float(phase(*pair)))
    assert bands is not None, "no files"
    print(f"{len(files)} {args.kind} files, {args.kbps:g} kbps; ViSQOL {mode} mode NSIM per band")
    print("| band Hz | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for i, hz in enumerate(bands):
        print(f"| {hz:.0f} | " + " | ".join(f"{np.mean(nsim[n], 0)[i]:.3f}" for n in names) + " |")
    print("| **MOS** | " + " | ".join(f"**{np.mean(mos[n]):.2f}**" for n in names) + " |")
    print("| phase distance | " + " | ".join(f"{np.mean(dist[n]):.3f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
