"""Continuation report: does a prior's 10 s continuation of a 3 s prompt sound like audio?

Usage::

    python bench/continuation_report.py CORPUS/dev.jsonl --prior PRIOR [--model default] \\
        [--prompts 6] [--prompt-seconds 3] [--seconds 13] [--seed 0] -o report/

For a few dev recordings (half speech, half music when the manifest says ``kind``, each at
least ``--seconds`` long), the prior continues the first ``--prompt-seconds`` and the
tokenizer decodes the result. Each continuation is measured against the same recording's own
continuation passed through the codec (``decode(encode(x))``, the best a prior can hope for):

* level: RMS of the generated part in dBFS (``silent`` below -50 dBFS);
* clipping: share of generated samples with ``|x| >= 0.99``;
* stuck frames: the longest run of identical code frames (all K codes equal) in the generated
  part, next to the longest run in the real continuation's codes;
* prompt boundary: the log-mel jump across the boundary (mean absolute difference of the
  log-mel frames just before and just after it), divided by the median frame-to-frame jump of
  the real continuation; about 1 is continuous, far above 1 is a click or a cut.

Writes ``report.md``, ``report.json`` and ``spectrograms.png`` (real above, generated below,
the boundary marked) to ``-o``. The issue's bar (#12): not silent, not clipped, stuck runs
comparable to dev, continuous boundary.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

import audiotok
from audiotok.audio_io import load_audio
from audiotok.data.manifest import load_entries
from audiotok.generation import generate_audio

MEL_HOP = 256


def log_mel(wav: np.ndarray, sr: int) -> np.ndarray:
    """``(n_mels, frames)`` log10 mel power of a mono signal (80 bands, hop 256)."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=wav.astype(np.float32), sr=sr, n_fft=1024, hop_length=MEL_HOP, n_mels=80
    )
    return np.log10(mel + 1e-6)


def longest_run(codes: np.ndarray) -> int:
    """Longest run of identical frames in ``codes: (K, T)``."""
    if codes.shape[-1] == 0:
        return 0
    same = np.all(codes[:, 1:] == codes[:, :-1], axis=0)
    best = run = 1
    for s in same:
        run = run + 1 if s else 1
        best = max(best, run)
    return best


def boundary_jump(mel: np.ndarray, frame: int, width: int = 3) -> float:
    """Mean |log-mel| change between ``width`` frames before and after ``frame``."""
    a = mel[:, max(0, frame - width) : frame].mean(axis=1)
    b = mel[:, frame : frame + width].mean(axis=1)
    return float(np.abs(a - b).mean())


def median_jump(mel: np.ndarray, width: int = 3) -> float:
    """The median of :func:`boundary_jump` over the frames of ``mel``."""
    jumps = [boundary_jump(mel, f, width) for f in range(width, mel.shape[1] - width)]
    return float(np.median(jumps)) if jumps else float("nan")


def pick_entries(manifest: str, n: int, seconds: float, seed: int) -> list[Any]:
    """``n`` entries at least ``seconds`` long, alternating kinds (speech, music), seeded."""
    entries = [e for e in load_entries(manifest) if (e.duration or 0) >= seconds]
    rng = np.random.default_rng(seed)
    by_kind: dict[str, list[Any]] = {}
    for e in entries:
        by_kind.setdefault(str(e.extra.get("kind", "audio")), []).append(e)
    for v in by_kind.values():
        rng.shuffle(v)
    picked: list[Any] = []
    while len(picked) < n and any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind] and len(picked) < n:
                picked.append(by_kind[kind].pop())
    return picked


