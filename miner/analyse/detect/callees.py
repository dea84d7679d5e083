"""Resolving a callee to a qualified name, including computed getattr (spec version 2, rule 3).

A callee is a dotted chain whose head the binding table resolves (`mf.sklearn.autolog`). From
version 2 the chain may also start at `getattr(<a name in the namespace>, <not a literal>)`:
the attribute it reads is unknown, so it stands as `<dynamic>`
(`getattr(mlflow, flavor).autolog()` is `mlflow.<dynamic>.autolog`, flavor `<dynamic>`). A
literal name (`getattr(mlflow, "sklearn")`) is not such a call.
"""

from __future__ import annotations

import libcst as cst

from miner.analyse.detect.names import Bindings, dotted_name
from miner.core.domain import RULE_GETATTR_DYNAMIC

DYNAMIC = "<dynamic>"

_LITERALS = (cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary)


def is_literal(node: cst.BaseExpression) -> bool:
    """A string or number literal, implicit concatenations and f-strings without fields too."""
    if isinstance(node, _LITERALS):
        return True
    if isinstance(node, cst.ConcatenatedString):
        return is_literal(node.left) and is_literal(node.right)
    if isinstance(node, cst.FormattedString):
        return not any(isinstance(part, cst.FormattedStringExpression) for part in node.parts)
    return False


def dynamic_getattr_base(call: cst.Call, bindings: Bindings, star_apis: frozenset[str]) -> str | None:
    """`mlflow` for `getattr(mlflow, name)` (two positional arguments, the name not a literal,
    the object resolving into the namespace, `getattr` the builtin), else None."""
    func = call.func
    if not isinstance(func, cst.Name) or func.value != "getattr" or len(call.args) != 2:
        return None
    obj, attribute = call.args
    if obj.keyword is not None or attribute.keyword is not None or obj.star or attribute.star:
        return None
    if is_literal(attribute.value) or bindings.resolve("getattr", star_apis) is not None:
        return None
    dotted = dotted_name(obj.value)
    base = bindings.resolve(dotted, star_apis) if dotted is not None else None
    return base if base is not None and bindings.in_namespace(base) else None


def resolve_callee(
    func: cst.BaseExpression, bindings: Bindings, star_apis: frozenset[str], dynamic: bool
) -> tuple[str, str] | None:
    """(qualified name, rule) of a callee that resolves into the namespace, or None: a chain
    whose head is bound there, or (with `dynamic`) a chain on a computed getattr of it.

    Called for every call of every parsed file, so the head is looked up before any name is
    joined: most callees (`print`, `self.fit`, `np.mean`) stop there.
    """
    parts: list[str] = []
    node = func
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        found = bindings.lookup(node.value, bool(parts), star_apis)
        if found is None or not bindings.in_namespace(found[0]):
            return None
        if not parts:
            return found
        parts.append(found[0])
        return ".".join(reversed(parts)), found[1]
    if dynamic and isinstance(node, cst.Call):
        base = dynamic_getattr_base(node, bindings, star_apis)
        if base is not None:
            parts.append(DYNAMIC)
            parts.append(base)
            return ".".join(reversed(parts)), RULE_GETATTR_DYNAMIC
    return None
