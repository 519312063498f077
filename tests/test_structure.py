"""The package's structure as the README's Layout section draws it: layers that only look down,
short functions, shallow class hierarchies. Read from the source, so a change that breaks the
structure fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "aekit"

# Bottom up. A module may import its own package (models from models) and any lower layer.
LAYERS = [
    {"errors"},
    {"atomic", "memory", "families"},
    {"objectives"},
    {"params"},
    {"config"},
    {"models", "data"},
    {"anomaly"},
    {"training"},
    {"apply", "analysis"},
    {"estimator"},
    {"runs"},
    {"__init__"},
    {"cli"},
    {"__main__"},
]


def _part(dotted: str) -> str:
    """The top-level part of the package a module name belongs to (``aekit.data.store`` ->
    ``data``)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(part: str) -> int:
    return next(i for i, members in enumerate(LAYERS) if part in members)


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(relative.parts)
        found.append((name.removesuffix(".__init__") if name != "aekit.__init__" else name, path))
    return found


def _imports(tree: ast.AST) -> list[str]:
    # Every import, module-level or inside a function: a lazy import climbs up all the same
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aekit"):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("aekit")]
    return names


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(name) for name, _ in _modules()}
    unplaced = {p for p in parts if not any(p in layer for layer in LAYERS)}
    assert not unplaced, f"add these to LAYERS (and to the README's Layout): {sorted(unplaced)}"


def test_imports_only_look_down():
    climbs = []
    for name, path in _modules():
        part = _part(name)
        for target in _imports(ast.parse(path.read_text())):
            other = _part(target)
            if other == "__init__" and target == "aekit":
                other = "__init__"
            if other != part and _layer(other) >= _layer(part):
                climbs.append(f"{name} imports {target}")
    assert not climbs, "\n".join(climbs)


def test_a_climbing_import_is_caught(tmp_path):
    # The check above must see a function-level import from a lower layer to a higher one
    code = "def f():\n    from aekit.estimator import Autoencoder\n"
    targets = _imports(ast.parse(code))
    assert targets == ["aekit.estimator"]
    assert _layer(_part(targets[0])) > _layer(_part("aekit.training.loop"))


@pytest.mark.parametrize(("name", "path"), _modules(), ids=[n for n, _ in _modules()])
def test_functions_are_at_most_80_lines(name, path):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > 80
    ]
    assert not long, f"{name}: {long}"


def test_class_hierarchies_are_at_most_two_deep():
    classes: dict[str, list[str]] = {}
    for _, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]

    def depth(name: str) -> int:
        """Steps of inheritance within the package: EarlyStopping -> MonitorCallback ->
        Callback is two."""
        return max((1 + depth(b) for b in classes.get(name, []) if b in classes), default=0)

    deep = {name: depth(name) for name in classes if depth(name) > 2}
    assert not deep, deep


def test_the_estimator_is_the_scikit_learn_face_only():
    source = (PACKAGE / "estimator.py").read_text()
    # the scikit-learn face of tables, images and series (two parameters and three dispatches)
    assert len(source.splitlines()) <= 400
    # No module outside it reaches into its private members
    for name, path in _modules():
        if name == "aekit.estimator":
            continue
        text = path.read_text()
        for private in ("ae._", "estimator._", "._prepare(", "._finish("):
            assert private not in text, f"{name} uses {private}"
