"""Properties of the pure core (miner.analyse.sources + miner.analyse.detect), checked on generated sources.

(a) The prefilter is only a shortcut: a detector forced to parse every file (Detector.needs_parse
    patched to always answer True, which disables the shortcut and nothing else) finds exactly
    what the normal detector finds, and a text without "mlflow" never yields a finding.
(b) Positions: every finding sits where libcst's own PositionProvider (through MetadataWrapper)
    says a Call with that api starts; and the gathering walk gives every Call node exactly the
    PositionProvider start, node by node.
"""

from __future__ import annotations

import keyword
import re
from collections import Counter

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcst.metadata import MetadataWrapper, PositionProvider

from miner.analyse.detect.detector import Detector, FileAnalysis
from miner.analyse.detect.walk import gather
from miner.analyse.sources import SourceFile
from miner.core.domain import Category
from miner.core.rules import load_rules

DETECTOR = Detector(load_rules())
VERSION_1 = Detector(load_rules(), spec_version=1)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SPEC_CATEGORIES: dict[str, Category] = {
    **dict.fromkeys(["log_param", "log_params"], Category.params),
    **dict.fromkeys(["log_metric", "log_metrics"], Category.metrics),
    "autolog": Category.autolog,
    **dict.fromkeys(
        ["log_artifact", "log_artifacts", "log_dict", "log_figure", "log_image", "log_text", "log_table"],
        Category.artifacts,
    ),
    **dict.fromkeys(["log_model", "save_model", "load_model"], Category.models),
    "log_input": Category.datasets,
    **dict.fromkeys(["set_tag", "set_tags"], Category.tags),
    **dict.fromkeys(["start_run", "end_run"], Category.runs),
    **dict.fromkeys(["set_tracking_uri", "set_experiment", "create_experiment", "set_registry_uri"], Category.config),
    "register_model": Category.registry,
}

# --- a generator of Python sources built from the spec's forms -------------------------------------

MODULES = st.sampled_from(
    [
        "mlflow",
        "mlflow.sklearn",
        "mlflow.pytorch",
        "mlflow.tracking",
        "mlflow.tracking.client",
        "mlflow.client",
        "mlflow.models",
        "numpy",
        "os.path",
        "sklearn",
        "wandb",
        "project.utils",
        "mlflow_helpers",
    ]
)
MEMBERS = st.sampled_from(
    [
        "log_param",
        "log_params",
        "log_metric",
        "log_metrics",
        "autolog",
        "start_run",
        "end_run",
        "set_tag",
        "log_model",
        "infer_signature",
        "MlflowClient",
        "sklearn",
        "pytorch",
        "tracking",
        "client",
        "fit",
        "join",
        "get_run",
        "search_runs",
    ]
)
BOUND_NAMES = st.sampled_from(["mlflow", "mf", "mls", "client", "sklearn", "log_param", "autolog", "MlflowClient"])
IDENTIFIERS = st.one_of(
    BOUND_NAMES,
    BOUND_NAMES,
    st.sampled_from(["tracking", "np", "utils", "run", "lp", "self"]),
    st.text(alphabet="abdefilnorstwxy_", min_size=1, max_size=8).filter(lambda name: not keyword.iskeyword(name)),
)
ARGUMENTS = st.sampled_from(["()", "('a', 1)", "(disable=True)", "(disable=flag)", "(x, y=2)", "(*args, **kw)"])
TARGETS = st.one_of(IDENTIFIERS, st.sampled_from(["client", "self.client", "self._tracker", "state.client"]))


APIS = st.sampled_from(
    [
        "log_param",
        "log_metric",
        "log_metrics",
        "autolog",
        "start_run",
        "set_tag",
        "log_model",
        "infer_signature",
        "fit",
        "join",
        "search_runs",
        "MlflowClient",
    ]
)
FLAVORS = st.sampled_from(["sklearn", "pytorch", "tracking", "models", "client", "info"])


@st.composite
def callees(draw: st.DrawFn) -> str:
    """`head`, `head.api` or `head.module.api`, heads mostly names the imports bind."""
    parts = [draw(IDENTIFIERS)]
    if draw(st.integers(min_value=0, max_value=2)) == 0:
        parts.append(draw(FLAVORS))
    if draw(st.integers(min_value=0, max_value=3)) > 0:
        parts.append(draw(APIS))
    return ".".join(parts)


