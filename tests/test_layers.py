"""The layering of ``voidllm``, executable: every import points down (or sideways); packages form no cycle.

:data:`LAYERS` is the declared order, bottom to top, the same as the table in ``ARCHITECTURE.md`` section 2
(:func:`test_architecture_md_declares_the_same_layers` holds them together). A module may import modules of
its own layer and of the layers below; an import from a higher layer fails the test, naming the importing
module, the line and the import. Every import that runs counts: module level and inside functions alike.
Only imports under ``if TYPE_CHECKING:`` are exempt (annotations may name a type from above).

Independently of the order, the packages and modules of :data:`LAYERS` must not import each other in a
cycle at run time (:func:`test_no_package_cycles`), so two packages of one layer stay independent in one
direction at least.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "voidllm"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "voidllm",
            "voidllm.errors",
            "voidllm.metrics",
            "voidllm.logs",
            "voidllm.bounds",
            "voidllm.clock",
            "voidllm.identity",
            "voidllm.asgi",
            "voidllm.lazyhttp",
            "voidllm.collector",
            "voidllm.sse",
            "voidllm.codec",
            "voidllm.crypto",
            "voidllm.guard",
            "voidllm.request_policy",
            "voidllm.tracing",
            "voidllm.testing",
        ),
    ),
    (
        "infrastructure",
        (
            "voidllm.config",
            "voidllm.store",
            "voidllm.nursery",
            "voidllm.bus",
            "voidllm.redis",
            "voidllm.providers",
            "voidllm.transport",
            "voidllm.mcp.upstream",
            "voidllm.codemode",
        ),
    ),
    ("domain", ("voidllm.auth", "voidllm.limits", "voidllm.routing", "voidllm.usage", "voidllm.mcp")),
    ("planes", ("voidllm.proxy",)),
    ("use cases", ("voidllm.admin",)),
    ("gateways", ("voidllm.mcp.gateway",)),
    ("edges", ("voidllm.web", "voidllm.manage", "voidllm.invalidations")),
    ("process", ("voidllm.server", "voidllm.workers", "voidllm.cli", "voidllm.entry", "voidllm.__main__")),
)
"""Bottom to top: (layer name, the packages and modules in it)."""


@attrs.frozen
class Import:
    importer: str  # dotted module name
    path: str  # relative to the repository root
    line: int
    target: str  # dotted module name (or ``package.name`` when the name is not a module)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except those that only run under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def runtime_imports(
    source: str, module: str, *, is_package: bool, known: set[str]
) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` of every ``voidllm`` import that runs, at module level or in a function.

    ``from a import b`` counts as importing ``a.b`` when that is a module (in ``known``), else ``a``.
    """
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".") if is_package else module.split(".")[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in known else base


def project_imports() -> list[Import]:
    modules = all_modules()
    known = set(modules)
    found = []
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        is_package = path.name == "__init__.py"
        for line, target in runtime_imports(source, name, is_package=is_package, known=known):
            if target == "voidllm" or target.startswith("voidllm."):
                found.append(Import(name, str(path.relative_to(ROOT)), line, target))
    return found


def unit_of(module: str) -> str | None:
    """The entry of :data:`LAYERS` a module belongs to: the longest declared name it is or is inside of."""
    best = None
    for _, units in LAYERS:
        for unit in units:
            if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best)):
                best = unit
    return best


def layer_of(unit: str) -> int:
    return next(index for index, (_, units) in enumerate(LAYERS) if unit in units)


def violations(imports: list[Import]) -> list[str]:
    found = []
    for imp in imports:
        source, target = unit_of(imp.importer), unit_of(imp.target)
        assert source is not None, imp
        assert target is not None, imp
        if layer_of(target) > layer_of(source):
            found.append(
                f"{imp.path}:{imp.line}: {imp.importer} ({LAYERS[layer_of(source)][0]}) imports {imp.target} "
                f"({LAYERS[layer_of(target)][0]}, a higher layer)"
            )
    return list(dict.fromkeys(found))  # ``from a import b, c`` of one module is one violation


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


# ------------------------------------------------------------------------------------------------ tests


def test_every_module_belongs_to_a_declared_layer() -> None:
    undeclared = sorted(name for name in all_modules() if unit_of(name) is None)
    assert not undeclared, f"add these to LAYERS (and ARCHITECTURE.md section 2): {undeclared}"
    declared = [unit for _, units in LAYERS for unit in units]
    assert len(declared) == len(set(declared))
    missing = sorted(unit for unit in declared if not any(unit_of(m) == unit for m in all_modules()))
    assert not missing, f"declared but absent: {missing}"


def test_imports_point_down() -> None:
    found = violations(project_imports())
    assert not found, "imports from a higher layer:\n" + "\n".join(found)


def test_no_package_cycles() -> None:
    edges: dict[str, set[str]] = {}
    example: dict[tuple[str, str], Import] = {}
    for imp in project_imports():
        source, target = unit_of(imp.importer), unit_of(imp.target)
        assert source is not None, imp
        assert target is not None, imp
        if source != target:
            edges.setdefault(source, set()).add(target)
            example.setdefault((source, target), imp)
    found = cycles(edges)
    lines = []
    for component in found:
        lines.append(" <-> ".join(component))
        for (source, target), imp in sorted(example.items()):
            if source in component and target in component:
                lines.append(f"    {imp.path}:{imp.line}: {imp.importer} imports {imp.target}")
    assert not found, "package cycles:\n" + "\n".join(lines)


def test_architecture_md_declares_the_same_layers() -> None:
    """ARCHITECTURE.md section 2's table lists the same layers, in the same order, with the same members."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("<!-- layers -->", 2)[1]
    rows = [line for line in section.splitlines() if re.match(r"\|\s*\d+\s*\|", line)]
    documented = []
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        documented.append((cells[1].strip("*"), tuple(re.findall(r"`(voidllm[\w.]*)`", cells[2]))))
    assert documented == [(name, tuple(units)) for name, units in LAYERS]


# ------------------------------------------------------------------------------ the checker can fail


def test_function_level_imports_count_and_type_checking_imports_do_not() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from voidllm.admin.services import Services\n"
        "else:\n"
        "    from voidllm.errors import GatewayError\n"
        "def f():\n"
        "    from voidllm.server import serve\n"
        "    import voidllm.web.app\n"
        "from . import sibling\n"
        "from ..store import tables\n"
    )
    known = {"voidllm.routing.sibling", "voidllm.store.tables"}
    found = list(runtime_imports(source, "voidllm.routing.x", is_package=False, known=known))
    assert found == [
        (1, "typing"),
        (5, "voidllm.errors"),
        (7, "voidllm.server"),
        (8, "voidllm.web.app"),
        (9, "voidllm.routing.sibling"),
        (10, "voidllm.store.tables"),
    ]


def test_an_upward_import_is_reported_with_its_place() -> None:
    upward = Import("voidllm.auth.cache", "voidllm/auth/cache.py", 18, "voidllm.admin.services")
    sideways = Import("voidllm.routing.health", "voidllm/routing/health.py", 3, "voidllm.usage.events")
    down = Import("voidllm.web.app", "voidllm/web/app.py", 9, "voidllm.proxy.endpoints")
    assert violations([upward, sideways, down]) == [
        "voidllm/auth/cache.py:18: voidllm.auth.cache (domain) imports voidllm.admin.services "
        "(use cases, a higher layer)"
    ]


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
