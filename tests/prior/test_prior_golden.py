"""Golden tensors: the exported layout of each prior family computes what it did.

Weights come from a formula (no RNG), so the pinned logits change only when the computation
or the parameter layout of a saved prior changes; such a change needs a new format version in
``audiotok/prior/io.py`` (old exports would load and silently compute something else).
"""

from __future__ import annotations

import torch

from audiotok.prior import GPT, GPTConfig, MaskedConfig, MaskedPrior, delay


def _formula_weights(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for i, (_, p) in enumerate(sorted(model.state_dict().items())):
            x = torch.arange(p.numel(), dtype=torch.float64) * 0.37 + i
            p.copy_(torch.sin(x).view_as(p).float() * 0.2)
    return model.eval()


SHAPE = {"codebook_size": 5, "num_layers": 2, "num_heads": 2, "dim": 8, "num_classes": 2}


def test_gpt_golden_logits() -> None:
    config = GPTConfig(num_codebooks=2, pattern=delay(2), block_size=16, **SHAPE)
    model = _formula_weights(GPT(config))
    codes = torch.tensor([[[0, 1, 2, 3], [4, 3, 2, 1]]])
    seq, _ = config.pattern.build(codes)
    expected = torch.tensor(
        [
            [-0.08537348, 0.09554964, -0.10258361, 0.10624407, -0.10641067],
            [0.10307792, -0.09635539, 0.08646420, -0.07372959, 0.05857036],
        ]
    )
    torch.testing.assert_close(model(seq, torch.tensor([1]))[0, :, -1], expected, atol=1e-5, rtol=0)
    per_codebook = model.loss(codes, torch.tensor([1]))[1]
    torch.testing.assert_close(
        per_codebook, torch.tensor([1.7105982, 1.6856713]), atol=1e-5, rtol=0
    )


def test_masked_golden_logits() -> None:
    config = MaskedConfig(num_codebooks=2, max_positions=16, **SHAPE)
    model = _formula_weights(MaskedPrior(config))
    tokens = torch.tensor([[[0, -1, 2, -1], [-1, 3, -1, 1]]])
    expected = torch.tensor(
        [
            [0.03976294, -0.02104953, 0.00164390, 0.01781579, -0.03668960],
            [0.05435687, -0.07023657, 0.08380653, -0.09462048, 0.10232280],
        ]
    )
    torch.testing.assert_close(
        model(tokens, torch.tensor([0]))[0, :, 1], expected, atol=1e-5, rtol=0
    )
