"""Plain domain objects shared by the pure core, the pipeline and the store.

Small and frozen, in the spirit of PyDriller's Commit/ModifiedFile: they carry results between
layers and know nothing of git, libcst, Celery or the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class Category(str, Enum):
    params = "params"
    metrics = "metrics"
    autolog = "autolog"
    artifacts = "artifacts"
    models = "models"
    datasets = "datasets"
    tags = "tags"
    runs = "runs"
    config = "config"
    registry = "registry"
    client = "client"
    other = "other"


class FileKind(str, Enum):
    py = "py"
    ipynb = "ipynb"


class FileStatus(str, Enum):
    ok = "ok"
    unparsable = "unparsable"
    skipped = "skipped"


# Which rule of docs/detection.md a finding was made through: `v1` for the rules of
# version 1, else the version 2 kind (the corpus's `spec_v2` values). Cell magics are `%%<magic>`
# (`%%writefile`, `%%time`, ...), an open family, so rules are plain strings, not an Enum.
RULE_V1 = "v1"
RULE_ASSIGNMENT_ALIAS = "assignment-alias"
RULE_GETATTR_DYNAMIC = "getattr-dynamic"
RULE_ANNOTATED_CLIENT_PARAM = "annotated-client-param"
MAGIC_RULE_PREFIX = "%%"
SPEC_VERSIONS = (1, 2)
LATEST_SPEC = SPEC_VERSIONS[-1]


def spec_of_rule(rule: str) -> int:
    """The spec version that introduced a rule: a finding counts under that version and later."""
    return 1 if rule == RULE_V1 else 2


def first_v2_rule(*rules: str | None) -> str:
    """The first rule of version 2 among those a finding needed (None and `v1` pass), else `v1`.

    A finding made through several version 2 rules records the outermost: the cell magic it
    sits in, then the computed getattr, then the binding or client it resolved through.
    """
    return next((rule for rule in rules if rule is not None and rule != RULE_V1), RULE_V1)


class RunStatus(str, Enum):
    ok = "ok"
    clone_failed = "clone_failed"
    too_large = "too_large"
    timeout = "timeout"
    error = "error"


@dataclass(frozen=True)
class Finding:
    """One call into the MLflow API at one place in one file (or notebook cell)."""

    path: str
    line: int
    column: int
    qualified_name: str
    api: str
    category: Category
    flavor: str | None = None
    cell: int | None = None
    disabling: bool = False
    via_client: bool = False
    rule: str = RULE_V1  # `v1`, or the version 2 kind it was found through


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: analysed, unparsable (with the parser's message) or skipped."""

    path: str
    kind: FileKind
    status: FileStatus
    error: str | None = None
    size_bytes: int = 0
    parsed: bool = False  # False when the prefilter proved no parse was needed
    unparsable_cells: tuple[int, ...] = ()


@dataclass
class MiningResult:
    """Everything one mine of one (repository, commit) produced, ready to store in one go."""

    full_name: str
    commit_sha: str | None
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    files: list[FileResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    bytes_analysed: int = 0
    clone_url: str | None = None
    default_branch: str | None = None

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def files_seen(self) -> int:
        return len(self.files)

    @property
    def files_analysed(self) -> int:
        return sum(1 for f in self.files if f.status is FileStatus.ok)

    @property
    def files_unparsable(self) -> int:
        return sum(1 for f in self.files if f.status is FileStatus.unparsable)

    @property
    def files_skipped(self) -> int:
        return sum(1 for f in self.files if f.status is FileStatus.skipped)
