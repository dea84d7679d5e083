"""The stored columns behind the figures of one spec version (`--spec 1|2`).

Findings record the rule they were made through (`Finding.rule`: `v1`, or a version 2 kind).
`schema.runs.save_run` folds them twice into the summaries the statistics read: over every finding
(`RunUsage.calls`, `MiningRun.apis_used`, ...) and over the findings of version 1 only (the
`*_v1` columns). Version 2 is every rule there is, so its figures are the plain columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, true

from miner.core.domain import LATEST_SPEC, RULE_V1, SPEC_VERSIONS
from schema.models import Finding, MiningRun, RunUsage


@dataclass(frozen=True)
class SpecColumns:
    """RunUsage and MiningRun columns holding one spec version's counts, and its findings."""

    spec: int
    calls: Any
    client_calls: Any
    other_calls: Any
    used: Any
    apis_used: Any
    run_client_calls: Any
    run_other_calls: Any

    @property
    def findings(self) -> ColumnElement[bool]:
        """The condition on `Finding` rows that count under this version."""
        return Finding.rule == RULE_V1 if self.spec == 1 else true()


def spec_columns(spec: int | None = None) -> SpecColumns:
    """The columns of spec version `spec` (default: the latest)."""
    spec = LATEST_SPEC if spec is None else spec
    if spec not in SPEC_VERSIONS:
        raise ValueError(f"unknown spec version {spec}; one of {', '.join(map(str, SPEC_VERSIONS))}")
    if spec == 1:
        return SpecColumns(
            1,
            RunUsage.calls_v1,
            RunUsage.client_calls_v1,
            RunUsage.other_calls_v1,
            RunUsage.used_v1,
            MiningRun.apis_used_v1,
            MiningRun.client_calls_v1,
            MiningRun.other_calls_v1,
        )
    return SpecColumns(
        spec,
        RunUsage.calls,
        RunUsage.client_calls,
        RunUsage.other_calls,
        RunUsage.used,
        MiningRun.apis_used,
        MiningRun.client_calls,
        MiningRun.other_calls,
    )
