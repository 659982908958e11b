"""The modality half of a run: the builder is chosen by the family, and a modality without a
builder is one clear error instead of an audio pipeline run on the wrong data."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from audiotok.errors import UserError
from audiotok.training.build import TASK_BUILDERS, AudioTaskBuilder, task_builder
from audiotok.training.config import config_from_dict
from audiotok.training.trainer import Trainer


def test_builder_follows_the_family_modality(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(task_builder("soundstream"), AudioTaskBuilder)
    assert isinstance(task_builder("audio_vqvae"), AudioTaskBuilder)
    monkeypatch.delitem(TASK_BUILDERS, "image", raising=False)
    with pytest.raises(UserError, match="image_vqvae.*cannot be trained"):
        task_builder("image_vqvae")
    with pytest.raises(UserError, match="unknown model family"):
        task_builder("nope")


def test_trainer_uses_the_builders_parts(
    tiny_recipe: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    class Spy(AudioTaskBuilder):
        def build_discriminator(self, config, model):
            calls.append("disc")
            return super().build_discriminator(config, model)

        def build_datasets(self, config, model, dist):
            calls.append("data")
            return super().build_datasets(config, model, dist)

        def throughput(self, config):
            return {"items": float(config.data.batch_size)}

    monkeypatch.setitem(TASK_BUILDERS, "audio", Spy())
    recipe = copy.deepcopy(tiny_recipe)
    recipe["optim"]["max_steps"] = 2
    trainer = Trainer(config_from_dict(recipe))
    assert calls == ["disc", "data"]
    result = trainer.fit()
    assert result.metrics["items_per_s"] > 0
