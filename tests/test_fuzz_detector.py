"""Fuzz the pure core (issue 6, "Also"): `load_source` + `Detector.analyse` on arbitrary bytes and
on mutated real MLflow code either return a FileAnalysis whose every text the store can hold, or
raise SourceError with a reason. Nothing else, whatever the input.

libcst's native parser overflows its stack past roughly 1,000 nested brackets, which would kill
pytest itself. Nesting needs at least one character a level, so cells shorter than
IN_PROCESS_MAX_CHARS run in-process and longer ones go through the ParserSandbox, the same child
process the pipeline uses. Run with `-s` to see how many inputs ran.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miner.analyse.detect.detector import Detector, FileAnalysis
from miner.analyse.sandbox import ParserSandbox
from miner.analyse.sources import SourceError, SourceFile, load_source
from miner.core.domain import Category
from miner.core.rules import load_rules

# `# coding: unicode_escape` decodes `\d` with a DeprecationWarning, as CPython itself would: noise
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")

RULES = load_rules()
DETECTOR = Detector(RULES)
IN_PROCESS_MAX_CHARS = 900
FUZZ = settings(
    deadline=None,
    database=None,  # no .hypothesis folder in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
INPUTS: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    total = sum(INPUTS.values())
    print(f"\nfuzz inputs run: {total} ({dict(sorted(INPUTS.items()))}); outcomes: {dict(sorted(OUTCOMES.items()))}")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ParserSandbox]:
    with ParserSandbox(DETECTOR, timeout_s=10) as child:
        yield child


def storable(text: str) -> None:
    """PostgreSQL takes neither lone surrogates nor NUL in text columns."""
    text.encode("utf-8")
    assert "\x00" not in text, repr(text)


def check(path: str, data: bytes, sandbox: ParserSandbox, label: str) -> None:
    """The property: a FileAnalysis that holds together, or SourceError with a reason."""
    INPUTS[label] += 1
    try:
        source = load_source(path, data)
    except SourceError as exc:
        assert str(exc), "a SourceError must carry a reason"
        storable(str(exc))
        OUTCOMES["source_error"] += 1
        return
    assert isinstance(source, SourceFile) and source.path == path
    assert len(source.cells) == len(source.cell_indices)
    if max((len(cell) for cell in source.cells), default=0) < IN_PROCESS_MAX_CHARS:
        analysis = DETECTOR.analyse(source)  # the pure core, in this process
    else:
        analysis = sandbox.analyse(source)
        OUTCOMES["via_sandbox"] += 1
    assert isinstance(analysis, FileAnalysis)
    if not analysis.parsed:
        assert analysis.findings == () and analysis.unparsable == ()
    for unparsable in analysis.unparsable:
        assert unparsable.message.strip()
        storable(unparsable.message)
        assert unparsable.cell is None or unparsable.cell in source.cell_indices
    for found in analysis.findings:
        assert found.path == path and found.line >= 1 and found.column >= 1
        assert found.cell in source.cell_indices
        assert isinstance(found.category, Category)
        assert found.qualified_name.startswith("mlflow.")
        assert found.api == found.qualified_name.rsplit(".", 1)[1]
        for text in (found.qualified_name, found.api, found.flavor or ""):
            storable(text)
    OUTCOMES["unparsable" if analysis.unparsable else ("parsed" if analysis.parsed else "prefiltered")] += 1
    OUTCOMES["findings"] += len(analysis.findings)


# --- (a) arbitrary bytes ---------------------------------------------------------------------------

PYTHONISH = st.sampled_from(
    list("()[]{}:;=.,'\"\\#\n\r\t @%!?*-+<>&|^~0123456789abcxyz_")
    + [
        "mlflow",
        "import ",
        "from ",
        " as ",
        "def ",
        "class ",
        "lambda",
        "async ",
        "await ",
        "yield ",
        "f'",
        "b'",
        "'''",
        '"""',
        "\\\n",
        "\r\n",
        "\x00",
        "\ufeff",
        "\u00e9",
        "\ud800",
        "if ",
        "else",
        "with ",
        "match ",
        "case ",
        "type ",
        "print ",
        "exec ",
        "`",
        "$",
        "\x0c",
        "\xa0",
    ]
)
COOKIES = st.sampled_from(
    [
        "utf-8",
        "latin-1",
        "cp1252",
        "utf-16",
        "utf-32",
        "utf-7",
        "idna",
        "punycode",
        "hex",
        "rot13",
        "zlib",
        "unicode_escape",
        "raw_unicode_escape",
        "shift_jis",
        "iso2022_jp",
        "klingon",
        "",
    ]
).map(lambda name: f"# -*- coding: {name} -*-\n".encode())
IMPORT_LINES = st.one_of(
    st.sampled_from(
        [
            b"import mlflow\n",
            b"import mlflow as mf\n",
            b"from mlflow import *\n",
            b"from mlflow.tracking import MlflowClient\n",
            b"import mlflow.sklearn\n",
            b"\xef\xbb\xbfimport mlflow\n",
            b"\xff\xfeimport mlflow\n",
            b"",
        ]
    ),
    COOKIES.map(lambda cookie: cookie + b"import mlflow\n"),
)


