"""The import rules of ARCHITECTURE.md, enforced by reading every module's imports."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "audiotok"

#: what a leaf helper module (stdlib and audiotok.errors only) must never import
LEAF_MODULE = {"audio", "image", "prior", "quantize", "data", "training", "eval", "hub"} | {
    "registry",
    "tokenizer",
    "codes",
    "nn",
}

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
    "config": set(LEAF_MODULE),
    "bulk": {"training", "cli", "eval"},
    "batch": {"training", "cli", "eval", "data"},
    "statedict": LEAF_MODULE | {"config"},
    # the export writer serves hub and prior alike, so it knows neither (nor any family)
    "exports": LEAF_MODULE | {"config", "statedict", "migrations"},
    "migrations": set(LEAF_MODULE),
    "generation": {"training", "cli", "eval", "data"},
    "registry": {"training", "cli", "data", "eval", "hub", "tokenizer", "codes"},
    "tokenizer": {"training", "cli", "data"},
    # the one audio I/O module serves tokenizer, data and eval, so it sits below all of them
    "audio_io": {
        "audio",
        "image",
        "prior",
        "quantize",
        "nn",
        "data",
        "training",
        "eval",
        "hub",
        "registry",
        "tokenizer",
        "cli",
    },
    "codes": {"training", "cli", "audio", "image", "prior"},
    # the image twin of audio_io, and the batch/info layers built on the tokenizers
    "image_io": {
        "audio",
        "image",
        "prior",
        "quantize",
        "nn",
        "data",
        "training",
        "eval",
        "hub",
        "registry",
        "tokenizer",
        "cli",
    },
    "batch_core": LEAF_MODULE | {"audio_io", "image_io", "batch", "image_batch"},
    "image_batch": {"training", "cli", "eval", "data", "audio", "audio_io"},
    "model_info": {"training", "cli", "eval", "data"},
    "eval": {"training", "cli"},
    "training": {"cli"},
}


# the application layers above the models: nothing at or below the model families uses them
for _low in ("quantize", "nn", "audio", "image", "prior", "data", "statedict", "migrations"):
    FORBIDDEN[_low] |= {"batch", "bulk", "generation", "cli_tokens"}
    FORBIDDEN[_low] |= {"batch_core", "image_batch", "model_info"}


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


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_edges(paths: list[Path]) -> dict[str, set[str]]:
    """Module -> audiotok modules it imports anywhere (top level, in functions, under
    TYPE_CHECKING). ``from pkg import name`` counts as importing ``pkg.name`` when that is
    a module. Package ``__init__`` files are left out: their re-exports are the one
    sanctioned way for a module and its package to refer to each other."""
    names = {_module_name(p): p for p in paths}
    packages = {_module_name(p) for p in paths if p.name == "__init__.py"}
    edges: dict[str, set[str]] = {}
    for name, path in names.items():
        if name in packages:
            continue
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for t in targets:
                if t in names and t not in packages and t != name:
                    out.add(t)
        edges[name] = out
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles(_module_edges(MODULES))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_cycle_check_sees_lazy_and_type_only_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "audiotok"
    (pkg / "eval").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "eval" / "__init__.py").write_text("from audiotok.eval.a import x\n")
    (pkg / "eval" / "a.py").write_text("def f():\n    from audiotok.eval import b\n")
    (pkg / "eval" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from audiotok.eval.a import f\n"
    )
    (pkg / "c.py").write_text("import audiotok.eval.a\n")
    global PKG
    saved = PKG
    PKG = pkg
    try:
        paths = sorted(pkg.rglob("*.py"))
        assert _cycles(_module_edges(paths)) == [["audiotok.eval.a", "audiotok.eval.b"]]
        (pkg / "eval" / "b.py").write_text("import json\n")
        assert _cycles(_module_edges(paths)) == []
    finally:
        PKG = saved


def test_prior_sees_integer_codes_only() -> None:
    # prior/ models codes, never a codec: besides torch, einops, numpy, safetensors (its
    # export format) and the stdlib, it may import only audiotok.errors, the stdlib-only
    # audiotok.config (StrictConfig), the export writer (audiotok.exports, over
    # audiotok.atomic) and itself
    allowed = {"torch", "einops", "numpy", "safetensors", "__future__"} | set(
        sys.stdlib_module_names
    )
    for path in (PKG / "prior").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "audiotok":
                    assert len(parts) > 1 and parts[1] in {
                        "errors",
                        "config",
                        "prior",
                        "exports",
                        "atomic",
                    }, f"prior/{path.name} imports {name}"
                else:
                    assert parts[0] in allowed, f"prior/{path.name} imports {parts[0]}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_long_modules_say_why(path: Path) -> None:
    # ARCHITECTURE.md: files of 100-400 lines; a longer one says at its top why it is one file
    text = path.read_text()
    if len(text.splitlines()) <= 420:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert re.search(r"(over 400|~?\d00 lines)", doc, re.I), (
        f"{path.relative_to(PKG)} has {len(text.splitlines())} lines and no reason at its top"
    )
