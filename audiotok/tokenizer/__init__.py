"""Tokenizers: the :class:`Tokenizer` protocol, :class:`AudioTokenizer` and :class:`ImageTokenizer`.

The package's parts, each importable on its own:

- :mod:`~audiotok.tokenizer.protocol`: the modality-agnostic :class:`Tokenizer` protocol and
  its audio and image parts;
- :mod:`~audiotok.tokenizer.audio`: :class:`AudioTokenizer`, any audio codec behind numpy or
  torch input of any shape, rate and channel count, exact chunking, bitrates, files;
- :mod:`~audiotok.tokenizer.image`: :class:`ImageTokenizer`, any image codec behind
  ``(B, C, H, W)`` float input of any size, codes ``(B, K, H', W')``, files;
- :mod:`~audiotok.tokenizer.chunking`: the named :class:`Window` type, window planning,
  batching of equal windows, encoder and decoder contexts;
- :mod:`~audiotok.tokenizer.streaming`: files in and out in bounded memory;
- :mod:`~audiotok.tokenizer.inputs`: the checks on user input, with one-line errors.
"""

from __future__ import annotations

from audiotok.tokenizer.audio import AudioTokenizer
from audiotok.tokenizer.chunking import Window, plan_windows
from audiotok.tokenizer.image import ImageTokenizer
from audiotok.tokenizer.protocol import (
    AudioTokenizerProtocol,
    ImageTokenizerProtocol,
    Progress,
    Tokenizer,
)

#: modality of a model family (its class's ``modality``) -> the tokenizer class that wraps it;
#: ``audiotok.load`` picks from this, so a new modality is added here, not in an if-chain.
TOKENIZER_CLASSES: dict[str, type] = {"audio": AudioTokenizer, "image": ImageTokenizer}

__all__ = [
    "Tokenizer",
    "AudioTokenizerProtocol",
    "ImageTokenizerProtocol",
    "AudioTokenizer",
    "ImageTokenizer",
    "TOKENIZER_CLASSES",
    "Progress",
    "Window",
    "plan_windows",
]
