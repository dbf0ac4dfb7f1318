"""The package's layers import only downward (README "Layout"; style guide):

    core -> data -> model -> train / evaluate -> inference -> viz / demo -> cli

Read from the source with ``ast`` (imports inside functions count too): a module of a
layer may import its own layer and any layer below, never one above.
"""

import ast
from pathlib import Path

import mage

PACKAGE = Path(mage.__file__).parent
RANK = {"typed_config": 0, "core": 0, "data": 1, "model": 2, "train": 3, "evaluate": 3,
        "inference": 4, "viz": 5, "demo": 5, "cli": 6}
# Same-rank pairs that may import each other in one direction only.
ALLOWED_SIDEWAYS = {("demo", "viz")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "mage" and len(parts) > 1 else None


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names if node.module == "mage"]
    return names


def test_every_layer_imports_only_its_own_or_lower_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0].removesuffix(".py")
        if own not in RANK:
            continue  # mage/__init__.py: the lazy re-exports for users
        for name in _imports(path):
            other = _layer(name)
            if other is None or other == own or other not in RANK:
                continue
            if RANK[other] > RANK[own] or (RANK[other] == RANK[own] and (own, other) not in ALLOWED_SIDEWAYS):
                upward.append(f"{rel}: imports {name}")
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from mage.inference.sequence import predict_sequence\n")
    assert "mage.inference.sequence" in _imports(bad)
    assert RANK[_layer("mage.inference.sequence")] > RANK["evaluate"]
