"""Files of a tree -> code units the detector reads. Pure: text in, SourceFile out.

Notebook imports bind across cells, so a notebook is one SourceFile holding all its code cells;
each cell keeps its index in the notebook (markdown and raw cells counted) so that findings point
back to the cell and the line a reader sees.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import tokenize
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from miner.core.paths import source_kind

# Cell magics whose body IPython runs as Python (spec version 2, rule 1); `%%writefile` counts
# when the file it writes is a .py file. Every other cell magic removes its whole cell.
PYTHON_BODY_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy"})
WRITEFILE_MAGIC = "writefile"

_MAGIC_LINE = re.compile(r"^[ \t]*[%!]")
_CELL_MAGIC = re.compile(r"\s*%%")
_INDENT = re.compile(r"^[ \t]*")


class SourceError(ValueError):
    """A file we cannot turn into code: not decodable, not a notebook, ..."""


class NotPythonSource(SourceError):
    """A well-formed file whose code is not Python (a notebook on an R kernel): not ours to parse."""


@dataclass(frozen=True)
class SourceFile:
    """A .py file (one cell) or a whole notebook (its code cells, IPython syntax removed)."""

    path: str
    kind: Literal["py", "ipynb"]
    cells: tuple[str, ...]
    cell_indices: tuple[int | None, ...]
    # Per cell, the cell magic whose Python body it holds (`%%writefile`, `%%time`), its magic
    # line emptied; None for a plain cell. Empty when no cell has one (every .py file).
    cell_magics: tuple[str | None, ...] = ()

    def magic_of(self, position: int) -> str | None:
        """The cell magic of the cell at this position in `cells` (None for a plain cell)."""
        return self.cell_magics[position] if self.cell_magics else None

    @cached_property
    def text_size(self) -> int:
        return sum(len(cell) for cell in self.cells)

    def mentions(self, word: str) -> bool:
        """Byte-level prefilter: a file that never names the tracker cannot import it."""
        return any(word in cell for cell in self.cells)


_WIDE_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)
_LFS_POINTER_PREFIXES = (b"version https://git-lfs.github.com/spec/", b"version https://hawser.github.com/spec/")


def is_lfs_pointer(data: bytes) -> bool:
    """A Git LFS pointer stands in for a file kept outside git: the source itself is not here."""
    return len(data) < 1024 and data.startswith(_LFS_POINTER_PREFIXES) and b"\noid sha256:" in data


def decode_python(data: bytes) -> str:
    """Decode a .py file as Python would (BOM, PEP 263 cookie, else UTF-8); strict."""
    if data.startswith(_WIDE_BOMS):
        raise SourceError(
            "UTF-16/UTF-32 text (byte order mark): Python reads source only in ASCII-compatible encodings"
        )
    if b"\x00" in data:
        raise SourceError("source contains NUL bytes")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise SourceError(f"bad encoding declaration: {exc}") from None
    try:
        text = data.decode(encoding)
    except (ValueError, LookupError) as exc:  # UnicodeError too: `# coding: punycode` raises it
        raise SourceError(f"not decodable as {encoding}: {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def python_file(path: str, data: bytes) -> SourceFile:
    return SourceFile(path=path, kind="py", cells=(decode_python(data),), cell_indices=(None,))


def _cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", cell.get("input", ""))
    if isinstance(source, list):
        return "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def notebook_cells(document: object) -> list[dict[str, Any]]:
    """All cells in order, nbformat 4 (`cells`) or 3 (`worksheets[].cells`, flattened)."""
    if not isinstance(document, dict):
        raise SourceError("notebook: top level is not a JSON object")
    if isinstance(document.get("cells"), list):
        # An entry that is not an object is no cell we can read, but it holds its place in the list.
        return [cell if isinstance(cell, dict) else {} for cell in document["cells"]]
    if isinstance(document.get("worksheets"), list):
        return [
            cell if isinstance(cell, dict) else {}
            for sheet in document["worksheets"]
            if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list)
            for cell in sheet["cells"]
        ]
    raise SourceError("notebook: no cells (neither nbformat 4 `cells` nor nbformat 3 `worksheets`)")


def notebook_language(document: object) -> str | None:
    metadata = document.get("metadata") if isinstance(document, dict) else None
    if not isinstance(metadata, dict):
        return None
    for key in ("kernelspec", "language_info"):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get("language"), str):
            language: str = section["language"]
            return language.lower()
    return None


def notebook_file(path: str, data: bytes) -> SourceFile:
    """Parse the notebook JSON and strip IPython syntax from each code cell."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"notebook: not UTF-8: {exc}") from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError too: integers over 4,300 digits
        raise SourceError(f"notebook: {type(exc).__name__}: {exc}") from None
    cells = notebook_cells(document)
    language = notebook_language(document)
    if language is not None and language != "python":
        raise NotPythonSource(f"notebook: kernel language is {language}, not python")
    sources: list[str] = []
    indices: list[int | None] = []
    magics: list[str | None] = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        magic, code = python_cell_magic(_cell_source(cell))
        sources.append(strip_ipython(code))
        indices.append(index)
        magics.append(magic)
    return SourceFile(
        path=path,
        kind="ipynb",
        cells=tuple(sources),
        cell_indices=tuple(indices),
        cell_magics=tuple(magics) if any(magics) else (),
    )


def _python_body_magic(line: str) -> str | None:
    """`%%time` for a cell magic line IPython runs the body of as Python, else None."""
    words = line.split()
    name = words[0][2:] if words else ""
    if name in PYTHON_BODY_MAGICS:
        return f"%%{name}"
    if name == WRITEFILE_MAGIC and len(words) > 1 and words[-1].endswith(".py"):
        return f"%%{name}"  # the target is the last word: `%%writefile -a train.py`
    return None


