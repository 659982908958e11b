"""Codebook interleaving patterns: codes ``(B, K, T)`` <-> a step grid ``(B, K, S)`` and back.

A language model over K residual codebooks must decide which codes it predicts together. The
patterns of MusicGen (Copet et al., arXiv:2306.05284, section 2.2) are all one rule here:
code ``(k, t)`` goes to sequence step

    s(k, t) = (t + delays[k]) * P + substeps[k],      P = max(substeps) + 1 steps per frame,

so every step holds the codes of the codebooks whose sub-step it is. The grid has S steps,
up to and including the last step that holds a code; a slot with no code (the edges of a
delay, the codebooks of other sub-steps) holds :data:`EMPTY_CODE` and is ``False`` in the mask,
so it is out of the loss and never sampled.

==============  =========================  ============================================
pattern         delays / substeps           one frame becomes
==============  =========================  ============================================
parallel        0... / 0...                 1 step with K codes
delay           0,1,..,K-1 / 0...           1 step, codebook k lagging k frames (MusicGen)
flatten         0... / 0,1,..,K-1           K steps with one code each (a flat LM)
coarse_first    0.. or 0,1,.. / 0,..,n,n..  n steps (codebooks 0..n-1) then one step with the
                                            K - n fine codebooks, in parallel or delayed
==============  =========================  ============================================

``coarse_first(K, n)`` is the partial flattening of audiocraft's ``UnrolledPatternProvider``
made explicit: the n coarse codebooks, which carry most of the content, get one step each;
the fine codebooks share the next step, optionally delayed against each other
(``fine="delay"``: fine codebook j lags j frames). Anchor, learned from and not copied:
audiocraft ``audiocraft/modules/codebooks_patterns.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

EMPTY_CODE = -1
"""The value of slots without a code in a step grid (never a valid code)."""

_KINDS = ("parallel", "delay", "flatten", "coarse_first", "custom")


@dataclass(frozen=True)
class Pattern:
    """Where each code of a ``(K, T)`` grid goes in a sequence of steps (see module doc).

    Build one with :func:`parallel`, :func:`delay`, :func:`flatten` or :func:`coarse_first`.

    Attributes:
        kind: the constructor's name ("custom" for hand-made delays/substeps).
        delays: frame delay of each codebook, ``>= 0``; length K.
        substeps: the sub-step of each codebook within its frame, covering ``0..P-1``.
    """

    kind: str
    delays: tuple[int, ...]
    substeps: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown pattern kind {self.kind!r}; expected one of {_KINDS}")
        if not self.delays or len(self.delays) != len(self.substeps):
            raise ValueError("a pattern needs one delay and one sub-step per codebook")
        if min(self.delays) < 0 or min(self.substeps) < 0:
            raise ValueError("delays and sub-steps must be >= 0")
        if set(self.substeps) != set(range(max(self.substeps) + 1)):
            raise ValueError(f"sub-steps {self.substeps} leave a sub-step without a codebook")

    @property
    def num_codebooks(self) -> int:
        """K, the number of codebooks the pattern interleaves."""
        return len(self.delays)

    @property
    def steps_per_frame(self) -> int:
        """P, the number of sequence steps one frame is spread over."""
        return max(self.substeps) + 1

    def num_steps(self, num_frames: int) -> int:
        """S, the grid length for T = ``num_frames`` frames (0 for T = 0)."""
        if num_frames <= 0:
            return 0
        last = max(
            d * self.steps_per_frame + p for d, p in zip(self.delays, self.substeps, strict=True)
        )
        return (num_frames - 1) * self.steps_per_frame + last + 1

    def num_frames(self, num_steps: int) -> int:
        """T for a grid of S = ``num_steps`` steps; ValueError if no T gives that length."""
        if num_steps == 0:
            return 0
        base = self.num_steps(1)
        frames, rest = divmod(num_steps - base, self.steps_per_frame)
        if rest or frames < 0:
            raise ValueError(
                f"{num_steps} steps is not a whole number of frames for pattern {self.kind}"
            )
        return frames + 1

    def positions(self, num_frames: int, device: torch.device | str = "cpu") -> Tensor:
        """Step of each code: ``(K, T)`` long, ``s(k, t) = (t + delays[k]) P + substeps[k]``."""
        t = torch.arange(num_frames, device=device)
        d = torch.tensor(self.delays, device=device)[:, None]
        p = torch.tensor(self.substeps, device=device)[:, None]
        return (t + d) * self.steps_per_frame + p

    def mask(self, num_frames: int, device: torch.device | str = "cpu") -> Tensor:
        """Which slots of the ``(K, S)`` grid hold a code: bool, True = a real code."""
        m = torch.zeros(self.num_codebooks, self.num_steps(num_frames), dtype=torch.bool)
        m = m.to(device)
        return m.scatter_(1, self.positions(num_frames, device), True)

    def slots(self, num_steps: int, device: torch.device | str = "cpu") -> Tensor:
        """Which slots belong to the layout, empty or not: ``(K, S)`` bool.

        Slot ``(k, s)`` is in the layout when ``s`` is codebook k's sub-step; the LM export
        writes exactly these slots (EMPTY where the mask is False).
        """
        s = torch.arange(num_steps, device=device) % self.steps_per_frame
        return s[None] == torch.tensor(self.substeps, device=device)[:, None]

    def completion_steps(self, num_frames: int, device: torch.device | str = "cpu") -> Tensor:
        """The step after which frame t is complete in all codebooks: ``(T,)`` long."""
        return self.positions(num_frames, device).amax(dim=0)

    def build(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Lay ``codes: (B, K, T)`` out on the step grid.

        Returns:
            seq: ``(B, K, S)`` long, :data:`EMPTY_CODE` where no code goes.
            mask: ``(K, S)`` bool, True where ``seq`` holds a code (the loss mask).
        """
        b, k, t = self._check(codes, "codes")
        seq = codes.new_full((b, k, self.num_steps(t)), EMPTY_CODE, dtype=torch.long)
        pos = self.positions(t, codes.device).expand(b, k, t)
        seq.scatter_(2, pos, codes.long())
        return seq, self.mask(t, codes.device)

    def revert(self, seq: Tensor) -> Tensor:
        """The codes ``(B, K, T)`` of a grid ``seq: (B, K, S)``; empty slots are ignored."""
        b, k, s = self._check(seq, "seq")
        t = self.num_frames(s)
        return seq.gather(2, self.positions(t, seq.device).expand(b, k, t))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` inverts it."""
        return {"kind": self.kind, "delays": list(self.delays), "substeps": list(self.substeps)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Pattern:
        """The pattern of :meth:`to_dict`; unknown or missing keys are a ValueError."""
        if set(d) != {"kind", "delays", "substeps"}:
            raise ValueError(f"pattern keys must be kind, delays, substeps; got {sorted(d)}")
        return cls(str(d["kind"]), tuple(map(int, d["delays"])), tuple(map(int, d["substeps"])))

    def _check(self, x: Tensor, name: str) -> tuple[int, int, int]:
        if x.dim() != 3 or x.shape[1] != self.num_codebooks:
            raise ValueError(
                f"{name} must be (B, {self.num_codebooks}, T) for this pattern, got {tuple(x.shape)}"
            )
        if x.dtype.is_floating_point or x.dtype == torch.bool:
            raise ValueError(f"{name} must be integer, got {x.dtype}")
        return x.shape[0], x.shape[1], x.shape[2]


def parallel(num_codebooks: int) -> Pattern:
    """All K codes of a frame in one step (MusicGen "parallel")."""
    return Pattern("parallel", (0,) * num_codebooks, (0,) * num_codebooks)


def delay(num_codebooks: int, delays: Sequence[int] | None = None) -> Pattern:
    """One step per frame, codebook k delayed by ``delays[k]`` frames (default ``k``).

    MusicGen's default: codebook k at step t holds frame ``t - k``, so each code is predicted
    after the coarser codes of its own frame.
    """
    delays = tuple(range(num_codebooks)) if delays is None else tuple(delays)
    if len(delays) != num_codebooks:
        raise ValueError(f"need {num_codebooks} delays, got {len(delays)}")
    return Pattern("delay", delays, (0,) * num_codebooks)


def flatten(num_codebooks: int) -> Pattern:
    """One code per step, frame by frame, codebook 0 first: a flat LM over K T tokens."""
    return Pattern("flatten", (0,) * num_codebooks, tuple(range(num_codebooks)))


def coarse_first(num_codebooks: int, num_coarse: int, fine: str = "parallel") -> Pattern:
    """The first ``num_coarse`` codebooks one step each, then the fine ones in one step.

    Args:
        num_codebooks: K.
        num_coarse: n, ``1 <= n < K``.
        fine: "parallel" (the fine codebooks together) or "delay" (fine codebook j, counted
            from 0, lags j frames).
    """
    if not 1 <= num_coarse < num_codebooks:
        raise ValueError(f"num_coarse must be in 1..{num_codebooks - 1}, got {num_coarse}")
    if fine not in ("parallel", "delay"):
        raise ValueError(f"fine must be 'parallel' or 'delay', got {fine!r}")
    num_fine = num_codebooks - num_coarse
    fine_delays = range(num_fine) if fine == "delay" else [0] * num_fine
    return Pattern(
        "coarse_first",
        (0,) * num_coarse + tuple(fine_delays),
        tuple(range(num_coarse)) + (num_coarse,) * num_fine,
    )


def get_pattern(name: str, num_codebooks: int, **kwargs: Any) -> Pattern:
    """A pattern by name ("parallel", "delay", "flatten", "coarse_first"), for configs."""
    builders = {
        "parallel": parallel,
        "delay": delay,
        "flatten": flatten,
        "coarse_first": coarse_first,
    }
    if name not in builders:
        raise ValueError(f"unknown pattern {name!r}; expected one of {sorted(builders)}")
    return builders[name](num_codebooks, **kwargs)
