"""Fixtures of the audio tests: every tiny codec variant."""

from __future__ import annotations

import pytest
from tiny_codecs import BUILDERS

from audiotok.audio import AudioCodec


@pytest.fixture(params=sorted(BUILDERS))
def codec(request: pytest.FixtureRequest) -> AudioCodec:
    """Every tiny codec variant, in eval mode."""
    return BUILDERS[request.param]().eval()
