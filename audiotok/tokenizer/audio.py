""":class:`AudioTokenizer`, the user-facing audio codec API around an ``AudioCodec``.

``AudioTokenizer`` wraps any :class:`~audiotok.audio.base.AudioCodec` and adds what users and
language-model pipelines need around the bare model: numpy or torch input of any shape
(``(T,)``, ``(C, T)``, ``(B, C, T)``), any sample rate (soxr resampling), any channel count
(many -> fewer: mean over channels; mono -> many: duplicated), batches of unequal lengths,
bitrate choice, file helpers, and bounded memory on inputs of any length. Encoding and
decoding are chunked exactly (:mod:`audiotok.tokenizer.chunking`); files stream through
:mod:`audiotok.tokenizer.streaming`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from audiotok import __version__
from audiotok.audio_io import AudioReader, check_sample_rate
from audiotok.codes import CodesMeta
from audiotok.errors import UserError
from audiotok.tokenizer.base import ModelTokenizer
from audiotok.tokenizer.chunking import (
    Window,
    decode_windows,
    encode_windows,
    encoder_context,
    measure_decoder_context,
    plan_windows,
)
from audiotok.tokenizer.inputs import (
    as_codes,
    check_channels,
    check_code_range,
    decode_lengths,
    file_lengths,
    prepare_audio,
    select_codebooks,
)
from audiotok.tokenizer.protocol import Progress
from audiotok.tokenizer.streaming import StreamPlanner, write_stream

__all__ = ["AudioTokenizer"]


class AudioTokenizer(ModelTokenizer):
    """Tokenize audio with an :class:`~audiotok.audio.base.AudioCodec`.

    Satisfies :class:`~audiotok.tokenizer.protocol.AudioTokenizerProtocol`.

    Args:
        model: the codec; put in eval mode.
        model_id: the id written into token files (default: a hash of config and weights).
        chunk_seconds: audio per chunk; does not change the codes.
        batch_size: windows per forward pass. Memory is bounded by about ``batch_size *
            (chunk_seconds + 2 * context)`` seconds of activations, whatever the input length
            (the defaults keep a 1-hour file under ~0.5 GB peak RSS on CPU); raise both on a
            GPU for speed.
    """

    modality: ClassVar[str] = "audio"
    #: input frames decoded per block by :meth:`encode_file`
    read_block_frames: int = 1 << 16

    def __init__(
        self,
        model: nn.Module,
        *,
        model_id: str | None = None,
        chunk_seconds: float = 5.0,
        batch_size: int = 2,
    ) -> None:
        self.model = model.eval()
        self._model_id = model_id
        self.chunk_frames = max(1, round(chunk_seconds * model.frame_rate))
        self.batch_size = max(1, int(batch_size))
        #: encoder context in samples (a multiple of hop), None: no chunking
        self.encoder_context: int | None = encoder_context(model)
        self._decoder_context: int | None | bool = None if self.encoder_context is None else False

    # -- properties ---------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """The model's sample rate (Hz); decoded audio comes at this rate."""
        return int(self.model.sample_rate)

    @property
    def channels(self) -> int:
        """The model's audio channels."""
        return int(self.model.channels)

    @property
    def hop_length(self) -> int:
        """Samples per code frame."""
        return int(self.model.hop_length)

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return float(self.model.frame_rate)

    @property
    def num_codebooks(self) -> int:
        """K at full bitrate."""
        return int(self.model.num_codebooks)

    @property
    def codebook_size(self) -> int:
        """Entries per codebook."""
        return int(self.model.codebook_size)

    @property
    def bitrate(self) -> float:
        """Kilobits per second (kbps) with all codebooks, e.g. 6.0 for the default model."""
        return float(self.model.bitrate)

    @property
    def bitrates(self) -> list[float]:
        """The bitrate ladder in kbps, ascending: entry ``k - 1`` is the rate of the first
        ``k`` codebooks (one entry for models that need all codebooks)."""
        if not self.model.supports_partial_codebooks:
            return [self.bitrate]
        return [float(self.model.bitrate_for(k)) for k in range(1, self.num_codebooks + 1)]

    @property
    def receptive_field(self) -> int:
        """Samples of encoder context on each side of a frame."""
        return int(self.model.receptive_field)

    @property
    def decoder_context(self) -> int | None:
        """Code frames of decoder context per side (measured once), None: no chunking."""
        if self._decoder_context is False:
            self._decoder_context = measure_decoder_context(self.model)
        return self._decoder_context  # type: ignore[return-value]

    def num_codebooks_for(
        self, *, num_codebooks: int | None = None, bitrate: float | None = None
    ) -> int:
        """Codebooks to use: ``num_codebooks``, or those of the ladder rung ``bitrate``
        (kbps, one of :attr:`bitrates`), or all.

        ``bitrate`` must be on the ladder (to 0.5 %, so that the printed ``0.862`` selects
        ``0.8613...``); 6000 (bits per second) is an error, not "the most that fit".

        Raises:
            UserError: both given, or a value the model cannot serve (the message lists the
                valid bitrates).
        """
        return select_codebooks(
            self.bitrates,
            self.num_codebooks,
            bool(self.model.supports_partial_codebooks),
            num_codebooks=num_codebooks,
            bitrate=bitrate,
        )

    def codes_meta(
        self,
        num_codebooks: int,
        length: int,
        original_sample_rate: int | None = None,
        original_length: int | None = None,
        original_channels: int | None = None,
    ) -> CodesMeta:
        """Token-file metadata for codes of ``length`` samples at the model's rate."""
        return CodesMeta(
            model_id=self.model_id,
            family=self.family,
            audiotok_version=__version__,
            sample_rate=self.sample_rate,
            frame_rate=self.frame_rate,
            hop_length=self.hop_length,
            channels=self.channels,
            num_codebooks=int(num_codebooks),
            codebook_size=self.codebook_size,
            length=int(length),
            original_sample_rate=int(original_sample_rate or self.sample_rate),  # Hz
            original_length=int(length if original_length is None else original_length),
            original_channels=int(original_channels or self.channels),
        )

    # -- encoding -----------------------------------------------------------------------
    def _chunk_and_context(self) -> tuple[int, int]:
        """Samples per chunk and of context per side (one chunk of everything: no chunking)."""
        ctx = self.encoder_context
        return (1 << 62, 0) if ctx is None else (self.chunk_frames * self.hop_length, ctx)

    def encode(
        self,
        wav: Any,
        sample_rate: int | None = None,
        *,
        lengths: Sequence[int] | Tensor | None = None,
        num_codebooks: int | None = None,
        bitrate: float | None = None,
    ) -> Tensor:
        """Audio to codes.

        Args:
            wav: float numpy array or tensor, ``(T,)``, ``(C, T)`` or ``(B, C, T)``.
            sample_rate: rate of ``wav`` in Hz, an int (numpy ints too) in 1000..384000
                (default: the model's); resampled with soxr.
            lengths: valid samples of each item of a padded batch (default: all ``T``).
            num_codebooks: keep the first ``k`` codebooks.
            bitrate: kbps, one of :attr:`bitrates` (e.g. 1.5, 3 or 6 for the default
                model); selects that many codebooks.

        Returns:
            ``(B, k, T')`` long codes on the CPU; ``T'`` is the frame count of the longest
            item, ``ceil(T_b / hop_length)`` for item ``b`` at the model's rate, and frames
            past an item's own count are 0.

        Raises:
            UserError: bad dtype, shape, lengths, sample rate, bitrate, or non-finite samples.
        """
        k = self.num_codebooks_for(num_codebooks=num_codebooks, bitrate=bitrate)
        sr = self.sample_rate if sample_rate is None else check_sample_rate(sample_rate)
        sources = prepare_audio(wav, sr, lengths, self.sample_rate, self.channels)
        chunk, ctx = self._chunk_and_context()
        jobs = [
            (i, w) for i, s in enumerate(sources) for w in plan_windows(s.shape[-1], chunk, ctx)
        ]
        jobs.sort(key=lambda j: j[1].length)  # equal-length windows share a batch
        frames = [-(-s.shape[-1] // self.hop_length) for s in sources]
        out = torch.zeros(len(sources), k, max(frames), dtype=torch.long)
        for src, s, c in encode_windows(self.model, sources, jobs, k, self.batch_size):
            f = s // self.hop_length
            out[src, :, f : f + c.shape[-1]] = c
        return out

    def encode_file(
        self,
        path: str | os.PathLike,
        *,
        num_codebooks: int | None = None,
        bitrate: float | None = None,
        progress: Progress | None = None,
    ) -> tuple[Tensor, CodesMeta]:
        """Encode an audio file in bounded memory (read, resampled and encoded in blocks).

        Args:
            path: any file soundfile reads (WAV, FLAC, Ogg, MP3, ...).
            num_codebooks, bitrate: as for :meth:`encode`.
            progress: called with ``(samples done, samples expected)``.

        Returns:
            ``(codes (k, T') long, meta)``, ready for :func:`audiotok.codes.write_codes`.

        Raises:
            UserError: missing, empty, corrupt or non-audio file, a header rate outside
                1000..384000 Hz, or NaN/inf samples.
        """
        k = self.num_codebooks_for(num_codebooks=num_codebooks, bitrate=bitrate)
        chunk, ctx = self._chunk_and_context()
        planner = StreamPlanner(self.channels, chunk, ctx, self.batch_size)
        with AudioReader(path, self.sample_rate, self.channels, self.read_block_frames) as reader:
            total = reader.expected_frames()
            pieces: list[Tensor] = []
            for ready in planner.stream(reader.blocks()):
                jobs = [(0, w) for w in ready.windows]
                run = encode_windows(self.model, [ready.audio], jobs, k, self.batch_size)
                pieces += [codes for _, _, codes in run]
                if progress is not None:
                    progress(ready.done, max(total, ready.received))
            source = (reader.file_sample_rate, reader.frames_read, reader.file_channels)
        return torch.cat(pieces, dim=-1), self.codes_meta(k, planner.received, *source)

    # -- decoding -----------------------------------------------------------------------
    def _check_codes(self, codes: Any) -> Tensor:
        c = as_codes(codes)  # (B, k, T')
        self.num_codebooks_for(num_codebooks=int(c.shape[1]))
        check_code_range(c, self.codebook_size)
        return c

    def _decode_plan(self, frames: int) -> list[Window]:
        """Windows over ``frames`` code frames (one, when the decoder cannot be chunked)."""
        ctx = self.decoder_context
        return plan_windows(frames, self.chunk_frames if ctx is not None else frames, ctx or 0)

    def decode(self, codes: Any, *, length: int | Sequence[int] | None = None) -> Tensor:
        """Codes to audio at the model's sample rate.

        Args:
            codes: integer numpy array or tensor, ``(k, T')`` or ``(B, k, T')``, with
                ``k <= num_codebooks`` (the first ``k`` codebooks).
            length: samples per item, one int or one per item. Without it every item
                decodes to ``T' * hop_length`` samples, all its frames: up to
                ``hop_length - 1`` samples longer than the audio that was encoded, since
                codes do not record it (token files do; :meth:`decode_to_file` and
                ``audiotok decode`` use it). Frames past ``ceil(length / hop_length)`` are
                padding and are not decoded, so a padded batch decodes exactly like its
                items alone; samples past an item's length are 0.

        Returns:
            ``(B, C, T)`` float32 on the CPU at :attr:`sample_rate`, ``T = max(length)``
            (``T' * hop_length`` without ``length``).

        Raises:
            UserError: bad dtype, shape, codebook count, out-of-range code or length.
        """
        c = self._check_codes(codes)
        hop = self.hop_length
        lens = decode_lengths(length, c.shape[0], c.shape[-1] * hop)
        items = [c[b, :, : -(-n // hop)] for b, n in enumerate(lens)]
        jobs = [(b, w) for b, it in enumerate(items) for w in self._decode_plan(it.shape[-1])]
        jobs.sort(key=lambda j: j[1].length)  # equal-length windows share a batch
        out = torch.zeros(c.shape[0], self.channels, max(lens))  # (B, C, T)
        for b, s, w in decode_windows(self.model, items, jobs, self.batch_size):
            seg = w[:, : max(0, lens[b] - s * hop)]
            out[b, :, s * hop : s * hop + seg.shape[-1]] = seg
        return out

    def decode_to_file(
        self,
        codes: Any,
        path: str | os.PathLike,
        *,
        length: int | None = None,
        sample_rate: int | None = None,
        channels: int | None = None,
        force: bool = False,
        progress: Progress | None = None,
    ) -> Path:
        """Decode ``codes (k, T')`` to an audio file in bounded memory (written in blocks).

        Args:
            codes: one item's codes, ``(k, T')`` or ``(1, k, T')``.
            path: output file; the format follows the extension (``.wav``, ``.flac``, ...).
            length: samples to write at the output rate (default: all decoded samples); at
                most one frame more than the codes hold.
            sample_rate: output rate in Hz, 1000..384000 (default: the model's); resampled
                with soxr.
            channels: output channels (default: the model's); a mono model's output is
                duplicated into each channel, several channels are averaged for fewer (the
                rule of :func:`audiotok.audio_io.convert_channels`).
            force: replace an existing file.
            progress: called with ``(frames done, frames)``.

        Returns:
            The path written (atomically).

        Raises:
            UserError: bad codes, length, rate or channels; an existing ``path`` without
                ``force``; a path that cannot be written.
        """
        c = self._check_codes(codes)
        if c.shape[0] != 1:
            raise UserError(f"decode_to_file takes one item, got a batch of {c.shape[0]}")
        out_rate = self.sample_rate if sample_rate is None else check_sample_rate(sample_rate)
        out_channels = self.channels if channels is None else check_channels(channels)
        hop, rate = self.hop_length, self.sample_rate
        model_len, want = file_lengths(length, c.shape[-1], hop, rate, out_rate)
        item = c[0, :, : -(-model_len // hop)]  # (k, frames to decode)
        jobs = [(0, w) for w in self._decode_plan(item.shape[-1])]
        return write_stream(
            (
                w.numpy()
                for _, _, w in decode_windows(self.model, [item], jobs, self.batch_size, progress)
            ),
            path,
            sample_rate=rate,
            channels=self.channels,
            samples=model_len,
            out_rate=out_rate,
            out_channels=out_channels,
            out_samples=want,
            force=force,
        )
