"""A run's usage summary: its findings folded per api (RunUsage rows) and the profile columns on MiningRun.

`save_run` folds one run as it writes it; `rebuild_summaries` refolds every run in SQL, for
databases filled other than through `save_run` and for repairs.

Store conventions (as in the FastAPI template's crud.py): every function takes a keyword-only
`session` and never opens one itself; writing functions commit, so a store function returns with
its work committed. Call them on a session with nothing else pending.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from miner.core import domain
from schema.models import Finding, MiningRun, RunUsage

_USAGE_COUNTS = ("calls", "client_calls", "other_calls", "used")


def usage_rows(findings: Iterable[domain.Finding]) -> list[dict[str, Any]]:
    """A run's findings folded per api: its RunUsage rows (without the run id).

    Each count twice: over every finding, and (`*_v1`) over the findings of spec version 1.
    """
    folded: dict[str, list[int]] = {}
    for finding in findings:
        counts = folded.get(finding.api)
        if counts is None:
            counts = folded[finding.api] = [0, 0, 0, 0, 0, 0, 0, 0]
        for offset in (0, 4) if finding.rule == domain.RULE_V1 else (0,):
            counts[offset] += 1
            if finding.via_client:
                counts[offset + 1] += 1
            if finding.category == domain.Category.other:
                counts[offset + 2] += 1
            if not finding.disabling:
                counts[offset + 3] = 1
    return [
        {
            "api": api,
            **dict(zip(_USAGE_COUNTS, counts[:4])),
            **dict(zip((f"{name}_v1" for name in _USAGE_COUNTS), counts[4:])),
        }
        for api, counts in folded.items()
    ]


def usage_profile(usage: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's usage profile from its RunUsage rows: the MiningRun columns of that name."""
    profile: dict[str, Any] = {}
    for suffix in ("", "_v1"):
        profile[f"apis_used{suffix}"] = ",".join(sorted(row["api"] for row in usage if row[f"used{suffix}"]))
        profile[f"client_calls{suffix}"] = sum(row[f"client_calls{suffix}"] for row in usage)
        profile[f"other_calls{suffix}"] = sum(row[f"other_calls{suffix}"] for row in usage)
    return profile


def rebuild_summaries(*, session: Session) -> None:
    """Recompute every run's derived rows from its findings, as `save_run` writes them.

    RunUsage, the usage profile columns and the latest flags: for databases filled other
    than through `save_run` (bulk loads, benchmarks) and for repairs. One transaction.
    """
    connection = session.connection()
    connection.execute(delete(RunUsage))
    is_v1 = Finding.rule == domain.RULE_V1

    def counted(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    folded = select(
        Finding.mining_run_id,
        Finding.api,
        func.count(),
        counted(Finding.via_client.is_(True)),
        counted(Finding.category == domain.Category.other),
        func.max(case((Finding.disabling.is_(True), 0), else_=1)),
        counted(is_v1),
        counted(and_(is_v1, Finding.via_client.is_(True))),
        counted(and_(is_v1, Finding.category == domain.Category.other)),
        func.max(case((and_(is_v1, Finding.disabling.is_(False)), 1), else_=0)),
    ).group_by(Finding.mining_run_id, Finding.api)
    counts = [*_USAGE_COUNTS, *(f"{name}_v1" for name in _USAGE_COUNTS)]
    connection.execute(insert(RunUsage).from_select(["mining_run_id", "api", *counts], folded))

    profiles: dict[int, list[dict[str, Any]]] = {}
    for run_id, api, *values in connection.execute(
        select(RunUsage.mining_run_id, RunUsage.api, *(getattr(RunUsage, name) for name in counts))
    ).all():
        profiles.setdefault(run_id, []).append({"api": api, **dict(zip(counts, values))})
    empty = usage_profile([])
    connection.execute(update(MiningRun).values(**empty))
    if profiles:
        table = MiningRun.__table__
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("run_id"))
            .values(**{name: bindparam(f"new_{name}") for name in empty}),
            [
                {"run_id": run_id, **{f"new_{name}": value for name, value in usage_profile(rows).items()}}
                for run_id, rows in profiles.items()
            ],
        )

    newer = aliased(MiningRun, name="newer_run")
    newer_ok = select(newer.id).where(
        newer.repository_id == MiningRun.repository_id,
        newer.status == domain.RunStatus.ok,
        or_(
            newer.finished_at > MiningRun.finished_at,
            and_(newer.finished_at == MiningRun.finished_at, newer.id > MiningRun.id),
        ),
    )
    is_latest = and_(MiningRun.status == domain.RunStatus.ok, ~newer_ok.exists())
    connection.execute(update(MiningRun).values(latest=case((is_latest, True), else_=False)))
    connection.execute(
        update(RunUsage).values(
            latest=select(MiningRun.latest).where(MiningRun.id == RunUsage.mining_run_id).scalar_subquery()
        )
    )
    session.commit()
