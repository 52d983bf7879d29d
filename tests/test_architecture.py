"""The layout's promises (docs/architecture.md): no import cycles among gans's modules, and
imports that run one way, from the command line down to plain data."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gans"

# Lower tiers never import higher ones. The interfaces (the models' Protocols, what an
# objective is) sit with plain data, so that recipe validation can check against them.
TIERS = [
    ("plain data and interfaces", ["gans", "gans.errors", "gans.files", "gans.cache",
                                   "gans.hardware", "gans.registry", "gans.recipe", "gans.data", "gans.paired",
                                   "gans.runlog", "gans.models.base", "gans.objectives.base"]),
    ("models and objectives", ["gans.models", "gans.objectives"]),
    ("training, sampling, evaluation", ["gans.training", "gans.sampling", "gans.evaluation"]),
    ("bench and the explorer", ["gans.bench", "gans.serve"]),
    ("the Python API and the command line over it", ["gans.api", "gans.cli", "gans.__main__"]),
]
# The package's own names (gans.load, gans.GANModule, ...) are looked up in their modules on
# first use by `gans.__getattr__`, by module name: `import gans` imports nothing, so it adds no
# edge to the graph.
# The registry imports the built-in families and objectives by name (importlib) on its first
# lookup, which is how they register: no import statement, so no edge here.


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict:
    """module -> the gans modules it imports, at module level or inside functions."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(package[:len(package) - node.level + 1] + [base]).strip(".")
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {m for m in found if m in known_modules()} - {name}
    return graph


def known_modules() -> set:
    return {module_name(p) for p in PACKAGE.rglob("*.py")}


def tier(module: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(TIERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "gans" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} has no tier in tests/test_architecture.py"
    return best[0]


def test_every_module_has_a_tier():
    for module in known_modules():
        tier(module)


def test_no_import_cycles():
    graph = imports()
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                cycles.append(" -> ".join(path[path.index(child):] + [child]))
            elif child not in state:
                visit(child, path + [child])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_run_one_way():
    upward = []
    for module, targets in imports().items():
        for target in targets:
            if tier(target) > tier(module):
                upward.append(f"{module} ({TIERS[tier(module)][0]}) imports {target} "
                              f"({TIERS[tier(target)][0]})")
    assert not upward, "\n".join(sorted(upward))


@pytest.mark.parametrize("module", ["gans.sampling.checkpoint", "gans.sampling.generate",
                                    "gans.sampling.export", "gans.sampling.provenance"])
def test_sampling_knows_no_lightning_module(module):
    targets = imports()[module]
    assert not any(t.startswith(("gans.training.module", "gans.training.run")) for t in targets)
