"""Where a benchmark finds its corpus and the repositories' git directories: options or environment.

Neither lives in this repository, so neither has a default: a missing one stops the run with a
usage error naming the option and the variable, rather than falling back to a path that exists
on one machine only.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

CORPUS_ENV = "BENCH_CORPUS"
REPOS_ROOT_ENV = "BENCH_REPOS_ROOT"


def add_corpus_options(parser: argparse.ArgumentParser, repos_root_flags: tuple[str, ...] = ("--repos-root",)) -> None:
    """--corpus and the repositories' root (stored as `repos_root`), both unset unless given."""
    parser.add_argument(
        "--corpus", type=Path, default=None, help=f"the evaluation corpus JSON (required; or set {CORPUS_ENV})"
    )
    parser.add_argument(
        *repos_root_flags,
        dest="repos_root",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"folder of the corpus repositories' git directories (required; or set {REPOS_ROOT_ENV})",
    )


def require_corpus_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, repos_root_flag: str = "--repos-root"
) -> None:
    """Fill what was not given from the environment; exit with a usage error if either is still missing.

    Read after parsing, not as the options' defaults, so `--help` works without either set.
    """
    for attribute, flag, variable in (
        ("corpus", "--corpus", CORPUS_ENV),
        ("repos_root", repos_root_flag, REPOS_ROOT_ENV),
    ):
        if getattr(args, attribute) is not None:
            continue
        value = os.environ.get(variable)
        if not value:
            parser.error(f"{flag} is required (or set the environment variable {variable})")
        setattr(args, attribute, Path(value))
