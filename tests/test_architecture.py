"""The shape of the house, checked: the core names no built-in variant, and the import graph of ganzoo/ has no cycle.

Both read the source with :mod:`ast` (nothing is imported), so they see imports hidden inside functions too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "ganzoo"
BUILTIN_VARIANTS = ("vanilla", "dcgan", "pix2pix", "cyclegan", "srgan", "attngan", "ganomaly")


def core_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ganzoo/ (a package is its ``__init__.py``)."""
    mods = {}
    for f in sorted(CORE.rglob("*.py")):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = f
    return mods


# ---- no variant names in the core ------------------------------------------------------------------------------------


def documentation_strings(tree: ast.AST) -> set[int]:
    """The ids of string constants that are documentation: any string standing alone as a statement (module, class
    and function docstrings, and attribute docstrings after an assignment, which mkdocstrings reads too)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


def words_in_code(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every identifier (names, attributes, definitions, arguments, keywords, imported modules) and
    every string literal (f-string text included) except documentation strings."""
    docs = documentation_strings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found.append((line, node.value))
        elif isinstance(node, ast.Name):
            found.append((line, node.id))
        elif isinstance(node, ast.Attribute):
            found.append((line, node.attr))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append((line, node.name))
        elif isinstance(node, ast.arg):
            found.append((line, node.arg))
        elif isinstance(node, ast.keyword) and node.arg:
            found.append((line, node.arg))
        elif isinstance(node, ast.alias):
            found += [(line, node.name), (line, node.asname or "")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((line, node.module))
    return found


def test_the_core_names_no_builtin_variant():
    """The core works for any variant: no identifier or string literal under ganzoo/ contains a built-in variant's
    name (case-insensitive, also inside longer words such as ``PIX2PIX_URL`` or ``ganzoo_dcgan``). Docstrings and
    comments may name them, as examples of use and as credits."""
    pattern = re.compile("|".join(BUILTIN_VARIANTS), re.IGNORECASE)
    hits = []
    for path in core_modules().values():
        for line, text in words_in_code(ast.parse(path.read_text(), str(path))):
            if pattern.search(text):
                hits.append(f"{path.relative_to(ROOT)}:{line}: {text[:80]!r}")
    assert not hits, "the core names built-in variants:\n" + "\n".join(sorted(set(hits)))


def test_the_name_check_sees_code_and_skips_documentation():
    tree = ast.parse(
        '"""Train dcgan."""\nx = "dcgan"\ndef f(pix2pix):\n    """A pix2pix example."""\n    return cyclegan\n'
    )
    words = {w for _, w in words_in_code(tree)}
    assert {"dcgan", "pix2pix", "cyclegan"} <= words
    assert "Train dcgan." not in words and "A pix2pix example." not in words


# ---- no import cycle -------------------------------------------------------------------------------------------------


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the ganzoo modules it imports, from every ``import`` and ``from ... import`` anywhere in its file
    (inside functions and ``TYPE_CHECKING`` blocks too). Relative imports are resolved against the module's package;
    ``from pkg import name`` imports ``pkg.name`` when that is a module, else ``pkg``."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = parts[: len(parts) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        graph[module].add(sub)
                    elif target in modules:
                        graph[module].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the component's first module (breadth-first, so a shortest one)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return [start, start]


def cycles(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for component in strongly_connected(graph):
        if len(component) > 1 or component[0] in graph[component[0]]:
            found.append(f"{len(component)} modules {component}; e.g. {' -> '.join(a_cycle(graph, component))}")
    return found


def test_the_import_graph_of_the_core_has_no_cycle():
    found = cycles(import_graph(core_modules()))
    assert not found, "import cycles in ganzoo/:\n" + "\n".join(found)


def test_the_cycle_check_finds_cycles_and_resolves_imports(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == ["3 modules ['a', 'b', 'c']; e.g. a -> b -> c -> a", "1 modules ['e']; e.g. e -> e"]
    pkg = tmp_path / "ganzoo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import thing\n")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from .. import top\n    from ..sub import leaf\n")
    (pkg / "top.py").write_text("import ganzoo.sub\nfrom ganzoo.sub.leaf import f\n")
    mods = {"ganzoo": pkg / "__init__.py", "ganzoo.sub": pkg / "sub" / "__init__.py"}
    mods |= {"ganzoo.sub.leaf": pkg / "sub" / "leaf.py", "ganzoo.top": pkg / "top.py"}
    graph = import_graph(mods)
    assert graph == {
        "ganzoo": set(),
        "ganzoo.sub": {"ganzoo.sub.leaf"},
        "ganzoo.sub.leaf": {"ganzoo.top", "ganzoo.sub.leaf"},
        "ganzoo.top": {"ganzoo.sub", "ganzoo.sub.leaf"},
    }
