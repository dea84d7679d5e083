"""One source-ordered pass over a libcst module that gathers what detection needs.

libcst's CSTVisitor rebuilds every node it visits and PositionProvider records a position for
every node; on real files both cost several times a parse. Code generation is libcst's own
source-order traversal and is far cheaper, so we ride it: a CodegenState that writes nothing,
counts lines and columns as tokens pass, and notes the few node types detection needs (imports,
assignments, calls) with the position where each starts.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

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

    def record_syntactic_position(self, node: cst.CSTNode, **_: object) -> AbstractContextManager[None]:
        """libcst's is a generator-based context manager entered around every expression; we
        record nothing there, and one shared nullcontext costs a fraction of building one."""
        return _NOTHING_TO_RECORD

    def before_codegen(self, node: cst.CSTNode) -> None:
        if self._awaiting_func:
            waiting = self._awaiting_func.pop(id(node), None)
            if waiting is not None:
                waiting.line, waiting.column = self.line, self.column
        kind = type(node)
        if kind is cst.Call:
            site = CallSite(node, self.line, self.column)  # type: ignore[arg-type]
            self.gathered.calls.append(site)
            if node.lpar:  # type: ignore[attr-defined]
                # `(\n  mlflow.log_param(x))`: the call starts where its callee does, as in ast.
                self._awaiting_func[id(node.func)] = site  # type: ignore[attr-defined]
        elif kind is cst.Import:
            self.gathered.imports.append(node)  # type: ignore[arg-type]
        elif kind is cst.ImportFrom:
            self.gathered.imports.append(node)  # type: ignore[arg-type]
        elif kind is cst.Assign:
            value = node.value  # type: ignore[attr-defined]
            if type(value) is cst.Call:
                targets = [t.target for t in node.targets]  # type: ignore[attr-defined]
                self.gathered.assignments.append((targets, value))
        elif kind is cst.NamedExpr:
            value = node.value  # type: ignore[attr-defined]
            if type(value) is cst.Call:
                self.gathered.assignments.append(([node.target], value))  # type: ignore[attr-defined]
        elif kind is cst.AnnAssign:
            value = node.value  # type: ignore[attr-defined]
            if type(value) is cst.Call:
                self.gathered.assignments.append(([node.target], value))  # type: ignore[attr-defined]


def gather(module: cst.Module) -> Gathered:
    """Imports, call-valued assignments and calls of a module, calls with 1-based line and 0-based column."""
    state = _GatheringState(module)
    module._codegen(state)
    return state.gathered