@st.composite
def call_expressions(draw: st.DrawFn) -> str:
    """A call, sometimes laid out over several lines the ways people write them."""
    callee, arguments = draw(callees()), draw(ARGUMENTS)
    layout = draw(st.sampled_from(["plain", "parenthesised", "split-args", "backslash", "wrapped-callee", "chained"]))
    if layout == "parenthesised":
        return f"(\n    {callee}{arguments})"
    if layout == "split-args" and arguments != "()":
        return f"{callee}(\n    {arguments[1:-1]},\n)"
    if layout == "backslash" and "." in callee:
        head, rest = callee.split(".", 1)
        return f"{head} \\\n    .{rest}{arguments}"
    if layout == "wrapped-callee":
        return f"({callee}){arguments}"
    if layout == "chained":
        return f"{callee}{arguments}.info.run_id"
    return f"{callee}{arguments}"


@st.composite
def constructors(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["", "mlflow.", "mlflow.tracking.", "mlflow.tracking.client.", "mlflow.client."]))
    if draw(st.booleans()):
        head = draw(IDENTIFIERS) + "." + draw(st.sampled_from(["", "tracking.", "client."]))
    return f"{head}{draw(st.sampled_from(['MlflowClient', 'Client']))}"


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace("\n", " ").replace("'", "").replace('"', "")


@st.composite
def statements(draw: st.DrawFn) -> list[str]:
    """One statement (possibly several physical lines) as a list of lines, unindented."""
    kind = draw(
        st.sampled_from(
            [
                "import",
                "import-as",
                "from",
                "from-as",
                "from-star",
                "relative",
                "call",
                "call",
                "call",
                "assign-call",
                "client",
                "client-call",
                "client-call",
                "ctor-call",
                "with",
                "comment",
                "string",
                "docstring",
                "fstring",
                "decorated",
                "noise",
                "alias",
                "import-call",
                "getattr",
                "annotated",
            ]
        )
    )
    module, member, alias = draw(MODULES), draw(MEMBERS), draw(IDENTIFIERS)
    if kind == "import":
        text = f"import {module}"
    elif kind == "import-as":
        text = f"import {module} as {alias}"
    elif kind == "from":
        text = f"from {module} import {member}"
    elif kind == "from-as":
        text = f"from {module} import {member} as {alias}"
    elif kind == "from-star":
        text = f"from {module} import *"
    elif kind == "relative":
        text = draw(
            st.sampled_from([f"from . import {alias}", f"from .{module} import {member}", f"from ..{module} import *"])
        )
    elif kind == "call":
        text = draw(call_expressions())
    elif kind == "assign-call":
        text = f"{draw(TARGETS)} = {draw(call_expressions())}"
    elif kind == "client":
        annotation = ": MlflowClient" if draw(st.booleans()) else ""
        text = f"{draw(TARGETS)}{annotation} = {draw(constructors())}{draw(ARGUMENTS)}"
    elif kind == "client-call":
        text = f"{draw(TARGETS)}.{draw(MEMBERS)}{draw(ARGUMENTS)}"
    elif kind == "ctor-call":
        text = f"{draw(constructors())}().{draw(MEMBERS)}{draw(ARGUMENTS)}"
    elif kind == "alias":  # version 2: assignment aliases
        value = draw(st.one_of(IDENTIFIERS, callees(), constructors()))
        text = f"{alias} = {value}"
    elif kind == "import-call":
        function = draw(
            st.sampled_from(["importlib.import_module", "import_module", "pytest.importorskip", "__import__"])
        )
        text = f"{alias} = {function}('{module}')"
    elif kind == "getattr":  # version 2: getattr with a computed (or a literal) name
        name = draw(st.sampled_from(["flavor", "'sklearn'", "f'{x}'", "name + '_x'"]))
        base = draw(st.one_of(BOUND_NAMES, IDENTIFIERS, st.just("mlflow.sklearn")))
        text = f"getattr({base}, {name}).{draw(APIS)}{draw(ARGUMENTS)}"
    elif kind == "annotated":  # version 2: parameters annotated with the client class
        annotation = draw(
            st.one_of(constructors(), constructors().map(lambda c: f"'{c}'"), st.just("Optional[MlflowClient]"))
        )
        parameter = draw(st.one_of(st.just("client"), IDENTIFIERS))
        body = f"return {draw(st.one_of(st.just(parameter), TARGETS))}.{draw(MEMBERS)}{draw(ARGUMENTS)}".split("\n")
        return [f"def {alias}_fn({parameter}: {annotation}, *rest):", *("\0" + line for line in body)]
    elif kind == "with":
        body = draw(call_expressions()).split("\n")
        return [*f"with {draw(call_expressions())} as {alias}:".split("\n"), *("\0" + line for line in body)]
    elif kind == "comment":
        text = f"# {draw(call_expressions())}".replace("\n", "\n# ")
    elif kind == "string":
        text = f"{alias} = '{_quoted(draw(call_expressions()))}'"
    elif kind == "docstring":
        text = f'"""\n{_quoted(draw(call_expressions()))}\n    mlflow.log_param(a, b)\n"""'
    elif kind == "fstring":
        text = f'{alias} = f"{_quoted(draw(call_expressions()))} {{{{literal}}}} {{{alias}}}"'
    elif kind == "decorated":
        decorator = draw(call_expressions()).replace("\n", " ").replace("\\", "")
        body = f"return {draw(call_expressions())}".split("\n")
        return [f"@{decorator}", f"def {alias}_fn():", *("\0" + line for line in body)]
    else:
        text = draw(st.sampled_from(["x = 1", "pass", "print('mlflow')", "flag = True", "y = [i for i in range(3)]"]))
    return text.split("\n")


