"""The four rules of docs/detection.md version 2, each with its negatives, on real git
repositories mined with mine_commit; and the `rule` every finding records.

Expected findings are written out in full, as in test_detection_rules.py, with the rule: `v1`
for what version 1 finds, else the version 2 kind (`%%writefile`, `assignment-alias`,
`getattr-dynamic`, `annotated-client-param`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepos import file_result, finding, findings_in, lines, make_repo, mine, mine_tree, notebook_v4

from miner.analyse.detect.detector import Detector
from miner.analyse.sources import load_source
from miner.core.domain import Category, FileStatus, MiningResult, RunStatus
from miner.core.rules import load_rules

C = Category
CLIENT = "mlflow.client.MlflowClient"
NB = "train.ipynb"
ALIAS, GETATTR, ANNOTATED = "assignment-alias", "getattr-dynamic", "annotated-client-param"


def mine_one(tmp_path: Path, source: str, path: str = "train.py") -> MiningResult:
    result = mine_tree(tmp_path / "repo", {path: source})
    assert result.status is RunStatus.ok, result.error
    outcome = file_result(result, path)
    assert (outcome.status, outcome.error) == (FileStatus.ok, None)
    return result


def mine_cells(tmp_path: Path, *cells: str) -> MiningResult:
    return mine_one(tmp_path, notebook_v4([("code", lines(cell)) for cell in cells]), NB)


# --- rule 1: cell magics whose body is Python -------------------------------------------------------


@pytest.mark.parametrize("magic", ["time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy"])
def test_python_cell_magics_are_analysed_with_their_magic_line_emptied(tmp_path: Path, magic: str) -> None:
    cell = f"%%{magic} -q out\nimport mlflow\nmlflow.log_param('lr', 0.1)\n"
    result = mine_cells(tmp_path, cell)
    assert findings_in(result, NB) == [finding(NB, 3, 1, "mlflow.log_param", C.params, cell=0, rule=f"%%{magic}")]


@pytest.mark.parametrize("line", ["%%writefile train.py", "%%writefile -a src/train.py", "  %%writefile  train.py  "])
def test_writefile_of_a_py_file_is_analysed(tmp_path: Path, line: str) -> None:
    cell = f"\n\n{line}\nimport mlflow\n\nwith mlflow.start_run():\n    mlflow.autolog()\n    mlflow.log_metric('acc', acc)\n"
    result = mine_cells(tmp_path, "import os", cell)
    assert findings_in(result, NB) == [
        finding(NB, 6, 6, "mlflow.start_run", C.runs, cell=1, rule="%%writefile"),
        finding(NB, 7, 5, "mlflow.autolog", C.autolog, cell=1, rule="%%writefile"),
        finding(NB, 8, 5, "mlflow.log_metric", C.metrics, cell=1, rule="%%writefile"),
    ]


@pytest.mark.parametrize(
    "cell",
    [
        "%%bash\nimport mlflow\nmlflow.log_param('a', 1)\n",
        "%%writefile config.yaml\nimport mlflow\nmlflow.log_param('a', 1)\n",
        "%%writefile train.py.bak\nimport mlflow\nmlflow.log_param('a', 1)\n",
        "%%writefile\nimport mlflow\nmlflow.log_param('a', 1)\n",
        "%%timer\nimport mlflow\nmlflow.log_param('a', 1)\n",
        "%%sh\nimport mlflow\nmlflow.log_param('a', 1)\n",
    ],
    ids=["bash", "writefile-yaml", "writefile-py-bak", "writefile-no-target", "unknown-magic", "sh"],
)
def test_other_cell_magics_still_remove_their_cell(tmp_path: Path, cell: str) -> None:
    result = mine_cells(tmp_path, cell, "mlflow.log_metric('m', 1)\n")
    assert result.findings == []


def test_an_import_in_a_magic_cell_binds_the_notebook_and_its_calls_carry_the_magic(tmp_path: Path) -> None:
    result = mine_cells(
        tmp_path,
        "%%capture\n!pip install mlflow\nimport mlflow\n",
        "mlflow.set_experiment('nb')\n",
        "import mlflow\nmlflow.log_param('a', 1)\n",  # a plain import binds it too: version 1 finds this
    )
    assert findings_in(result, NB) == [
        finding(NB, 1, 1, "mlflow.set_experiment", C.config, cell=1, rule="v1"),
        finding(NB, 2, 1, "mlflow.log_param", C.params, cell=2, rule="v1"),
    ]
    only_in_magic = mine_cells(tmp_path / "only", "%%capture\nimport mlflow\n", "mlflow.set_experiment('nb')\n")
    assert findings_in(only_in_magic, NB) == [
        finding(NB, 1, 1, "mlflow.set_experiment", C.config, cell=1, rule="%%capture"),
    ]


def test_line_magics_inside_a_magic_body_are_removed_keeping_lines(tmp_path: Path) -> None:
    cell = (
        "%%time\n%matplotlib inline\nimport mlflow\nif True:\n    !nvidia-smi\nmlflow.log_metric?\nmlflow.end_run()\n"
    )
    result = mine_cells(tmp_path, cell)
    assert findings_in(result, NB) == [finding(NB, 7, 1, "mlflow.end_run", C.runs, cell=0, rule="%%time")]


def test_nested_python_magics_keep_the_outer_one(tmp_path: Path) -> None:
    result = mine_cells(tmp_path, "%%capture out\n%%time\nimport mlflow\nmlflow.autolog()\n")
    assert findings_in(result, NB) == [finding(NB, 4, 1, "mlflow.autolog", C.autolog, cell=0, rule="%%capture")]


def test_a_broken_writefile_body_is_unparsable_and_the_other_cells_count(tmp_path: Path) -> None:
    notebook = notebook_v4(
        [("code", "%%writefile helper.py\ndef broken(:\n"), ("code", "import mlflow\nmlflow.autolog()")]
    )
    result = mine_tree(tmp_path / "repo", {NB: notebook})
    outcome = file_result(result, NB)
    assert (outcome.status, outcome.unparsable_cells) == (FileStatus.unparsable, (0,))
    assert outcome.error is not None and outcome.error.startswith("cell 0: SyntaxError")
    assert result.findings == [finding(NB, 2, 1, "mlflow.autolog", C.autolog, cell=1)]


def test_magic_cells_are_what_sources_say_they_are() -> None:
    notebook = notebook_v4(
        [("code", "%%writefile train.py\nimport mlflow\n"), ("code", "%%bash\nls\n"), ("code", "x = 1")]
    )
    source = load_source(NB, notebook.encode())
    assert source.cells == ("\nimport mlflow\n", "\n\n", "x = 1")
    assert source.cell_magics == ("%%writefile", None, None)
    assert load_source("a.py", b"import mlflow\n").cell_magics == ()


# --- rule 2: assignment aliases --------------------------------------------------------------------


def test_names_assigned_a_name_or_chain_in_the_namespace_are_aliases(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "tracker = mlflow\n"
        "skl = mlflow.sklearn\n"
        "log = mlflow.log_metric\n"
        "tracker.log_param('lr', 0.1)\n"
        "skl.autolog()\n"
        "log('acc', 0.9)\n"
        "def later():\n"
        "    flavor.log_model(m, 'model')\n"  # bound further down, like an import
        "flavor = skl_again = None\n"  # two targets: no alias
        "flavor = tracker.pytorch\n"  # an alias of an alias
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 5, 1, "mlflow.log_param", C.params, rule=ALIAS),
        finding("train.py", 6, 1, "mlflow.sklearn.autolog", C.autolog, flavor="sklearn", rule=ALIAS),
        finding("train.py", 7, 1, "mlflow.log_metric", C.metrics, rule=ALIAS),
        finding("train.py", 9, 5, "mlflow.pytorch.log_model", C.models, flavor="pytorch", rule=ALIAS),
    ]


@pytest.mark.parametrize(
    ("imports", "assignment"),
    [
        ("import importlib", "mlflow = importlib.import_module('mlflow')"),
        ("from importlib import import_module as load", "mlflow = load(name='mlflow')"),
        ("import pytest", "mlflow = pytest.importorskip('mlflow')"),
        ("", "mlflow = __import__('mlflow.sklearn')"),  # __import__ returns the top package
    ],
    ids=["import_module", "from-import-as", "importorskip", "__import__"],
)
def test_modules_imported_by_a_literal_name_are_aliases_without_an_import_statement(
    tmp_path: Path, imports: str, assignment: str
) -> None:
    result = mine_one(tmp_path, f"{imports}\n{assignment}\nmlflow.log_param('a', 1)\n")
    assert file_result(result, "train.py").parsed  # the prefilter lets such files through
    assert findings_in(result, "train.py") == [finding("train.py", 3, 1, "mlflow.log_param", C.params, rule=ALIAS)]


def test_import_module_of_a_submodule_aliases_the_submodule(tmp_path: Path) -> None:
    source = "import importlib, pytest\nskl = importlib.import_module('mlflow.sklearn')\nskl.autolog()\n"
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 1, "mlflow.sklearn.autolog", C.autolog, flavor="sklearn", rule=ALIAS)
    ]


def test_an_alias_that_an_import_already_binds_is_no_alias(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "import numpy as np\n"
        "from mlflow import sklearn\n"
        "np = mlflow\n"  # np stays numpy
        "sklearn = mlflow.pytorch\n"  # sklearn stays mlflow.sklearn
        "np.log_metric('a', 1)\n"
        "sklearn.autolog()\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 7, 1, "mlflow.sklearn.autolog", C.autolog, flavor="sklearn"),
    ]


def test_assigning_the_client_class_is_no_alias(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "from mlflow import MlflowClient\n"
        "C = MlflowClient\n"
        "D = mlflow.tracking.MlflowClient\n"
        "c = C()\n"
        "d = D('uri')\n"
        "c.log_metric(run_id, 'a', 1)\n"
        "d.set_tag(run_id, 'k', 'v')\n"
        "C().log_param(run_id, 'p', 1)\n"
    )
    result = mine_one(tmp_path, source)
    assert result.findings == []


def test_other_assignments_are_no_aliases(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "import importlib\n"
        "self.tracker = mlflow\n"  # not a plain name
        "a = b = mlflow\n"  # not a single target
        "t: object = mlflow\n"  # an annotated assignment, not `=`
        "m = importlib.import_module(name_of_it)\n"  # not a literal name
        "w = importlib.import_module('wandb')\n"  # not the namespace
        "self.tracker.log_param('a', 1)\n"
        "a.log_param('a', 1)\n"
        "t.log_param('a', 1)\n"
        "m.log_param('a', 1)\n"
        "w.log_param('a', 1)\n"
    )
    result = mine_one(tmp_path, source)
    assert result.findings == []


def test_a_client_built_through_an_alias_is_marked_alias(tmp_path: Path) -> None:
    source = (
        "import mlflow\ntracking = mlflow.tracking\nclient = tracking.MlflowClient()\nclient.log_metric(r, 'a', 1)\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 4, 1, f"{CLIENT}.log_metric", C.client, via_client=True, rule=ALIAS)
    ]


# --- rule 3: getattr with a computed name ------------------------------------------------------------


def test_getattr_with_a_computed_name_is_a_dynamic_call(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "for flavor in ['sklearn', 'xgboost']:\n"
        "    getattr(mlflow, flavor).autolog()\n"
        "    getattr(mlflow, f'{flavor}').autolog(disable=True)\n"
        "    getattr(mlflow, 'log_' + kind)('a', 1)\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 5, "mlflow.<dynamic>.autolog", C.autolog, flavor="<dynamic>", rule=GETATTR),
        finding(
            "train.py", 4, 5, "mlflow.<dynamic>.autolog", C.autolog, flavor="<dynamic>", disabling=True, rule=GETATTR
        ),
        finding("train.py", 5, 5, "mlflow.<dynamic>", C.other, rule=GETATTR),
    ]


def test_getattr_with_a_literal_name_or_off_the_namespace_is_no_call(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "import numpy as np\n"
        "getattr(mlflow, 'sklearn').autolog()\n"  # a literal name
        "getattr(mlflow, 'sk' 'learn').autolog()\n"
        "getattr(np, flavor).autolog()\n"  # not the namespace
        "getattr(unknown, flavor).autolog()\n"
        "getattr(mlflow, flavor, None).autolog()\n"  # not the two-argument form
        "getattr(mlflow, name=flavor).autolog()\n"
    )
    result = mine_one(tmp_path, source)
    assert result.findings == []


def test_a_rebound_getattr_is_not_the_builtin(tmp_path: Path) -> None:
    source = "import mlflow\nfrom operator import attrgetter as getattr\ngetattr(mlflow, flavor).autolog()\n"
    assert mine_one(tmp_path, source).findings == []


# --- rule 4: parameters annotated with the client class ----------------------------------------------


def test_parameters_annotated_with_the_client_class_are_clients(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "from mlflow import MlflowClient\n"
        "def register(client: MlflowClient, name: str) -> None:\n"
        "    client.create_registered_model(name)\n"
        "async def search(*, c: 'mlflow.tracking.MlflowClient' = None):\n"
        "    return c.search_runs(['0'])\n"
        "def tag(tracker: mlflow.client.MlflowClient):\n"
        "    pass\n"
        "tracker.set_tag(run_id, 'k', 'v')\n"  # anywhere in the file, as an assignment
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 4, 5, f"{CLIENT}.create_registered_model", C.client, via_client=True, rule=ANNOTATED),
        finding("train.py", 6, 12, f"{CLIENT}.search_runs", C.client, via_client=True, rule=ANNOTATED),
        finding("train.py", 9, 1, f"{CLIENT}.set_tag", C.client, via_client=True, rule=ANNOTATED),
    ]


def test_a_client_also_assigned_a_constructor_stays_v1(tmp_path: Path) -> None:
    source = (
        "from mlflow.tracking import MlflowClient\n"
        "def report(client: MlflowClient):\n"
        "    client.log_metric(run_id, 'acc', 0.9)\n"
        "client = MlflowClient()\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 5, f"{CLIENT}.log_metric", C.client, via_client=True)
    ]


def test_other_annotations_make_no_client(tmp_path: Path) -> None:
    source = (
        "from typing import Optional\n"
        "import mlflow\n"
        "from mlflow import MlflowClient\n"
        "def a(client: Optional[MlflowClient]): client.log_metric('r', 'm', 1)\n"
        "def b(*clients: MlflowClient): clients.log_metric('r', 'm', 1)\n"
        "def c(client: 'Optional[MlflowClient]'): client.log_metric('r', 'm', 1)\n"
        "def d(client: mlflow.entities.Run): client.log_metric('r', 'm', 1)\n"
        "def e(client: 'NotMlflowClient'): client.log_metric('r', 'm', 1)\n"
        "def f(client: MlflowClient()): pass\n"  # an annotation that is a call, not the class
        "tracker: MlflowClient\n"  # a variable annotation, not a parameter
        "tracker.log_metric('r', 'm', 1)\n"
    )
    result = mine_one(tmp_path, source)
    assert result.findings == []


def test_an_annotation_needs_the_class_bound(tmp_path: Path) -> None:
    source = "import mlflow\ndef a(client: MlflowClient):\n    client.log_metric('r', 'm', 1)\n"
    assert mine_one(tmp_path, source).findings == []


# --- version 1 stays what it was -------------------------------------------------------------------


MIXED = {
    "plain.py": "import mlflow\nmlflow.log_param('a', 1)\n",
    "alias.py": "import mlflow\nm = mlflow\nm.log_param('a', 1)\nmlflow.log_metric('b', 2)\n",
    "dyn.py": "import mlflow\ngetattr(mlflow, f).autolog()\nmlflow.autolog()\n",
    "client.py": (
        "from mlflow import MlflowClient\ndef f(c: MlflowClient):\n    c.search_runs([])\n"
        "client = MlflowClient()\nclient.search_runs([])\n"
    ),
    "star.py": "from mlflow import *\nimport mlflow as mf\nlog_param = mf.log_metric\nlog_param('a', 1)\n",
    NB: notebook_v4(
        [("code", "%%time\nimport mlflow\nmlflow.log_param('a', 1)"), ("code", "import mlflow\nmlflow.end_run()")]
    ),
}


def test_findings_marked_v1_are_exactly_what_version_1_finds(tmp_path: Path) -> None:
    built = make_repo(tmp_path / "repo", MIXED)
    result = mine(built)
    version_1 = Detector(load_rules(), spec_version=1)
    found_by_v1 = [
        f for path, data in MIXED.items() for f in version_1.analyse(load_source(path, data.encode())).findings
    ]
    marked_v1 = [f for f in result.findings if f.rule == "v1"]
    assert sorted(marked_v1, key=repr) == sorted(found_by_v1, key=repr)
    assert {f.rule for f in result.findings} == {"v1", "%%time", ALIAS, GETATTR, ANNOTATED}
    # a bare name a star import gives stays version 1's, not the alias that also binds it
    assert [f.qualified_name for f in findings_in(result, "star.py")] == ["mlflow.log_param"]
