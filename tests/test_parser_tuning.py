"""The parser child's tuning must build exactly the trees and findings libcst builds untuned."""

from __future__ import annotations

import dataclasses
import gc
import inspect
from pathlib import Path

import libcst as cst
import pytest

import miner
from miner.analyse.detect.detector import Detector
from miner.analyse.parser_tuning import collector_paused, node_classes, plain_init, tuned_parser
from miner.analyse.sources import python_file
from miner.core.rules import load_rules

SNIPPETS = [
    "import mlflow as ml\nfrom mlflow import log_param as lp, log_metric\n\n"
    "with ml.start_run(run_name=f'{name!r:>10}'):\n    lp('a', 1)\n    log_metric(key='m', value=0.5, step=2)\n",
    "from mlflow.tracking import MlflowClient\nclient = MlflowClient()\nclient.log_metric(run.info.run_id, 'k', 1)\n",
    "import mlflow.sklearn\n@decorator(arg)\nasync def f(*args, x: int = 1, **kw) -> None:\n"
    "    async with a as b, c:\n        await mlflow.sklearn.autolog(log_models=(y := 2))\n",
    "match command.split():\n    case [action, *rest] if rest:\n        pass\n    case {'k': v, **others}:\n        pass\n",
    "type Point[T: int, *Ts, **P] = tuple[T, *Ts]\nclass C[T](Base, metaclass=M):\n    x: T = lambda q=1: q\n",
    "f'{f\"{1 + 2:{width}}\"}' ; x = [i for i in range(3) if i] ; del x[0], y\n",
    "try:\n    pass\nexcept* (ValueError, TypeError) as group:\n    raise\nelse:\n    pass\nfinally:\n    pass\n",
    "# comment only\n\n\n",
    "import mlflow\nx = (\n    mlflow.log_param('a', 1))\n(mlflow).log_metric('m', 2)\n"
    "((mlflow.set_tag))('t', (1, (2)))\ny = [mlflow.log_metric(k, v) for k, v in ((a, b),)]\n",
    "",
]


BUILT_BY_HAND = [  # nodes built with defaults: plain defaults and default factories
    lambda: cst.Name("a"),
    lambda: cst.Call(cst.Name("f")),
    lambda: cst.AsName(cst.Name("x")),
    lambda: cst.ImportFrom(module=cst.Name("mlflow"), names=[cst.ImportAlias(cst.Name("log_param"))]),
    lambda: cst.FunctionDef(
        cst.Name("f"), cst.Parameters(), cst.IndentedBlock([cst.SimpleStatementLine([cst.Pass()])])
    ),
]


def real_sources() -> list[str]:
    """The miner's and libcst's own modules: real code with every kind of statement there is."""
    paths = sorted(Path(miner.__file__).parent.rglob("*.py")) + sorted(
        (Path(cst.__file__).parent / "_nodes").glob("*.py")
    )
    return [path.read_text(encoding="utf-8") for path in paths]


def shapes(sources: list[str]) -> list[tuple[str, str]]:
    """Each tree's full repr (every field of every node) and its generated code."""
    trees = [cst.parse_module(source) for source in sources]
    return [(repr(tree), tree.code) for tree in trees]


def test_tuned_parser_builds_the_same_trees_and_round_trips() -> None:
    sources = SNIPPETS + real_sources()
    assert len(sources) > 40
    untuned = shapes(sources)
    with tuned_parser():
        tuned = shapes(sources)
    assert tuned == untuned
    assert [code for _, code in tuned] == sources


def test_tuned_parser_gives_the_same_findings() -> None:
    detector = Detector(load_rules())
    files = [python_file(f"s{index}.py", source.encode()) for index, source in enumerate(SNIPPETS)]
    untuned = [detector.analyse(source) for source in files]
    with tuned_parser(), collector_paused():
        tuned = [detector.analyse(source) for source in files]
    assert tuned == untuned
    assert sum(len(analysis.findings) for analysis in tuned) >= 5  # the snippets do call the api


def test_constructors_keep_their_signatures_and_defaults() -> None:
    originals = {cls: cls.__init__ for cls in node_classes() if "__init__" in vars(cls)}
    with tuned_parser():
        patched = [cls for cls in originals if vars(cls)["__init__"] is not originals[cls]]
        for cls in patched:
            assert inspect.signature(cls.__init__) == inspect.signature(originals[cls]), cls
        assert cst.Name in patched and cst.Call in patched and len(patched) > 200
        tuned_defaults = [repr(build()) for build in BUILT_BY_HAND]
        node = cst.Name("a")
        node.value = "b"  # frozen-ness is what the tuning trades away inside the child
    for cls, original in originals.items():
        assert vars(cls)["__init__"] is original
    # defaults and default factories fill the same fields with the same values
    assert tuned_defaults == [repr(build()) for build in BUILT_BY_HAND]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cst.Name("a").value = "b"  # type: ignore[misc]
    # validation is back outside the block
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")


def test_classes_the_simple_constructor_would_get_wrong_are_left_alone() -> None:
    @dataclasses.dataclass(frozen=True)
    class KeywordOnly:
        a: int
        b: int = dataclasses.field(default=0, kw_only=True)

    @dataclasses.dataclass(frozen=True)
    class Derived:
        a: int
        b: int = dataclasses.field(default=0, init=False)

    assert plain_init(KeywordOnly) is None
    assert plain_init(Derived) is None


def test_collector_paused_restores_the_previous_state() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
