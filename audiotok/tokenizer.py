"""The :class:`Tokenizer` protocol and :class:`AudioTokenizer`, the user-facing audio codec API.

``AudioTokenizer`` wraps any :class:`~audiotok.audio.base.AudioCodec` and adds what users and
language-model pipelines need around the bare model: numpy or torch input of any shape
(``(T,)``, ``(C, T)``, ``(B, C, T)``), any sample rate (soxr resampling), any channel count
(many -> fewer: mean over channels; mono -> many: duplicated), batches of unequal lengths,
bitrate choice, file helpers, and bounded memory on inputs of any length.

Chunking is exact, not approximate. A non-causal conv encoder's frame ``j`` depends only on
samples within its receptive field, so the audio is cut into chunks ``[start, end)`` on the
frame grid, each encoded with ``ctx`` extra samples either side (``ctx`` >= the receptive
field, rounded up to whole frames) clipped to ``[0, T]``, and only the chunk's own frames are
kept. A window clipped at the true end of the signal sees exactly the padding the whole
signal gets, so the codes equal those of one un-chunked ``model.encode`` and do not depend on
the chunk size. Windows of equal length are batched together, so a padded batch gives the
codes of each item encoded alone. Decoding does the same in frames, with a decoder context
measured once by perturbing one code frame and watching which output samples change.
Recurrent layers (LSTM) have unbounded context; such models are processed in one piece.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from audiotok import __version__
from audiotok.audio_io import (
    AudioReader,
    AudioWriter,
    Resampler,
    check_sample_rate,
    convert_channels,
)
from audiotok.codes import CodesMeta
from audiotok.errors import UserError
from audiotok.registry import model_id_for

__all__ = ["Tokenizer", "AudioTokenizer", "Progress"]

#: ``progress(done, total)`` callback; units are samples for encoding, frames for decoding.
Progress = Callable[[int, int], None]

_Window = tuple[int, int, int, int]  # (window start, window end, keep start, keep end)


@runtime_checkable
class Tokenizer(Protocol):
    """What every tokenizer offers: ``encode(x) -> codes``, ``decode(codes) -> x`` + rates.

    Audio codes are ``(B, K, T')`` integers in ``[0, codebook_size)``.
    """

    @property
    def sample_rate(self) -> int: ...  # noqa: D102
    @property
    def channels(self) -> int: ...  # noqa: D102
    @property
    def frame_rate(self) -> float: ...  # noqa: D102
    @property
    def num_codebooks(self) -> int: ...  # noqa: D102
    @property
    def codebook_size(self) -> int: ...  # noqa: D102
    @property
    def bitrate(self) -> float: ...  # noqa: D102  (kbps)

    def encode(self, wav: Any, sample_rate: int | None = None) -> Tensor: ...  # noqa: D102

    def decode(self, codes: Any) -> Tensor: ...  # noqa: D102


def plan_windows(total: int, chunk: int, ctx: int) -> list[_Window]:
    """Chunks ``[s, e)`` of ``chunk`` samples with ``ctx`` context, clipped to ``[0, total]``."""
    return [
        (max(0, s - ctx), min(total, s + chunk + ctx), s, min(total, s + chunk))
        for s in range(0, total, chunk)
    ]


def _groups(items: list[Any], length: Callable[[Any], int], size: int) -> Iterator[list[Any]]:
    """Runs of at most ``size`` consecutive items of equal ``length``, in order."""
    run: list[Any] = []
    for item in items:
        if run and (len(run) == size or length(run[0]) != length(item)):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


class AudioTokenizer:
    """Tokenize audio with an :class:`~audiotok.audio.base.AudioCodec`.

    Args:
        model: the codec; put in eval mode.
        model_id: the id written into token files (default: a hash of config and weights).
        chunk_seconds: audio per chunk; does not change the codes.
        batch_size: windows per forward pass. Memory is bounded by about ``batch_size *
            (chunk_seconds + 2 * context)`` seconds of activations, whatever the input length
            (the defaults keep a 1-hour file under ~0.5 GB peak RSS on CPU); raise both on a
            GPU for speed.
    """

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
        recurrent = any(isinstance(m, nn.RNNBase) for m in model.modules())
        hop = model.hop_length
        #: encoder context in samples (a multiple of hop), None: no chunking
        self.encoder_context: int | None = (
            None if recurrent else (math.ceil(model.receptive_field / hop) + 1) * hop
        )
        self._decoder_context: int | None | bool = None if recurrent else False

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
        return float(self.model.bitrate) / 1000.0

    @property
    def bitrates(self) -> list[float]:
        """The bitrate ladder in kbps, ascending: entry ``k - 1`` is the rate of the first
        ``k`` codebooks (one entry for models that need all codebooks)."""
        if not self.model.supports_partial_codebooks:
            return [self.bitrate]
        return [float(self.model.bitrate_for(k)) / 1000.0 for k in range(1, self.num_codebooks + 1)]

    @property
    def vocab_size(self) -> int:
        """Distinct tokens over all codebooks, ``num_codebooks * codebook_size``."""
        return self.num_codebooks * self.codebook_size

    @property
    def receptive_field(self) -> int:
        """Samples of encoder context on each side of a frame."""
        return int(self.model.receptive_field)

    @property
    def num_parameters(self) -> int:
        """Parameters of the model."""
        return sum(p.numel() for p in self.model.parameters())

    @property
    def model_id(self) -> str:
        """Id written into token files; codes from another id are refused."""
        if self._model_id is None:
            self._model_id = model_id_for(self.model)
        return self._model_id

    @property
    def family(self) -> str:
        """The model family name."""
        return str(getattr(self.model, "family", type(self.model).__name__))

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return next(self.model.parameters()).device

    @property
    def decoder_context(self) -> int | None:
        """Code frames of decoder context per side (measured once), None: no chunking."""
        if self._decoder_context is False:
            self._decoder_context = self._measure_decoder_context()
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
        if num_codebooks is not None and bitrate is not None:
            raise UserError("give a bitrate or a number of codebooks, not both")
        full = self.num_codebooks
        if bitrate is not None:
            ladder = self.bitrates
            avail = ", ".join(f"{b:g}" for b in ladder)
            ok = isinstance(bitrate, int | float | np.integer | np.floating) and not isinstance(
                bitrate, bool | np.bool_
            )
            match = [k for k, b in enumerate(ladder, 1) if ok and abs(bitrate - b) <= 0.005 * b]
            if not match:
                raise UserError(
                    f"bitrate {bitrate!r} kbps is not available; valid bitrates: {avail} kbps"
                )
            return full if len(ladder) == 1 else match[0]
        if num_codebooks is None:
            return full
        if isinstance(num_codebooks, np.integer):
            num_codebooks = int(num_codebooks)
        if isinstance(num_codebooks, bool) or not isinstance(num_codebooks, int):
            raise UserError(f"num_codebooks must be an int, got {num_codebooks!r}")
        if not 1 <= num_codebooks <= full:
            raise UserError(f"num_codebooks must be in [1, {full}], got {num_codebooks}")
        if num_codebooks != full and not self.model.supports_partial_codebooks:
            raise UserError(f"this model needs all {full} codebooks")
        return num_codebooks

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
    def _encode_windows(self, sources: list[np.ndarray], jobs: list[tuple], k: int) -> list:
        """Encode ``jobs = [(src, ws, we, s, e)]``; returns ``[(src, s, codes (k, n))]``."""
        hop, out = self.hop_length, []
        for group in _groups(jobs, lambda j: j[2] - j[1], self.batch_size):
            batch = np.stack([sources[src][:, ws:we] for src, ws, we, _, _ in group])
            x = torch.from_numpy(batch).to(self.device)
            with torch.inference_mode():
                codes = self.model.encode(x, num_codebooks=k).cpu()  # (N, k, F)
            for (src, ws, _, s, e), c in zip(group, codes, strict=True):
                first = (s - ws) // hop
                out.append((src, s, c[:, first : first + -(-(e - s) // hop)]))
        return out

    def _chunk_and_context(self) -> tuple[int, int]:
        if self.encoder_context is None:
            return 1 << 62, 0
        return self.chunk_frames * self.hop_length, self.encoder_context

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
        x = _as_array(wav, "audio", floating=True)
        x = x[None, None] if x.ndim == 1 else x[None] if x.ndim == 2 else x
        if x.ndim != 3 or x.shape[-1] < 1 or x.shape[0] < 1 or x.shape[1] < 1:
            raise UserError(f"expected audio (T,), (C, T) or (B, C, T), got shape {x.shape}")
        try:
            lens = [x.shape[-1]] * x.shape[0] if lengths is None else [_whole(n) for n in lengths]
        except TypeError:
            raise UserError(f"lengths must be ints, one per item, got {lengths!r}") from None
        if len(lens) != x.shape[0] or not all(1 <= n <= x.shape[-1] for n in lens):
            raise UserError(f"lengths {lens} do not fit audio of shape {tuple(x.shape)}")
        sources = []
        for item, n in zip(x, lens, strict=True):
            if not np.isfinite(item[:, :n]).all():
                raise UserError("audio contains NaN or infinite samples")
            y = convert_channels(item[:, :n].astype(np.float32), self.channels)
            sources.append(
                np.ascontiguousarray(Resampler(sr, self.sample_rate, self.channels)(y, True))
            )
        chunk, ctx = self._chunk_and_context()
        jobs = [
            (i, *w) for i, s in enumerate(sources) for w in plan_windows(s.shape[-1], chunk, ctx)
        ]
        jobs.sort(key=lambda j: j[2] - j[1])  # equal-length windows share a batch
        frames = [-(-s.shape[-1] // self.hop_length) for s in sources]
        out = torch.zeros(len(sources), k, max(frames), dtype=torch.long)
        for src, s, c in self._encode_windows(sources, jobs, k):
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
        with AudioReader(path, self.sample_rate, self.channels, self.read_block_frames) as reader:
            total = reader.expected_frames()
            buf = np.zeros((self.channels, 0), np.float32)
            start = nxt = end = 0  # absolute sample index of buf[:, 0]; next chunk; buffer end
            pending: list[_Window] = []  # windows whose samples are all in buf
            pieces: list[Tensor] = []
            blocks = reader.blocks()
            done = False
            while not done:
                block = next(blocks, None)
                done = block is None
                if block is not None:
                    buf = np.concatenate([buf, block], axis=-1)
                    end = start + buf.shape[-1]
                while nxt < end and (done or nxt + chunk + ctx <= end):
                    pending.append(
                        (max(0, nxt - ctx), min(end, nxt + chunk + ctx), nxt, min(end, nxt + chunk))
                    )
                    nxt += chunk
                if pending and (done or len(pending) >= self.batch_size):
                    local = [
                        (0, ws - start, we - start, s - start, e - start)
                        for ws, we, s, e in pending
                    ]
                    pieces += [c for _, _, c in self._encode_windows([buf], local, k)]
                    pending = []
                    drop = max(0, min(nxt - ctx, end) - start)
                    buf, start = buf[:, drop:], start + drop
                    if progress is not None:
                        progress(min(nxt, end), max(total, end))
            length = end
            meta = self.codes_meta(
                k, length, reader.file_sample_rate, reader.frames_read, reader.file_channels
            )
        return torch.cat(pieces, dim=-1), meta

    # -- decoding -----------------------------------------------------------------------
    def _check_codes(self, codes: Any) -> Tensor:
        c = torch.from_numpy(_as_array(codes, "codes", floating=False).astype(np.int64))
        c = c[None] if c.dim() == 2 else c
        if c.dim() != 3 or c.shape[-1] < 1 or c.shape[0] < 1:
            raise UserError(f"expected codes (K, T') or (B, K, T'), got shape {tuple(c.shape)}")
        self.num_codebooks_for(num_codebooks=int(c.shape[1]))
        if int(c.min()) < 0 or int(c.max()) >= self.codebook_size:
            raise UserError(
                f"codes out of range: expected 0 <= code < {self.codebook_size}, "
                f"got min {int(c.min())} and max {int(c.max())}"
            )
        return c

    def _decode_plan(self, frames: int) -> list[_Window]:
        ctx = self.decoder_context
        return plan_windows(frames, self.chunk_frames if ctx is not None else frames, ctx or 0)

    def _decode_windows(
        self, items: list[Tensor], jobs: list[tuple], progress: Progress | None = None
    ) -> Iterator[tuple[int, int, Tensor]]:
        """Decode ``jobs = [(item, ws, we, s, e)]`` (frames) of ``items [(k, F_b)]``.

        Yields ``(item, s, wav (C, (e - s) * hop_length))`` in job order.
        """
        hop = self.hop_length
        for group in _groups(jobs, lambda j: j[2] - j[1], self.batch_size):
            x = torch.stack([items[i][:, ws:we] for i, ws, we, _, _ in group]).to(self.device)
            with torch.inference_mode():
                wav = self.model.decode(x).float().cpu()  # (N, C, L)
            for (i, ws, _, s, e), w in zip(group, wav, strict=True):
                yield i, s, w[:, (s - ws) * hop : (e - ws) * hop]
            if progress is not None:
                progress(group[-1][4], items[group[-1][0]].shape[-1])

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
        batch, hop, full = c.shape[0], self.hop_length, c.shape[-1] * self.hop_length
        try:
            if length is None:
                lens = [full] * batch
            elif isinstance(length, int | np.integer) and not isinstance(length, bool):
                lens = [int(length)] * batch
            else:
                lens = [_whole(n) for n in length]  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise UserError(f"length must be an int or one int per item, got {length!r}") from None
        if len(lens) != batch or not all(0 <= n <= full for n in lens):
            raise UserError(f"length {length} does not fit {full} samples of codes")
        items = [c[b, :, : -(-n // hop)] for b, n in enumerate(lens)]
        jobs = [(b, *w) for b, it in enumerate(items) for w in self._decode_plan(it.shape[-1])]
        jobs.sort(key=lambda j: j[2] - j[1])  # equal-length windows share a batch
        out = torch.zeros(batch, self.channels, max(lens))
        for b, s, w in self._decode_windows(items, jobs):
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
        out_channels = self.channels if channels is None else channels
        if isinstance(out_channels, bool) or not isinstance(out_channels, int | np.integer):
            raise UserError(f"channels must be an int in 1..64, got {channels!r}")
        if not 1 <= out_channels <= 64:
            raise UserError(f"channels must be an int in 1..64, got {channels!r}")
        out_channels = int(out_channels)
        model_len = c.shape[-1] * self.hop_length
        most = math.ceil((model_len + self.hop_length) * out_rate / self.sample_rate)
        if length is not None and (
            isinstance(length, bool)
            or not isinstance(length, int | np.integer)
            or not 1 <= length <= most
        ):
            raise UserError(
                f"length {length} does not fit {c.shape[-1]} code frames ({most} samples at "
                f"{out_rate} Hz at most)"
            )
        if length is not None:
            model_len = min(model_len, round(length * self.sample_rate / out_rate))
        want = int(length) if length is not None else round(model_len * out_rate / self.sample_rate)
        resample = Resampler(self.sample_rate, out_rate, self.channels)
        item = c[0, :, : -(-model_len // self.hop_length)]
        jobs = [(0, *w) for w in self._decode_plan(item.shape[-1])]
        with AudioWriter(path, out_rate, out_channels, force=force) as writer:
            fed = 0
            for _, _, wav in self._decode_windows([item], jobs, progress):
                block = wav[:, : max(0, model_len - fed)].numpy()
                fed += block.shape[-1]
                out = convert_channels(resample(block, last=fed >= model_len), out_channels)
                writer.write(out[:, : max(0, want - writer.frames_written)])
                if fed >= model_len:
                    break
            if writer.frames_written < want:
                writer.write(np.zeros((out_channels, want - writer.frames_written), np.float32))
        return writer.path

    def _measure_decoder_context(self) -> int | None:
        """Frames of decoder context per side, measured by perturbing one input frame.

        The decoder's input is perturbed as a latent vector (``decode_latent``) where the
        model has one, so that the measurement also holds when codebook entries coincide
        (e.g. before k-means initialisation); else as codes. Frames whose change reaches the
        ends of the probe mean a longer probe; none within 1024 frames means no chunking.
        """
        hop, gen = self.hop_length, torch.Generator().manual_seed(0)
        latent = hasattr(self.model, "decode_latent") and hasattr(self.model.quantizer, "dim")
        frames = 16
        while frames <= 1024:
            mid = frames // 2
            if latent:
                x = torch.randn(1, int(self.model.quantizer.dim), frames, generator=gen)
                run = self.model.decode_latent
            else:
                x = torch.randint(
                    0, self.codebook_size, (1, self.num_codebooks, frames), generator=gen
                )
                run = self.model.decode
            changed = torch.zeros(frames * hop, dtype=torch.bool)
            with torch.inference_mode():
                base = run(x.to(self.device)).float().cpu()
                for _ in range(2):
                    other = x.clone()
                    if latent:
                        other[..., mid] += torch.randn(other.shape[1], generator=gen)
                    else:
                        shift = torch.randint(
                            1, max(2, self.codebook_size), (other.shape[1],), generator=gen
                        )
                        other[0, :, mid] = (other[0, :, mid] + shift) % self.codebook_size
                    wav = run(other.to(self.device)).float().cpu()
                    changed |= (wav != base).flatten(0, 1).any(dim=0)
            idx = changed.nonzero().flatten()
            if len(idx) == 0:
                return 1
            if idx[0] > 0 and idx[-1] < frames * hop - 1:
                reach = max(mid * hop - int(idx[0]), int(idx[-1]) + 1 - (mid + 1) * hop, 0)
                return -(-reach // hop) + 1
            frames *= 2
        return None


def _whole(n: Any) -> int:
    """``n`` as an int if it is an integer (Python, numpy or a 0-d integer tensor)."""
    if isinstance(n, Tensor) and n.dim() == 0 and not n.is_floating_point():
        n = n.item()
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(n)
    return int(n)


def _as_array(x: Any, what: str, *, floating: bool) -> np.ndarray:
    """A numpy view of a tensor or array, with a dtype check."""
    if isinstance(x, Tensor):
        x = x.detach().cpu()
        x = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
        x = x.numpy()
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged nested lists, odd objects
        raise UserError(f"expected {what} as an array, got {type(x).__name__} ({e})") from None
    if floating and arr.dtype.kind != "f":
        raise UserError(f"expected float {what}, got dtype {arr.dtype}")
    if not floating and arr.dtype.kind not in "ui":
        raise UserError(f"expected integer {what}, got dtype {arr.dtype}")
    return arr
