"""The masked prior: fills every unknown slot, keeps the given ones, on 1-D and 2-D grids."""

from __future__ import annotations

import json

import pytest
import torch

from audiotok.prior import MASK_CODE, MaskedConfig, MaskedPrior, load_prior

K, V = 2, 9


def tiny_masked(num_classes: int = 0, seed: int = 0) -> MaskedPrior:
    torch.manual_seed(seed)
    config = MaskedConfig(
        num_codebooks=K,
        codebook_size=V,
        max_positions=64,
        num_layers=2,
        num_heads=2,
        dim=32,
        num_classes=num_classes,
    )
    return MaskedPrior(config).eval()


@pytest.mark.parametrize("spatial", [(12,), (3, 4)], ids=["audio", "image"])
@pytest.mark.parametrize("per_codebook", [False, True])
def test_fill_completes_masked_and_keeps_given(spatial, per_codebook: bool) -> None:
    model = tiny_masked(num_classes=2)
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, V, (2, K, *spatial), generator=g)
    hidden = torch.rand(codes.shape, generator=g) < 0.6
    hidden[1] = True  # one item from nothing
    partial = torch.where(hidden, MASK_CODE, codes)
    out = model.fill(
        partial,
        steps=[3, 1] if per_codebook else 4,
        per_codebook=per_codebook,
        class_labels=torch.tensor([0, 1]),
        cfg_scale=2.0,
        generator=torch.Generator().manual_seed(1),
    )
    assert out.shape == codes.shape
    assert bool(((out >= 0) & (out < V)).all()), "every masked slot is filled with a code"
    assert torch.equal(out[~hidden], codes[~hidden]), "given codes are kept"


def test_fill_is_seeded_and_one_step_is_one_pass() -> None:
    model = tiny_masked()

    def run(seed: int, **kw) -> torch.Tensor:
        return model.generate(2, (10,), generator=torch.Generator().manual_seed(seed), **kw)

    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))
    blank = torch.full((1, K, 10), MASK_CODE)
    greedy = model(blank).argmax(-1)
    assert torch.equal(model.fill(blank, steps=1, temperature=0.0), greedy)


def test_schedule_unmasks_progressively(monkeypatch) -> None:
    model = tiny_masked()
    seen = []
    real = MaskedPrior.forward

    def spy(self, tokens, class_labels=None):
        seen.append(int((tokens < 0).sum()))
        return real(self, tokens, class_labels)

    monkeypatch.setattr(MaskedPrior, "forward", spy)
    model.generate(1, (16,), steps=4)
    # cosine schedule over 32 slots: masked before each pass 32, floor(32 cos(pi/8)), ...
    assert seen == [32, 29, 22, 12]


def test_loss_is_on_masked_slots_and_training_reduces_it() -> None:
    model = tiny_masked(num_classes=2).train()
    # each image is one code everywhere: any visible slot (or the class) gives the rest
    labels = torch.tensor([0, 1, 0, 1])
    codes = (labels * 3 + 2)[:, None, None, None].expand(4, K, 3, 4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for step in range(80):
        loss, per_codebook = model.loss(
            codes, labels, generator=torch.Generator().manual_seed(step)
        )
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert per_codebook.shape == (K,) and not per_codebook.requires_grad
    assert losses[0] > 1.5 and sum(losses[-5:]) / 5 < 0.3, losses


def test_save_load_and_limits(tmp_path) -> None:
    model = tiny_masked(num_classes=3)
    loaded = load_prior(model.save_pretrained(tmp_path / "m"))
    assert isinstance(loaded, MaskedPrior)
    assert json.loads((tmp_path / "m" / "config.json").read_text())["family"] == "prior_masked"
    tokens = torch.randint(-1, V, (2, K, 7))
    assert torch.equal(loaded(tokens, torch.tensor([0, 3])), model(tokens, torch.tensor([0, 3])))
    with pytest.raises(ValueError, match="max_positions"):
        model(torch.zeros(1, K, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown MaskedConfig key"):
        MaskedConfig.from_dict({**model.config.to_dict(), "depth": 2})
    with pytest.raises(ValueError, match="-1"):
        model.fill(torch.full((1, K, 3), V))


def test_soundstorm_loss_masks_one_level_and_everything_finer(monkeypatch) -> None:
    model = MaskedPrior(
        MaskedConfig(
            num_codebooks=4, codebook_size=V, max_positions=64, num_layers=1, num_heads=2, dim=16
        )
    )
    seen = []
    real = MaskedPrior.forward

    def spy(self, tokens, class_labels=None):
        seen.append(tokens.clone())
        return real(self, tokens, class_labels)

    monkeypatch.setattr(MaskedPrior, "forward", spy)
    codes = torch.randint(0, V, (16, 4, 10), generator=torch.Generator().manual_seed(0))
    loss, per_codebook = model.loss(
        codes, per_codebook=True, generator=torch.Generator().manual_seed(1)
    )
    levels = set()
    for item in seen[0]:
        masked = (item < 0).sum(dim=1).tolist()  # masked positions per codebook
        level = next(i for i, m in enumerate(masked) if m > 0)
        levels.add(level)
        assert 1 <= masked[level] <= 10 and all(m == 10 for m in masked[level + 1 :])
        assert all(m == 0 for m in masked[:level])
    assert len(levels) > 1 and torch.isfinite(loss) and per_codebook.shape == (4,)
