"""Dotted names of libcst expressions, and the file-level binding table they resolve against."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a pure Name/Attribute chain, else None (calls, subscripts, ...)."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def module_name(node: cst.Attribute | cst.Name) -> str:
    return dotted_name(node) or ""


@dataclass
class Bindings:
    """What each top-level name of a file (or notebook) means, per the spec's import rules.

    Only names that an import binds are kept; `star_modules` remembers `from X import *`.
    An import anywhere binds its name for the whole file, so the table is filled before any call
    is resolved; when one name is imported twice, the binding into the tracker's namespace wins
    (`from mlflow import sklearn` next to `import sklearn` still means mlflow's flavor).
    """

    namespaces: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)
    star_modules: list[str] = field(default_factory=list)  # in source order: the later wins

    def _in_namespace(self, qualified: str) -> bool:
        head = qualified.split(".", 1)[0]
        return head in self.namespaces

    def bind(self, name: str, qualified: str) -> None:
        current = self.names.get(name)
        if current is not None and self._in_namespace(current) and not self._in_namespace(qualified):
            return
        self.names[name] = qualified

    def add_import(self, node: cst.Import) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            full = module_name(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.bind(alias.asname.name.value, full)
            else:
                head = full.split(".", 1)[0]
                self.bind(head, head)

    def add_import_from(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None:
            return  # relative imports never resolve to the tracker
        module = module_name(node.module)
        if isinstance(node.names, cst.ImportStar):
            self.star_modules.append(module)
            return
        for alias in node.names:
            imported = module_name(alias.name)
            local = imported
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.bind(local, f"{module}.{imported}")

    def resolve(self, dotted: str, star_apis: frozenset[str]) -> str | None:
        """Qualified name of a dotted callee, or None when no import binds its head."""
        head, _, rest = dotted.partition(".")
        bound = self.names.get(head)
        if bound is not None:
            return f"{bound}.{rest}" if rest else bound
        if not rest and head in star_apis:
            for module in reversed(self.star_modules):
                if self._in_namespace(module):
                    return f"{module}.{head}"
        return None
