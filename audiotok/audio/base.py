"""The audio codec contract: :class:`CodecOutput`, :class:`AudioCodec` and strict configs.

Every audio family (``SoundStream``, ``AudioVQVAE``) is an encoder ``(B, C, T) -> (B, D, T')``,
a quantizer from :func:`audiotok.quantize.build_quantizer` working channel-last on
``(B, T', D)``, and a decoder ``(B, D, T') -> (B, C, T' * hop_length)``. This base class owns
everything around those three parts: input validation, padding to a whole number of frames,
the codes layout ``(B, K, T')``, partial-codebook encoding for residual quantizers, bitrates
and the encoder's receptive field.

Padding: inputs are padded on the **right** with zeros to ``T' * hop_length`` samples. Frames
are then aligned to sample 0, so for a causal encoder the codes of a prefix ``wav[..., :n *
hop_length]`` are exactly the first ``n`` codes of the whole clip (left padding would shift
the frame grid with ``T mod hop_length`` and break that).

Anchors: audiocraft/moshi ``CompressionModel`` (models/compression.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from einops import rearrange
from torch import Tensor, nn

from audiotok.config import StrictConfig
from audiotok.quantize.base import Quantizer, check_codes

__all__ = ["CodecConfig", "CodecOutput", "AudioCodec"]


@dataclass(frozen=True)
class CodecConfig(StrictConfig):
    """Base of the audio codec configs (a :class:`~audiotok.config.StrictConfig`)."""


@dataclass
class CodecOutput:
    """What every codec's ``forward`` returns.

    Attributes:
        audio: ``(B, C, T)`` float, the reconstruction, same length as the input.
        codes: ``(B, K, T')`` long, ``T' = ceil(T / hop_length)``. In training with
            quantizer dropout, rows of the stages a sample skipped are ``-1``.
        loss: scalar float, the quantizer's auxiliary loss (commitment/codebook terms).
        metrics: detached logging values from the quantizer (``perplexity``, ``usage``, ...).
        spectrum: ``(B, T', C, bins)`` log-magnitude frames an inverse-STFT decoder predicted
            (compare with :meth:`AudioCodec.spectrum_target`), None for other decoders.
        quantized: ``(B, T', D)`` the quantized latent the decoder read.
    """

    audio: Tensor
    codes: Tensor
    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)
    spectrum: Tensor | None = None
    quantized: Tensor | None = None


class AudioCodec(nn.Module):
    """Base class of the audio families: validation, padding, codes layout, bitrates.

    Subclasses set ``family``, ``config_class``, and in ``__init__`` the attributes
    ``config``, ``quantizer`` (a :class:`~audiotok.quantize.base.Quantizer` on ``latent_dim``
    vectors), and implement :meth:`encode_latent`, :meth:`decode_latent` and the
    ``hop_length`` / ``receptive_field`` properties.
    """

    family: ClassVar[str]
    config_class: ClassVar[type]
    modality: ClassVar[str] = "audio"
    #: the submodules that make the codes: a fine-tune that leaves them exactly as they were
    #: (``freeze``) makes the same codes, and its export says so (``codes_id``)
    code_modules: ClassVar[tuple[str, ...]] = ("encoder", "quantizer")
    config: Any
    quantizer: Quantizer

    # -- to implement -------------------------------------------------------------------
    def encode_latent(self, wav: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Encoder: ``wav (B, C, T' * hop_length)`` -> ``latent (B, D, T')``."""
        raise NotImplementedError

    def decode_latent(self, quantized: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Decoder: ``quantized (B, D, T')`` -> ``wav (B, C, T' * hop_length)``."""
        raise NotImplementedError

    # -- optional -----------------------------------------------------------------------
    def decode_latent_with_spectrum(self, quantized: Tensor) -> tuple[Tensor, Tensor | None]:
        """:meth:`decode_latent` and, for a decoder that predicts STFT frames, their
        log-magnitude ``(B, T', C, bins)`` (None here)."""
        return self.decode_latent(quantized), None

    def spectrum_target(self, wav: Tensor) -> Tensor | None:
        """The log-magnitude frames that would decode to ``wav``, in the decoder's framing
        (``(B, T', C, bins)``), or None when the decoder predicts none."""
        return None

    @property
    def hop_length(self) -> int:  # pragma: no cover - abstract
        """Samples per code frame (the product of the encoder's strides)."""
        raise NotImplementedError

    @property
    def receptive_field(self) -> int:  # pragma: no cover - abstract
        """Samples of context a chunked encoder needs on each side of a chunk."""
        raise NotImplementedError

    # -- properties ---------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """Audio sample rate in Hz."""
        return int(self.config.sample_rate)

    @property
    def channels(self) -> int:
        """Audio channels C."""
        return int(self.config.channels)

    @property
    def frame_rate(self) -> float:
        """Code frames per second, ``sample_rate / hop_length``."""
        return self.sample_rate / self.hop_length

    @property
    def num_codebooks(self) -> int:
        """K, the number of codebooks (code rows) at full bitrate."""
        return int(self.quantizer.num_codebooks)

    @property
    def codebook_size(self) -> int:
        """Entries per codebook; codes lie in ``[0, codebook_size)``."""
        return int(self.quantizer.codebook_size)

    @property
    def bitrate(self) -> float:
        """kbps with all ``num_codebooks`` codebooks (kbps everywhere, as EnCodec's
        ``bandwidth``)."""
        return self.bitrate_for(self.num_codebooks)

    def bitrate_for(self, num_codebooks: int) -> float:
        """kbps when using the first ``num_codebooks`` codebooks."""
        self._check_num_codebooks(num_codebooks)
        return self.frame_rate * num_codebooks * math.log2(self.codebook_size) / 1000.0

    @property
    def supports_partial_codebooks(self) -> bool:
        """True when fewer than K codebooks may be used (residual quantizers)."""
        return bool(self.quantizer.supports_partial_codebooks)

    def num_frames(self, num_samples: int) -> int:
        """``T' = ceil(T / hop_length)``, the code frames for ``num_samples`` samples."""
        return -(-num_samples // self.hop_length)

    # -- public API ---------------------------------------------------------------------
    def forward(self, wav: Tensor, num_codebooks: int | None = None) -> CodecOutput:
        """Encode, quantize and decode.

        Args:
            wav: ``(B, C, T)`` float audio.
            num_codebooks: use only the first ``k`` codebooks (residual quantizers); ``None``
                lets the quantizer decide (in training, quantizer dropout may pick fewer).

        Returns:
            :class:`CodecOutput` with ``audio (B, C, T)`` and ``codes (B, K, T')``.
        """
        self._check_wav(wav)
        return self.forward_latent(self.encode_latent(self._pad(wav)), wav.shape[-1], num_codebooks)

    def forward_latent(
        self, latent: Tensor, length: int, num_codebooks: int | None = None
    ) -> CodecOutput:
        """:meth:`forward` from the encoder's latent ``(B, D, T')`` on: quantize and decode
        to ``length`` samples (one encoding can then be decoded at several rates)."""
        if num_codebooks is not None:
            self._check_num_codebooks(num_codebooks)
        z = rearrange(latent, "b d t -> b t d")
        k = None if num_codebooks is None else int(num_codebooks)
        q = self.quantizer(z, num_codebooks=k)
        audio, spectrum = self.decode_latent_with_spectrum(rearrange(q.quantized, "b t d -> b d t"))
        codes = self._codes_out(q.codes)
        return CodecOutput(audio[..., :length], codes, q.loss, q.metrics, spectrum, q.quantized)

    @torch.no_grad()
    def encode(self, wav: Tensor, num_codebooks: int | None = None) -> Tensor:
        """Audio to codes.

        Args:
            wav: ``(B, C, T)`` finite float audio with ``C == channels``.
            num_codebooks: keep the first ``k`` codebooks (default: all ``K``).

        Returns:
            ``(B, k, T')`` long codes, ``T' = ceil(T / hop_length)``.

        Raises:
            ValueError: on a bad shape, dtype, non-finite values or ``k``.
        """
        self._check_wav(wav)
        k = self.num_codebooks if num_codebooks is None else num_codebooks
        self._check_num_codebooks(k)
        z = rearrange(self.encode_latent(self._pad(wav)), "b d t -> b t d")
        codes = self.quantizer.encode(z, num_codebooks=int(k))
        return self._codes_out(codes)[:, : int(k)]

    def decode(self, codes: Tensor) -> Tensor:
        """Codes to audio.

        Args:
            codes: ``(B, k, T')`` integer codes, ``1 <= k <= num_codebooks`` (the first k
                codebooks), values in ``[0, codebook_size)``.

        Returns:
            ``(B, C, T' * hop_length)`` float audio.

        Raises:
            ValueError: on a bad shape, dtype, ``k`` or out-of-range code.
        """
        self._check_codes(codes)
        codes = codes.long()
        if self.quantizer.codes_have_codebook_dim:
            quantized = self.quantizer.decode(rearrange(codes, "b k t -> b t k"))
        else:
            quantized = self.quantizer.decode(codes[:, 0])
        return self.decode_latent(rearrange(quantized, "b t d -> b d t"))

    # -- helpers ------------------------------------------------------------------------
    def _pad(self, wav: Tensor) -> Tensor:
        extra = self.num_frames(wav.shape[-1]) * self.hop_length - wav.shape[-1]
        return nn.functional.pad(wav, (0, extra)) if extra else wav

    def _codes_out(self, codes: Tensor) -> Tensor:
        if self.quantizer.codes_have_codebook_dim:
            return rearrange(codes, "b t k -> b k t").long()  # (B, K, T')
        return codes.long().unsqueeze(1)  # (B, 1, T')

    def _check_num_codebooks(self, k: int) -> None:
        self.quantizer.check_num_codebooks(k)

    def _check_wav(self, wav: Tensor) -> None:
        if not isinstance(wav, Tensor):
            raise ValueError(f"expected wav as a torch.Tensor (B, C, T), got {type(wav).__name__}")
        if not wav.is_floating_point():
            raise ValueError(f"expected float audio, got dtype {wav.dtype}")
        if wav.dim() != 3 or wav.shape[1] != self.channels or wav.shape[-1] < 1:
            raise ValueError(
                f"expected wav of shape (B, {self.channels}, T) with T >= 1, got {tuple(wav.shape)}"
            )
        if not torch.isfinite(wav).all():
            raise ValueError("audio contains NaN or inf values")

    def _check_codes(self, codes: Tensor) -> None:
        """``codes (B, k, T')`` integer, k a codebook count the quantizer serves, in range."""
        check_codes(
            codes,
            layout=("B", "k", "T'"),
            codebook_size=self.codebook_size,
            num_codebooks=self.quantizer.check_num_codebooks,
        )
