"""Codec oracles: which part of a codec loses the quality, for two models in one run.

Each row swaps one part of the codec for the truth (or removes it) and scores the result
against the input, so the gap between rows says where quality goes:

* ``codes@k``: the codec at its first ``k`` codebooks and at all of them;
* ``latent``: the encoder latent decoded without quantization (the autoencoder's ceiling;
  equal to ``codes@all`` means the quantizer is not what limits the codec);
* ``dec mag + true phase`` / ``true mag + dec phase`` (inverse-STFT decoders): the
  decoder's predicted magnitude with the input's STFT phase, and the other way round;
* ``true mag in head span`` (linear ISTFT head): the input's log-magnitude projected onto
  what the head's linear layer can emit, with the true phase -- the head's ceiling;
* ``true mag in encoder span`` (linear spectral-encoder input): the same for what the
  encoder's first layer keeps of its input -- whatever is lost here no later layer sees.

Scores: ViSQOL (speech or audio mode by the file's kind), mel distance, and on speech the
median relative f0 error and gross pitch error (> 20 %) of pYIN on the output against pYIN
on the input (voiced in both), plus ``comb``: the share of 100-1500 Hz power within 2 Hz
of a multiple of the frame rate (the input's share is the chance level; a decoder that
cannot advance its phase across frames piles power there).

What it found on the v2 default at step 8000 (12 held-out speech files): the latent scored
as the 6 kbps codes (the quantizer was not the limit), the decoder's phase with the true
magnitude scored ViSQOL 4.5, its magnitude with the true phase 3.3, the head's span capped
it at 3.9 and the encoder's first layer kept no pitch (f0 error 66 %).

Usage::

    python bench/codec_oracles.py MANIFEST_OR_FOLDER --model A [--model B] [--max-files 24]

``MANIFEST_OR_FOLDER``: a JSONL manifest (``path``, optional ``kind``: speech/music) or a
folder of audio files (all scored as ``--kind``). Needs the ``eval`` extra (ViSQOL) and
librosa (pYIN).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3", ".opus"}


def _files(source: Path, kind: str, max_files: int) -> list[tuple[Path, str]]:
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXT)
        return [(p, kind) for p in paths[:max_files]]
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    out = []
    for r in rows:
        k = r.get("kind", kind)
        if kind in ("all", k):
            out.append(((source.parent / r["path"]).resolve(), k))
    return out[:max_files]


def _f0(wav: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    f0, voiced, _ = librosa.pyin(wav, fmin=60, fmax=500, sr=sr, frame_length=2048, hop_length=256)
    return np.where(voiced, f0, np.nan)


def _comb(wav: np.ndarray, sr: int, rate: float) -> float:
    n = len(wav) // sr * sr
    if n == 0:
        return float("nan")
    power = (np.abs(np.fft.rfft(wav[:n].reshape(-1, sr) * np.hanning(sr), axis=1)) ** 2).mean(0)
    f = np.arange(len(power))  # 1 Hz bins
    band = (f >= 100) & (f < 1500)
    near = band & (np.minimum(f % rate, rate - f % rate) <= 2)
    return float(power[near].sum() / max(power[band].sum(), 1e-20))


class _Oracles:
    """The oracle reconstructions of one codec (see the module docstring)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        decoder, encoder = getattr(model, "decoder", None), getattr(model, "encoder", None)
        self.head = getattr(decoder, "head", None)
        self.encoder_basis = None
        if hasattr(encoder, "features") and getattr(encoder, "embed_mlp", None) is None:
            w = encoder.embed.weight.detach().T  # (bins, hidden): what the encoder keeps
            self.encoder_basis = torch.cat([w, torch.ones(w.shape[0], 1)], 1)

    def _stft(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """The input's STFT in the head's framing ("same" padding), ``(bins, frames)``."""
        n_fft, hop = self.head.n_fft, self.head.hop_length
        padded = F.pad(x, ((n_fft - hop) // 2, n_fft))
        spec = torch.stft(
            padded, n_fft, hop, window=self.head.window, center=False, return_complex=True
        )
        return spec[:, :frames]

    def _synth(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        return self.head.istft(torch.polar(magnitude, phase)[None])[0]

    @staticmethod
    def _project(logmag: torch.Tensor, basis: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        coef = torch.linalg.lstsq(basis, logmag - bias[:, None]).solution
        return basis @ coef + bias[:, None]

    @torch.no_grad()
    def __call__(self, wav: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
        m = self.model
        x = torch.from_numpy(wav)[None, None]
        out = {f"codes@{k}": m(x, k).audio[0, 0].numpy() for k in ks}
        latent = m.encode_latent(m._pad(x))
        out["latent"] = m.decode_latent(latent)[0, 0].numpy()
        if self.head is not None and self.head.channels == 1:
            h = m.decoder.head_input(latent)
            logmag, phase = (t[0, :, 0].T for t in self.head.spectrum(h))
            true = self._stft(x[0, 0], logmag.shape[1])
            tmag, tphase = true.abs(), true.angle()
            dmag = logmag.exp().clamp(max=self.head.max_magnitude)
            out["dec mag + true phase"] = self._synth(dmag, tphase).numpy()
            out["true mag + dec phase"] = self._synth(tmag, phase).numpy()
            tlog = tmag.clamp(min=1e-5).log()
            if self.head.mlp is None:
                w = self.head.proj.weight.detach()[: self.head.bins]
                b = self.head.proj.bias.detach()[: self.head.bins]
                proj = self._project(tlog, w, b)
                out["true mag in head span"] = self._synth(proj.exp(), tphase).numpy()
            if self.encoder_basis is not None and self.encoder_basis.shape[0] == len(tlog):
                proj = self._project(tlog, self.encoder_basis, torch.zeros(len(tlog)))
                out["true mag in encoder span"] = self._synth(proj.exp(), tphase).numpy()
        n = len(wav)
        return {
            k: np.pad(v[:n], (0, max(0, n - len(v)))).astype(np.float32) for k, v in out.items()
        }


def run(model_name: str, files: list[tuple[Path, str]]) -> tuple[str, dict[str, dict[str, float]]]:
    import audiotok
    from audiotok.audio_io import read_audio, resample
    from audiotok.eval import metrics
    from audiotok.eval.visqol import ViSQOL

    tok = audiotok.load(model_name)
    model, sr = tok.model.eval(), tok.sample_rate
    oracles = _Oracles(model)
    ks = sorted({min(2, tok.num_codebooks), tok.num_codebooks})
    scorers = {"speech": ViSQOL("speech"), "music": ViSQOL("audio")}
    rows: dict[str, list[list[float]]] = {}
    for path, kind in files:
        wav, file_sr = read_audio(path)
        wav = wav.mean(0) if wav.ndim == 2 else wav
        wav = resample(wav, file_sr, sr) if file_sr != sr else wav
        wav = np.ascontiguousarray(wav[: 10 * sr], dtype=np.float32)
        if len(wav) < sr:
            continue
        speech = kind == "speech"
        f0_ref = _f0(wav, sr) if speech else None
        systems = {"input": wav, **oracles(wav, ks)}
        for name, y in systems.items():
            vis = scorers["speech" if speech else "music"](wav, y, sr)
            mel = float(metrics.mel_distance(wav[None, None], y[None, None], sr))
            f0_err = gpe = float("nan")
            if speech:
                f0_out = _f0(y, sr)
                both = np.isfinite(f0_ref) & np.isfinite(f0_out)
                if both.sum() >= 5:
                    rel = np.abs(f0_out[both] / f0_ref[both] - 1)
                    f0_err, gpe = float(np.median(rel)), float((rel > 0.2).mean())
            comb = _comb(y, sr, float(tok.frame_rate))
            rows.setdefault(f"{kind}|{name}", []).append([vis, mel, f0_err, gpe, comb])
    table = {
        key: dict(
            zip(["visqol", "mel", "f0_err", "gpe", "comb"], np.nanmean(v, 0).tolist(), strict=True),
            files=len(v),
        )
        for key, v in rows.items()
    }
    return tok.model_id, table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--kind", default="all", help="speech, music or all (manifest rows)")
    ap.add_argument("--max-files", type=int, default=24)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files = _files(args.source, args.kind, args.max_files)
    if not files:
        print(f"error: no audio files in {args.source}", file=sys.stderr)
        return 1
    print("| model | kind | system | files | ViSQOL | mel | f0 err | GPE | comb |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.model:
        model_id, table = run(name, files)
        for key, r in table.items():
            kind, system = key.split("|")
            f0 = "" if np.isnan(r["f0_err"]) else f"{100 * r['f0_err']:.1f} %"
            gpe = "" if np.isnan(r["gpe"]) else f"{100 * r['gpe']:.0f} %"
            print(
                f"| {name} ({model_id}) | {kind} | {system} | {r['files']} | {r['visqol']:.2f} | "
                f"{r['mel']:.3f} | {f0} | {gpe} | {r['comb']:.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
