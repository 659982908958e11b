"""LM-coded token files against raw ``.npy`` and general-purpose compressors.

Usage::

    python bench/lm_coding.py --tokens tokens/dev               # the bundled prior, 4 files
    python bench/lm_coding.py --prior DIR --tokens DIR --files 8 --max-frames 1500

For a few files of a token folder (``audiotok.data.shards.TokenShards``; files spread evenly
over the folder) it writes the codes ``(K, T')`` the ways a user could store them and prints
one row per file plus a total:

* ``npy``: the plain token file (:func:`audiotok.codes.write_codes` without metadata: the
  ``.npy`` header plus ``K T'`` codes in the smallest unsigned dtype, uint16 for V = 1024);
* ``zlib`` (level 9), ``bz2`` (level 9), ``lzma`` (preset 9 | extreme): that same ``.npy``
  compressed by the standard library (gzip, bzip2 and xz in a file);
* ``atlm``: the LM-coded file of :mod:`audiotok.lmcodes` (header without audio metadata,
  bitstream, checksum), its rate in kbps at the folder's frame rate;
* ``x-ent``: the prior's cross-entropy on the file as ``audiotok eval-prior`` computes it
  (:meth:`GPT.score`: one teacher-forced pass, strided windows past the context), and
  ``stream/bits``: the bitstream's bits over ``sum -log2 p`` under the probabilities the
  coder actually used (the same stepping, sliding window included; header not counted);
* encode and decode speed in seconds per second of audio (the step-by-step KV-cache walk on
  one thread, batch 1; decode is checked to restore the codes exactly).
"""

from __future__ import annotations

import argparse
import bz2
import io
import lzma
import time
import zlib

import numpy as np
import torch

from audiotok.codes import codes_dtype
from audiotok.data.shards import TokenShards
from audiotok.hub import load_prior
from audiotok.lmcodes import decode_lm_bytes, encode_lm_bytes


def _npy_bytes(codes: np.ndarray, codebook_size: int) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, codes.astype(codes_dtype(codebook_size)), allow_pickle=False)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default="default", help="a prior folder, or 'default' (bundled)")
    ap.add_argument("--tokens", required=True, help="a token folder (audiotok tokenize)")
    ap.add_argument("--files", type=int, default=4, help="how many files (spread evenly)")
    ap.add_argument("--max-frames", type=int, default=0, help="crop each file (0: whole)")
    ap.add_argument(
        "--context",
        type=int,
        default=None,
        help="positions the prior sees at once (default its block_size; pass its training "
        "window, e.g. 308 for 4 s at 75 Hz with a delay pattern over 8 codebooks)",
    )
    args = ap.parse_args()

    prior = load_prior(args.prior)
    shards = TokenShards(args.tokens)
    rate, v = shards.info.frame_rate, prior.config.codebook_size
    picks = np.linspace(0, len(shards) - 1, args.files).round().astype(int).tolist()
    cols = ["file", "sec", "npy B", "zlib B", "bz2 B", "lzma B", "atlm B", "atlm kbps"]
    cols += ["x-ent kbps", "stream/bits", "enc s/s", "dec s/s", "exact"]
    print(" | ".join(cols))
    print(" | ".join("---" for _ in cols))
    tot = dict.fromkeys(
        ["sec", "npy", "zlib", "bz2", "lzma", "atlm", "stream", "score", "bits"], 0.0
    )
    tot["enc"], tot["dec"], exact_all = 0.0, 0.0, True
    for i in picks:
        codes = shards.codes(i)
        if args.max_frames:
            codes = codes[:, : args.max_frames]
        sec = codes.shape[1] / rate
        raw = _npy_bytes(codes, v)
        sizes = {
            "npy": len(raw),
            "zlib": len(zlib.compress(raw, 9)),
            "bz2": len(bz2.compress(raw, 9)),
            "lzma": len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)),
        }
        start = time.perf_counter()
        data, stats = encode_lm_bytes(codes, prior, context=args.context)
        enc = time.perf_counter() - start
        start = time.perf_counter()
        back, _ = decode_lm_bytes(data, prior)
        dec = time.perf_counter() - start
        exact = bool(np.array_equal(back, codes))
        exact_all &= exact
        score_bits = prior.score(torch.from_numpy(codes.astype(np.int64))[None])["bits_per_frame"]
        score_bits *= codes.shape[1]
        row = [str(i), f"{sec:.1f}", *(str(sizes[k]) for k in ("npy", "zlib", "bz2", "lzma"))]
        row += [str(len(data)), f"{8 * len(data) / sec / 1000:.3f}"]
        row += [f"{score_bits / sec / 1000:.3f}", f"{8 * stats.num_bytes / stats.model_bits:.4f}"]
        row += [f"{enc / sec:.3f}", f"{dec / sec:.3f}", "yes" if exact else "NO"]
        print(" | ".join(row), flush=True)
        for key, value in sizes.items():
            tot[key] += value
        tot["sec"] += sec
        tot["atlm"] += len(data)
        tot["stream"] += stats.num_bytes
        tot["score"] += score_bits
        tot["bits"] += stats.model_bits
        tot["enc"] += enc
        tot["dec"] += dec
    sec = tot["sec"]
    row = ["total", f"{sec:.1f}", *(str(int(tot[k])) for k in ("npy", "zlib", "bz2", "lzma"))]
    row += [str(int(tot["atlm"])), f"{8 * tot['atlm'] / sec / 1000:.3f}"]
    row += [f"{tot['score'] / sec / 1000:.3f}", f"{8 * tot['stream'] / tot['bits']:.4f}"]
    row += [f"{tot['enc'] / sec:.3f}", f"{tot['dec'] / sec:.3f}", "yes" if exact_all else "NO"]
    print(" | ".join(row))
    k = prior.config.num_codebooks
    print(
        f"\nraw rate {k * np.log2(v) * rate / 1000:.3f} kbps (K = {k}, V = {v}, {rate:g} Hz); "
        f"atlm / npy = {tot['atlm'] / tot['npy']:.3f}, atlm / lzma = {tot['atlm'] / tot['lzma']:.3f}; "
        f"headers and checksums {int(tot['atlm'] - tot['stream'])} B in all"
    )


if __name__ == "__main__":
    main()
