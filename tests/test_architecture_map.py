"""``ARCHITECTURE.md`` names only files and modules that exist, so the map cannot silently outlive a move.

Every ``something.py`` path in it must be a file, relative to the repository or to ``voidllm/`` (the map
writes ``proxy/relay.py`` for ``voidllm/proxy/relay.py``); every dotted ``voidllm.x.y`` name must be a
module or package, or a name defined at the top of one (``voidllm.bus.Notices``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "ARCHITECTURE.md"

_PATH = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.py)\b")
_DOTTED = re.compile(r"(?<![\w.])(voidllm(?:\.\w+)+)")
_FILE_NAMES = {"voidllm.yaml", "voidllm.db"}  # the config file and the SQLite file, not modules


def _exists(relative: str) -> bool:
    return (ROOT / relative).is_file() or (ROOT / "voidllm" / relative).is_file()


def _module_path(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _resolves(dotted: str) -> bool:
    if _module_path(dotted) is not None:
        return True
    module, _, name = dotted.rpartition(".")
    path = _module_path(module)
    return path is not None and name in _top_level_names(path)


def test_every_file_the_map_names_exists() -> None:
    text = MAP.read_text(encoding="utf-8")
    missing = sorted({path for path in _PATH.findall(text) if not _exists(path)})
    assert missing == [], f"ARCHITECTURE.md names files that do not exist: {missing}"


def test_every_module_the_map_names_exists() -> None:
    text = MAP.read_text(encoding="utf-8")
    names = set(_DOTTED.findall(text)) - _FILE_NAMES
    missing = sorted(name for name in names if not _resolves(name))
    assert missing == [], f"ARCHITECTURE.md names modules that do not exist: {missing}"


def test_the_checks_see_a_wrong_name() -> None:
    assert not _exists("proxy/no_such_module.py")
    assert _exists("proxy/relay.py")
    assert not _resolves("voidllm.proxy.no_such_module")
    assert _resolves("voidllm.bus.Notices")
    assert _PATH.findall("see `proxy/relay.py` and mcp/gateway/server.py.") == [
        "proxy/relay.py",
        "mcp/gateway/server.py",
    ]
