"""Sources in, findings out: the pure detection core (no files, network, database or clock)."""

from __future__ import annotations

from dataclasses import dataclass

import re

import libcst as cst

from miner.analyse.detect.names import Bindings, dotted_name
from miner.core.rules import Rules
from miner.analyse.detect.walk import CallSite, Gathered, gather
from miner.core.domain import Finding
from miner.analyse.sources import SourceFile


@dataclass(frozen=True)
class UnparsableCell:
    cell: int | None
    message: str


@dataclass(frozen=True)
class FileAnalysis:
    """The outcome for one file: findings, the cells that did not parse, and whether we parsed."""

    findings: tuple[Finding, ...]
    unparsable: tuple[UnparsableCell, ...]
    parsed: bool

    @property
    def ok(self) -> bool:
        return not self.unparsable


def _parser_message(exc: Exception) -> str:
    if isinstance(exc, cst.ParserSyntaxError):
        first = str(exc.message).strip().splitlines()[0] if exc.message else "syntax error"
        return f"SyntaxError: {first} (line {exc.editor_line}, column {exc.editor_column})"
    if isinstance(exc, RecursionError):
        return "RecursionError: nesting too deep to analyse"
    return f"{type(exc).__name__}: {exc}".strip()


def _parse(code: str) -> cst.Module:
    if "\r" in code:  # Python reads \r\n and a lone \r as one line break each; we count \n
        code = code.replace("\r\n", "\n").replace("\r", "\n")
    return cst.parse_module(code)


class Detector:
    """Finds the calls a rules table describes, following docs/detection.md."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._import_pattern = re.compile("|".join(
            rf"\bfrom(?:\s|\\\r?\n)+{re.escape(ns)}\b|\bimport(?=\s|\\)(?:[^\n]|\\\r?\n)*\b{re.escape(ns)}\b"
            for ns in rules.namespaces
        ))
        # `from mlflow import *` makes the fluent apis and the client class callable by bare name.
        self._star_apis = frozenset(rules.apis) | {name.rsplit(".", 1)[1] for name in rules.client_classes}

    def needs_parse(self, source: SourceFile) -> bool:
        """The prefilter: a name binds to the namespace only through an import statement naming it.

        First a substring test (most files never say `mlflow`), then a regex for `from mlflow`
        or `import ... mlflow` on one logical line, which every binding form of the spec needs.
        It may let through text in strings or comments (a wasted parse), never a real import.
        """
        if not any(source.mentions(ns) for ns in self.rules.namespaces):
            return False
        return any(self._import_pattern.search(cell) for cell in source.cells)

    def analyse(self, source: SourceFile) -> FileAnalysis:
        if not self.needs_parse(source):
            return FileAnalysis(findings=(), unparsable=(), parsed=False)
        gathered: list[tuple[int | None, Gathered]] = []
        unparsable: list[UnparsableCell] = []
        for cell_index, code in zip(source.cell_indices, source.cells):
            if not code.strip():
                continue
            try:
                gathered.append((cell_index, gather(_parse(code))))
            except Exception as exc:  # a parser failure is a recorded outcome, never a crash
                unparsable.append(UnparsableCell(cell_index, _parser_message(exc)))
        bindings = Bindings(self.rules.namespaces)
        for _, part in gathered:
            for node in part.imports:
                if isinstance(node, cst.ImportFrom):
                    bindings.add_import_from(node)
                else:
                    bindings.add_import(node)
        clients = self._client_chains(gathered, bindings)
        findings = [
            finding
            for cell_index, part in gathered
            for site in part.calls
            if (finding := self._finding(source.path, cell_index, site, bindings, clients))
        ]
        return FileAnalysis(findings=tuple(findings), unparsable=tuple(unparsable), parsed=True)

    def _is_client_constructor(self, call: cst.Call, bindings: Bindings) -> bool:
        name = dotted_name(call.func)
        if name is None:
            return False
        return bindings.resolve(name, self._star_apis) in self.rules.client_classes

    def _client_chains(self, gathered: list[tuple[int | None, Gathered]], bindings: Bindings) -> set[str]:
        """Names and attribute chains assigned a client instance anywhere in the file."""
        chains: set[str] = set()
        for _, part in gathered:
            for targets, value in part.assignments:
                if self._is_client_constructor(value, bindings):
                    chains.update(c for t in targets if (c := dotted_name(t)) is not None)
        return chains

    def _finding(
        self,
        path: str,
        cell: int | None,
        site: CallSite,
        bindings: Bindings,
        clients: set[str],
    ) -> Finding | None:
        func = site.node.func
        callee = dotted_name(func)
        qualified = bindings.resolve(callee, self._star_apis) if callee else None
        rules = self.rules
        if qualified is not None and rules.in_namespace(qualified):
            if qualified in rules.client_classes:
                return None  # constructing the client is not itself a finding
            api = qualified.rsplit(".", 1)[1]
            return Finding(
                path=path,
                line=site.line,
                column=site.column + 1,
                cell=cell,
                qualified_name=qualified,
                api=api,
                category=rules.category_of(api),
                flavor=rules.flavor_of(qualified),
                disabling=self._is_disabling(api, site.node),
            )
        if isinstance(func, cst.Attribute):
            receiver = func.value
            receiver_name = dotted_name(receiver)
            is_client = (receiver_name is not None and receiver_name in clients) or (
                isinstance(receiver, cst.Call) and self._is_client_constructor(receiver, bindings)
            )
            if is_client:
                method = func.attr.value
                return Finding(
                    path=path,
                    line=site.line,
                    column=site.column + 1,
                    cell=cell,
                    qualified_name=f"{rules.client_qualified_prefix}.{method}",
                    api=method,
                    category=rules.client_category,
                    flavor=None,
                    via_client=True,
                )
        return None

    def _is_disabling(self, api: str, call: cst.Call) -> bool:
        if api != self.rules.disabling_api:
            return False
        for arg in call.args:
            if (
                arg.keyword is not None
                and arg.keyword.value == self.rules.disabling_keyword
                and isinstance(arg.value, cst.Name)
                and arg.value.value == "True"
            ):
                return True
        return False
