"""Audio model families: 1-D VQ-VAE, SoundStream-style codec, discriminators and losses.

Every codec is an :class:`AudioCodec`: ``encode(wav (B, C, T)) -> codes (B, K, T')``,
``decode(codes) -> wav (B, C, T' * hop_length)`` and a training ``forward`` returning a
:class:`CodecOutput`. Each family takes one frozen config dataclass.
"""

from audiotok.audio.base import AudioCodec, CodecConfig, CodecOutput
from audiotok.audio.discriminators import MultiPeriodDiscriminator, MultiScaleSTFTDiscriminator
from audiotok.audio.losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from audiotok.audio.soundstream import SoundStream, SoundStreamConfig
from audiotok.audio.vqvae import AudioVQVAE, AudioVQVAEConfig

__all__ = [
    "AudioCodec",
    "CodecConfig",
    "CodecOutput",
    "SoundStream",
    "SoundStreamConfig",
    "AudioVQVAE",
    "AudioVQVAEConfig",
    "MultiScaleSTFTDiscriminator",
    "MultiPeriodDiscriminator",
    "MultiScaleMelLoss",
    "MultiResolutionSTFTLoss",
    "feature_matching_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
]
