"""The layering the package docstrings state, checked against the imports the code makes.

``offsite/__init__.py`` lists the layers, lowest first: each line names units (a top-level
package or a module at the root) and what they are. A package's ``__init__.py`` says, on a
line ``May import: a, b, c.``, which units its modules may import. The rules:

- every unit of the tree stands in exactly one layer;
- a module imports only units of its own layer or lower ones (a package's modules also
  their own package, and only the units its docstring names);
- a package's docstring names no unit above it;
- no import runs in a circle.

Imports are read from the source (ast), function-level ones included (an import hidden in
a function still runs upward), and so are ``importlib.import_module("offsite.…")`` and
``__import__`` with a constant name. A name computed at run time (the CLI's verbs, the
storage backends) is not seen: those load their own package's modules. Only a top-level
package's docstring states what it may import; its sub-packages share it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT_PACKAGE = "offsite"
_LAYER_LINE = re.compile(r"^    (\S.*?)(?:\s{2,}.*)?$")
ANY_BELOW = "any unit below it"  # a package at the top, e.g. cli/
_MAY_IMPORT = re.compile(r"^May import:\s*(.*?)\.?\s*$", re.M)


@dataclass
class Tree:
    """What the docstrings state and the imports the code makes."""

    layers: dict[str, int] = field(default_factory=dict)  # unit -> layer (0 lowest)
    may_import: dict[str, set[str]] = field(default_factory=dict)  # package -> units
    imports: dict[str, set[str]] = field(default_factory=dict)  # module -> modules
    units: set[str] = field(default_factory=set)
    twice: set[str] = field(default_factory=set)  # units the layers name more than once


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    """``offsite.sets.trust`` -> ``sets``; ``offsite.backup`` -> ``backup``; the root
    package itself (its ``__version__``) -> ``offsite``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_PACKAGE


def _imported(root: Path, modules: set[str], module: str, path: Path) -> set[str]:
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names = [f"{origin}.{a.name}" for a in node.names if f"{origin}.{a.name}" in modules]
            if len(names) < len(node.names):
                names.append(origin)
        elif isinstance(node, ast.Call) and _dynamic(node):
            names = [node.args[0].value]  # type: ignore[attr-defined]
        else:
            continue
        for name in names:
            if name == ROOT_PACKAGE or name.startswith(ROOT_PACKAGE + "."):
                while name not in modules and "." in name:
                    name = name.rpartition(".")[0]
                if name != module:
                    found.add(name)
    return found


def _dynamic(node: ast.Call) -> bool:
    """``importlib.import_module("offsite.…")`` or ``__import__("offsite.…")``: an import
    all the same."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (
        called in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def read(root: Path) -> Tree:
    """The tree under ``root`` (the ``offsite`` package folder)."""
    tree = Tree()
    paths = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    modules = set(paths)
    for module, path in paths.items():
        tree.imports[module] = _imported(root, modules, module, path)
        tree.units.add(unit_of(module))
    tree.units.discard(ROOT_PACKAGE)
    text = _docstring(root / "__init__.py")
    body = text.split("\n\n")
    for block in body:
        lines = block.splitlines()
        if not lines or not all(line.startswith("    ") for line in lines):
            continue
        for number, line in enumerate(lines):
            found = _LAYER_LINE.match(line)
            for unit in found.group(1).split() if found else []:
                if unit in tree.layers:
                    tree.twice.add(unit)
                tree.layers.setdefault(unit, number + 1)
        break
    tree.layers[ROOT_PACKAGE] = 0
    for package in sorted(p.parent for p in root.glob("*/__init__.py")):
        said = _MAY_IMPORT.search(_docstring(package / "__init__.py"))
        if not said:
            tree.may_import[package.name] = {"?"}  # reported below: it says nothing
        elif said.group(1).strip() == ANY_BELOW:
            level = tree.layers.get(package.name, 0)
            tree.may_import[package.name] = {u for u, n in tree.layers.items() if n < level}
        else:
            tree.may_import[package.name] = {u.strip() for u in said.group(1).split(",")}
    return tree


def cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module, or a
    module importing itself), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(imports.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(imports):
        if node not in index:
            visit(node)
    return found


def violations(root: Path) -> list[str]:
    """Every way the tree under ``root`` breaks its stated layering, one line each."""
    tree = read(root)
    problems: list[str] = []
    for unit in sorted(tree.units - set(tree.layers)):
        problems.append(f"{unit} stands in no layer of offsite/__init__.py")
    for unit in sorted(tree.twice):
        problems.append(f"{unit} stands in more than one layer")
    for unit in sorted(set(tree.layers) - tree.units - {ROOT_PACKAGE}):
        problems.append(f"the layers name {unit}, which the tree does not hold")
    for package, allowed in sorted(tree.may_import.items()):
        if "?" in allowed:
            problems.append(f"{package}/__init__.py says nothing of what it may import")
        for unit in sorted(allowed - {"?"}):
            if unit not in tree.layers:
                problems.append(f"{package}/ may import {unit}, which stands in no layer")
            elif tree.layers[unit] > tree.layers.get(package, 0):
                problems.append(f"{package}/ may import {unit}, a layer above it")
    for module, targets in sorted(tree.imports.items()):
        unit = unit_of(module)
        for target in sorted(targets):
            other = unit_of(target)
            if other in (unit, ROOT_PACKAGE) or unit not in tree.layers:
                continue
            if other in tree.layers and tree.layers[other] > tree.layers[unit]:
                problems.append(f"{module} imports {target}: {other} is a layer above {unit}")
            elif unit in tree.may_import and other not in tree.may_import[unit]:
                problems.append(
                    f"{module} imports {target}: {unit}/ may not import {other} (its docstring)"
                )
    for circle in cycles(tree.imports):
        problems.append("an import circle: " + " -> ".join(circle))
    return problems
