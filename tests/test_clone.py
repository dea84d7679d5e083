"""The safe partial clone: what it fetches, what it never runs, and how each failure is recorded.

Real repositories built in tmp_path, served by real git (file:// runs upload-pack on them, HTTP
goes through `git http-backend`); what was served is observed where git packs objects.
"""

from __future__ import annotations

import os
import random
import string
import subprocess
import time
from pathlib import Path

import git
import pytest
from crawl_fixtures import CloneCounter, GitHttpServer, allow_partial_clone, git_dir_of
from gitrepos import FULL_NAME, BuiltRepo, make_repo, mine, remove_blob, result_as_json

from miner.acquire.clone import CloneError, clone_repository, remote_head
from miner.acquire.targets import Target
from miner.analyse.pipeline import mine_commit
from miner.core.domain import RunStatus
from miner.core.rules import load_rules
from miner.core.settings import LimitSettings, Settings
from miner.orchestrate.mining import mine_target

SOURCES = {
    "train.py": "import mlflow\nmlflow.log_param('a', 1)\n",
    "notebooks/eda.ipynb": '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": '
    '[{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null, '
    '"source": ["import mlflow\\n", "mlflow.autolog()\\n"]}]}',
    **{f"pkg/module_{i:02d}.py": f"VALUE = {i}\n" for i in range(30)},
}
OTHER_FILES = {
    "README.md": "# readme\n",
    "data/weights.bin": bytes(random.Random(1).getrandbits(8) for _ in range(200_000)),
    "venv/lib/site-packages/vendored.py": "import mlflow\nmlflow.log_param('v', 1)\n",
}
LINKS = {"link_to_train.py": "train.py"}


def _objects(git_dir: Path, rev: str = "HEAD") -> dict[str, set[str]]:
    """Blob ids of the commit's tree split into present / missing, without fetching anything."""
    listing = subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-list", "--objects", "--no-walk", "--missing=print", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    missing = {line[1:] for line in listing if line.startswith("?")}
    present = {line.split()[0] for line in listing if not line.startswith("?")}
    return {"present": present, "missing": missing}


def _blob_ids(repo_path: Path, paths) -> set[str]:  # noqa: ANN001
    repo = git.Repo(repo_path)
    try:
        return {repo.git.rev_parse(f"HEAD:{path}") for path in paths}
    finally:
        repo.close()


def _mined(git_dir: Path, rev: str | None = None) -> dict:
    return result_as_json(
        mine_commit(git_dir, full_name=FULL_NAME, rules=load_rules(), limits=LimitSettings(), rev=rev)
    )


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CloneCounter:
    counter = CloneCounter(tmp_path / "counter")
    for key, value in counter.env.items():
        monkeypatch.setenv(key, value)
    return counter


@pytest.fixture
def served(tmp_path: Path) -> BuiltRepo:
    built = make_repo(tmp_path / "served", {**SOURCES, **OTHER_FILES}, LINKS)
    allow_partial_clone(built.path)
    return built


def test_partial_clone_holds_only_the_analysed_blobs_fetched_in_one_batch(
    served: BuiltRepo, counter: CloneCounter, tmp_path: Path
) -> None:
    dest = clone_repository(served.path.as_uri(), tmp_path / "clone.git", LimitSettings())

    objects = _objects(dest)
    assert _blob_ids(served.path, SOURCES) <= objects["present"]
    not_analysed = _blob_ids(served.path, [*OTHER_FILES, *LINKS])
    assert not_analysed <= objects["missing"], "README, data, vendored files and links are not fetched"
    # one pack for the clone (commit and trees) and ONE for all 32 source blobs
    assert counter.of(served.path) == 2
    # and mining it reads exactly what mining the served repository itself reads, no more fetches
    assert _mined(dest) == result_as_json(mine(served))
    assert counter.of(served.path) == 2


def test_clone_is_sealed_so_a_missing_blob_is_never_fetched_lazily(
    served: BuiltRepo, counter: CloneCounter, tmp_path: Path
) -> None:
    dest = clone_repository(served.path.as_uri(), tmp_path / "clone.git", LimitSettings())
    readme = _blob_ids(served.path, ["README.md"]).pop()

    read = subprocess.run(["git", "--git-dir", str(dest), "cat-file", "-p", readme], capture_output=True, text=True)

    assert read.returncode != 0
    assert counter.of(served.path) == 2
    assert "remote" not in (dest / "config").read_text()


