"""The import rules of ARCHITECTURE.md, enforced by reading every module's imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "audiotok"

# top-level unit (subpackage or module) -> audiotok units it must never import
FORBIDDEN: dict[str, set[str]] = {
    "quantize": {
        "audio",
        "image",
        "prior",
        "data",
        "training",
        "eval",
        "hub",
        "tokenizer",
        "codes",
        "cli",
        "nn",
    },
    "nn": {
        "audio",
        "image",
        "prior",
        "data",
        "training",
        "eval",
        "hub",
        "tokenizer",
        "codes",
        "cli",
    },
    "audio": {"image", "prior", "data", "training", "eval", "hub", "cli"},
    "image": {"audio", "prior", "data", "training", "eval", "hub", "cli"},
    "prior": {"audio", "image", "data", "training", "eval", "hub", "cli", "tokenizer"},
    "data": {"audio", "image", "prior", "quantize", "training", "hub", "cli", "nn"},
    "hub": {"training", "cli", "data", "eval"},
    "tokenizer": {"training", "cli", "data"},
    "codes": {"training", "cli", "audio", "image", "prior"},
    "eval": {"training", "cli"},
    "training": {"cli"},
}


def _unit(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _imported_units(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "audiotok":
                names = [f"audiotok.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "audiotok" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "__main__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_import_direction(path: Path) -> None:
    unit = _unit(path)
    bad = [
        f"{path.relative_to(PKG)}:{line} imports audiotok.{target}"
        for target, line in _imported_units(path)
        if target in FORBIDDEN.get(unit, set()) or (target == "cli" and unit != "cli")
    ]
    assert not bad, "; ".join(bad)


def test_rules_catch_a_bad_import(tmp_path: Path) -> None:
    # the checker itself must see a forbidden import
    fake = tmp_path / "bad.py"
    fake.write_text("from audiotok.audio import seanet\nimport audiotok.training.trainer\n")
    assert {u for u, _ in _imported_units(fake)} == {"audio", "training"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_every_module_has_a_docstring(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.relative_to(PKG)} has no module docstring"


def test_import_is_cheap_and_side_effect_free() -> None:
    code = "import sys, audiotok; print('torch' in sys.modules, audiotok.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False", "import audiotok must not import torch"


def test_quantize_imports_only_torch_einops_stdlib() -> None:
    allowed = {"torch", "einops", "audiotok", "__future__"} | set(sys.stdlib_module_names)
    for path in (PKG / "quantize").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{path.name} imports {root}"
