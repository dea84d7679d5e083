"""Links to findings on GitHub: exact URLs for paths that need quoting (pure, no database)."""

from __future__ import annotations

import pytest

from miner.present.web.links import commit_url, file_url, finding_url, location, repository_url

GITHUB = "https://github.com"


def finding(
    path: str, *, line: int = 7, cell: int | None = None, commit: str | None = "c0ffee", repository: str = "acme/lab"
) -> dict:
    return {"repository": repository, "commit": commit, "path": path, "line": line, "cell": cell}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("train.py", "https://github.com/acme/lab/blob/c0ffee/train.py#L7"),
        ("src/my dir/run #1.py", "https://github.com/acme/lab/blob/c0ffee/src/my%20dir/run%20%231.py#L7"),
        ("données/expérience.py", "https://github.com/acme/lab/blob/c0ffee/donn%C3%A9es/exp%C3%A9rience.py#L7"),
        ("100%?.py", "https://github.com/acme/lab/blob/c0ffee/100%25%3F.py#L7"),
        (
            "<script>alert(1)</script>.py",
            "https://github.com/acme/lab/blob/c0ffee/%3Cscript%3Ealert%281%29%3C/script%3E.py#L7",
        ),
    ],
)
def test_a_finding_links_to_its_line_at_the_commit(path: str, expected: str) -> None:
    assert finding_url(GITHUB, finding(path)) == expected


def test_a_notebook_finding_links_to_the_file_and_names_the_cell() -> None:
    cell = finding("notebooks/fit model.ipynb", cell=3, line=2)

    assert finding_url(GITHUB, cell) == "https://github.com/acme/lab/blob/c0ffee/notebooks/fit%20model.ipynb"
    assert location(cell) == "cell 3, line 2"
    assert location(finding("a.py", line=4)) == "line 4"


def test_web_url_and_names_are_quoted_once() -> None:
    evil = "evil/drop'; DROP TABLE finding; --"

    assert repository_url("http://127.0.0.1:8080/gh/", "acme/lab") == "http://127.0.0.1:8080/gh/acme/lab"
    assert repository_url(GITHUB, evil) == "https://github.com/evil/drop%27%3B%20DROP%20TABLE%20finding%3B%20--"
    assert commit_url(GITHUB, "acme/lab", "abc123") == "https://github.com/acme/lab/tree/abc123"
    assert file_url(GITHUB, "acme/lab", "abc123", "a/b.py") == "https://github.com/acme/lab/blob/abc123/a/b.py"
    assert finding_url(GITHUB, finding("a.py", commit=None)) is None
