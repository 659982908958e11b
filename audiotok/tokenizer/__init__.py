"""Tokenizers: the :class:`Tokenizer` protocol and :class:`AudioTokenizer`, the audio codec API.

The package's parts, each importable on its own:

- :mod:`~audiotok.tokenizer.protocol`: the modality-agnostic :class:`Tokenizer` protocol and
  its audio and image parts;
- :mod:`~audiotok.tokenizer.audio`: :class:`AudioTokenizer`, any audio codec behind numpy or
  torch input of any shape, rate and channel count, exact chunking, bitrates, files;
- :mod:`~audiotok.tokenizer.chunking`: the named :class:`Window` type, window planning,
  batching of equal windows, encoder and decoder contexts;
- :mod:`~audiotok.tokenizer.streaming`: files in and out in bounded memory;
- :mod:`~audiotok.tokenizer.inputs`: the checks on user input, with one-line errors.
"""

from __future__ import annotations

from audiotok.tokenizer.audio import AudioTokenizer
from audiotok.tokenizer.chunking import Window, plan_windows
from audiotok.tokenizer.protocol import (
    AudioTokenizerProtocol,
    ImageTokenizerProtocol,
    Progress,
    Tokenizer,
)

__all__ = [
    "Tokenizer",
    "AudioTokenizerProtocol",
    "ImageTokenizerProtocol",
    "AudioTokenizer",
    "Progress",
    "Window",
    "plan_windows",
]
