"""The controller's layers, read from its source (ast; module-level and function-level imports): the domain
(controller/services/, controller/brokers/) never reaches up into the edges (API, pages, CLI, demo); the
edges never import each other (the CLI and the pages call services, not API routes); and the import graph
has no cycle anywhere in controller/.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTROLLER = REPO / "controller"
EDGES = ("controller.api", "controller.web", "controller.demo", "controller.service")  # and every controller.cli*


def _edge(module: str) -> bool:
    return module.startswith("controller.cli") or any(module == e or module.startswith(e + ".") for e in EDGES)


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in CONTROLLER.rglob("*.py") if "migrations" not in p.parts}


def _owner(name: str) -> str | None:
    """The controller module an imported name lives in (a package's own name for `from pkg import x`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> set[str]:
    """The controller modules `module` imports anywhere in its text (inside functions too)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # `from pkg import submodule` is the submodule; `from module import name` the module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found |= {m for m in map(_owner, names) if m and m != module}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    group.append(m)
                    if m == node:
                        break
                if len(group) > 1:
                    out.append(sorted(group))
    return out


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"b"}}) == []


def test_the_import_walker_sees_function_level_and_relative_imports():
    assert "controller.compiler" in imports("controller.flash_bundle")  # imported inside a function
    assert "controller.brokers.base" in imports("controller.brokers.mosquitto")


def test_the_domain_does_not_import_the_api_the_pages_or_the_cli():
    domain = [m for m in MODULES if m.startswith(("controller.services", "controller.brokers"))]
    assert len(domain) > 10
    offenders = [f"{m} imports {d}" for m in sorted(domain) for d in sorted(imports(m)) if _edge(d)]
    assert offenders == []


def test_no_import_cycle_in_the_controller():
    graph = {m: imports(m) for m in MODULES}
    assert cycles(graph) == []


def _edge_of(module: str) -> str | None:
    for edge in ("controller.cli", "controller.api", "controller.web", "controller.demo"):
        if module == edge or module.startswith(edge + "."):
            return edge
    return None


def test_the_cli_the_pages_and_the_api_do_not_import_each_other():
    offenders = [f"{m} imports {d}" for m in sorted(MODULES) for d in sorted(imports(m))
                 if _edge_of(m) in ("controller.cli", "controller.api", "controller.web")
                 and _edge_of(d) not in (None, _edge_of(m))
                 and not (d == "controller.demo" and _edge_of(m) == "controller.cli")]  # `citygate demo` runs it
    assert offenders == []