@settings(FUZZ, max_examples=2000)
@given(data=st.binary(max_size=1500))
def test_arbitrary_bytes_as_a_python_file(data: bytes, sandbox: ParserSandbox) -> None:
    check("fuzz.py", data, sandbox, "bytes.py")


@settings(FUZZ, max_examples=2000)
@given(prefix=IMPORT_LINES, data=st.binary(max_size=1500))
def test_arbitrary_bytes_after_an_mlflow_import_as_a_python_file(
    prefix: bytes, data: bytes, sandbox: ParserSandbox
) -> None:
    check("fuzz.py", prefix + data, sandbox, "import+bytes.py")  # past the prefilter: the parser runs


@settings(FUZZ, max_examples=1500)
@given(
    prefix=IMPORT_LINES,
    parts=st.lists(PYTHONISH, max_size=300),
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
)
def test_python_like_text_as_a_python_file(
    prefix: bytes, parts: list[str], encoding: str, sandbox: ParserSandbox
) -> None:
    data = prefix + "".join(parts).encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")
    check("fuzz.py", data, sandbox, "pythonish.py")


@settings(FUZZ, max_examples=2000)
@given(data=st.binary(max_size=1500))
def test_arbitrary_bytes_as_a_notebook(data: bytes, sandbox: ParserSandbox) -> None:
    check("fuzz.ipynb", data, sandbox, "bytes.ipynb")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
CELL_TEXT = st.one_of(
    st.lists(PYTHONISH, max_size=80).map("".join),
    st.sampled_from(
        [
            "import mlflow\n",
            "mlflow.log_param('a', 1)\n",
            "%pip install mlflow\n",
            "!ls\n",
            "%%time\nx\n",
            "mlflow.autolog?\n",
            "client = mlflow.MlflowClient()\nclient.log_metric('r', 'm', 1)\n",
        ]
    ),
)
CELLS = (
    st.fixed_dictionaries(
        {},
        optional={
            "cell_type": st.sampled_from(["code", "markdown", "raw", "heading"]) | JSON_VALUES,
            "source": CELL_TEXT | st.lists(CELL_TEXT | JSON_VALUES, max_size=5) | JSON_VALUES,
            "input": CELL_TEXT | st.lists(CELL_TEXT, max_size=5),
            "metadata": JSON_VALUES,
        },
    )
    | JSON_VALUES
)
KERNELS = st.fixed_dictionaries(
    {},
    optional={
        "kernelspec": st.fixed_dictionaries(
            {}, optional={"language": st.sampled_from(["python", "Python", "R", "julia"]) | JSON_VALUES}
        )
        | JSON_VALUES,
        "language_info": JSON_VALUES,
    },
)
NOTEBOOKS = st.one_of(
    st.fixed_dictionaries(
        {"cells": st.lists(CELLS, max_size=8)}, optional={"metadata": KERNELS, "nbformat": JSON_VALUES}
    ),
    st.fixed_dictionaries(
        {
            "worksheets": st.lists(
                st.fixed_dictionaries({}, optional={"cells": st.lists(CELLS, max_size=5)}) | JSON_VALUES, max_size=3
            )
        }
    ),
    JSON_VALUES,
)


@settings(FUZZ, max_examples=800)
@given(
    document=NOTEBOOKS, ascii_only=st.booleans(), bom=st.booleans(), huge_digits=st.sampled_from([0, 0, 0, 4400, 9000])
)
def test_notebook_shaped_json(
    document: object, ascii_only: bool, bom: bool, huge_digits: int, sandbox: ParserSandbox
) -> None:
    text = json.dumps(document, ensure_ascii=ascii_only)
    if huge_digits and isinstance(document, dict):  # json.dumps cannot write such an integer itself
        text = (
            '{"huge": ' + "7" * huge_digits + ", " + text[1:]
            if len(text) > 2
            else '{"huge": ' + "7" * huge_digits + "}"
        )
    data = text.encode("utf-8", "surrogatepass")
    check("fuzz.ipynb", (b"\xef\xbb\xbf" if bom else b"") + data, sandbox, "json.ipynb")


# --- (b) mutated real Python -----------------------------------------------------------------------

