"""Sources in, findings out: the pure detection core (no files, network, database or clock)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from miner.analyse.detect.aliases import add_assignment_aliases
from miner.analyse.detect.callees import resolve_callee
from miner.analyse.detect.clients import ClientFinder
from miner.analyse.detect.names import Bindings, dotted_name
from miner.analyse.detect.walk import CallSite, Gathered, gather
from miner.analyse.sources import SourceFile
from miner.core.domain import RULE_V1, Finding, first_v2_rule
from miner.core.rules import Rules


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
    """Finds the calls a rules table describes, following docs/detection.md.

    `spec_version` (default: the rules file's) chooses the spec's rules: 1 leaves out what
    version 2 added, which only tests and comparisons need, since every finding of version 2
    records the rule it was made through (`v1` exactly for what version 1 finds).
    """

    def __init__(self, rules: Rules, spec_version: int | None = None) -> None:
        self.rules = rules
        self.spec_version = spec_version or rules.spec_version
        self._v2 = self.spec_version >= 2
        self._import_pattern = re.compile(
            "|".join(
                rf"\bfrom(?:\s|\\\r?\n)+{re.escape(ns)}\b|\bimport(?=\s|\\)(?:[^\n]|\\\r?\n)*\b{re.escape(ns)}\b"
                for ns in rules.namespaces
            )
        )
        # Version 2: importlib.import_module / pytest.importorskip / __import__ of a literal name.
        self._import_function = re.compile(r"\b(?:import_module|importorskip|__import__)\b")
        self._module_literal = re.compile("|".join(rf"['\"]{re.escape(ns)}['\".]" for ns in rules.namespaces))
        # `from mlflow import *` makes the fluent apis and the client class callable by bare name.
        self._star_apis = frozenset(rules.apis) | {name.rsplit(".", 1)[1] for name in rules.client_classes}

    def needs_parse(self, source: SourceFile) -> bool:
        """The prefilter: a name binds to the namespace only through an import naming it.

        First a substring test (most files never say `mlflow`), then a regex for `from mlflow`
        or `import ... mlflow` on one logical line, which every binding form of the spec needs;
        or (version 2) the name of an import function (`import_module`, `importorskip`,
        `__import__`, at the call or where it is imported) with a string literal `"mlflow"` or
        `"mlflow.…"` somewhere in the file. Aliases, getattr and annotated parameters all start
        from such a binding. It may let through text in strings or comments (a wasted parse),
        never a real binding.
        """
        if not any(source.mentions(ns) for ns in self.rules.namespaces):
            return False
        if any(self._import_pattern.search(cell) for cell in source.cells):
            return True
        return (
            self._v2
            and any(self._import_function.search(cell) for cell in source.cells)
            and any(self._module_literal.search(cell) for cell in source.cells)
        )

    def analyse(self, source: SourceFile) -> FileAnalysis:
        if not self.needs_parse(source):
            return FileAnalysis(findings=(), unparsable=(), parsed=False)
        gathered: list[tuple[int | None, str, Gathered]] = []
        unparsable: list[UnparsableCell] = []
        for position, (cell_index, code) in enumerate(zip(source.cell_indices, source.cells)):
            magic = source.magic_of(position)
            if not code.strip() or (magic is not None and not self._v2):
                continue  # version 1 removes every cell that starts with a cell magic
            try:
                gathered.append((cell_index, magic or RULE_V1, gather(_parse(code))))
            except Exception as exc:  # a parser failure is a recorded outcome, never a crash
                unparsable.append(UnparsableCell(cell_index, _parser_message(exc)))
        bindings = Bindings(self.rules.namespaces)
        for _, cell_rule, part in gathered:
            for node in part.imports:
                if isinstance(node, cst.ImportFrom):
                    bindings.add_import_from(node, cell_rule)
                else:
                    bindings.add_import(node, cell_rule)
        if self._v2:
            add_assignment_aliases(
                bindings,
                (pair for _, _, part in gathered for pair in part.name_assignments),
                self.rules.client_classes,
                self._star_apis,
            )
        clients = ClientFinder(bindings, self.rules.client_classes, self._star_apis)
        chains = clients.chains(gathered, annotated_params=self._v2)
        findings = [
            finding
            for cell_index, cell_rule, part in gathered
            for site in part.calls
            if (finding := self._finding(source.path, cell_index, cell_rule, site, bindings, clients, chains))
        ]
        return FileAnalysis(findings=tuple(findings), unparsable=tuple(unparsable), parsed=True)

    def _client_rule(self, func: cst.BaseExpression, clients: ClientFinder, chains: dict[str, str]) -> str | None:
        """The rule that makes the receiver of `func` a client, or None when it is none."""
        if not isinstance(func, cst.Attribute):
            return None
        receiver = func.value
        if isinstance(receiver, cst.Call):
            return clients.constructor_rule(receiver)
        receiver_name = dotted_name(receiver)
        return chains.get(receiver_name) if receiver_name is not None else None

    def _finding(
        self,
        path: str,
        cell: int | None,
        cell_rule: str,
        site: CallSite,
        bindings: Bindings,
        clients: ClientFinder,
        chains: dict[str, str],
    ) -> Finding | None:
        func = site.node.func
        rules = self.rules
        resolved = resolve_callee(func, bindings, self._star_apis, self._v2)
        if resolved is not None and "." not in resolved[0]:
            resolved = None  # the package itself (`mlflow()`) is no api
        client_rule: str | None = None
        if resolved is None or resolved[1] != RULE_V1:
            # What version 1 finds, version 2 finds alike: a client call marked v1 wins over
            # a call resolved only through a version 2 binding of the same receiver.
            client_rule = self._client_rule(func, clients, chains)
            if client_rule == RULE_V1 or resolved is None:
                resolved = None
        if resolved is not None:
            qualified, rule = resolved
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
                rule=first_v2_rule(cell_rule, rule),
            )
        if client_rule is not None:
            method = func.attr.value  # type: ignore[attr-defined]  # a client call is an attribute
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
                rule=first_v2_rule(cell_rule, client_rule),
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