@st.composite
def blocks(draw: st.DrawFn, depth: int = 0) -> list[str]:
    """Statements, some nested in def/if/class bodies (imports inside functions bind file-wide)."""
    out: list[str] = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        if depth < 2 and draw(st.integers(min_value=0, max_value=4)) == 0:
            header = draw(st.sampled_from(["def {}(self):", "if {}:", "class {}:", "for _ in {}:", "async def {}():"]))
            body = [*draw(blocks(depth=depth + 1)), "pass"]  # a body of comments alone is no body
            out.append(header.format(draw(IDENTIFIERS) + "_x"))
            out.extend("\0" + line for line in body)  # "\0" marks one indentation level
        else:
            out.extend(draw(statements()))
    return out


@st.composite
def mlflow_imports(draw: st.DrawFn) -> str:
    """The spec's import forms with the names the generated calls use most."""
    alias, member = draw(BOUND_NAMES), draw(MEMBERS)
    return draw(
        st.sampled_from(
            [
                "import mlflow",
                "import mlflow.sklearn",
                f"import mlflow as {alias}",
                f"import mlflow.sklearn as {alias}",
                f"from mlflow import {member} as {alias}",
                f"from mlflow import {member}",
                "from mlflow import sklearn",
                "from mlflow.tracking import MlflowClient",
                "from mlflow import *",
                "client = MlflowClient()",
                "client = mlflow.tracking.MlflowClient('uri')",
                "self.client = MlflowClient()",
                f"import importlib\n{alias} = importlib.import_module('mlflow')",
                f"from importlib import import_module as load\n{alias} = load('mlflow.sklearn')",
                f"{alias} = __import__('mlflow')",
            ]
        )
    )


@st.composite
def python_sources(draw: st.DrawFn) -> str:
    indent = draw(st.sampled_from(["    ", "\t", "  "]))
    prelude = draw(st.lists(mlflow_imports(), min_size=1, max_size=3))
    body = draw(blocks())
    body = [*prelude, *body] if draw(st.booleans()) else [*body, *prelude]  # imports bind file-wide
    text = "\n".join(line.replace("\0", indent) for line in body) + "\n"
    if draw(st.sampled_from([True, False, False])):
        text = text.replace("mlflow", "mlfl0w")  # a third of the files never name mlflow
    return text


# --- helpers --------------------------------------------------------------------------------------


def python_source(text: str) -> SourceFile:
    return SourceFile(path="generated.py", kind="py", cells=(text,), cell_indices=(None,))


