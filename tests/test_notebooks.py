"""Notebooks per docs/detection.md: cells, cell indices, IPython syntax, broken notebooks.

Every test commits real .ipynb files to a real git repository and mines the commit. `cell` is the
0-based index in the notebook's list of all cells (markdown, raw and nbformat 3 heading cells
included, nbformat 3 worksheets flattened); `line` is the line inside that cell as stored.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from gitrepos import file_result, finding, findings_in, lines, mine_tree, notebook_v3, notebook_v4

from miner.core.domain import Category, FileKind, FileStatus, MiningResult, RunStatus

C = Category
NB = "analysis.ipynb"


def mine_notebook(tmp_path: Path, notebook: str | bytes, path: str = NB) -> MiningResult:
    result = mine_tree(tmp_path / "repo", {path: notebook})
    assert result.status is RunStatus.ok, result.error
    return result


def analysed(result: MiningResult, path: str = NB, parsed: bool = True) -> None:
    outcome = file_result(result, path)
    assert (outcome.kind, outcome.status, outcome.error, outcome.parsed, outcome.unparsable_cells) == (
        FileKind.ipynb,
        FileStatus.ok,
        None,
        parsed,
        (),
    )


TRAIN_CELL = "import mlflow\n\nmlflow.log_param('lr', 0.1)\nmodel.fit(x, y)\n  # trailing comment\n"


@pytest.mark.parametrize("as_lines", [True, False], ids=["source-as-list", "source-as-string"])
def test_nbformat4_source_as_list_or_string(tmp_path: Path, as_lines: bool) -> None:
    source = lines(TRAIN_CELL) if as_lines else TRAIN_CELL
    notebook = notebook_v4([("markdown", "# Training\n"), ("code", source)])
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert result.findings == [finding(NB, 3, 1, "mlflow.log_param", C.params, cell=1)]


def test_nbformat3_worksheets_are_flattened(tmp_path: Path) -> None:
    notebook = notebook_v3(
        [
            [
                ("heading", "Experiment"),
                ("code", lines("import mlflow\nimport mlflow.sklearn\n")),
                ("markdown", "Now train."),
            ],
            [
                ("code", lines("x = 1\nmlflow.sklearn.autolog()\n")),
                ("code", "with mlflow.start_run():\n    mlflow.log_metric('acc', 0.9)"),
            ],
        ]
    )
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert findings_in(result, NB) == [
        finding(NB, 2, 1, "mlflow.sklearn.autolog", C.autolog, flavor="sklearn", cell=3),
        finding(NB, 1, 6, "mlflow.start_run", C.runs, cell=4),
        finding(NB, 2, 5, "mlflow.log_metric", C.metrics, cell=4),
    ]


def test_markdown_and_raw_cells_count_in_the_cell_index(tmp_path: Path) -> None:
    notebook = notebook_v4(
        [
            ("markdown", "intro"),
            ("raw", "mlflow.log_param('not', 'code')"),
            ("markdown", ["see `mlflow.autolog()`\n", "below"]),
            ("code", "import mlflow\nmlflow.autolog()"),
            ("markdown", ""),
            ("code", ["\n", "\n", "mlflow.log_params({'a': 1})\n"]),
        ]
    )
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert findings_in(result, NB) == [
        finding(NB, 2, 1, "mlflow.autolog", C.autolog, cell=3),
        finding(NB, 3, 1, "mlflow.log_params", C.params, cell=5),
    ]


def test_imports_in_one_cell_bind_calls_in_later_cells(tmp_path: Path) -> None:
    notebook = notebook_v4(
        [
            (
                "code",
                "import mlflow as mf\nfrom mlflow.tracking import MlflowClient\nfrom mlflow import log_metric as lm",
            ),
            ("markdown", "## Setup"),
            ("code", "client = MlflowClient()"),
            (
                "code",
                "for epoch in range(3):\n"
                "    lm('loss', 1 / (epoch + 1))\n"
                "mf.set_experiment('nb')\n"
                "client.set_tag(rid, 'k', 'v')",
            ),
        ]
    )
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert findings_in(result, NB) == [
        finding(NB, 2, 5, "mlflow.log_metric", C.metrics, cell=3),
        finding(NB, 3, 1, "mlflow.set_experiment", C.config, cell=3),
        finding(NB, 4, 1, "mlflow.client.MlflowClient.set_tag", C.client, cell=3, via_client=True),
    ]


def test_calls_before_the_importing_cell_still_bind(tmp_path: Path) -> None:
    notebook = notebook_v4([("code", "mlflow.end_run()"), ("code", "import mlflow")])
    result = mine_notebook(tmp_path, notebook)
    assert findings_in(result, NB) == [finding(NB, 1, 1, "mlflow.end_run", C.runs, cell=0)]


# --- IPython syntax --------------------------------------------------------------------------------


def test_magics_shell_escapes_and_help_lines_are_removed_keeping_lines(tmp_path: Path) -> None:
    cell = (
        "%matplotlib inline\n"
        "!pip install mlflow\n"
        "import mlflow\n"
        "mlflow.log_param?\n"
        "mlflow.log_metric??\n"
        "  %time mlflow.log_metric('timed', 1)\n"
        "\t!ls\n"
        "mlflow.log_param('lr', 0.1)\n"
    )
    notebook = notebook_v4([("markdown", "x"), ("code", lines(cell))])
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert findings_in(result, NB) == [finding(NB, 8, 1, "mlflow.log_param", C.params, cell=1)]


def test_cell_magic_cell_whose_body_is_not_python_is_ignored_entirely(tmp_path: Path) -> None:
    notebook = notebook_v4(
        [
            ("code", "%%bash\nimport mlflow\nmlflow.log_param('a', 1)\n"),
            ("code", "  %%bash\npip install mlflow\n"),
            ("code", "%%writefile config.yaml\nimport mlflow\n"),
            ("code", "%%writefile\nimport mlflow\n"),  # no target at all
            ("code", "%%html\n<b>import mlflow</b>\n"),
            ("code", "mlflow.log_metric('m', 2)\n"),  # `mlflow` is bound only inside those cells
            ("code", "import os\nos.getcwd()  # %%time inside a cell is not a cell magic\nmlflow.log_metric('n', 3)"),
        ]
    )
    result = mine_notebook(tmp_path, notebook)
    analysed(result, parsed=False)  # once those cells are gone, nothing imports mlflow
    assert result.findings == []


def test_cell_magic_cell_does_not_break_the_others(tmp_path: Path) -> None:
    notebook = notebook_v4(
        [
            ("code", "%%writefile helper.sh\ndef broken(:\n"),
            ("code", "import mlflow\nmlflow.autolog()"),
        ]
    )
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert result.findings == [finding(NB, 2, 1, "mlflow.autolog", C.autolog, cell=1)]


def test_shell_escape_as_the_only_body_of_a_block_still_parses(tmp_path: Path) -> None:
    cell = (
        "import importlib.util\n"
        "if importlib.util.find_spec('mlflow') is None:\n"
        "    !pip install mlflow\n"
        "else:\n"
        "    %pip show mlflow\n"
        "import mlflow\n"
        "for name in ['a', 'b']:\n"
        "    !echo {name}\n"
        "mlflow.autolog()\n"
    )
    notebook = notebook_v4([("code", lines(cell))])
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert result.findings == [finding(NB, 9, 1, "mlflow.autolog", C.autolog, cell=0)]


def test_trailing_comment_ending_in_a_question_mark_is_not_a_help_line(tmp_path: Path) -> None:
    # IPython's help syntax is `name?`; a `?` at the end of a comment leaves the code line as it is.
    cell = "import mlflow\nmlflow.log_metric('acc', acc)  # better than last run?\n"
    result = mine_notebook(tmp_path, notebook_v4([("code", cell)]))
    analysed(result)
    assert result.findings == [finding(NB, 2, 1, "mlflow.log_metric", C.metrics, cell=0)]


def test_continuation_lines_starting_with_operators_are_not_shell_escapes(tmp_path: Path) -> None:
    # Inside brackets `!=` and `%` on a new line are operators of the same logical line.
    cell = (
        "import mlflow\n"
        "changed = (best_score\n"
        "           != score)\n"
        "bucket = (step\n"
        "          % 10)\n"
        "mlflow.log_param('changed', changed)\n"
    )
    result = mine_notebook(tmp_path, notebook_v4([("code", cell)]))
    analysed(result)
    assert result.findings == [finding(NB, 6, 1, "mlflow.log_param", C.params, cell=0)]


@pytest.mark.parametrize(
    "cell",
    [
        "!pip install \\\n    mlflow==2.9 \\\n    scikit-learn\nimport mlflow\nmlflow.autolog()\n",
        "if IN_COLAB:\n    !pip install \\\n        mlflow\nimport mlflow\nmlflow.autolog()\n",
    ],
    ids=["top-level", "in-a-block"],
)
def test_shell_escape_continued_with_backslashes_is_removed_whole(tmp_path: Path, cell: str) -> None:
    # IPython joins `!cmd \` and its continuation lines into one shell command.
    result = mine_notebook(tmp_path, notebook_v4([("code", cell)]))
    analysed(result)
    assert result.findings == [finding(NB, 5, 1, "mlflow.autolog", C.autolog, cell=0)]


def test_brackets_on_an_ipython_line_do_not_open_a_bracket(tmp_path: Path) -> None:
    # A magic or shell line is one line to IPython: its `(` does not continue onto the next line.
    cell = "!echo training done :(\n!nvidia-smi\n%matplotlib inline\nimport mlflow\nmlflow.log_param('gpu', 1)\n"
    result = mine_notebook(tmp_path, notebook_v4([("code", cell)]))
    analysed(result)
    assert result.findings == [finding(NB, 5, 1, "mlflow.log_param", C.params, cell=0)]


# --- broken or foreign notebooks -------------------------------------------------------------------


def test_unparsable_cell_is_listed_and_other_cells_still_count(tmp_path: Path) -> None:
    broken = "def broken(:\n    pass\n"
    with pytest.raises(cst.ParserSyntaxError) as parser_error:
        cst.parse_module(broken)
    parser_first_line = parser_error.value.message.strip().splitlines()[0]
    notebook = notebook_v4(
        [
            ("code", "import mlflow"),
            ("markdown", "next"),
            ("code", broken),
            ("code", "print 'python 2'"),
            ("code", "mlflow.log_param('a', 1)"),
        ]
    )
    result = mine_notebook(tmp_path, notebook)
    outcome = file_result(result, NB)
    assert (outcome.status, outcome.parsed, outcome.unparsable_cells) == (FileStatus.unparsable, True, (2, 3))
    assert outcome.error is not None
    assert "cell 2" in outcome.error and "cell 3" in outcome.error
    assert parser_first_line in outcome.error
    assert result.files_unparsable == 1
    assert result.findings == [finding(NB, 1, 1, "mlflow.log_param", C.params, cell=4)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "JSON"),
        (b'{"cells": [', "JSON"),
        (b"\x89PNG\r\n\x1a\n", "UTF-8"),
        (b"[1, 2, 3]", "notebook"),
        (b'{"nbformat": 4, "metadata": {}}', "cells"),
    ],
    ids=["zero-bytes", "truncated-json", "not-utf8", "json-list", "no-cells"],
)
def test_invalid_notebook_is_unparsable_with_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    files = {"broken.ipynb": content, "train.py": "import mlflow\nmlflow.log_param('a', 1)\n"}
    result = mine_tree(tmp_path / "repo", files)
    assert result.status is RunStatus.ok
    outcome = file_result(result, "broken.ipynb")
    assert (outcome.kind, outcome.status, outcome.size_bytes) == (FileKind.ipynb, FileStatus.unparsable, len(content))
    assert outcome.error is not None and reason in outcome.error
    assert result.findings == [finding("train.py", 2, 1, "mlflow.log_param", C.params)]


def test_non_python_kernel_is_recorded_not_analysed(tmp_path: Path) -> None:
    r_notebook = notebook_v4(
        [("code", 'library(mlflow)\nmlflow_log_param("lr", 0.1)\nx <- c(1, 2)\n')], language="R", kernel="ir"
    )
    result = mine_notebook(tmp_path, r_notebook, path="analysis_r.ipynb")
    outcome = file_result(result, "analysis_r.ipynb")
    assert outcome.status is FileStatus.skipped
    assert outcome.error is not None and "language" in outcome.error and "python" in outcome.error
    assert result.findings == []


def test_cell_without_source_key_is_empty(tmp_path: Path) -> None:
    notebook = notebook_v4(
        [
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None},
            {"cell_type": "markdown", "metadata": {}},
            ("code", "import mlflow\nmlflow.set_tracking_uri('http://localhost:5000')"),
        ]
    )
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert result.findings == [finding(NB, 2, 1, "mlflow.set_tracking_uri", C.config, cell=2)]


def test_notebook_without_kernel_metadata_is_read_as_python(tmp_path: Path) -> None:
    notebook = notebook_v4([("code", "import mlflow\nmlflow.register_model(uri, 'm')")], language=None)
    result = mine_notebook(tmp_path, notebook)
    analysed(result)
    assert result.findings == [finding(NB, 2, 1, "mlflow.register_model", C.registry, cell=0)]


def test_notebook_that_never_names_mlflow_is_not_parsed(tmp_path: Path) -> None:
    notebook = notebook_v4([("code", "import pandas as pd\ndef broken(:\n"), ("markdown", "MLflow later")])
    result = mine_notebook(tmp_path, notebook)
    outcome = file_result(result, NB)
    assert (outcome.status, outcome.parsed, outcome.error) == (FileStatus.ok, False, None)
    assert result.findings == []
