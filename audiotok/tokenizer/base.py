"""What every tokenizer class shares: the wrapped model and the properties read off it.

:class:`~audiotok.tokenizer.audio.AudioTokenizer` and
:class:`~audiotok.tokenizer.image.ImageTokenizer` differ in what they feed the model and how
they read codes back; the model's id, family, size and device are the same questions for
both, answered once here.
"""

from __future__ import annotations

import torch
from torch import nn

from audiotok.exports import model_id_for

__all__ = ["ModelTokenizer"]


class ModelTokenizer:
    """Base of the tokenizer classes: ``model`` (in eval mode) and its id.

    Subclasses set ``self.model`` and ``self._model_id`` (None: computed from the weights on
    first use) and define ``num_codebooks`` and ``codebook_size``.
    """

    model: nn.Module
    _model_id: str | None
    #: the id of these weights when it differs from :attr:`model_id` (a decoder fine-tune
    #: that makes another model's codes; set by :func:`audiotok.hub.load`)
    weights_id: str | None = None

    @property
    def num_codebooks(self) -> int:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    @property
    def codebook_size(self) -> int:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        """Distinct tokens over all codebooks, ``num_codebooks * codebook_size``."""
        return self.num_codebooks * self.codebook_size

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
