"""The ``pattern`` fixture: every test taking it runs once per interleaving pattern."""

from __future__ import annotations

import pytest
from tiny_priors import PATTERNS

from audiotok.prior import Pattern


@pytest.fixture(params=list(PATTERNS), ids=list(PATTERNS))
def pattern(request: pytest.FixtureRequest) -> Pattern:
    return PATTERNS[request.param]
