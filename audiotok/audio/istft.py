"""A fast frame-rate decoder: ConvNeXt blocks and an inverse STFT head (Vocos, arXiv:2306.00814).

Instead of upsampling with transposed convs (most of a SEANet decoder's compute runs at the
sample rate), every layer runs at the code frame rate: an input conv, ConvNeXt blocks
(depthwise conv, LayerNorm, pointwise MLP, layer scale; arXiv:2201.03545), and a linear head
that predicts, per frame, the log-magnitude and the phase of an STFT whose hop equals the
codec's ``hop_length``. The waveform is the inverse STFT of those frames. WavTokenizer
(arXiv:2408.16532) uses the same decoder on quantized latents.

The inverse STFT uses "same" padding: frame ``t`` is centred on the middle of its own
``hop_length`` samples, and ``(n_fft - hop_length) / 2`` samples are trimmed from each end of
the overlap-add, so ``T'`` frames give exactly ``T' * hop_length`` samples.
``torch.istft(center=False)`` cannot be used for this because its window-envelope (NOLA)
check fails at the edges where the Hann window is zero; the overlap-add is written out with
``F.fold`` instead.

This decoder is **not causal**: the depthwise convs and the overlap-add look one or more
frames ahead. A codec with ``causal=True`` and this decoder has causal *codes* (the encoder
is causal) but a non-causal reconstruction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["ConvNeXtBlock", "ISTFTHead", "ISTFTDecoder"]


def framed_log_magnitude(
    wav: Tensor,
    n_fft: int,
    hop_length: int,
    window: Tensor | None = None,
    floor: float = 1e-5,
) -> Tensor:
    """Log-magnitude STFT in the "same" framing of :class:`ISTFTHead`: frame ``t`` is
    centred on the middle of samples ``[t * hop, (t + 1) * hop)``, so ``T' * hop`` samples
    give ``T'`` frames. The one definition that the spectral encoder's input, the head's
    spectrum target and the latent pitch probe share. Computed in fp32 (autocast off).

    Args:
        wav: ``(B, C, T' * hop_length)``.
        n_fft: frame length (``>= hop_length``).
        hop_length: frame step.
        window: ``(n_fft,)``; default a periodic Hann window.
        floor: magnitude floor of the log.

    Returns:
        ``(B, C, T', n_fft // 2 + 1)`` float32.
    """
    if window is None:
        window = torch.hann_window(n_fft, device=wav.device)
    left = (n_fft - hop_length) // 2
    with torch.autocast(device_type=wav.device.type, enabled=False):
        x = F.pad(wav.float(), (left, n_fft - hop_length - left))
        frames = x.unfold(-1, n_fft, hop_length)  # (B, C, T', n_fft)
        mag = torch.fft.rfft(frames * window, dim=-1).abs()
        return torch.log(mag.clamp(min=floor))


class ConvNeXtBlock(nn.Module):
    """``x + gamma * MLP(LayerNorm(depthwise_conv(x)))`` on ``(B, D, T)`` (arXiv:2201.03545).

    Args:
        dim: channels D.
        intermediate: hidden width of the pointwise MLP.
        kernel_size: depthwise conv kernel (odd).
        layer_scale: initial value of the per-channel residual scale ``gamma``.
    """

    def __init__(
        self, dim: int, intermediate: int, *, kernel_size: int = 7, layer_scale: float = 0.1
    ) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, D, T)`` -> same shape."""
        y = self.dwconv(x).transpose(1, 2)  # (B, T, D)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class ISTFTHead(nn.Module):
    """Frames ``(B, T', H)`` to audio ``(B, C, T' * hop_length)`` via a "same"-padded ISTFT.

    Args:
        hidden: input features per frame.
        channels: audio channels C (one spectrum predicted per channel).
        hop_length: STFT hop, the codec's samples per frame.
        n_fft: FFT size (and Hann window length), ``>= hop_length``.
        max_magnitude: clamp on the predicted linear magnitude (keeps ``exp`` finite).
        mlp_hidden: width of a GELU MLP added to the linear projection (0: linear only).

    Why the MLP: a linear head from ``hidden`` features can only emit log-magnitude frames in
    a ``hidden``-dimensional subspace of the ``n_fft // 2 + 1`` bins. A voice's harmonics
    are a ripple whose period in bins is set by its pitch, so every pitch needs its own
    direction; with 256 features for 641 bins, projecting *true* speech spectra onto the
    head's span lost a fifth of the ViSQOL score (5.0 -> 3.9 with the true phase). The MLP's
    output layer starts at zero, so adding it to a trained linear head changes nothing until
    it learns.
    """

    def __init__(
        self,
        hidden: int,
        *,
        channels: int = 1,
        hop_length: int = 320,
        n_fft: int = 1280,
        max_magnitude: float = 100.0,
        mlp_hidden: int = 0,
    ) -> None:
        super().__init__()
        if n_fft < hop_length:
            raise ValueError(f"n_fft ({n_fft}) must be >= hop_length ({hop_length})")
        if mlp_hidden < 0:
            raise ValueError(f"mlp_hidden must be >= 0, got {mlp_hidden}")
        self.channels, self.hop_length, self.n_fft = channels, hop_length, n_fft
        self.max_magnitude = max_magnitude
        self.bins = n_fft // 2 + 1
        self.proj = nn.Linear(hidden, channels * self.bins * 2)
        self.mlp: nn.Sequential | None = None
        if mlp_hidden:
            out = nn.Linear(mlp_hidden, channels * self.bins * 2)
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
            self.mlp = nn.Sequential(nn.Linear(hidden, mlp_hidden), nn.GELU(), out)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def spectrum(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The predicted frames before the inverse STFT, fp32.

        Args:
            x: ``(B, T', H)``.

        Returns:
            ``(log_magnitude, phase)``, each ``(B, T', C, n_fft // 2 + 1)`` (the
            log-magnitude before the :attr:`max_magnitude` clamp).
        """
        batch, frames, _ = x.shape
        y = self.proj(x)
        if self.mlp is not None:
            y = y + self.mlp(x)
        y = y.float().reshape(batch, frames, self.channels, 2, self.bins)
        return y[..., 0, :], y[..., 1, :]

    def synthesize(self, log_magnitude: Tensor, phase: Tensor) -> Tensor:
        """Predicted frames ``(B, T', C, bins)`` -> audio ``(B, C, T' * hop_length)``."""
        batch, frames = log_magnitude.shape[:2]
        magnitude = torch.exp(log_magnitude).clamp(max=self.max_magnitude)
        spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        spec = spec.permute(0, 2, 3, 1).reshape(batch * self.channels, self.bins, frames)
        wav = self.istft(spec)
        return wav.reshape(batch, self.channels, -1)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, T', H)`` -> ``(B, C, T' * hop_length)``."""
        return self.synthesize(*self.spectrum(x))

    def log_spectrum(self, wav: Tensor, floor: float = 1e-5) -> Tensor:
        """The log-magnitude STFT of ``wav`` in this head's framing: the frames the head
        would have to predict to give ``wav`` back (with its phase), fp32.

        Args:
            wav: ``(B, C, T' * hop_length)``.
            floor: magnitude floor of the log.

        Returns:
            ``(B, T', C, n_fft // 2 + 1)``.
        """
        return framed_log_magnitude(wav, self.n_fft, self.hop_length, self.window, floor).transpose(
            1, 2
        )

    def istft(self, spec: Tensor) -> Tensor:
        """Inverse STFT with "same" padding.

        Args:
            spec: ``(N, n_fft // 2 + 1, T')`` complex.

        Returns:
            ``(N, T' * hop_length)`` float.
        """
        frames = spec.shape[-1]
        n_fft, hop = self.n_fft, self.hop_length
        chunks = torch.fft.irfft(spec, n=n_fft, dim=1, norm="backward")  # (N, n_fft, T')
        chunks = chunks * self.window[None, :, None]
        size = (frames - 1) * hop + n_fft
        out = F.fold(chunks, output_size=(1, size), kernel_size=(1, n_fft), stride=(1, hop))
        envelope = F.fold(
            self.window.square()[None, :, None].expand(1, n_fft, frames),
            output_size=(1, size),
            kernel_size=(1, n_fft),
            stride=(1, hop),
        )
        left = (n_fft - hop) // 2
        end = left + frames * hop
        out = out[:, 0, 0, left:end]
        envelope = envelope[0, 0, 0, left:end]
        return out / envelope.clamp(min=1e-11)


class ISTFTDecoder(nn.Module):
    """Latent ``(B, D, T')`` to waveform ``(B, C, T' * hop_length)`` at the frame rate.

    Args:
        dim: latent dimension D.
        channels: audio channels C.
        hop_length: samples per frame (the encoder's hop).
        n_fft: STFT size; default ``4 * hop_length``.
        hidden: width of the ConvNeXt blocks.
        intermediate: MLP width inside each block (default ``3 * hidden``).
        num_layers: ConvNeXt blocks.
        kernel_size: depthwise conv kernel (odd) of the input conv and the blocks.
        head_hidden: MLP width added to the linear ISTFT head (0: linear head; see
            :class:`ISTFTHead`).
    """

    def __init__(
        self,
        *,
        dim: int = 128,
        channels: int = 1,
        hop_length: int = 320,
        n_fft: int | None = None,
        hidden: int = 256,
        intermediate: int | None = None,
        num_layers: int = 8,
        kernel_size: int = 7,
        head_hidden: int = 0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.hop_length = hop_length
        self.embed = nn.Conv1d(dim, hidden, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(
                hidden,
                intermediate or 3 * hidden,
                kernel_size=kernel_size,
                layer_scale=1.0 / max(1, num_layers),
            )
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(hidden, eps=1e-6)
        self.head = ISTFTHead(
            hidden,
            channels=channels,
            hop_length=hop_length,
            n_fft=n_fft or 4 * hop_length,
            mlp_hidden=head_hidden,
        )

    def head_input(self, latent: Tensor) -> Tensor:
        """What the ISTFT head sees: ``latent (B, D, T')`` -> ``(B, T', hidden)``."""
        x = self.norm(self.embed(latent).transpose(1, 2)).transpose(1, 2)  # (B, H, T')
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x.transpose(1, 2))

    def forward(self, latent: Tensor) -> Tensor:
        """``latent: (B, D, T')`` -> ``(B, C, T' * hop_length)``."""
        return self.head(self.head_input(latent))

    def forward_with_spectrum(self, latent: Tensor) -> tuple[Tensor, Tensor]:
        """The audio and the log-magnitude frames it was made from, ``(B, T', C, bins)``."""
        log_magnitude, phase = self.head.spectrum(self.head_input(latent))
        return self.head.synthesize(log_magnitude, phase), log_magnitude
