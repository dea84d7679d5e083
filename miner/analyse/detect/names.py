"""Dotted names of libcst expressions, and the file-level binding table they resolve against."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from miner.core.domain import RULE_V1


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
    """What each top-level name of a file (or notebook) means, per the spec's binding rules.

    Names that an import binds, and from spec version 2 assignment aliases; `star_modules`
    remembers `from X import *`. A binding anywhere binds its name for the whole file, so the
    table is filled before any call is resolved. When one name is bound twice, a binding into
    the tracker's namespace wins (`from mlflow import sklearn` next to `import sklearn` still
    means mlflow's flavor), then a version 1 binding over a version 2 one, then the later one.

    Each binding keeps the rule it was made through (`v1` for an import in a plain cell, the
    cell magic for an import in a `%%time` cell, `assignment-alias`), and `resolve` answers what
    version 1 resolves wherever version 1 resolves into the namespace: version 2 only adds
    findings, so those marked `v1` are exactly the findings of version 1.
    """

    namespaces: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)  # name -> rule of its binding
    v1_names: dict[str, str] = field(default_factory=dict)  # the bindings version 1 sees
    star_modules: list[tuple[str, str]] = field(default_factory=list)  # (module, rule), in order

    def in_namespace(self, qualified: str) -> bool:
        head = qualified.split(".", 1)[0]
        return head in self.namespaces

    def _wins(self, current: str | None, current_rule: str, qualified: str, rule: str) -> bool:
        if current is None:
            return True
        current_in, new_in = self.in_namespace(current), self.in_namespace(qualified)
        if current_in != new_in:
            return new_in
        return not (current_in and current_rule == RULE_V1 and rule != RULE_V1)

    def bind(self, name: str, qualified: str, rule: str = RULE_V1) -> bool:
        """Bind `name`; False when an existing binding wins over this one."""
        if rule == RULE_V1 and self._wins(self.v1_names.get(name), RULE_V1, qualified, rule):
            self.v1_names[name] = qualified
        if not self._wins(self.names.get(name), self.rules.get(name, RULE_V1), qualified, rule):
            return False
        self.names[name] = qualified
        self.rules[name] = rule
        return True

    def add_import(self, node: cst.Import, rule: str = RULE_V1) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            full = module_name(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.bind(alias.asname.name.value, full, rule)
            else:
                head = full.split(".", 1)[0]
                self.bind(head, head, rule)

    def add_import_from(self, node: cst.ImportFrom, rule: str = RULE_V1) -> None:
        if node.relative or node.module is None:
            return  # relative imports never resolve to the tracker
        module = module_name(node.module)
        if isinstance(node.names, cst.ImportStar):
            self.star_modules.append((module, rule))
            return
        for alias in node.names:
            imported = module_name(alias.name)
            local = imported
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.bind(local, f"{module}.{imported}", rule)

    def _star(self, head: str, v1_only: bool) -> tuple[str, str] | None:
        for module, rule in reversed(self.star_modules):  # the later star import shadows
            if self.in_namespace(module) and (rule == RULE_V1 or not v1_only):
                return f"{module}.{head}", rule
        return None

    def lookup(self, head: str, dotted: bool, star_apis: frozenset[str]) -> tuple[str, str] | None:
        """(target, rule) of a name: version 1's meaning when that is in the namespace, else the
        table's. `dotted`: the name heads an attribute chain (a star import binds bare names)."""
        v1_bound = self.v1_names.get(head)
        if v1_bound is not None:
            if self.in_namespace(v1_bound):
                return v1_bound, RULE_V1
        elif not dotted and head in star_apis:
            star = self._star(head, v1_only=True)
            if star is not None:
                return star
        bound = self.names.get(head)
        if bound is not None:
            return bound, self.rules[head]
        if not dotted and head in star_apis:
            return self._star(head, v1_only=False)
        return None

    def resolve_with_rule(self, dotted: str, star_apis: frozenset[str]) -> tuple[str, str] | None:
        """(qualified name, rule of the binding it went through) of a dotted name, or None."""
        head, _, rest = dotted.partition(".")
        found = self.lookup(head, bool(rest), star_apis)
        if found is None:
            return None
        target, rule = found
        return (f"{target}.{rest}" if rest else target), rule

    def resolve(self, dotted: str, star_apis: frozenset[str]) -> str | None:
        """Qualified name of a dotted callee, or None when nothing binds its head."""
        found = self.resolve_with_rule(dotted, star_apis)
        return None if found is None else found[0]
