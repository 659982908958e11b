"""audiotok.data.images re-exports the split image modules: old import paths keep working."""

from __future__ import annotations

import importlib

import pytest

import audiotok.data.images as images

HOMES = (
    "audiotok.data.image_sources",
    "audiotok.data.image_readers",
    "audiotok.data.image_formats",
    "audiotok.data.image_dataset",
)


@pytest.mark.parametrize("name", images.__all__)
def test_every_public_name_is_its_home_modules_object(name: str) -> None:
    obj = getattr(images, name)
    homes = [m for m in map(importlib.import_module, HOMES) if name in getattr(m, "__all__", ())]
    assert len(homes) == 1, f"{name} is public in {len(homes)} of the split modules"
    assert getattr(homes[0], name) is obj


def test_split_modules_do_not_import_the_facade() -> None:
    # the facade sits on top; a split module importing it would make a cycle
    for home in HOMES:
        source = importlib.import_module(home).__file__
        assert source is not None
        with open(source, encoding="utf-8") as f:
            assert "audiotok.data.images " not in f.read().replace("\n", " ")
