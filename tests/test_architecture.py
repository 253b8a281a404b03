"""The map in docs/architecture.md, checked: layers import one way, no cycles.

Every import counts, lazy ones inside functions too: a cycle hidden in a
function body is still a cycle a reader must untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fundraiser"

# Layers, lowest first. A module may import its own layer and the ones below.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundation",
        {
            "errors",
            "money",
            "redact",
            "countries",
            "config",
            "ledger",
            "links",
            "stripekeys",
            "people",
            "kit",
            "accounts",
            "csvsafe",
            "privatefiles",
            "formatting",
            "i18n",
        },
    ),
    (
        "domain",
        {
            "pledges",
            "statuses",
            "allocation",
            "register",
            "membership",
            "remainders",
            "closing",
            "issuing",
            "figures",
            "outbox",
            "acknowledge",
            "offline",
            "cancel",
            "importer",
            "bands",
            "bank",
        },
    ),
    (
        "adapters",
        {
            "payments",
            "documents",
            "sitegen",
            "emulator",
            "scaffold",
            "starter",
            "bankfiles",
            "books",
            "preflight",
            "backups",
        },
    ),
    ("faces", {"service", "cli", "demo", "__main__"}),
]


def _top(module: str) -> str:
    """fundraiser.payments.events -> payments; fundraiser -> '' (the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every fundraiser module and every outside package this file imports, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            for alias in node.names:  # `from fundraiser import pledges` names a module
                found.add(f"{base}.{alias.name}")
    return found


def _modules() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(top: str) -> int | None:
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    return None


def test_every_module_has_a_place_on_the_map() -> None:
    unplaced = sorted({_top(m) for m in _modules() if _top(m) and _layer(_top(m)) is None} - {"py"})
    assert unplaced == [], f"add these to LAYERS and docs/architecture.md: {unplaced}"


def test_layers_import_only_downwards() -> None:
    wrong = []
    for module, imported in _modules().items():
        mine = _layer(_top(module))
        if mine is None:
            continue
        for target in imported:
            if not target.startswith("fundraiser.") or _top(target) == _top(module):
                continue
            theirs = _layer(_top(target))
            if theirs is not None and theirs > mine:
                wrong.append(f"{module} imports {target}")
    assert sorted(set(wrong)) == []


@pytest.mark.parametrize(
    ("library", "only"),
    [("stripe", "payments"), ("click", "cli"), ("starlette", "service"), ("pelican", "sitegen")],
)
def test_each_outside_library_is_behind_one_package(library: str, only: str) -> None:
    users = sorted(
        module
        for module, imported in _modules().items()
        if any(t == library or t.startswith(library + ".") for t in imported)
        and _top(module) != only
    )
    assert users == []


def test_no_import_cycles_between_modules() -> None:
    modules = _modules()
    graph = {
        m: {t for t in imported if t in modules and t != m and not m.startswith(t + ".")}
        for m, imported in modules.items()
    }
    # A package's __init__ importing its own submodules is how packages work.
    for m in graph:
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []
