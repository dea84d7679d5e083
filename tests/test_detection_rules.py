"""Every rule of docs/detection.md, each on a real git repository mined with mine_commit.

Expected findings are written out in full (path, cell, line, 1-based column, qualified name, api,
category, flavor, disabling, via_client) so that any drift from the spec fails a test.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import libcst as cst
import pytest
from gitrepos import (
    file_result,
    finding,
    findings_in,
    make_repo,
    mine,
    mine_in_subprocess,
    mine_tree,
    remove_blob,
    sorted_findings,
)

from miner.core.domain import Category, FileKind, FileStatus, MiningResult, RunStatus

C = Category
CLIENT = "mlflow.client.MlflowClient"


def mine_one(tmp_path: Path, source: str | bytes, path: str = "train.py") -> MiningResult:
    result = mine_tree(tmp_path / "repo", {path: source})
    assert result.status is RunStatus.ok, result.error
    return result


def analysed(result: MiningResult, path: str = "train.py") -> None:
    """The file was parsed and analysed without error."""
    outcome = file_result(result, path)
    assert (outcome.status, outcome.error, outcome.parsed) == (FileStatus.ok, None, True)


# --- imports -----------------------------------------------------------------------------------


def test_import_mlflow_binds_mlflow(tmp_path: Path) -> None:
    result = mine_one(tmp_path, "import mlflow\n\nmlflow.log_param('lr', 0.1)\n")
    analysed(result)
    assert result.findings == [finding("train.py", 3, 1, "mlflow.log_param", C.params)]
    assert result.commit_sha is not None and len(result.commit_sha) == 40


def test_import_of_a_submodule_binds_the_top_package(tmp_path: Path) -> None:
    source = (
        "import mlflow.sklearn\n"
        "mlflow.sklearn.autolog()\n"
        "mlflow.log_metric('acc', 0.9)\n"
        "sklearn.autolog()\n"  # `sklearn` is not bound by `import mlflow.sklearn`
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 2, 1, "mlflow.sklearn.autolog", C.autolog, flavor="sklearn"),
        finding("train.py", 3, 1, "mlflow.log_metric", C.metrics),
    ]


def test_import_as_binds_the_alias_only(tmp_path: Path) -> None:
    source = "import mlflow as mf\nmf.log_params({'a': 1})\nmlflow.log_param('b', 2)\n"
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [finding("train.py", 2, 1, "mlflow.log_params", C.params)]


def test_import_of_a_submodule_as_alias_binds_the_submodule(tmp_path: Path) -> None:
    source = "import mlflow.sklearn as mls\n\nmls.autolog()\nmls.log_model(model, 'model')\n"
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 1, "mlflow.sklearn.autolog", C.autolog, flavor="sklearn"),
        finding("train.py", 4, 1, "mlflow.sklearn.log_model", C.models, flavor="sklearn"),
    ]


def test_from_import_as_binds_the_function(tmp_path: Path) -> None:
    source = "from mlflow import log_param as lp\nlp('a', 1)\nlog_param('b', 2)\n"
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [finding("train.py", 2, 1, "mlflow.log_param", C.params)]


@pytest.mark.parametrize(
    "imports",
    [
        ["from mlflow import sklearn"],
        ["import sklearn", "from mlflow import sklearn"],
        ["from mlflow import sklearn", "import sklearn"],
    ],
    ids=["alone", "after-import-sklearn", "before-import-sklearn"],
)
def test_from_mlflow_import_flavor_binds_the_flavor(tmp_path: Path, imports: list[str]) -> None:
    body = "\n".join(imports) + "\n\nsklearn.autolog(log_models=False)\n"
    result = mine_one(tmp_path, body)
    line = len(imports) + 2
    assert findings_in(result, "train.py") == [
        finding("train.py", line, 1, "mlflow.sklearn.autolog", C.autolog, flavor="sklearn")
    ]


def test_from_mlflow_tracking_import_client_class(tmp_path: Path) -> None:
    source = (
        "from mlflow.tracking import MlflowClient\n\nclient = MlflowClient()\nclient.log_metric(run_id, 'loss', 0.1)\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 4, 1, f"{CLIENT}.log_metric", C.client, via_client=True)
    ]


def test_star_import_makes_bare_fluent_names_calls(tmp_path: Path) -> None:
    source = (
        "from mlflow import *\n"
        "\n"
        "with start_run():\n"
        "    log_param('lr', 0.1)\n"
        "    train_model()\n"  # a bare name the rules do not know is not an mlflow call
        "    log_metrics({'acc': 0.9})\n"
        "print('done')\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 6, "mlflow.start_run", C.runs),
        finding("train.py", 4, 5, "mlflow.log_param", C.params),
        finding("train.py", 6, 5, "mlflow.log_metrics", C.metrics),
    ]


@pytest.mark.parametrize(
    ("star_imports", "qualified_name", "flavor"),
    [
        (["mlflow", "mlflow.sklearn"], "mlflow.sklearn.autolog", "sklearn"),
        (["mlflow.sklearn", "mlflow"], "mlflow.autolog", None),
    ],
    ids=["flavor-last", "mlflow-last"],
)
def test_two_star_imports_resolve_alike_under_every_hash_seed(
    tmp_path: Path, star_imports: list[str], qualified_name: str, flavor: str | None
) -> None:
    """The later star import shadows the earlier one, as in Python (and as `bind` treats two
    imports of one name); above all the answer must not change from one interpreter to the next."""
    source = "".join(f"from {module} import *\n" for module in star_imports) + "autolog()\n"
    built = make_repo(tmp_path / "repo", {"train.py": source})
    expected = finding("train.py", 3, 1, qualified_name, C.autolog, flavor=flavor)
    expected_json = {**asdict(expected), "category": expected.category.value}
    for seed in ("0", "1", "2", "3"):
        child = mine_in_subprocess(built, env={"PYTHONHASHSEED": seed})
        assert child.returncode == 0, child.stderr
        assert json.loads(child.stdout)["findings"] == [expected_json], f"PYTHONHASHSEED={seed}"


def test_bare_fluent_names_without_star_import_are_not_calls(tmp_path: Path) -> None:
    source = "import mlflow\nfrom other import *\nlog_param('lr', 0.1)\n"
    result = mine_one(tmp_path, source)
    analysed(result)
    assert result.findings == []


def test_relative_imports_never_resolve(tmp_path: Path) -> None:
    source = (
        "from . import mlflow\n"
        "from .mlflow import log_param\n"
        "from ..mlflow import sklearn\n"
        "from .mlflow import *\n"
        "\n"
        "mlflow.log_param('a', 1)\n"
        "log_param('b', 2)\n"
        "sklearn.autolog()\n"
        "log_metric('c', 3)\n"
    )
    result = mine_one(tmp_path, source, path="pkg/train.py")
    analysed(result, "pkg/train.py")
    assert result.findings == []


def test_import_inside_a_function_binds_for_the_whole_file(tmp_path: Path) -> None:
    source = (
        "def train(model):\n"
        "    mlflow.log_param('lr', 0.1)\n"
        "    return model\n"
        "\n"
        "\n"
        "def setup():\n"
        "    import mlflow\n"
        "    mlflow.set_experiment('demo')\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 2, 5, "mlflow.log_param", C.params),
        finding("train.py", 8, 5, "mlflow.set_experiment", C.config),
    ]


# --- what a call site is, and where it starts ----------------------------------------------------


def test_with_start_run_is_a_call(tmp_path: Path) -> None:
    source = (
        "import mlflow\n\nwith mlflow.start_run(run_name='x') as run:\n    mlflow.log_param('a', 1)\nmlflow.end_run()\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 6, "mlflow.start_run", C.runs),
        finding("train.py", 4, 5, "mlflow.log_param", C.params),
        finding("train.py", 5, 1, "mlflow.end_run", C.runs),
    ]


def test_call_split_over_lines_is_found_where_it_starts(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "(\n"
        "    mlflow\n"
        "    .log_param('a', 1)\n"
        ")\n"
        "mlflow \\\n"
        "    .log_metric('m', 2)\n"
        "mlflow.set_tag(\n"
        "    'k',\n"
        "    'v',\n"
        ")\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 5, "mlflow.log_param", C.params),
        finding("train.py", 6, 1, "mlflow.log_metric", C.metrics),
        finding("train.py", 8, 1, "mlflow.set_tag", C.tags),
    ]


def test_parenthesised_call_starts_at_its_callee(tmp_path: Path) -> None:
    # Python's ast puts the call at `mlflow` (line 3, col_offset 4), not at the parenthesis.
    source = "import mlflow\nrun = (\n    mlflow.start_run())\n"
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [finding("train.py", 3, 5, "mlflow.start_run", C.runs)]


def test_chained_calls_count_only_the_mlflow_call(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "run_id = mlflow.start_run().info.run_id\n"
        "params = mlflow.get_run(run_id).data.params.get('lr')\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 2, 10, "mlflow.start_run", C.runs),
        finding("train.py", 3, 10, "mlflow.get_run", C.other),
    ]


def test_the_bare_package_and_non_mlflow_calls_are_not_findings(tmp_path: Path) -> None:
    source = "import mlflow\nimport numpy as np\nmlflow()\nnp.log(2)\nprint(mlflow.__version__)\n"
    result = mine_one(tmp_path, source)
    analysed(result)
    assert result.findings == []


# --- MlflowClient --------------------------------------------------------------------------------


def test_client_assigned_to_a_name(tmp_path: Path) -> None:
    source = (
        "from mlflow import MlflowClient\n"
        "client = MlflowClient()\n"
        "exp = client.create_experiment('demo')\n"
        "client.log_metric(run_id, 'acc', 0.9)\n"
        "client.log_param(run_id, 'lr', 0.1)\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 7, f"{CLIENT}.create_experiment", C.client, via_client=True),
        finding("train.py", 4, 1, f"{CLIENT}.log_metric", C.client, via_client=True),
        finding("train.py", 5, 1, f"{CLIENT}.log_param", C.client, via_client=True),
    ]


def test_client_assigned_to_an_attribute_chain(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "\n"
        "class Tracker:\n"
        "    def __init__(self, uri):\n"
        "        self.client = mlflow.tracking.MlflowClient(uri)\n"
        "\n"
        "    def report(self, run_id, value):\n"
        "        self.client.log_metric(run_id, 'acc', value)\n"
        "        self.client.set_tag(run_id, 'stage', 'eval')\n"
        "        self.other.log_metric(run_id, 'acc', value)\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 8, 9, f"{CLIENT}.log_metric", C.client, via_client=True),
        finding("train.py", 9, 9, f"{CLIENT}.set_tag", C.client, via_client=True),
    ]


def test_method_call_directly_on_a_constructor_call(tmp_path: Path) -> None:
    source = "from mlflow import MlflowClient\nMlflowClient().log_metric(run_id, 'loss', 0.2)\n"
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 2, 1, f"{CLIENT}.log_metric", C.client, via_client=True)
    ]


def test_client_assigned_after_its_use_still_binds(tmp_path: Path) -> None:
    source = (
        "from mlflow.tracking import MlflowClient\n"
        "def report():\n"
        "    client.log_metric(run_id, 'acc', 0.9)\n"
        "client: MlflowClient = MlflowClient(tracking_uri='http://x')\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 5, f"{CLIENT}.log_metric", C.client, via_client=True)
    ]


@pytest.mark.parametrize(
    ("import_line", "constructor"),
    [
        ("from mlflow import MlflowClient", "MlflowClient"),
        ("from mlflow.tracking import MlflowClient", "MlflowClient"),
        ("from mlflow.tracking.client import MlflowClient", "MlflowClient"),
        ("from mlflow.client import MlflowClient", "MlflowClient"),
        ("from mlflow.tracking import MlflowClient as Client", "Client"),
        ("import mlflow", "mlflow.MlflowClient"),
        ("import mlflow", "mlflow.tracking.MlflowClient"),
        ("import mlflow", "mlflow.tracking.client.MlflowClient"),
        ("import mlflow", "mlflow.client.MlflowClient"),
        ("import mlflow.tracking as tracking", "tracking.MlflowClient"),
    ],
)
def test_every_spelling_of_the_client_class(tmp_path: Path, import_line: str, constructor: str) -> None:
    source = (
        f"{import_line}\n"
        f"client = {constructor}()\n"
        "client.search_runs(['0'])\n"
        f"{constructor}('uri').log_batch(run_id, metrics=[])\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 1, f"{CLIENT}.search_runs", C.client, via_client=True),
        finding("train.py", 4, 1, f"{CLIENT}.log_batch", C.client, via_client=True),
    ]


def test_constructing_a_client_is_not_a_finding(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "from mlflow.tracking import MlflowClient\n"
        "client = MlflowClient()\n"
        "other = mlflow.MlflowClient('http://localhost:5000')\n"
        "MlflowClient()\n"
    )
    result = mine_one(tmp_path, source)
    analysed(result)
    assert result.findings == []


def test_methods_of_objects_that_are_not_clients_do_not_count(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "import wandb\n"
        "client = wandb.Api()\n"
        "client.log_metric('acc', 1)\n"
        "MlflowClient().log_metric('r', 'acc', 1)\n"  # MlflowClient never imported here
        "builders['rf']().log_metric('acc', 1)\n"
        "tracker = make_tracker()()\n"
        "tracker.log_metric('acc', 1)\n"
    )
    result = mine_one(tmp_path, source)
    analysed(result)
    assert result.findings == []


# --- autolog and disabling -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "qualified_name", "flavor", "disabling"),
    [
        ("mlflow.sklearn.autolog(disable=True)", "mlflow.sklearn.autolog", "sklearn", True),
        ("mlflow.autolog(log_models=False, disable=True)", "mlflow.autolog", None, True),
        ("mlflow.autolog(disable=False)", "mlflow.autolog", None, False),
        ("mlflow.autolog(disable=flag)", "mlflow.autolog", None, False),
        ("mlflow.autolog(True)", "mlflow.autolog", None, False),
        ("mlflow.pytorch.autolog()", "mlflow.pytorch.autolog", "pytorch", False),
    ],
)
def test_autolog_disabling_needs_the_literal_keyword(
    tmp_path: Path, call: str, qualified_name: str, flavor: str | None, disabling: bool
) -> None:
    result = mine_one(tmp_path, f"import mlflow\nflag = True\n{call}\n")
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 1, qualified_name, C.autolog, flavor=flavor, disabling=disabling)
    ]


# --- flavors and categories ------------------------------------------------------------------------


def test_flavor_is_the_module_between_mlflow_and_the_api(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "import mlflow.pytorch\n"
        "mlflow.pytorch.log_model(model, 'model')\n"
        "mlflow.autolog()\n"
        "sig = mlflow.models.infer_signature(x, y)\n"
        "m = mlflow.pyfunc.load_model(uri)\n"
        "mlflow.tensorflow.save_model(model, path)\n"
    )
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", 3, 1, "mlflow.pytorch.log_model", C.models, flavor="pytorch"),
        finding("train.py", 4, 1, "mlflow.autolog", C.autolog),
        finding("train.py", 5, 7, "mlflow.models.infer_signature", C.other),
        finding("train.py", 6, 5, "mlflow.pyfunc.load_model", C.models, flavor="pyfunc"),
        finding("train.py", 7, 1, "mlflow.tensorflow.save_model", C.models, flavor="tensorflow"),
    ]


SPEC_TABLE: dict[Category, list[str]] = {
    C.params: ["log_param", "log_params"],
    C.metrics: ["log_metric", "log_metrics"],
    C.autolog: ["autolog"],
    C.artifacts: ["log_artifact", "log_artifacts", "log_dict", "log_figure", "log_image", "log_text", "log_table"],
    C.models: ["log_model", "save_model", "load_model"],
    C.datasets: ["log_input"],
    C.tags: ["set_tag", "set_tags"],
    C.runs: ["start_run", "end_run"],
    C.config: ["set_tracking_uri", "set_experiment", "create_experiment", "set_registry_uri"],
    C.registry: ["register_model"],
    C.other: ["search_runs", "get_run", "active_run", "evaluate"],
}


def test_every_api_of_the_spec_table_gets_its_category(tmp_path: Path) -> None:
    apis = [(api, category) for category, names in SPEC_TABLE.items() for api in names]
    source = "import mlflow\n" + "".join(f"mlflow.{api}()\n" for api, _ in apis)
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [
        finding("train.py", line, 1, f"mlflow.{api}", category) for line, (api, category) in enumerate(apis, start=2)
    ]


# --- text that only looks like a call ---------------------------------------------------------------


def test_calls_in_comments_and_strings_are_not_counted(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "# mlflow.log_param('a', 1)\n"
        '"""mlflow.log_metric("m", 1)"""\n'
        "def train(path):\n"
        '    """Calls mlflow.log_param("lr", 0.1) then mlflow.autolog()."""\n'
        "    s = 'mlflow.autolog()'\n"
        '    t = f"mlflow.log_artifact({path}) done"\n'
        "    u = b'mlflow.start_run()'\n"
        "    v = '''\n"
        "mlflow.end_run()\n"
        "'''\n"
        "    return s, t, u, v  # mlflow.set_tag('k', 'v')\n"
    )
    result = mine_one(tmp_path, source)
    analysed(result)
    assert result.findings == []


def test_a_call_inside_an_fstring_replacement_field_is_a_call(tmp_path: Path) -> None:
    source = 'import mlflow\nmsg = f"run {mlflow.active_run().info.run_id} mlflow.log_param(x)"\n'
    result = mine_one(tmp_path, source)
    assert findings_in(result, "train.py") == [finding("train.py", 2, 14, "mlflow.active_run", C.other)]


def test_calls_through_a_wrapper_module_are_the_wrappers(tmp_path: Path) -> None:
    files = {
        "project/utils.py": ("import mlflow\n\ndef log_param(key, value):\n    mlflow.log_param(key, value)\n"),
        "project/train.py": (
            "from project import utils\n"
            "from project.utils import log_param\n"
            "# parameters go to mlflow through utils\n"
            "utils.log_param('lr', 0.1)\n"
            "log_param('epochs', 3)\n"
        ),
        "project/evaluate.py": "import utils\nutils.log_param('k', 1)\n",
    }
    result = mine_tree(tmp_path / "repo", files)
    assert sorted_findings(result.findings) == [finding("project/utils.py", 4, 5, "mlflow.log_param", C.params)]
    train = file_result(result, "project/train.py")  # names mlflow only in a comment: no parse needed
    assert (train.status, train.parsed) == (FileStatus.ok, False)
    evaluate = file_result(result, "project/evaluate.py")
    assert (evaluate.status, evaluate.parsed) == (FileStatus.ok, False)


def test_file_that_never_names_mlflow_is_not_parsed(tmp_path: Path) -> None:
    files = {
        "plain.py": "import os\nprint('MLflow is great', os.sep)\n",
        "broken.py": "def (:\n",  # would not parse, but is never parsed
        "train.py": "import mlflow\nmlflow.log_param('a', 1)\n",
    }
    result = mine_tree(tmp_path / "repo", files)
    for path in ("plain.py", "broken.py"):
        outcome = file_result(result, path)
        assert (outcome.status, outcome.parsed, outcome.error) == (FileStatus.ok, False, None)
    analysed(result, "train.py")
    assert result.files_analysed == 3
    assert result.findings == [finding("train.py", 2, 1, "mlflow.log_param", C.params)]


# --- newer and older Python ------------------------------------------------------------------------


def test_pep_695_type_parameters_are_analysed(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "type Params = dict[str, float]\n"
        "class Box[T]:\n"
        "    item: T\n"
        "def log_all[T: float](params: dict[str, T]) -> None:\n"
        "    mlflow.log_params(params)\n"
    )
    result = mine_one(tmp_path, source)
    analysed(result)
    assert result.findings == [finding("train.py", 6, 5, "mlflow.log_params", C.params)]


def test_pep_701_nested_fstrings_are_analysed(tmp_path: Path) -> None:
    source = (
        "import mlflow\n"
        "names = ['a', 'b']\n"
        'label = f"{", ".join(f"{n!r}" for n in names)}"\n'
        'mlflow.set_tag("label", f"{f"{label}"}")\n'
    )
    result = mine_one(tmp_path, source)
    analysed(result)
    assert result.findings == [finding("train.py", 4, 1, "mlflow.set_tag", C.tags)]


def test_python2_file_is_unparsable_with_the_parsers_message(tmp_path: Path) -> None:
    py2 = "import mlflow\nprint 'logging'\nmlflow.log_param('a', 1)\n"
    with pytest.raises(cst.ParserSyntaxError) as parser_error:
        cst.parse_module(py2)
    parser_first_line = parser_error.value.message.strip().splitlines()[0]
    files = {"legacy.py": py2, "train.py": "import mlflow\nmlflow.log_metric('m', 1)\n"}
    result = mine_tree(tmp_path / "repo", files)
    assert result.status is RunStatus.ok
    legacy = file_result(result, "legacy.py")
    assert (legacy.status, legacy.kind, legacy.parsed) == (FileStatus.unparsable, FileKind.py, True)
    assert legacy.error is not None and legacy.error.startswith("SyntaxError")
    assert parser_first_line in legacy.error
    assert result.files_unparsable == 1
    assert result.findings == [finding("train.py", 2, 1, "mlflow.log_metric", C.metrics)]


# --- what is read from the tree --------------------------------------------------------------------


def test_vendored_folders_are_skipped_and_counted(tmp_path: Path) -> None:
    call = "import mlflow\nmlflow.log_param('a', 1)\n"
    files = {
        "venv/lib/python3.11/site-packages/mlflow/tracking.py": call,
        "usr/lib/python3/dist-packages/pkg.py": call,
        "web/node_modules/pyodide/nb.ipynb": "{}",
        "site-packages.py": call,  # a file, not a folder, of that name is the project's
        "my-site-packages/train.py": call,
    }
    result = mine_tree(tmp_path / "repo", files)
    skipped = sorted((f.path, f.status, f.error) for f in result.files if f.status is FileStatus.skipped)
    assert skipped == [
        ("usr/lib/python3/dist-packages/pkg.py", FileStatus.skipped, "vendored folder"),
        ("venv/lib/python3.11/site-packages/mlflow/tracking.py", FileStatus.skipped, "vendored folder"),
        ("web/node_modules/pyodide/nb.ipynb", FileStatus.skipped, "vendored folder"),
    ]
    assert (result.files_seen, result.files_skipped, result.files_analysed) == (5, 3, 2)
    assert sorted_findings(result.findings) == [
        finding("my-site-packages/train.py", 2, 1, "mlflow.log_param", C.params),
        finding("site-packages.py", 2, 1, "mlflow.log_param", C.params),
    ]


def test_symbolic_links_are_skipped_never_followed(tmp_path: Path) -> None:
    call = "import mlflow\nmlflow.log_param('a', 1)\n"
    built = make_repo(
        tmp_path / "repo",
        {"real.py": call, "pkg/inner.py": call},
        symlinks={
            "to_file.py": "real.py",
            "passwd.py": "/etc/passwd",
            "loop.py": "loop.py",
            "nb.ipynb": "real.py",
            "pkg_link": "pkg",  # a linked folder is one entry, not a tree to walk
        },
    )
    result = mine(built)
    assert result.status is RunStatus.ok
    by_path = {f.path: (f.status, f.error) for f in result.files}
    link = (FileStatus.skipped, "symbolic link (not followed)")
    assert by_path == {
        "real.py": (FileStatus.ok, None),
        "pkg/inner.py": (FileStatus.ok, None),
        "to_file.py": link,
        "passwd.py": link,
        "loop.py": link,
        "nb.ipynb": link,
    }
    assert sorted_findings(result.findings) == [
        finding("pkg/inner.py", 2, 1, "mlflow.log_param", C.params),
        finding("real.py", 2, 1, "mlflow.log_param", C.params),
    ]


def test_missing_blob_is_skipped_and_the_run_goes_on(tmp_path: Path) -> None:
    built = make_repo(
        tmp_path / "repo",
        {"gone.py": "import mlflow\nmlflow.log_metric('lost', 1)\n", "train.py": "import mlflow\nmlflow.autolog()\n"},
    )
    sha = remove_blob(built.path, "gone.py")
    result = mine(built)
    assert (result.status, result.error, result.commit_sha) == (RunStatus.ok, None, built.sha)
    gone = file_result(result, "gone.py")
    assert gone.status is FileStatus.skipped
    assert gone.error is not None and "missing" in gone.error and sha in gone.error
    assert result.findings == [finding("train.py", 2, 1, "mlflow.autolog", C.autolog)]


# --- encodings and odd bytes -----------------------------------------------------------------------


def test_latin1_without_coding_cookie_is_unparsable(tmp_path: Path) -> None:
    data = "import mlflow\nmlflow.set_tag('author', 'José')\n".encode("latin-1")
    result = mine_one(tmp_path, data)
    outcome = file_result(result, "train.py")
    assert outcome.status is FileStatus.unparsable
    assert outcome.error is not None and "utf-8" in outcome.error.lower()
    assert result.findings == []


def test_latin1_with_coding_cookie_is_analysed(tmp_path: Path) -> None:
    data = "# -*- coding: latin-1 -*-\nimport mlflow\nmlflow.set_tag('author', 'José')\n".encode("latin-1")
    result = mine_one(tmp_path, data)
    analysed(result)
    assert result.findings == [finding("train.py", 3, 1, "mlflow.set_tag", C.tags)]


def test_utf8_bom_is_not_a_column(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfimport mlflow; mlflow.log_param('a', 1)\nmlflow.log_metric('m', 2)\n"
    result = mine_one(tmp_path, data)
    analysed(result)
    assert result.findings == [
        finding("train.py", 1, 16, "mlflow.log_param", C.params),
        finding("train.py", 2, 1, "mlflow.log_metric", C.metrics),
    ]


def test_crlf_line_endings_keep_lines_and_columns(tmp_path: Path) -> None:
    data = b"import mlflow\r\n\r\nif True:\r\n    mlflow.log_param('a', 1)\r\nx = (\r\n  mlflow.autolog())\r\n"
    result = mine_one(tmp_path, data)
    analysed(result)
    assert result.findings == [
        finding("train.py", 4, 5, "mlflow.log_param", C.params),
        finding("train.py", 6, 3, "mlflow.autolog", C.autolog),
    ]


def test_cr_only_line_endings_keep_lines(tmp_path: Path) -> None:
    # Python reads a lone "\r" as a line break (ast reports line 3, col_offset 0 here).
    data = b"import mlflow\r# classic Mac OS line endings\rmlflow.log_param('a', 1)\r"
    result = mine_one(tmp_path, data)
    analysed(result)
    assert result.findings == [finding("train.py", 3, 1, "mlflow.log_param", C.params)]


def test_nul_bytes_are_recorded_not_a_crash(tmp_path: Path) -> None:
    files = {
        "binary.py": b"import mlflow\x00\nmlflow.log_param('a', 1)\n",
        "train.py": "import mlflow\nmlflow.log_param('b', 2)\n",
    }
    result = mine_tree(tmp_path / "repo", files)
    assert result.status is RunStatus.ok
    binary = file_result(result, "binary.py")
    assert binary.status is FileStatus.unparsable
    assert binary.error is not None and "NUL" in binary.error
    assert result.findings == [finding("train.py", 2, 1, "mlflow.log_param", C.params)]


def test_deeply_nested_brackets_are_unparsable_not_a_crash(tmp_path: Path) -> None:
    """CPython refuses more than 200 nested brackets ("too many nested parentheses"); the miner
    must record such a file, not die with it (mined in a child process so a crash cannot take
    the test run down)."""
    depth = 3000
    files = {
        "generated.py": "import mlflow\nx = " + "[" * depth + "mlflow.log_param('a', 1)" + "]" * depth + "\n",
        "train.py": "import mlflow\nmlflow.log_param('b', 2)\n",
    }
    built = make_repo(tmp_path / "repo", files)
    child = mine_in_subprocess(built)
    assert child.returncode == 0, f"mining crashed (exit {child.returncode}): {child.stderr[-500:]}"
    mined = json.loads(child.stdout)
    assert mined["status"] == "ok"
    [generated] = [f for f in mined["files"] if f[0] == "generated.py"]
    assert generated[1] == "unparsable" and generated[2]
    assert [(f["path"], f["line"], f["qualified_name"]) for f in mined["findings"]] == [
        ("train.py", 2, "mlflow.log_param")
    ]
