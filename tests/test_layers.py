"""The package layout is the data flow, and imports only go one way along it.

core (settings, domain, rules, paths, lifelines) <- acquire (enumerate, clone) and analyse
(read, detect; the two never import each other) <- schema (the store) <- present (query and
show) <- orchestrate (one repository, one crawl) <- cli and workers. A module importing a later
stage fails here, and the pure detection core imports nothing but itself, core and libcst.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = {"core": 0, "acquire": 1, "analyse": 1, "schema": 2, "present": 3, "orchestrate": 4, "cli": 5, "workers": 5}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] in ("schema", "workers"):
        return parts[0]
    if parts[0] == "miner" and len(parts) > 1 and parts[1] in ORDER:
        return parts[1]
    return None


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def _modules() -> list[Path]:
    return [
        path
        for folder in ("miner", "schema", "workers")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts
    ]


def test_no_module_imports_a_later_stage() -> None:
    wrong = []
    for path in _modules():
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        mine = _stage(module)
        if mine is None:
            continue
        for imported in _imports(path):
            theirs = _stage(imported)
            if theirs is None or theirs == mine:
                continue
            if ORDER[theirs] > ORDER[mine] or {mine, theirs} == {"acquire", "analyse"}:
                wrong.append(f"{path.relative_to(ROOT)} ({mine}) imports {imported} ({theirs})")
    assert wrong == []


def test_the_detection_core_is_pure() -> None:
    allowed_prefixes = (
        "miner.analyse.detect",
        "miner.analyse.sources",
        "miner.core.rules",
        "miner.core.domain",
        "miner.core.paths",
        "libcst",
        "__future__",
        "yaml",
        "importlib",
    )
    stdlib_io = {"os", "subprocess", "socket", "sqlalchemy", "sqlmodel", "celery", "schema", "git", "requests"}
    impure = []
    for path in [*(ROOT / "miner/analyse/detect").rglob("*.py"), ROOT / "miner/analyse/sources.py"]:
        for imported in _imports(path):
            top = imported.split(".")[0]
            if top in stdlib_io or (top == "miner" and not imported.startswith(allowed_prefixes)):
                impure.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert impure == []


def test_the_checker_sees_a_wrong_way_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from miner.present.stats import compute_stats\nimport schema.store\n")
    imported = _imports(module)
    assert [name for name in imported if _stage(name) in ("present", "schema")] == [
        "miner.present.stats",
        "miner.present.stats.compute_stats",
        "schema.store",
    ]