SNIPPETS = [
    """import mlflow
import mlflow.sklearn
from sklearn.ensemble import RandomForestRegressor

with mlflow.start_run(run_name="rf") as run:
    params = {"n_estimators": 100, "max_depth": 6}
    mlflow.log_params(params)
    model = RandomForestRegressor(**params).fit(X_train, y_train)
    mlflow.log_metric("rmse", rmse(model.predict(X_test), y_test))
    mlflow.sklearn.log_model(model, "model", registered_model_name="rf")
""",
    """from mlflow.tracking import MlflowClient
import mlflow as mf

client = MlflowClient(tracking_uri="http://localhost:5000")
experiment_id = client.create_experiment("demo")
run = client.create_run(experiment_id)
for step, loss in enumerate(losses):
    client.log_metric(run.info.run_id, "loss", loss, step=step)
client.set_terminated(run.info.run_id)
mf.set_tag("team", "ml")
""",
    """from mlflow import *
import mlflow.pytorch

set_tracking_uri("sqlite:///mlruns.db")
mlflow.pytorch.autolog(disable=True)

class Trainer:
    def __init__(self):
        self.client = mlflow.tracking.MlflowClient()

    async def fit(self, epochs: int) -> None:
        for epoch in range(epochs):
            log_metric(f"{epoch=}", float(epoch) ** 2)
            self.client.log_param(self.run_id, "epoch", epoch)
        log_artifact(path := "model.pt")
""",
    """# -*- coding: utf-8 -*-
import mlflow, os
from mlflow import log_param as lp, sklearn

if __name__ == "__main__":
    mlflow.set_experiment(os.environ.get("EXPERIMENT", "default"))
    match os.environ.get("MODE"):
        case "train":
            lp("mode", "train")
            sklearn.autolog()
        case _:
            mlflow.log_dict({"x": [1, 2, 3]}, "x.json")
    print(f"{mlflow.__version__!r:>10}")
""",
    """import mlflow
%matplotlib inline
!pip install -q mlflow
def train(lr=0.1):
    mlflow.log_param("lr", lr)
    return lr
mlflow.end_run?
type Alias[T] = list[T]
mlflow.register_model("runs:/abc/model", "Model")
""",
]
TOKENS = st.sampled_from(
    [
        "mlflow",
        "mlflow.",
        "import mlflow\n",
        "from mlflow import *\n",
        "mlflow.log_param(",
        "mlflow.autolog(disable=True)",
        "MlflowClient()",
        "client = mlflow.MlflowClient()\n",
        "client.log_metric(",
        "%pip install mlflow\n",
        "!ls\n",
        "?",
        "%%time\n",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ":",
        "\n",
        "    ",
        "\t",
        "\\\n",
        "'",
        '"',
        '"""',
        "f'{",
        "#",
        "lambda: ",
        "async ",
        "await ",
        "yield ",
        "=",
        "==",
        ",",
        ".",
        "\r\n",
        "\r",
        "\x00",
        "\ufeff",
        "\u00e9",
        "\ud83d",
        "\x0c",
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SNIPPETS))
    for _ in range(draw(st.integers(1, 12))):
        op = draw(
            st.sampled_from(["delete", "insert", "token", "duplicate", "dup_line", "del_line", "swap_lines", "indent"])
        )
        at = draw(st.integers(0, len(text)))
        if op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif op == "insert":
            text = text[:at] + draw(st.characters() | PYTHONISH) + text[at:]
        elif op == "token":
            text = text[:at] + draw(TOKENS) + text[at:]
        elif op == "duplicate":
            piece = text[at : at + draw(st.integers(1, 40))]
            text = text[:at] + piece * draw(st.integers(2, 4)) + text[at:]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(i, lines[i])
            elif op == "del_line":
                del lines[i]
            elif op == "swap_lines":
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = draw(st.sampled_from(["    ", "\t", " ", "        "])) + lines[i]
            text = "\n".join(lines)
    return text


@settings(FUZZ, max_examples=1000)
@given(text=mutated(), encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_mutated_mlflow_code_as_a_python_file(text: str, encoding: str, sandbox: ParserSandbox) -> None:
    check(
        "mutated.py",
        text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace"),
        sandbox,
        "mutated.py",
    )


@settings(FUZZ, max_examples=800)
@given(text=mutated(), cuts=st.lists(st.integers(0, 2000), max_size=4), as_lines=st.booleans())
def test_mutated_mlflow_code_as_notebook_cells(
    text: str, cuts: list[int], as_lines: bool, sandbox: ParserSandbox
) -> None:
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    cells = []
    for start, end in zip(bounds, bounds[1:]):
        source = text[start:end]
        cells.append(
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "source": source.splitlines(keepends=True) if as_lines else source,
            }
        )
        cells.append({"cell_type": "markdown", "metadata": {}, "source": "notes"})
    document = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"language": "python"}}, "cells": cells}
    check("mutated.ipynb", json.dumps(document).encode("utf-8", "surrogatepass"), sandbox, "mutated.ipynb")


def test_the_fuzzed_snippets_are_realistic_and_found() -> None:
    """Unmutated, every snippet parses and has findings: the mutations start from real code."""
    for index, snippet in enumerate(SNIPPETS):
        path = "snippet.ipynb" if "%matplotlib" in snippet else "snippet.py"
        data = (
            json.dumps({"cells": [{"cell_type": "code", "source": snippet}]}).encode()
            if path.endswith("ipynb")
            else snippet.encode()
        )
        analysis = DETECTOR.analyse(load_source(path, data))
        assert analysis.ok and analysis.parsed and analysis.findings, (index, analysis)
