"""What ``audiotok info`` shows about a tokenizer or a prior, as ``(name, value)`` rows.

Audio: rates, hop, codebooks, the bitrate ladder, receptive field. Image: channels,
downsampling factor, codebooks K and size V, the code grid and bits of a 28x28 and a
256x256 image, VQ-VAE-2 levels. Both: the LM vocabulary and its special token ids
(:class:`audiotok.prior.vocab.LMVocab`), parameters, model id and family. Priors
(:func:`prior_rows`): kind (AR or MaskGIT), the codes modelled, pattern, context, the image
grid, classes, the conditioning grid of a VQ-VAE-2 bottom prior, and the tokenizer id.
"""

from __future__ import annotations

from typing import Any

__all__ = ["info_rows", "prior_rows"]

#: image sizes whose code grid ``audiotok info`` shows (Fashion-MNIST's, and a common one)
EXAMPLE_SIZES = ((28, 28), (256, 256))


def _vocab_rows(tok: Any) -> list[tuple[str, str]]:
    from audiotok.prior.vocab import LMVocab

    vocab = LMVocab(tok.num_codebooks, tok.codebook_size)
    return [
        (
            "LM vocabulary",
            f"{tok.vocab_size} ({tok.num_codebooks} x {tok.codebook_size} per codebook)",
        ),
        (
            "LM token ids",
            f"codebook k code c -> k * {tok.codebook_size} + c; BOS {vocab.bos}, "
            f"EOS {vocab.eos}, EMPTY {vocab.empty}, MASK {vocab.mask} ({vocab.size} in all)",
        ),
    ]


def _image_rows(tok: Any) -> list[tuple[str, str]]:
    k, v = tok.num_codebooks, tok.codebook_size
    rows = [
        ("modality", "image"),
        ("channels", f"{tok.channels} ({'grey' if tok.channels == 1 else 'colour'})"),
        ("downsample factor", f"{tok.downsample_factor} (pixels per code along each side)"),
        ("codebooks (K)", str(k)),
        ("codebook size (V)", str(v)),
    ]
    for h, w in EXAMPLE_SIZES:
        gh, gw = tok.latent_shape(h, w)
        rows.append(
            (
                f"latent {h}x{w}",
                f"({k}, {gh}, {gw}) codes, {tok.bits_per_image(h, w):g} bits per image",
            )
        )
    levels = tok.levels
    if levels is not None:
        top, bottom = levels["top"], levels["bottom"]
        rows.append(
            (
                "levels",
                f"top {top['rows']} row(s) at f={top['downsample_factor']}, bottom "
                f"{bottom['num_codebooks']} codebook(s) at f={bottom['downsample_factor']} "
                f"packed into rows {top['rows']}..{top['rows'] + bottom['rows'] - 1}",
            )
        )
    return rows


def _audio_rows(tok: Any) -> list[tuple[str, str]]:
    return [
        ("modality", "audio"),
        ("sample rate", f"{tok.sample_rate} Hz"),
        ("channels", str(tok.channels)),
        ("frame rate", f"{tok.frame_rate:g} Hz"),
        ("hop length", f"{tok.hop_length} samples"),
        ("codebooks", str(tok.num_codebooks)),
        ("codebook size", str(tok.codebook_size)),
        ("bitrates", ", ".join(f"{b:g}" for b in tok.bitrates) + " kbps"),
    ]


def info_rows(tok: Any, name: str) -> list[tuple[str, str]]:
    """``(field, value)`` rows describing ``tok`` (an audio or image tokenizer) loaded as
    ``name``."""
    rows = [("model", str(name)), ("model id", tok.model_id), ("family", tok.family)]
    if getattr(tok, "weights_id", None):  # a decoder fine-tune: another model's codes
        rows[1] = ("model id", f"{tok.weights_id} (makes and reads the codes of {tok.model_id})")
    rows += _image_rows(tok) if tok.modality == "image" else _audio_rows(tok)
    rows += _vocab_rows(tok)
    rows.append(("parameters", f"{tok.num_parameters:,}"))
    if tok.modality == "audio":
        rf = tok.receptive_field
        ms = 1000 * rf / tok.sample_rate
        rows.append(("receptive field", f"{rf} samples ({ms:.1f} ms) per side"))
    return rows


def prior_rows(prior: Any, name: str, model_id: str, family: str) -> list[tuple[str, str]]:
    """``(field, value)`` rows describing a loaded prior (``GPT`` or ``MaskedPrior``)."""
    cfg = prior.config
    causal = hasattr(prior, "context_frames")
    rows = [
        ("model", str(name)),
        ("model id", model_id or "-"),
        ("family", family),
        ("modality", "prior"),
        ("kind", "autoregressive (AR)" if causal else "masked (MaskGIT)"),
        ("codes modelled", f"{cfg.num_codebooks} x {cfg.codebook_size}"),
    ]
    if causal:
        rows.append(("pattern", cfg.pattern.kind))
        rows.append(("context", f"{cfg.block_size} positions ({prior.context_frames} frames)"))
    else:
        rows.append(("context", f"{cfg.max_positions} positions"))
    grid = tuple(getattr(cfg, "latent_shape", ()) or ())
    if grid:
        rows.append(("image code grid", " x ".join(map(str, grid)) + " (raster order)"))
    classes = int(getattr(cfg, "num_classes", 0))
    rows.append(("classes", f"{classes} (+ null class for guidance)" if classes else "none"))
    if getattr(cfg, "cond_codebooks", 0):
        h, w = cfg.cond_shape
        rows.append(
            (
                "conditioned on",
                f"{cfg.cond_codebooks} x {cfg.cond_codebook_size} codes on a {h} x {w} grid "
                "(a VQ-VAE-2 bottom prior: pass it as --bottom-prior)",
            )
        )
    rows.append(("tokenizer id", getattr(cfg, "tokenizer_id", "") or "unknown"))
    rows.append(("parameters", f"{sum(p.numel() for p in prior.parameters()):,}"))
    return rows
