"""The :class:`Tokenizer` protocol every model family's tokenizer satisfies, per modality.

A tokenizer turns a signal into integer codes and back. The base protocol is modality-agnostic
(what a language-model pipeline needs: the codes' layout and vocabulary); the audio and image
parts add what is needed to feed the codes the right signal and to read them back:

- audio: ``encode(wav) -> codes (B, K, T')`` at ``frame_rate`` code frames per second;
- image: ``encode(image) -> codes (B, K, H', W')`` with ``(H', W') = latent_shape(H, W)``.

Codes always carry the codebook axis K. These are structural types (:class:`typing.Protocol`):
a class satisfies them by having the members, without inheriting. ``isinstance`` works on
them (``runtime_checkable``) but checks only that the members exist, not their types.

Anchors: audiocraft/moshi ``CompressionModel`` (``moshi/models/compression.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

__all__ = ["Tokenizer", "AudioTokenizerProtocol", "ImageTokenizerProtocol", "Progress"]

#: ``progress(done, total)`` callback; units are samples for encoding, frames for decoding.
Progress = Callable[[int, int], None]


@runtime_checkable
class Tokenizer(Protocol):
    """What every tokenizer offers, whatever the modality.

    Codes are integers in ``[0, codebook_size)`` with the codebook axis second: ``(B, K, ...)``.
    A language model that gives each codebook its own range of ids (code ``c`` of codebook
    ``k`` is id ``k * codebook_size + c``) needs ``vocab_size`` ids.
    """

    @property
    def modality(self) -> str:
        """``"audio"`` or ``"image"``: which of the protocols below the tokenizer follows."""
        ...

    @property
    def num_codebooks(self) -> int:
        """K, code rows per frame (or latent position) at the full bitrate."""
        ...

    @property
    def codebook_size(self) -> int:
        """Entries per codebook; codes lie in ``[0, codebook_size)``."""
        ...

    @property
    def vocab_size(self) -> int:
        """Distinct LM ids over all codebooks, ``num_codebooks * codebook_size``."""
        ...

    def encode(self, x: Any) -> Tensor:
        """Signal ``(B, C, ...)`` -> codes ``(B, K, ...)`` long."""
        ...

    def decode(self, codes: Any) -> Tensor:
        """Codes ``(B, K, ...)`` -> signal ``(B, C, ...)`` float."""
        ...


@runtime_checkable
class AudioTokenizerProtocol(Tokenizer, Protocol):
    """An audio tokenizer: ``wav (B, C, T)`` <-> ``codes (B, K, T')``, ``T' = ceil(T / hop)``."""

    @property
    def sample_rate(self) -> int:
        """Hz; ``encode`` resamples its input to it and ``decode`` returns audio at it."""
        ...

    @property
    def channels(self) -> int:
        """Audio channels C of the model."""
        ...

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        ...

    @property
    def bitrate(self) -> float:
        """kbps with all codebooks."""
        ...

    @property
    def bitrates(self) -> list[float]:
        """The kbps ladder, ascending: entry ``k - 1`` is the rate of the first ``k`` codebooks."""
        ...

    def encode(self, wav: Any, sample_rate: int | None = None) -> Tensor:
        """``wav (B, C, T)`` float at ``sample_rate`` -> ``codes (B, K, T')`` long."""
        ...

    def decode(self, codes: Any) -> Tensor:
        """``codes (B, K, T')`` -> ``wav (B, C, T' * hop)`` float at :attr:`sample_rate`."""
        ...


@runtime_checkable
class ImageTokenizerProtocol(Tokenizer, Protocol):
    """An image tokenizer: ``image (B, C, H, W)`` <-> ``codes (B, K, H', W')``."""

    @property
    def channels(self) -> int:
        """Image channels C (1 grey, 3 RGB)."""
        ...

    @property
    def downsample_factor(self) -> int:
        """f, pixels per code along each side."""
        ...

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')``, the code grid of an ``H x W`` image (``ceil(H / f), ceil(W / f)``)."""
        ...