def python_cell_magic(cell: str) -> tuple[str | None, str]:
    """(`%%<magic>`, the cell with its magic line emptied) when the cell's first non-empty line is
    a cell magic whose body is Python; else (None, the cell unchanged).

    The line is emptied, not removed, so line numbers stay those of the stored cell. A body that
    starts with another such magic (`%%capture` then `%%time`) loses that line too; the outer
    magic is the one recorded. Any other cell magic is left for `strip_ipython` to remove.
    """
    kind: str | None = None
    while _CELL_MAGIC.match(cell):
        start = len(cell) - len(cell.lstrip())
        line_start = cell.rfind("\n", 0, start) + 1
        line_end = cell.find("\n", start)
        line_end = len(cell) if line_end < 0 else line_end
        magic = _python_body_magic(cell[start:line_end])
        if magic is None:
            break
        kind = kind or magic
        cell = cell[:line_start] + cell[line_end:]
    return kind, cell


def _indent_width(line: str) -> int:
    return len(_INDENT.match(line).group(0).expandtabs(8))  # type: ignore[union-attr]


@dataclass(frozen=True)
class _LineShape:
    starts_statement: bool  # not inside brackets, a string, or after a backslash
    code_tail: str  # last non-blank character outside strings and comments ("" if none)
    magic: bool = False  # a line magic or shell escape, or a backslash continuation of one


def _scan(line: str, depth: int, quote: str | None) -> tuple[int, str | None, str]:
    """Bracket depth, open string and last code character after one physical line."""
    tail = ""
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote = None
                tail = "'"
                continue
            i += 1
            continue
        if ch == "#":
            break
        if ch in "\"'":
            triple = line[i : i + 3]
            quote = triple if triple in ('"""', "'''") else ch
            i += len(quote)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        if not ch.isspace():
            tail = ch
        i += 1
    if quote is not None and len(quote) == 1:
        quote = None  # an unterminated one-quote string ends with its line
    return depth, quote, tail


def _line_shapes(cell: str) -> list[_LineShape]:
    """Where each physical line stands in Python's lexical structure, by a small scanner.

    Lines inside brackets (`!= score)`), inside triple-quoted strings (`%d items`) or after a
    backslash continue a statement and so cannot be IPython syntax; `# why?` is a comment, not
    a help request. A magic line is not scanned (`!echo :(` opens no bracket) and takes its
    backslash continuations with it, as IPython does. Deliberately lenient: it only has to
    find those cases.
    """
    shapes: list[_LineShape] = []
    depth = 0
    quote: str | None = None
    continued = False
    in_magic = False
    for line in cell.split("\n"):
        if in_magic:
            shapes.append(_LineShape(False, "", magic=True))
            in_magic = line.rstrip().endswith("\\")
            continue
        starts = depth == 0 and quote is None and not continued
        if starts and _MAGIC_LINE.match(line) and not line.lstrip().startswith("!="):
            shapes.append(_LineShape(True, "", magic=True))
            in_magic = line.rstrip().endswith("\\")
            continue
        depth, quote, tail = _scan(line, depth, quote)
        continued = line.rstrip().endswith("\\") and quote is None
        shapes.append(_LineShape(starts, tail))
    return shapes


def _is_ipython_line(line: str, shape: _LineShape) -> bool:
    return shape.magic or (shape.starts_statement and shape.code_tail == "?")


def strip_ipython(cell: str) -> str:
    """Remove magics, shell escapes and help lines, keeping every line number where it was.

    A removed line becomes an empty line, or `pass` when it is the only body of a block (an
    `if` whose body is `!pip install x` must still parse).
    """
    if cell.lstrip().startswith("%%"):
        return "\n" * cell.count("\n")
    if "%" not in cell and "!" not in cell and "?" not in cell:
        return cell
    lines = cell.split("\n")
    shapes = _line_shapes(cell)
    removed = [_is_ipython_line(line, shape) for line, shape in zip(lines, shapes)]
    if not any(removed):
        return cell
    kept_code = [
        not removed[i] and lines[i].strip() != "" and not lines[i].lstrip().startswith("#") for i in range(len(lines))
    ]
    result = list(lines)
    for i, is_removed in enumerate(removed):
        if not is_removed:
            continue
        result[i] = ""
        opener = next((j for j in range(i - 1, -1, -1) if kept_code[j]), None)
        if opener is None or shapes[opener].code_tail != ":":
            continue
        if any(result[k].strip() == "pass" for k in range(opener + 1, i)):
            continue
        following = next((j for j in range(i + 1, len(lines)) if kept_code[j]), None)
        if following is None or _indent_width(lines[following]) <= _indent_width(lines[opener]):
            indent = _INDENT.match(lines[i]).group(0)  # type: ignore[union-attr]
            if _indent_width(lines[i]) <= _indent_width(lines[opener]):
                indent = _INDENT.match(lines[opener]).group(0) + "    "  # type: ignore[union-attr]
            result[i] = indent + "pass"
    return "\n".join(result)


def load_source(path: str, data: bytes) -> SourceFile:
    """Dispatch on the file kind; raises SourceError with a reader-facing reason."""
    kind = source_kind(path)
    if kind == "py":
        return python_file(path, data)
    if kind == "ipynb":
        return notebook_file(path, data)
    raise SourceError(f"not a Python source: {path}")