def analyse_forced(source: SourceFile) -> FileAnalysis:
    """The same detector with the prefilter shortcut disabled: every file is parsed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Detector, "needs_parse", lambda self, source: True)
        return DETECTOR.analyse(source)


def call_starts(text: str) -> Counter[tuple[int, int]]:
    """Check the walk against PositionProvider node by node; return the oracle's Call starts.

    Both run on the same module object, so each gathered CallSite is compared with the
    PositionProvider start of that very node. The result counts (line, 1-based column) of every
    Call whose callee is a name or attribute chain, the only calls that can be findings.
    """
    wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    sites = gather(wrapper.module).calls
    assert len(sites) == sum(1 for node in positions if isinstance(node, cst.Call))
    for site in sites:
        start = positions[site.node].start
        assert (site.line, site.column) == (start.line, start.column), (
            f"{cst.Module([]).code_for_node(site.node)!r}: walk {(site.line, site.column)} "
            f"!= PositionProvider {(start.line, start.column)}\n{text}"
        )
    return Counter(
        (position.start.line, position.start.column + 1)
        for node, position in positions.items()
        if isinstance(node, cst.Call) and isinstance(node.func, (cst.Name, cst.Attribute))
    )


def assert_findings_at_call_starts(text: str, analysis: FileAnalysis) -> None:
    """Every finding (a multiset of positions) sits where the oracle says a Call starts."""
    finding_starts = Counter((f.line, f.column) for f in analysis.findings)
    missing = finding_starts - call_starts(text)
    assert not missing, f"findings not at a PositionProvider Call start: {missing}\n{text}"


def assert_findings_are_well_formed(analysis: FileAnalysis) -> None:
    for f in analysis.findings:
        assert f.path == "generated.py" and f.cell is None
        assert f.qualified_name.startswith("mlflow.") and f.api == f.qualified_name.rsplit(".", 1)[1]
        assert f.via_client == (f.category is Category.client)
        assert f.rule in {"v1", "assignment-alias", "getattr-dynamic", "annotated-client-param"}
        if f.via_client:
            assert f.qualified_name == f"mlflow.client.MlflowClient.{f.api}" and f.flavor is None
        else:
            assert f.category is SPEC_CATEGORIES.get(f.api, Category.other)
        assert not f.disabling or (f.api == "autolog" and not f.via_client)


# --- (a) the prefilter never changes findings -----------------------------------------------------


@PROPERTY_SETTINGS
@given(python_sources())
def test_prefilter_never_changes_findings(text: str) -> None:
    source = python_source(text)
    normal = DETECTOR.analyse(source)
    forced = analyse_forced(source)
    assert forced.parsed and forced.unparsable == (), f"generator made code libcst cannot parse:\n{text}"
    assert forced.findings == normal.findings
    if "mlflow" not in text:
        assert (normal.parsed, normal.findings) == (False, ())
    elif normal.parsed:
        assert normal.unparsable == ()
    else:  # it names mlflow but imports it nowhere: nothing can bind, so nothing is found
        assert forced.findings == () and not re.search(r"\b(from|import)\s+mlflow\b", text)
        assert not re.search(r"(import_module|importorskip|__import__)\('mlflow", text)
    assert_findings_are_well_formed(forced)


@PROPERTY_SETTINGS
@given(st.lists(python_sources(), min_size=1, max_size=3), st.integers(min_value=0, max_value=3))
def test_prefilter_never_changes_findings_of_notebooks(cells: list[str], markdown_cells: int) -> None:
    """Imports bind across cells, so the shortcut must see the whole notebook, not one cell."""
    indices = tuple(range(markdown_cells, markdown_cells + len(cells)))
    source = SourceFile(path="generated.ipynb", kind="ipynb", cells=tuple(cells), cell_indices=indices)
    normal = DETECTOR.analyse(source)
    forced = analyse_forced(source)
    assert forced.findings == normal.findings
    assert {f.cell for f in forced.findings} <= set(indices)
    if not any("mlflow" in cell for cell in cells):
        assert (normal.parsed, normal.findings) == (False, ())


@PROPERTY_SETTINGS
@given(python_sources())
def test_findings_marked_v1_are_exactly_what_version_1_finds(text: str) -> None:
    """Version 2 only adds: every finding version 1 makes, version 2 makes alike, marked v1."""
    source = python_source(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Detector, "needs_parse", lambda self, source: True)
        version_1 = VERSION_1.analyse(source).findings
    assert [f for f in analyse_forced(source).findings if f.rule == "v1"] == list(version_1)


def test_generated_sources_do_find_calls() -> None:
    """Guard against a vacuous property: the generator's own forms yield findings of each kind."""
    text = (
        "import mlflow as mf\nfrom mlflow.tracking import MlflowClient\nclient = MlflowClient()\n"
        "(\n    mf.sklearn.autolog(disable=True))\nclient.log_metric('a', 1)\n"
    )
    analysis = DETECTOR.analyse(python_source(text))
    assert [(f.line, f.column, f.qualified_name, f.disabling, f.via_client) for f in analysis.findings] == [
        (5, 5, "mlflow.sklearn.autolog", True, False),
        (6, 1, "mlflow.client.MlflowClient.log_metric", False, True),
    ]
    assert analyse_forced(python_source(text.replace("mlflow", "mlfl0w"))).findings == ()


# --- (b) positions agree with libcst's PositionProvider --------------------------------------------