def test_a_server_ignoring_the_filter_still_gives_a_complete_clone(tmp_path: Path, counter: CloneCounter) -> None:
    built = make_repo(tmp_path / "plain-server", {**SOURCES, **OTHER_FILES}, LINKS)  # no allowFilter

    dest = clone_repository(built.path.as_uri(), tmp_path / "clone.git", LimitSettings())

    assert _objects(dest)["missing"] == set()
    assert counter.of(built.path) == 1, "every blob came with the clone: nothing left to fetch"
    assert _mined(dest) == result_as_json(mine(built))


def test_clone_at_a_revision_mines_that_commit(served: BuiltRepo, tmp_path: Path) -> None:
    first = served.sha
    repo = served.repo
    (served.path / "train.py").write_text("import mlflow\nmlflow.log_metric('m', 1)\n")
    repo.git.commit("-am", "second")
    repo.git.branch("side", first)
    repo.close()

    by_sha = clone_repository(served.path.as_uri(), tmp_path / "by-sha.git", LimitSettings(), rev=first)
    by_name = clone_repository(served.path.as_uri(), tmp_path / "by-name.git", LimitSettings(), rev="side")

    expected = result_as_json(mine(served, rev=first))
    assert _mined(by_sha, rev=first) == expected
    assert _mined(by_name, rev="side") == expected
    shallow = subprocess.run(
        ["git", "--git-dir", str(by_sha), "rev-list", "--count", "--all"], capture_output=True, text=True, check=True
    )
    assert shallow.stdout.strip() == "1", "a commit id is fetched alone (depth 1)"


def test_a_blob_the_server_lacks_is_isolated_and_the_rest_is_mined(served: BuiltRepo, tmp_path: Path) -> None:
    lost = remove_blob(served.path, "pkg/module_07.py")

    dest = clone_repository(served.path.as_uri(), tmp_path / "clone.git", LimitSettings())

    assert _objects(dest)["missing"] & _blob_ids(served.path, SOURCES) == {lost}
    mined = _mined(dest)
    assert mined["status"] == "ok"
    skipped = [f for f in mined["files"] if f[1] == "skipped" and f[0].endswith(".py") and "missing" in (f[2] or "")]
    assert [f[0] for f in skipped] == ["pkg/module_07.py"]
    assert sum(1 for f in mined["files"] if f[1] == "ok") == len(SOURCES) - 1


def test_hooks_and_smudge_filters_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("post-checkout", "reference-transaction", "post-merge", "pre-auto-gc"):
        script = hooks / name
        script.write_text(f'#!/bin/sh\necho {name} >> "{marker}"\ncat >/dev/null 2>&1 || true\n')
        script.chmod(0o755)
    smudge = tmp_path / "smudge.sh"
    smudge.write_text(f'#!/bin/sh\necho smudge >> "{marker}"\nexec cat\n')
    smudge.chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(f'[core]\n\thooksPath = {hooks}\n[filter "lfs"]\n\tsmudge = {smudge}\n\trequired = true\n')
    built = make_repo(tmp_path / "served", {"train.py": "import mlflow\n", ".gitattributes": "*.py filter=lfs\n"})
    allow_partial_clone(built.path)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))

    # the same global configuration makes an ordinary clone run them: the test can fail
    subprocess.run(["git", "clone", "-q", built.path.as_uri(), str(tmp_path / "ordinary")], check=True)
    assert marker.read_text().count("smudge") == 1 and "reference-transaction" in marker.read_text()
    marker.unlink()

    dest = clone_repository(built.path.as_uri(), tmp_path / "clone.git", LimitSettings())

    assert not marker.exists()
    assert _mined(dest)["status"] == "ok"


def test_submodules_are_not_followed(tmp_path: Path, counter: CloneCounter) -> None:
    inner = make_repo(tmp_path / "inner", {"inner.py": "import mlflow\n"})
    allow_partial_clone(inner.path)
    outer = make_repo(
        tmp_path / "outer",
        {
            "main.py": "import mlflow\n",
            ".gitmodules": f'[submodule "vendor/inner"]\n\tpath = vendor/inner\n\turl = {inner.path.as_uri()}\n',
        },
    )
    repo = outer.repo
    repo.git.update_index("--add", "--cacheinfo", f"160000,{inner.sha},vendor/inner")
    repo.git.commit("-m", "add submodule")
    repo.close()
    allow_partial_clone(outer.path)

    dest = clone_repository(outer.path.as_uri(), tmp_path / "clone.git", LimitSettings())

    assert _mined(dest)["status"] == "ok"
    assert counter.of(inner.path) == 0
    assert counter.of(outer.path) == 2


def _processes_naming(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(pid))
    return found


