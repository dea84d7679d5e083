"""Which names and attribute chains hold an MlflowClient, and through which rule.

Version 1: a chain assigned a constructor call of the client class (`client = MlflowClient()`,
`self.client = mlflow.tracking.MlflowClient(uri)`). Version 2 (rule 4): a function parameter
annotated with the client class (`client: MlflowClient`, or the same as a string) makes its name
a client too, as an assignment would. Either holds for the whole file; a chain that version 1
makes a client stays marked `v1` whatever else also makes it one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property

import libcst as cst

from miner.analyse.detect.aliases import literal_text
from miner.analyse.detect.names import Bindings, dotted_name
from miner.analyse.detect.walk import Gathered
from miner.core.domain import RULE_ANNOTATED_CLIENT_PARAM, RULE_V1, first_v2_rule

_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")

# A file or notebook as the detector holds it: per parsed cell, its index and rule (`v1`, or
# the cell magic whose body it is) and what the gathering pass found in it.
GatheredCells = Iterable[tuple[int | None, str, Gathered]]


def _add(chains: dict[str, str], chain: str, rule: str) -> None:
    """The first rule that makes a chain a client, unless version 1 makes it one too."""
    current = chains.get(chain)
    if current is None or (rule == RULE_V1 and current != RULE_V1):
        chains[chain] = rule


class ClientFinder:
    """Resolves client constructors and annotations against one file's binding table."""

    def __init__(self, bindings: Bindings, client_classes: frozenset[str], star_apis: frozenset[str]) -> None:
        self.bindings = bindings
        self.client_classes = client_classes
        self.star_apis = star_apis

    def _class_rule(self, dotted: str | None) -> str | None:
        """The rule through which a dotted name resolves to the client class, else None."""
        if dotted is None:
            return None
        found = self.bindings.resolve_with_rule(dotted, self.star_apis)
        if found is None or found[0] not in self.client_classes:
            return None
        return found[1]

    def constructor_rule(self, call: cst.Call) -> str | None:
        """The rule through which `call` constructs a client (`MlflowClient(...)`), else None."""
        return self._class_rule(dotted_name(call.func))

    @cached_property
    def _class_names(self) -> frozenset[str]:
        """The last names a chain naming the client class can end in (`MlflowClient`, or a name
        an import gives it): any other annotation is rejected without resolving it."""
        return frozenset(
            {name.rsplit(".", 1)[-1] for name in self.client_classes}
            | {name for name, target in self.bindings.names.items() if target in self.client_classes}
        )

    def annotation_is_client(self, annotation: cst.BaseExpression) -> bool:
        """`MlflowClient`, `mlflow.tracking.MlflowClient`, or either written as a string."""
        if isinstance(annotation, cst.Name):
            if annotation.value not in self._class_names:
                return False
        elif isinstance(annotation, cst.Attribute):
            if annotation.attr.value not in self._class_names:
                return False
        text = literal_text(annotation)
        if text is not None:
            text = text.strip()
            return bool(_DOTTED.fullmatch(text)) and self._class_rule(text) is not None
        return self._class_rule(dotted_name(annotation)) is not None

    def chains(self, cells: GatheredCells, annotated_params: bool) -> dict[str, str]:
        """Every client chain of the file, with the rule that makes it one."""
        chains: dict[str, str] = {}
        for _cell, cell_rule, part in cells:
            for targets, value in part.assignments:
                rule = self.constructor_rule(value)
                if rule is None:
                    continue
                rule = first_v2_rule(cell_rule, rule)
                for target in targets:
                    chain = dotted_name(target)
                    if chain is not None:
                        _add(chains, chain, rule)
            if not annotated_params:
                continue
            for name, annotation in part.annotated_params:
                if chains.get(name) != RULE_V1 and self.annotation_is_client(annotation):
                    _add(chains, name, first_v2_rule(cell_rule, RULE_ANNOTATED_CLIENT_PARAM))
        return chains
