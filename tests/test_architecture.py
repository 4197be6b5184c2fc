"""The house rule: every ``deephash`` import points to an earlier stage of the data flow (or stays
inside its own package), and no files import each other in a circle.

The stage order is docs/CONTRIBUTING.md's ("What is inside"); imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import deephash

SRC = Path(deephash.__file__).parent

# Lowest first. The ground floor is the package's top-level modules (codes, atomic IO, device,
# registry, distances, numba helpers), which may import one another.
STAGES: list[set[str]] = [
    {"ground"},
    {"data"},
    {"models"},
    {"miners"},
    {"losses"},
    {"hashing"},
    {"metrics"},
    {"viz"},
    {"index"},
    {"evaluation"},
    {"training"},
    {"collection"},
    {"serve"},
    {"cli"},
]
RANK = {name: i for i, names in enumerate(STAGES) for name in names}


def module_name(path: Path) -> str:
    parts = ("deephash", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """deephash modules that ``path`` imports anywhere in its body (``from deephash import x``
    counts as importing ``deephash.x`` when x is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "deephash")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "deephash":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found


def stage(module: str, modules: dict[str, Path]) -> str:
    parts = module.split(".")
    top = ".".join(parts[:2])
    if len(parts) == 1 or modules[top].name != "__init__.py":
        return "ground"
    return parts[1]


def climbs(imports: dict[str, set[str]], modules: dict[str, Path]) -> list[str]:
    """``"a (stage) imports b (stage)"`` for every import that does not point to an earlier stage
    or stay inside its own."""
    found = []
    for name, targets in sorted(imports.items()):
        for target in sorted(targets):
            a, b = stage(name, modules), stage(target, modules)
            if a != b and not RANK[b] < RANK[a]:
                found.append(f"{name} ({a}) imports {target} ({b})")
    return found


def package(module: str, modules: dict[str, Path]) -> str:
    return module if modules[module].name == "__init__.py" else module.rpartition(".")[0]


def test_every_module_has_a_stage() -> None:
    modules = all_modules()
    missing = sorted({stage(m, modules) for m in modules} - set(RANK))
    assert not missing, (
        f"add these to STAGES (and the stage order in docs/CONTRIBUTING.md): {missing}"
    )


def test_imports_point_downstream_only() -> None:
    modules = all_modules()
    imports = {name: imports_of(path, modules) for name, path in modules.items()}
    found = climbs(imports, modules)
    assert not found, "imports that climb the stage order:\n" + "\n".join(found)


def test_the_check_catches_a_climb(tmp_path: Path) -> None:
    # A data module that imported the trainer or a loss must be caught; the ground floor is fine.
    fake = tmp_path / "fake.py"
    fake.write_text(
        "def f():\n    from deephash.training import recipe\n"
        "from deephash import losses\nimport deephash.codes\n"
    )
    modules = all_modules()
    imports = {"deephash.data.pk_sampler": imports_of(fake, modules)}
    assert imports["deephash.data.pk_sampler"] == {
        "deephash.training.recipe",
        "deephash.losses",
        "deephash.codes",
    }
    assert climbs(imports, modules) == [
        "deephash.data.pk_sampler (data) imports deephash.losses (losses)",
        "deephash.data.pk_sampler (data) imports deephash.training.recipe (training)",
    ]


def test_no_import_cycles_between_files() -> None:
    modules = all_modules()
    # A package's __init__ re-exports its files; edges into a package's own __init__ from its
    # files, and the parent-package imports Python performs, are not cycles of the code.
    graph = {
        name: {
            t
            for t in imports_of(path, modules)
            if t in modules and t != name and t != package(name, modules)
        }
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
                return True
            if nxt not in state and visit(nxt, [*trail, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if start not in state and visit(start, [start]):
            break
    assert not cycle, "files that import each other in a circle: " + " -> ".join(cycle)