def test_a_clone_past_its_time_limit_is_killed_with_all_its_processes(tmp_path: Path) -> None:
    built = make_repo(tmp_path / "repos" / "slow", {"train.py": "import mlflow\n"})
    allow_partial_clone(built.path)
    with GitHttpServer(tmp_path / "repos") as server:
        server.hold(built.path)
        url = server.url_for(built.path)
        started = time.monotonic()
        with pytest.raises(CloneError) as caught:
            clone_repository(url, tmp_path / "clone.git", LimitSettings(clone_timeout_s=1))
        elapsed_s = time.monotonic() - started

        assert caught.value.status is RunStatus.timeout
        assert server.arrived.is_set(), "the clone was cut while its fetch was being served"
        assert elapsed_s < 30
        assert _processes_naming(url) == [], "git and its remote helper were killed with the clone"


def test_a_clone_growing_past_the_byte_limit_is_too_large(tmp_path: Path) -> None:
    noise = "".join(random.Random(2).choices(string.ascii_letters + string.digits, k=3_000_000))
    built = make_repo(tmp_path / "big", {"blob.py": f"DATA = '{noise}'\n", "train.py": "import mlflow\n"})
    allow_partial_clone(built.path)

    with pytest.raises(CloneError) as caught:
        clone_repository(built.path.as_uri(), tmp_path / "clone.git", LimitSettings(max_clone_bytes=1_000_000))

    assert caught.value.status is RunStatus.too_large
    # the same repository under the default limit clones fine
    clone_repository(built.path.as_uri(), tmp_path / "ok.git", LimitSettings())


def test_every_outcome_is_a_run_status_and_the_temporary_folder_is_removed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    settings = Settings(work_dir=str(work), database_url="sqlite://")
    good = make_repo(tmp_path / "good", {"train.py": "import mlflow\nmlflow.log_param('a', 1)\n"})
    allow_partial_clone(good.path)
    empty = tmp_path / "empty"
    git.Repo.init(empty).close()
    noise = "".join(random.Random(3).choices(string.ascii_letters, k=400_000))
    big = make_repo(tmp_path / "big", {"data.py": f"X = '{noise}'\n"})

    def mined(url: str, limits: LimitSettings | None = None) -> tuple[RunStatus, str | None]:
        run_settings = settings.model_copy(update={"limits": limits or LimitSettings()})
        result = mine_target(Target(url, "o/n", url, None), run_settings)
        assert list(work.iterdir()) == [], "the clone folder is gone whatever happened"
        return result.status, result.error

    assert mined(good.path.as_uri()) == (RunStatus.ok, None)
    status, error = mined((tmp_path / "does-not-exist").as_uri())
    assert (
        status is RunStatus.clone_failed
        and error.startswith("clone failed: ")
        and "does not appear to be a git repository" in error
    ), error
    status, error = mined(empty.as_uri())
    assert status is RunStatus.clone_failed and "no commits" in error
    status, error = mined(big.path.as_uri(), LimitSettings(max_clone_bytes=100_000))
    assert status is RunStatus.too_large and "100000 bytes" in error


def test_remote_head_reads_the_branch_without_cloning(served: BuiltRepo, counter: CloneCounter) -> None:
    assert remote_head(served.path.as_uri(), None) == served.sha
    assert remote_head(str(served.path), "nope") == served.sha  # a renamed branch falls back to HEAD
    assert counter.of(served.path) == 0
    with pytest.raises(CloneError):
        remote_head("file:///nowhere/at/all", None)


def test_the_counter_sees_clones(served: BuiltRepo, counter: CloneCounter, tmp_path: Path) -> None:
    """The observation the crawl tests rely on: a plain full clone is one pack-objects run."""
    subprocess.run(["git", "clone", "-q", "--bare", served.path.as_uri(), str(tmp_path / "x.git")], check=True)
    assert counter.of(served.path) == 1
    assert git_dir_of(served.path) in counter.counts()


def test_a_file_name_that_is_not_utf8_is_fetched_and_mined(tmp_path: Path, counter: CloneCounter) -> None:
    built = make_repo(tmp_path / "latin1", {"train.py": "import mlflow\n"})
    raw_name = os.fsencode(built.path) + b"/caf\xe9.py"
    with open(raw_name, "wb") as handle:
        handle.write(b"import mlflow\nmlflow.log_param('a', 1)\n")
    repo = built.repo
    repo.git.add("--all")
    repo.git.commit("-m", "latin-1 name")
    repo.close()
    allow_partial_clone(built.path)

    dest = clone_repository(built.path.as_uri(), tmp_path / "clone.git", LimitSettings())

    mined = _mined(dest)
    assert [f[:2] for f in mined["files"]] == [["caf\\xe9.py", "ok"], ["train.py", "ok"]]
    assert [f["api"] for f in mined["findings"]] == ["log_param"]
    assert counter.of(built.path) == 2
