"""File streaming in bounded memory: audio that arrives in blocks in, decoded blocks out.

:class:`StreamPlanner` is the state machine behind
:meth:`~audiotok.tokenizer.AudioTokenizer.encode_file`: blocks of samples arrive from a reader,
and it hands out, in order, the windows of :func:`~audiotok.tokenizer.chunking.plan_windows`
whose samples have all arrived, together with the buffer they lie in, then drops the samples no
later window needs. The windows are those of the whole signal (a window is only planned once
its right context has arrived or the signal has ended), so streamed codes equal those of
``encode`` on the whole file.

:func:`write_stream` is the other direction, behind
:meth:`~audiotok.tokenizer.AudioTokenizer.decode_to_file`: decoded blocks at the model's rate
are resampled, converted to the output's channels and written, to an exact length.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiotok.audio_io import AudioWriter, Resampler, convert_channels
from audiotok.tokenizer.chunking import Window

__all__ = ["ReadyWindows", "StreamPlanner", "write_stream"]


@dataclass(frozen=True)
class ReadyWindows:
    """Windows ready to encode, in the coordinates of ``audio``.

    Attributes:
        audio: ``(C, N)`` float32, the buffered samples.
        windows: windows inside ``audio`` (``0 <= start < end <= N``), in signal order.
        done: samples of the signal (from its start) whose codes these windows complete.
        received: samples of the signal received so far.
    """

    audio: np.ndarray
    windows: list[Window]
    done: int
    received: int


class StreamPlanner:
    """Plan the windows of a signal that arrives in blocks.

    Args:
        channels: C of every block.
        chunk: samples per kept chunk.
        context: samples of context per side.
        batch_size: hand out windows once this many are ready (all of them at the end).
    """

    def __init__(self, channels: int, chunk: int, context: int, batch_size: int) -> None:
        self.chunk, self.context, self.batch_size = chunk, context, batch_size
        self._buf = np.zeros((channels, 0), np.float32)  # (C, N) samples from self._start
        self._start = 0  # absolute index of self._buf[:, 0]
        self._next = 0  # absolute start of the next chunk to plan
        self._end = 0  # absolute end of the received samples
        self._pending: list[Window] = []  # planned windows (absolute) whose samples are all here

    @property
    def received(self) -> int:
        """Samples received so far."""
        return self._end

    def push(self, block: np.ndarray | None) -> ReadyWindows | None:
        """Add a block ``(C, n)`` of samples, or ``None`` when the signal has ended.

        Returns:
            The windows to encode now: once ``batch_size`` are ready, or all the remaining
            ones at the end; ``None`` when there are none yet.
        """
        done = block is None
        if block is not None:
            self._buf = np.concatenate([self._buf, block], axis=-1)
            self._end = self._start + self._buf.shape[-1]
        nxt, end, chunk, ctx = self._next, self._end, self.chunk, self.context
        while nxt < end and (done or nxt + chunk + ctx <= end):
            self._pending.append(
                Window(max(0, nxt - ctx), min(end, nxt + chunk + ctx), nxt, min(end, nxt + chunk))
            )
            nxt += chunk
        self._next = nxt
        if not self._pending or (not done and len(self._pending) < self.batch_size):
            return None
        ready = ReadyWindows(
            audio=self._buf,
            windows=[w.shifted(self._start) for w in self._pending],
            done=min(nxt, end),
            received=end,
        )
        self._pending = []
        drop = max(0, min(nxt - ctx, end) - self._start)  # what no later window reaches back to
        self._buf, self._start = self._buf[:, drop:], self._start + drop
        return ready

    def stream(self, blocks: Iterable[np.ndarray]) -> Iterator[ReadyWindows]:
        """:meth:`push` every block ``(C, n)``, then the end; yields what is ready."""
        for block in itertools.chain(blocks, [None]):
            ready = self.push(block)
            if ready is not None:
                yield ready


def write_stream(
    blocks: Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    sample_rate: int,
    channels: int,
    samples: int,
    out_rate: int,
    out_channels: int,
    out_samples: int,
    force: bool = False,
) -> Path:
    """Write consecutive audio blocks to a file at another rate and channel count.

    Args:
        blocks: ``(channels, n)`` float arrays at ``sample_rate``, in order; at least
            ``samples`` samples in all (the rest is ignored, and not read).
        path: output file; the format follows the extension.
        sample_rate, channels: of the blocks.
        samples: samples of the blocks to use.
        out_rate, out_channels: of the file (soxr resampling; the channel rule of
            :func:`audiotok.audio_io.convert_channels`).
        out_samples: frames to write: the output is cut, or padded with silence, to it.
        force: replace an existing file.

    Returns:
        The path written (atomically: nothing is left on failure).
    """
    resample = Resampler(sample_rate, out_rate, channels)
    with AudioWriter(path, out_rate, out_channels, force=force) as writer:
        fed = 0
        for wav in blocks:
            block = wav[:, : max(0, samples - fed)]
            fed += block.shape[-1]
            out = convert_channels(resample(block, last=fed >= samples), out_channels)
            writer.write(out[:, : max(0, out_samples - writer.frames_written)])
            if fed >= samples:
                break
        if writer.frames_written < out_samples:
            writer.write(np.zeros((out_channels, out_samples - writer.frames_written), np.float32))
    return writer.path