@PROPERTY_SETTINGS
@given(python_sources())
def test_positions_agree_with_position_provider(text: str) -> None:
    assert_findings_at_call_starts(text, analyse_forced(python_source(text)))


TRICKY_SOURCES: dict[str, tuple[str, list[tuple[int, int, str]]]] = {
    "decorators": (
        "import functools\nimport mlflow\n\n@mlflow.trace(name='f')\n@ functools.lru_cache(maxsize=None)\n"
        "def f():\n    return mlflow.active_run()\n\n@mlflow.trace\nclass K:\n    pass\n",
        [(4, 2, "trace"), (7, 12, "active_run")],
    ),
    "nested-parentheses": (
        "import mlflow\nx = ((mlflow.log_param)(('a'), (1)))\nprint((mlflow.log_metric('a', (1))))\n"
        "mlflow.set_tag(mlflow.get_run(mlflow.active_run().info.run_id).info, (\n  1))\n",
        [(2, 6, "log_param"), (3, 8, "log_metric"), (4, 1, "set_tag"), (4, 16, "get_run"), (4, 31, "active_run")],
    ),
    "backslash-continuations": (
        "import mlflow\nmlflow \\\n  .log_param('a', 1)\nx = 1 + \\\n    mlflow.log_metric('m', 2)\n"
        "if x and \\\n   mlflow.active_run():\n    pass\n",
        [(2, 1, "log_param"), (5, 5, "log_metric"), (7, 4, "active_run")],
    ),
    "multiline-strings-before-the-call": (
        'import mlflow\ns = """\nabc\n   mlflow.log_param(1)\n"""; mlflow.log_param("a", 1)\n'
        "t = '''x\n''' + str(mlflow.autolog())\n",
        [(5, 6, "log_param"), (7, 11, "autolog")],
    ),
    "tabs": (
        "import mlflow\nif True:\n\tmlflow.log_param('a', 1)\n\tif x:\n\t\tmlflow.autolog()\n"
        "\t\ty = [\n\t\t\tmlflow.end_run()]\n",
        [(3, 2, "log_param"), (5, 3, "autolog"), (7, 4, "end_run")],
    ),
    "crlf": (
        "import mlflow\r\nclass T:\r\n    def go(self):\r\n        mlflow.log_param(\r\n            'a', 1)\r\n",
        [(4, 9, "log_param")],
    ),
    "comprehensions-and-lambdas": (
        "import mlflow\n[mlflow.log_metric('m', v) for v in vals]\nf = lambda: mlflow.end_run()\n"
        "g = {k: mlflow.log_param(k, v) for k, v in d.items()}\n",
        [(2, 2, "log_metric"), (3, 13, "end_run"), (4, 9, "log_param")],
    ),
    "async-and-await": (
        "import mlflow\nasync def go():\n    async with mlflow.start_run():\n        await mlflow.log_param('a', 1)\n",
        [(3, 16, "start_run"), (4, 15, "log_param")],
    ),
    "non-ascii-before-the-call": (
        "import mlflow\nname = 'Zoë ✓'; mlflow.set_tag('who', name)\n",
        [(2, 17, "set_tag")],
    ),
    "fstrings-pep701": (
        'import mlflow\nmsg = f"{f"{mlflow.log_param(\'a\', 1)}"} and {mlflow.active_run()!r:>10}"\n',
        [(2, 13, "log_param"), (2, 46, "active_run")],
    ),
    "comments-semicolons-and-blank-lines": (
        "import mlflow  # the tracker\n\n   \n# mlflow.log_param('c', 0)\n"
        "x = 1; mlflow.log_param('a', 1); y = (  # note\n"
        "    # inside\n    mlflow.log_metric('m', 2))\n",
        [(5, 8, "log_param"), (7, 5, "log_metric")],
    ),
    "match-and-type-params": (
        "import mlflow\ntype P = dict\nmatch cmd:\n    case 'go':\n        mlflow.start_run()\n"
        "def f[T](x: T) -> T:\n    return mlflow.log_param('t', x)\n",
        [(5, 9, "start_run"), (7, 12, "log_param")],
    ),
}


@pytest.mark.parametrize("name", list(TRICKY_SOURCES))
def test_positions_on_tricky_sources(name: str) -> None:
    text, expected = TRICKY_SOURCES[name]
    analysis = DETECTOR.analyse(python_source(text))
    assert sorted((f.line, f.column, f.api) for f in analysis.findings) == sorted(expected)
    assert_findings_at_call_starts(text, analysis)
