"""The house: imports run one way (common -> colour -> footage -> keyframes/motion -> shot ->
engines -> capability nodes -> extension) and no module imports itself back through others.

Every relative import counts, lazy ones inside functions too: a lazy import that runs back up
is still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

NODES = Path(__file__).resolve().parents[1] / "nodes"

LAYERS = {
    "common": 0,
    "colour": 1,
    "footage": 2, "exr": 2,
    "keyframes": 3, "motion": 3,
    "shot": 4,
    "engines": 5,
    "generate": 6, "modify": 6, "reframe": 6, "editorial": 6,
    "extension": 7, "farm": 7,
}


def _module(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = NODES) -> dict[str, set[str]]:
    """module -> the pack modules it imports (relative imports only; the pack has no others)."""
    modules = {_module(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{a.name}" for a in node.names]  # ``from ..shot import geometry``: a module
            if node.module:
                names.append(target)
            for name in names:
                if name in modules:
                    graph[mod].add(name)
                elif not node.module and name.rsplit(".", 1)[0] in modules:
                    graph[mod].add(name.rsplit(".", 1)[0])
    return graph


def _area(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            a, b = _area(src), _area(dst)
            if a and b and a != b and LAYERS.get(a, 99) < LAYERS.get(b, 99):
                bad.append((src, dst))
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_every_folder_of_the_pack_has_a_layer():
    folders = {p.name for p in NODES.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    folders |= {"extension"}
    assert folders <= set(LAYERS), f"give these folders a layer in tests/test_house.py: {folders - set(LAYERS)}"


def test_no_import_runs_back_up_the_house():
    graph = import_graph()
    assert len(graph) > 50  # the walk found the pack
    assert upward_imports(graph) == []


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


def test_the_checks_catch_an_upward_import_and_a_circle(tmp_path):
    pkg = tmp_path / "nodes"
    for folder in ("engines", "modify", "footage"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "engines" / "luma.py").write_text("def f():\n    from ..modify.request import x\n")
    (pkg / "modify" / "request.py").write_text("x = 1\n")
    (pkg / "footage" / "a.py").write_text("from .b import y\n")
    (pkg / "footage" / "b.py").write_text("def g():\n    from .a import z\n")
    graph = import_graph(pkg)
    assert upward_imports(graph) == [("nodes.engines.luma", "nodes.modify.request")]
    assert cycles(graph) == [["nodes.footage.a", "nodes.footage.b"]]
