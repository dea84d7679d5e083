"""One source-ordered pass over a libcst module that gathers what detection needs.

libcst's CSTVisitor rebuilds every node it visits and PositionProvider records a position for
every node; on real files both cost several times a parse. Code generation is libcst's own
source-order traversal and is far cheaper, so we ride it: a CodegenState that writes nothing,
counts lines and columns as tokens pass, and notes the few node types detection needs (imports,
assignments, calls) with the position where each starts.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

import libcst as cst
from libcst._nodes.internal import CodegenState


@dataclass
class CallSite:
    node: cst.Call
    line: int
    column: int


@dataclass
class Gathered:
    """What one module (a file or a notebook cell) holds that detection cares about."""

    imports: list[cst.Import | cst.ImportFrom] = field(default_factory=list)  # in source order
    assignments: list[tuple[list[cst.BaseExpression], cst.Call]] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    # `name = <name, attribute chain or call>` with a single target (assignment aliases)
    name_assignments: list[tuple[str, cst.BaseExpression]] = field(default_factory=list)
    # (name, annotation) of every annotated function parameter (client-annotated parameters)
    annotated_params: list[tuple[str, cst.BaseExpression]] = field(default_factory=list)


_NOTHING_TO_RECORD: AbstractContextManager[None] = nullcontext()


class _GatheringState(CodegenState):
    """A code generator that emits nothing: it only tracks (line, column) and gathers nodes."""

    def __init__(self, module: cst.Module) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.line = 1
        self.column = 0
        self.gathered = Gathered()
        self._awaiting_func: dict[int, CallSite] = {}

    def add_token(self, value: str) -> None:
        if "\n" in value:
            self.line += value.count("\n")
            self.column = len(value) - value.rfind("\n") - 1
        else:
            self.column += len(value)

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.column += len(token)

    def pop_trailing_newline(self) -> None:
        pass

    def record_syntactic_position(  # type: ignore[override]  # a cheaper context manager, same use
        self, node: cst.CSTNode, **_: object
    ) -> AbstractContextManager[None]:
        """libcst's is a generator-based context manager entered around every expression; we
        record nothing there, and one shared nullcontext costs a fraction of building one."""
        return _NOTHING_TO_RECORD

    def before_codegen(self, node: cst.CSTNode) -> None:
        if self._awaiting_func:
            waiting = self._awaiting_func.pop(id(node), None)
            if waiting is not None:
                waiting.line, waiting.column = self.line, self.column
        note = _NOTES.get(type(node))
        if note is not None:  # most nodes are none of the few kinds detection needs
            note(self, node)

    def _note_call(self, node: cst.Call) -> None:
        site = CallSite(node, self.line, self.column)
        self.gathered.calls.append(site)
        if node.lpar:
            # `(\n  mlflow.log_param(x))`: the call starts where its callee does, as in ast.
            self._awaiting_func[id(node.func)] = site

    def _note_import(self, node: cst.Import | cst.ImportFrom) -> None:
        self.gathered.imports.append(node)

    def _note_assign(self, node: cst.Assign) -> None:
        value_type = type(node.value)
        if value_type is cst.Call:
            self.gathered.assignments.append(([t.target for t in node.targets], cast(cst.Call, node.value)))
        if value_type in _ALIAS_VALUES and len(node.targets) == 1:
            target = node.targets[0].target
            if type(target) is cst.Name:
                self.gathered.name_assignments.append((target.value, node.value))

    def _note_param(self, node: cst.Param) -> None:
        # `*args: T` / `**kw: T` annotate each element, not the name: only plain parameters
        if node.annotation is not None and node.star not in ("*", "**"):
            self.gathered.annotated_params.append((node.name.value, node.annotation.annotation))

    def _note_single_target(self, node: cst.NamedExpr | cst.AnnAssign) -> None:
        if type(node.value) is cst.Call:
            self.gathered.assignments.append(([node.target], node.value))


_ALIAS_VALUES = (cst.Name, cst.Attribute, cst.Call)

_NOTES: dict[type[cst.CSTNode], Callable[[_GatheringState, Any], None]] = {
    cst.Call: _GatheringState._note_call,
    cst.Import: _GatheringState._note_import,
    cst.ImportFrom: _GatheringState._note_import,
    cst.Assign: _GatheringState._note_assign,
    cst.NamedExpr: _GatheringState._note_single_target,
    cst.AnnAssign: _GatheringState._note_single_target,
    cst.Param: _GatheringState._note_param,
}


def gather(module: cst.Module) -> Gathered:
    """Imports, assignments, annotated parameters and calls of a module, calls with 1-based line
    and 0-based column."""
    state = _GatheringState(module)
    module._codegen(state)
    return state.gathered
