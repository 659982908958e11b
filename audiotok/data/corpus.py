"""Where the training corpus lives: the user's cache folder, unless ``AUDIOTOK_CORPUS`` says.

The recipes read ``${AUDIOTOK_CORPUS}/train.jsonl``; the recipe loader fills that variable
with :func:`corpus_dir` when the environment does not set it, and
``recipes/data/build_corpus.py`` writes there by default, so a recipe and the builder agree
on every machine without naming a path of any particular one. The cache folder follows the
XDG base directory rules (``$XDG_CACHE_HOME``, else ``~/.cache``; a relative
``XDG_CACHE_HOME`` is ignored, as the specification requires).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CORPUS_ENV", "cache_dir", "corpus_dir", "missing_corpus_hint"]

#: The environment variable that overrides the corpus folder.
CORPUS_ENV = "AUDIOTOK_CORPUS"


def cache_dir() -> Path:
    """audiotok's cache folder: ``$XDG_CACHE_HOME/audiotok`` or ``~/.cache/audiotok``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "audiotok"


def corpus_dir() -> Path:
    """The corpus folder: ``$AUDIOTOK_CORPUS`` if set (and not empty), else ``cache_dir()/corpus``."""
    env = os.environ.get(CORPUS_ENV, "")
    return Path(env).expanduser() if env else cache_dir() / "corpus"


def missing_corpus_hint(path: str | os.PathLike) -> str | None:
    """Advice for a data source that does not exist, when it lies in the corpus folder.

    Returns:
        One sentence (how to build the corpus there, or how to use other data), or None when
        ``path`` is not inside :func:`corpus_dir`.
    """
    root = corpus_dir()
    try:
        Path(path).expanduser().absolute().relative_to(root.absolute())
    except ValueError:
        return None
    return (
        f"the corpus is not built: run 'python recipes/data/build_corpus.py --out {root}', "
        f"or set {CORPUS_ENV}=DIR to a built corpus, or train on your own audio with "
        "--set data.train=PATH --set data.dev=PATH (a folder, file list or JSONL manifest)"
    )
