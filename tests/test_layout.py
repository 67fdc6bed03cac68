"""The package's shape: no import circle among its modules, and command modules that stand alone.

Every ``import`` counts, at module level or inside a function: a lazy import still ties two modules
together, and a circle of them is what made ``cli.py`` and ``cli_style.py`` hard to change.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rlprompt_interp"
COMMAND_MODULES = {f"{PACKAGE}.cli.{name}" for name in ("eval", "predict", "train", "unembed", "compare", "style")}


def package_modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is_package) for every module of the package."""
    modules = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def imported_modules(name: str, path: Path, is_package: bool, modules) -> set[str]:
    """The package's modules that ``name`` imports (``from pkg import sub`` names the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported_modules(name, path, is_package, modules) for name, (path, is_package) in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
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
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_the_package_modules():
    assert circles(import_graph()) == []


def test_command_modules_do_not_import_each_other_or_the_entry_point():
    graph = import_graph()
    assert COMMAND_MODULES <= graph[f"{PACKAGE}.cli"]  # the entry point registers every command
    for module in COMMAND_MODULES:
        assert not graph[module] & (COMMAND_MODULES | {f"{PACKAGE}.cli"}), module


def test_style_transfer_lives_in_one_subpackage_and_its_commands_in_cli():
    modules = package_modules()
    for name in ("generation", "classifier", "evaluation", "sentence_embeddings"):
        assert f"{PACKAGE}.style.{name}" in modules
    assert f"{PACKAGE}.cli.style" in modules and f"{PACKAGE}.style.cli" not in modules
    graph = import_graph()
    assert not any(module.startswith(f"{PACKAGE}.cli") for name in modules if name.startswith(f"{PACKAGE}.style")
                   for module in graph[name])  # no domain module climbs back up to the command line
    for old in ("generation", "style_classifier", "style_eval", "sentence_embeddings", "cli_style", "cli_train",
                "cli_interp"):
        assert f"{PACKAGE}.{old}" not in modules