def measure(tok: Any, prior: Any, entry: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Generate one continuation of ``entry`` and measure it against the real one."""
    sr = int(tok.sample_rate)
    wav = load_audio(entry.path, sr, tok.channels)[..., : round(args.seconds * sr)]
    gen = generate_audio(
        tok,
        prior,
        prompt=wav,
        prompt_sample_rate=sr,
        prompt_seconds=args.prompt_seconds,
        seconds=args.seconds,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )
    k = prior.config.num_codebooks
    real_codes = tok.encode(torch.as_tensor(wav)[None], num_codebooks=k)
    real = tok.decode(real_codes)[0, 0].numpy()
    fake = gen.audio[0, 0].numpy()
    n = min(len(real), len(fake))
    real, fake = real[:n], fake[:n]
    cut = round(gen.prompt_frames * sr / tok.frame_rate)
    part = fake[cut:]
    mel_fake, mel_real = log_mel(fake, sr), log_mel(real, sr)
    mframe = cut // MEL_HOP
    return {
        "file": Path(entry.path).name,  # no machine paths in a report that gets shared
        "kind": str(entry.extra.get("kind", "")),
        "rms_dbfs": float(20 * np.log10(np.sqrt(np.mean(part**2)) + 1e-12)),
        "real_rms_dbfs": float(20 * np.log10(np.sqrt(np.mean(real[cut:] ** 2)) + 1e-12)),
        "clipped": float(np.mean(np.abs(part) >= 0.99)),
        "longest_run": longest_run(gen.codes[0, :, gen.prompt_frames :].numpy()),
        "real_longest_run": longest_run(real_codes[0, :, gen.prompt_frames :].numpy()),
        "longest_run_cb0": longest_run(gen.codes[0, :1, gen.prompt_frames :].numpy()),
        "real_longest_run_cb0": longest_run(real_codes[0, :1, gen.prompt_frames :].numpy()),
        "boundary_ratio": boundary_jump(mel_fake, mframe) / median_jump(mel_real[:, mframe:]),
        "real_boundary_ratio": boundary_jump(mel_real, mframe) / median_jump(mel_real[:, mframe:]),
        "_mels": (mel_real, mel_fake, mframe),
    }


def plot(rows: list[dict[str, Any]], sr: int, path: Path) -> None:
    """Real and generated log-mel spectrograms of each row, the prompt boundary dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 1.9 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        mel_real, mel_fake, mframe = row["_mels"]
        for j, (mel, title) in enumerate(((mel_real, "real (codec)"), (mel_fake, "generated"))):
            ax = axes[i][j]
            secs = mel.shape[1] * MEL_HOP / sr
            ax.imshow(mel, origin="lower", aspect="auto", extent=(0, secs, 0, 80), cmap="magma")
            ax.axvline(mframe * MEL_HOP / sr, color="cyan", linestyle="--", linewidth=1)
            ax.set_yticks([])
            ax.set_title(f"{Path(row['file']).name} [{row['kind']}]: {title}", fontsize=8)
    axes[-1][0].set_xlabel("seconds")
    axes[-1][1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)
    from PIL import Image

    with Image.open(path) as im:  # a 128-colour palette: a quarter of the bytes, same look
        small = im.convert("RGB").quantize(128)
    small.save(path, optimize=True)


def render(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The Markdown table of the rows (generated vs real)."""
    lines = [
        f"Prior `{args.prior}`, tokenizer `{args.model}`: {args.prompt_seconds:g} s prompt, "
        f"{args.seconds - args.prompt_seconds:g} s generated, temperature {args.temperature:g}"
        f", top-k {args.top_k}, seed {args.seed}.",
        "",
        "| file | kind | RMS dBFS (real) | clipped | longest run: frames, cb 0 (real) "
        "| boundary (real) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {Path(r['file']).name} | {r['kind']} | {r['rms_dbfs']:.1f} "
            f"({r['real_rms_dbfs']:.1f}) | {r['clipped']:.4f} | {r['longest_run']}, "
            f"{r['longest_run_cb0']} ({r['real_longest_run']}, {r['real_longest_run_cb0']}) | "
            f"{r['boundary_ratio']:.2f} "
            f"({r['real_boundary_ratio']:.2f}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest")
    ap.add_argument("--prior", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--prompt-seconds", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=13.0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from audiotok.cli_tokens import load_any_prior

    tok, prior = audiotok.load(args.model), load_any_prior(args.prior)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        measure(tok, prior, e, args)
        for e in pick_entries(args.manifest, args.prompts, args.seconds, args.seed)
    ]
    plot(rows, int(tok.sample_rate), out / "spectrograms.png")
    text = render(rows, args)
    (out / "report.md").write_text(text + "\n![spectrograms](spectrograms.png)\n")
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    (out / "report.json").write_text(json.dumps(clean, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
