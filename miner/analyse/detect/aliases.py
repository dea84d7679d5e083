"""Assignment aliases (spec version 2, rule 2): names bound by `=` rather than by an import.

`tracker = mlflow`, `skl = mlflow.sklearn`, `log = mlflow.log_metric`, or
`mlflow = importlib.import_module("mlflow")` bind the name for the whole file, like an import,
unless an import already binds it. Aliases may build on each other (`a = mlflow`,
`b = a.sklearn`), in any order in the file, so they are bound in passes until a pass binds
nothing new; a name is bound by the first of its assignments that resolves, and never again.
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst

from miner.analyse.detect.names import Bindings, dotted_name
from miner.core.domain import RULE_ASSIGNMENT_ALIAS

# The functions that return a module named by a string, with the keyword that names it.
IMPORT_FUNCTIONS = {
    "importlib.import_module": "name",
    "pytest.importorskip": "modname",
    "__import__": "name",
}


_IMPORT_FUNCTION_NAMES = frozenset(name.rsplit(".", 1)[-1] for name in IMPORT_FUNCTIONS)


def _last_name(func: cst.BaseExpression) -> str | None:
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return None


def literal_text(node: cst.BaseExpression) -> str | None:
    """The value of a plain string literal (`"mlflow"`, `r'mlflow'`), else None (bytes too)."""
    if not isinstance(node, cst.SimpleString):
        return None
    try:
        value = node.evaluated_value
    except Exception:  # noqa: BLE001 - an odd literal is simply not a module name
        return None
    return value if isinstance(value, str) else None


def _argument(call: cst.Call, keyword: str) -> cst.BaseExpression | None:
    """The first positional argument, or the keyword argument of that name."""
    for position, arg in enumerate(call.args):
        if arg.star:
            return None
        if arg.keyword is None:
            return arg.value if position == 0 else None
        if arg.keyword.value == keyword:
            return arg.value
    return None


def _has_fromlist(call: cst.Call) -> bool:
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return len(positional) >= 4 or any(arg.keyword is not None and arg.keyword.value == "fromlist" for arg in call.args)


def imported_module(call: cst.Call, bindings: Bindings, star_apis: frozenset[str]) -> str | None:
    """The module a call of `importlib.import_module`, `pytest.importorskip` or `__import__`
    with a literal name returns, or None. `__import__("a.b")` returns `a`, as in Python."""
    callee = dotted_name(call.func)
    if callee is None:
        return None
    function = bindings.resolve(callee, star_apis)
    if function is None and callee == "__import__":
        function = "__import__"  # the builtin, unless something binds that name
    keyword = IMPORT_FUNCTIONS.get(function or "")
    if keyword is None:
        return None
    argument = _argument(call, keyword)
    module = literal_text(argument) if argument is not None else None
    if not module:
        return None
    if function == "__import__" and not _has_fromlist(call):
        return module.split(".", 1)[0]
    return module


def _alias_target(value: cst.BaseExpression, bindings: Bindings, star_apis: frozenset[str]) -> str | None:
    """What an assigned value means, or None when nothing binds it (yet)."""
    if isinstance(value, cst.Call):
        return imported_module(value, bindings, star_apis)
    dotted = dotted_name(value)
    return bindings.resolve(dotted, star_apis) if dotted is not None else None


def add_assignment_aliases(
    bindings: Bindings,
    assignments: Iterable[tuple[str, cst.BaseExpression]],
    client_classes: frozenset[str],
    star_apis: frozenset[str],
) -> None:
    """Bind every single-target `name = value` whose value resolves into the namespace.

    Skipped: names an import binds, values that are the client class itself (`C = MlflowClient`
    is no alias), and values bound outside the namespace (they cannot become one later).
    """
    imported = frozenset(bindings.names)
    # A call can only be an import function under its own name or a name an import gives it
    # (`from importlib import import_module as load`): other calls are not looked at.
    import_functions = _IMPORT_FUNCTION_NAMES | {
        name for name, target in bindings.names.items() if target in IMPORT_FUNCTIONS
    }
    pending = [
        (name, value)
        for name, value in assignments
        if name not in imported and (not isinstance(value, cst.Call) or _last_name(value.func) in import_functions)
    ]
    aliased: set[str] = set()
    while pending:
        waiting: list[tuple[str, cst.BaseExpression]] = []
        bound = False
        for name, value in pending:
            if name in aliased:
                continue
            target = _alias_target(value, bindings, star_apis)
            if target is None:
                waiting.append((name, value))  # its head may be an alias bound later
            elif bindings.in_namespace(target) and target not in client_classes:
                bindings.bind(name, target, RULE_ASSIGNMENT_ALIAS)
                aliased.add(name)
                bound = True
        if not bound:
            return
        pending = waiting
