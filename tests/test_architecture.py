"""The package's shape: each pipeline stage imports only earlier stages and the shared plumbing, no module
imports itself back through others (no circles), and only the plumbing sits at the top of rexlib/.

Every import counts, also those inside functions (imported on demand is still depended on)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rexlib"

# In data-flow order (docs/architecture.md); a module may import its own stage and the ones before it.
STAGES = ("rexlib.gqa", "rexlib.world", "rexlib.program", "rexlib.dataset", "rexlib.model", "rexlib.pretraining", "rexlib.training",
          "rexlib.evaluation", "rexlib.notebook_support")
PLUMBING = ("rexlib.io", "rexlib.boxes", "rexlib.layout", "rexlib.options")
ENTRY = ("rexlib", "rexlib.__main__", "rexlib.cli")  # imports its commands' modules by name, on demand


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the rexlib modules it imports (``from rexlib import layout`` counts as rexlib.layout)."""
    edges = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    stem = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(stem + ([base] if base else []))
                submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
                found.update(submodules or {base})
        edges[name] = {target for target in found if target in modules and target != name}
    return edges


def stage_of(name: str) -> int | None:
    for index, stage in enumerate(STAGES):
        if name == stage or name.startswith(stage + "."):
            return index
    return None


def test_stages_import_only_earlier_stages_and_plumbing():
    modules = module_names()
    later = []
    for name, targets in imports(modules).items():
        if name in ENTRY:
            continue
        own = stage_of(name)
        if name in PLUMBING:
            later += [(name, target) for target in targets if target not in PLUMBING]
            continue
        assert own is not None, f"{name}: not in a stage folder nor plumbing (docs/architecture.md)"
        later += [(name, target) for target in targets
                  if target not in PLUMBING and target != "rexlib" and (stage_of(target) or 0) > own]
    assert not later, later


def test_no_import_circles():
    edges = imports(module_names())
    for package in [name for name in edges if (module_names()[name].name == "__init__.py")]:
        edges[package] = set()  # a package's __init__ re-exports its own modules: not a dependency of theirs
    circles = []

    def visit(name, path):
        for target in sorted(edges[name]):
            if target in path:
                circles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, path + [target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(edges):
        if name not in done:
            visit(name, [name])
    assert not circles, circles


def test_evaluation_loads_runs_without_the_training_loop():
    edges = imports(module_names())
    for name, targets in edges.items():
        if name.startswith(("rexlib.evaluation", "rexlib.model")):
            assert "rexlib.training.loop" not in targets, name


def test_only_plumbing_at_the_top():
    top = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert top == sorted(["__init__", "__main__", "cli", *(name.split(".")[1] for name in PLUMBING), "gqa"])
